/**
 * When subscriptions end, over graphql-ws and graphql-sse alike. A pipeline's event streams
 * have no end state: after FINISH they stay open, and a re-run from a step (SPEC rule 17)
 * arrives on them, as a retry of a FAILED pipeline does. A succeeded track's output
 * completes after its last line. What arrives is exactly the journal, or the stored output.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print as printDocument } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from '../../src/generated/gql/index.ts';
import { PipelineDetail, PipelineUpdated, RetryPipeline, StartPipeline, TrackUpdated } from '../helpers/operations.ts';
import { eventually, seedGraph, type GraphSpec } from '../helpers/seed.ts';
import { collect, collectAll, startTestApp, type SubscribingClient, type TestApp } from '../helpers/test-app.ts';

const Live = graphql(`
  subscription StreamEndLive($pipelineId: Int!, $after: Int) {
    pipelineLive(pipelineId: $pipelineId, after: $after) {
      snapshot { id state cursor }
      event { id type pipelineState }
    }
  }
`);

const Output = graphql(`
  subscription StreamEndOutput($trackId: Int!, $offset: Int) {
    trackOutput(trackId: $trackId, offset: $offset) { attempt stream line offset }
  }
`);

const RetryFrom = graphql(`
  mutation StreamEndRetryFrom($id: Int!, $from: [String!]) {
    retryPipeline(id: $id, from: $from) {
      __typename
      ... on Pipeline { id state }
      ... on Error { message field }
    }
  }
`);

const StoredOutput = graphql(`
  query StreamEndStoredOutput($id: Int!, $offset: Int, $attempt: Int) {
    track(id: $id) { output(offset: $offset, attempt: $attempt) { complete truncated lines { stream line offset } } }
  }
`);

/** Over the limit, the middle of an attempt's output is dropped: 4 KiB keeps 2 KiB each end. */
const OUTPUT_LIMIT_BYTES = 4096;

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: { OUTPUT_LIMIT_BYTES: String(OUTPUT_LIMIT_BYTES) } });
});
afterAll(() => t?.stop());

const numbered = (count: number) => Array.from({ length: count }, (_, i) => `line ${i + 1}`);
const print = (count: number) => `for i in $(seq 1 ${count}); do echo "line $i"; done`;

async function start(spec: GraphSpec) {
  const { graphId } = await seedGraph(t, spec);
  const started = await t.request(StartPipeline, { graphId });
  if (started.startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(started));
  const tracks = Object.fromEntries(started.startPipeline.tracks.map((track) => [track.name, track.id]));
  return { pipelineId: started.startPipeline.id, tracks };
}

const settled = (pipelineId: number, state: 'FINISH' | 'FAILED') =>
  eventually(async () => ((await t.request(PipelineDetail, { id: pipelineId })).pipeline?.state === state ? true : undefined), 20_000, `pipeline ${state}`);

const journal = async (pipelineId: number) => t.app.store.db.event.findMany({ where: { pipelineId }, orderBy: { id: 'asc' } });

async function stored(trackId: number, offset = 0, attempt?: number) {
  const { track } = await t.request(StoredOutput, { id: trackId, offset, attempt: attempt ?? null });
  expect(track!.output.complete).toBe(true);
  return track!.output;
}

/** Waits until the server listens for `count` more subscriptions than `base`. */
const listening = (base: number, count: number) =>
  eventually(async () => (t.app.store.bus.subscriptions >= base + count ? true : undefined), 10_000, 'the subscriptions to listen');

/**
 * A subscription left open: what it received so far, whether the server completed it, and
 * `until` to wait for what it received to satisfy a check.
 */
function follow<R, V>(client: SubscribingClient, document: TypedDocumentNode<R, V>, variables: V) {
  const items: R[] = [];
  let completed = false;
  let failure: unknown;
  const dispose = client.subscribe(
    { query: printDocument(document), variables: variables as Record<string, unknown> },
    {
      next: (value) => (value.errors ? (failure = value.errors) : items.push(value.data as R)),
      error: (error) => (failure = error),
      complete: () => (completed = true),
    },
  );
  return {
    items,
    get completed() {
      return completed;
    },
    dispose,
    until: (check: (items: R[]) => boolean) =>
      eventually(async () => {
        if (failure) throw new Error(JSON.stringify(failure));
        if (completed && !check(items)) throw new Error(`completed with ${items.length} item(s): ${JSON.stringify(items)}`);
        return check(items) ? true : undefined;
      }, 20_000, 'the subscription to receive what was expected'),
  };
}

/** Every subscription the server completed (or the client left) also stopped listening. */
const released = (base: number) =>
  eventually(async () => (t.app.store.bus.subscriptions === base ? true : undefined), 10_000, 'the completed subscriptions to stop listening');

describe.each([
  ['graphql-ws', () => t.wsClient()],
  ['graphql-sse', () => t.sseClient()],
] as Array<[string, () => SubscribingClient]>)('over %s', (_transport, client) => {
  it('subscribed after FINISH: the whole journal, then the streams stay open; a re-run from a step arrives on them', async () => {
    const { pipelineId } = await start({ vertices: { A: { script: 'echo a' }, B: { script: 'echo b' } }, edges: [['A', 'B']] });
    await settled(pipelineId, 'FINISH');
    const finished = await journal(pipelineId);
    const base = t.app.store.bus.subscriptions;
    const streams = {
      tracks: follow(client(), TrackUpdated, { pipelineId, after: 0 }),
      pipeline: follow(client(), PipelineUpdated, { pipelineId, after: 0 }),
      live: follow(client(), Live, { pipelineId, after: 0 }),
      snapshot: follow(client(), Live, { pipelineId }),
      liveOnly: follow(client(), TrackUpdated, { pipelineId }),
    };
    await listening(base, 5);
    // The replays reach the end, and nothing completes.
    await streams.live.until((items) => items.length === finished.length);
    await streams.snapshot.until((items) => items.length === 1);
    expect(streams.snapshot.items).toEqual([{ pipelineLive: { snapshot: { id: pipelineId, state: 'FINISH', cursor: finished.at(-1)!.id }, event: null } }]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const stream of Object.values(streams)) expect(stream.completed).toBe(false);
    expect(streams.liveOnly.items).toEqual([]);

    const { retryPipeline } = await t.request(RetryFrom, { id: pipelineId, from: ['B'] });
    expect(retryPipeline).toMatchObject({ __typename: 'Pipeline', state: 'RUNNING' });
    const finishes = (items: Array<{ pipelineUpdated: { type: string } }>) => items.filter((i) => i.pipelineUpdated.type === 'pipeline:finished').length === 2;
    await streams.pipeline.until(finishes);
    await settled(pipelineId, 'FINISH');
    const events = await journal(pipelineId);
    const rerun = events.filter((e) => e.id > finished.at(-1)!.id);
    expect(rerun.map((e) => e.type)).toEqual(['track:retried', 'pipeline:retried', 'track:claimed', 'track:succeeded', 'pipeline:finished']);
    expect(rerun[1]!.reason).toBe('re-run from B');
    await streams.tracks.until((items) => items.length === events.filter((e) => e.trackId !== null).length);
    await streams.live.until((items) => items.length === events.length);
    await streams.snapshot.until((items) => items.length === 1 + rerun.length);
    await streams.liveOnly.until((items) => items.length === rerun.filter((e) => e.trackId !== null).length);
    expect(streams.tracks.items.map((i) => i.trackUpdated.id)).toEqual(events.filter((e) => e.trackId !== null).map((e) => e.id));
    expect(streams.pipeline.items.map((i) => i.pipelineUpdated.type)).toEqual(['pipeline:started', 'pipeline:finished', 'pipeline:retried', 'pipeline:finished']);
    expect(streams.live.items.map((m) => m.pipelineLive.event?.id)).toEqual(events.map((e) => e.id));
    expect(streams.snapshot.items.slice(1).map((m) => m.pipelineLive.event?.id)).toEqual(rerun.map((e) => e.id));
    expect(streams.liveOnly.items.map((i) => i.trackUpdated.id)).toEqual(rerun.filter((e) => e.trackId !== null).map((e) => e.id));
    // Still open after the second FINISH; leaving stops the server listening.
    for (const stream of Object.values(streams)) {
      expect(stream.completed).toBe(false);
      stream.dispose();
    }
    await released(base);
  });

  it('subscribed during the run: every event as it commits, and still open after pipeline:finished', async () => {
    const gate = path.join(t.dir, `go-${Date.now()}-${Math.random()}`);
    const { pipelineId } = await start({
      vertices: { A: { script: `while [ ! -e ${gate} ]; do sleep 0.02; done; echo a` }, B: { script: 'echo b' }, C: { script: 'echo c' } },
      edges: [['A', 'B'], ['A', 'C']],
    });
    const base = t.app.store.bus.subscriptions;
    const tracksStream = follow(client(), TrackUpdated, { pipelineId, after: 0 });
    const pipelineStream = follow(client(), PipelineUpdated, { pipelineId, after: 0 });
    const liveStream = follow(client(), Live, { pipelineId });
    await listening(base, 3);
    writeFileSync(gate, '');
    await pipelineStream.until((items) => items.at(-1)?.pipelineUpdated.type === 'pipeline:finished');
    const events = await journal(pipelineId);
    expect(events.at(-1)!.type).toBe('pipeline:finished');
    await tracksStream.until((items) => items.length === events.filter((e) => e.trackId !== null).length);
    await liveStream.until((items) => items.at(-1)?.pipelineLive.event?.type === 'pipeline:finished');
    const [first, ...changes] = liveStream.items;
    expect(tracksStream.items.map((i) => i.trackUpdated.id)).toEqual(events.filter((e) => e.trackId !== null).map((e) => e.id));
    expect(pipelineStream.items.map((i) => i.pipelineUpdated.id)).toEqual(events.filter((e) => e.pipelineState !== null).map((e) => e.id));
    const cursor = first!.pipelineLive.snapshot!.cursor;
    expect(first!.pipelineLive.snapshot!.state).toBe('RUNNING');
    expect(changes.map((m) => m.pipelineLive.event!.id)).toEqual(events.filter((e) => e.id > cursor).map((e) => e.id));
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const stream of [tracksStream, pipelineStream, liveStream]) {
      expect(stream.completed).toBe(false);
      stream.dispose();
    }
    await released(base);
  });

  it('a FAILED pipeline\'s streams stay open: the retry\'s events and lines arrive on the same subscriptions (the output\'s completes when the track succeeded)', async () => {
    const mark = path.join(t.dir, `failed-once-${Date.now()}-${Math.random()}`);
    const { pipelineId, tracks: ids } = await start({
      vertices: { flaky: { script: `if [ -e ${mark} ]; then echo second; else touch ${mark}; echo first; exit 3; fi` }, after: { script: 'echo after' } },
      edges: [['flaky', 'after']],
    });
    await settled(pipelineId, 'FAILED');
    const failed = await journal(pipelineId);
    const lastOf = (keep: (e: (typeof failed)[number]) => boolean) => failed.filter(keep).at(-1)!.id;
    const base = t.app.store.bus.subscriptions;
    // Each subscriber has replayed up to the failure; then the pipeline is retried.
    const caughtUp = new Set<string>();
    let retried: Promise<unknown> | undefined;
    const reached = (name: string, done: boolean) => {
      if (!done || caughtUp.has(name)) return;
      caughtUp.add(name);
      if (caughtUp.size === 4) retried = t.request(RetryPipeline, { id: pipelineId });
    };
    // The event streams stay open after the retried run's end: collected up to the last event.
    const upToFinish = <R>(ended: (item: R) => boolean, seen: (items: R[]) => void) => (items: R[]) => (seen(items), ended(items.at(-1)!));
    const [tracks, pipeline, live, lines] = await Promise.all([
      collect(
        client(),
        TrackUpdated,
        { pipelineId, after: 0 },
        upToFinish(
          (i) => i.trackUpdated.type === 'track:succeeded' && i.trackUpdated.track?.name === 'after',
          (items) => reached('tracks', items.at(-1)!.trackUpdated.id === lastOf((e) => e.trackId !== null)),
        ),
      ),
      collect(
        client(),
        PipelineUpdated,
        { pipelineId, after: 0 },
        upToFinish(
          (i) => i.pipelineUpdated.type === 'pipeline:finished',
          (items) => reached('pipeline', items.at(-1)!.pipelineUpdated.type === 'pipeline:failed'),
        ),
      ),
      collect(
        client(),
        Live,
        { pipelineId, after: 0 },
        upToFinish(
          (m) => m.pipelineLive.event?.type === 'pipeline:finished',
          (items) => reached('live', items.at(-1)!.pipelineLive.event!.id === lastOf(() => true)),
        ),
      ),
      collectAll(client(), Output, { trackId: ids.flaky!, offset: 0 }, (items) => reached('output', items.at(-1)!.trackOutput.line === 'first')),
    ]);
    expect((await retried)!).toMatchObject({ retryPipeline: { __typename: 'Pipeline', state: 'RUNNING' } });
    const events = await journal(pipelineId);
    expect(events.map((e) => e.type)).toContain('pipeline:retried');
    expect(events.at(-1)!.type).toBe('pipeline:finished');
    expect(tracks.map((i) => i.trackUpdated.id)).toEqual(events.filter((e) => e.trackId !== null).map((e) => e.id));
    expect(pipeline.map((i) => i.pipelineUpdated.type)).toEqual(['pipeline:started', 'pipeline:failed', 'pipeline:retried', 'pipeline:finished']);
    expect(live.map((m) => m.pipelineLive.event!.id)).toEqual(events.map((e) => e.id));
    // The failed attempt's line, then the retry's from its own offset 0.
    expect(lines.map((i) => i.trackOutput)).toEqual([
      { attempt: 1, stream: 'STDOUT', line: 'first', offset: 0 },
      { attempt: 2, stream: 'STDOUT', line: 'second', offset: 0 },
    ]);
    await released(base);
  });

  it('trackOutput of a track that succeeded: the stored lines from the offset (head, marker, tail), then complete; without offset, complete at once', async () => {
    const { pipelineId, tracks: ids } = await start({ vertices: { short: { script: print(300) }, long: { script: print(1000) } } });
    await settled(pipelineId, 'FINISH');
    const base = t.app.store.bus.subscriptions;
    const short = await stored(ids.short!);
    const long = await stored(ids.long!);
    expect(short.truncated).toBe(false);
    expect(long.truncated).toBe(true);
    const middle = short.lines[150]!.offset!;
    const intoTail = long.lines.at(-10)!.offset!;
    const [shortAll, shortFromMiddle, longAll, longFromTail, liveOnly] = await Promise.all([
      collectAll(client(), Output, { trackId: ids.short!, offset: 0 }),
      collectAll(client(), Output, { trackId: ids.short!, offset: middle }),
      collectAll(client(), Output, { trackId: ids.long!, offset: 0 }),
      collectAll(client(), Output, { trackId: ids.long!, offset: intoTail }),
      collectAll(client(), Output, { trackId: ids.long! }),
    ]);
    const received = (items: typeof shortAll) => items.map(({ trackOutput: { stream, line, offset } }) => ({ stream, line, offset }));
    expect(received(shortAll)).toEqual(short.lines);
    expect(shortAll.map((i) => i.trackOutput.line)).toEqual(numbered(300));
    expect(received(shortFromMiddle)).toEqual(short.lines.slice(150));
    expect(received(longAll)).toEqual(long.lines);
    expect(long.lines.filter((l) => l.offset === null).map((l) => l.line)).toEqual([expect.stringMatching(/^\[output truncated: \d+ bytes/)]);
    expect(long.lines.at(-1)!.line).toBe('line 1000');
    expect(received(longFromTail)).toEqual(long.lines.slice(-10));
    expect(liveOnly).toEqual([]);
    await released(base);
  });

  it('trackOutput during the run: every line printed, the last ones (stored only with the result) too, then complete', async () => {
    const gate = path.join(t.dir, `print-${Date.now()}-${Math.random()}`);
    const wait = `while [ ! -e ${gate} ]; do sleep 0.02; done`;
    // Printed in a burst as the script ends: most lines are in the tail, stored with the result.
    const { pipelineId, tracks: ids } = await start({ vertices: { short: { script: `${wait}; ${print(300)}` }, long: { script: `${wait}; ${print(1000)}` } } });
    const base = t.app.store.bus.subscriptions;
    const all = Promise.all([
      collectAll(client(), Output, { trackId: ids.short!, offset: 0 }),
      collectAll(client(), Output, { trackId: ids.short! }),
      collectAll(client(), Output, { trackId: ids.long!, offset: 0 }),
      collectAll(client(), Output, { trackId: ids.long! }),
    ]);
    await listening(base, 4);
    writeFileSync(gate, '');
    const [shortReplayed, shortLive, longReplayed, longLive] = await all;
    await settled(pipelineId, 'FINISH');
    const received = (items: typeof shortLive) => items.map(({ trackOutput: { stream, line, offset } }) => ({ stream, line, offset }));
    const short = await stored(ids.short!);
    expect(received(shortReplayed)).toEqual(short.lines);
    expect(received(shortLive)).toEqual(short.lines);
    expect(shortLive.map((i) => i.trackOutput.line)).toEqual(numbered(300));
    // Live, every line arrives, also the middle that the store drops over the limit.
    const long = await stored(ids.long!);
    expect(long.truncated).toBe(true);
    for (const items of [longReplayed, longLive]) {
      expect(items.map((i) => i.trackOutput.line)).toEqual(numbered(1000));
      const byOffset = new Map(received(items).map((l) => [l.offset, l]));
      expect(long.lines.filter((l) => l.offset !== null).every((l) => byOffset.get(l.offset)?.line === l.line)).toBe(true);
    }
    await released(base);
  });
});
