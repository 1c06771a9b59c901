/**
 * Subscriptions complete once nothing more can come, over graphql-ws and graphql-sse
 * alike: a FINISH pipeline's event streams after its last event, a succeeded track's
 * output after its last line; a FAILED pipeline's streams stay open for a retry. What
 * arrives before the completion is exactly the journal, or the stored output.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from '../../src/generated/gql/index.ts';
import { PipelineDetail, PipelineUpdated, RetryPipeline, StartPipeline, TrackUpdated } from '../helpers/operations.ts';
import { eventually, seedGraph, type GraphSpec } from '../helpers/seed.ts';
import { collectAll, startTestApp, type SubscribingClient, type TestApp } from '../helpers/test-app.ts';

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

/** Every subscription the server completed also stopped listening. */
const released = (base: number) =>
  eventually(async () => (t.app.store.bus.subscriptions === base ? true : undefined), 10_000, 'the completed subscriptions to stop listening');

describe.each([
  ['graphql-ws', () => t.wsClient()],
  ['graphql-sse', () => t.sseClient()],
] as Array<[string, () => SubscribingClient]>)('over %s', (_transport, client) => {
  it('subscribed after FINISH: the whole journal, then complete; without after, complete at once', async () => {
    const { pipelineId } = await start({ vertices: { A: { script: 'echo a' }, B: { script: 'echo b' } }, edges: [['A', 'B']] });
    await settled(pipelineId, 'FINISH');
    const base = t.app.store.bus.subscriptions;
    const [tracks, pipeline, live, snapshot, liveOnly] = await Promise.all([
      collectAll(client(), TrackUpdated, { pipelineId, after: 0 }),
      collectAll(client(), PipelineUpdated, { pipelineId, after: 0 }),
      collectAll(client(), Live, { pipelineId, after: 0 }),
      collectAll(client(), Live, { pipelineId }),
      collectAll(client(), TrackUpdated, { pipelineId }),
    ]);
    const events = await journal(pipelineId);
    expect(tracks.map((i) => i.trackUpdated.id)).toEqual(events.filter((e) => e.trackId !== null).map((e) => e.id));
    expect(pipeline.map((i) => i.pipelineUpdated.type)).toEqual(['pipeline:started', 'pipeline:finished']);
    expect(pipeline.map((i) => i.pipelineUpdated.id)).toEqual(events.filter((e) => e.pipelineState !== null).map((e) => e.id));
    expect(live.map((m) => m.pipelineLive.event?.id)).toEqual(events.map((e) => e.id));
    // The snapshot shows the end already: nothing follows it.
    expect(snapshot).toEqual([{ pipelineLive: { snapshot: { id: pipelineId, state: 'FINISH', cursor: events.at(-1)!.id }, event: null } }]);
    expect(liveOnly).toEqual([]);
    await released(base);
  });

  it('subscribed during the run: every event as it commits, and complete right after pipeline:finished', async () => {
    const gate = path.join(t.dir, `go-${Date.now()}-${Math.random()}`);
    const { pipelineId } = await start({
      vertices: { A: { script: `while [ ! -e ${gate} ]; do sleep 0.02; done; echo a` }, B: { script: 'echo b' }, C: { script: 'echo c' } },
      edges: [['A', 'B'], ['A', 'C']],
    });
    const base = t.app.store.bus.subscriptions;
    const all = Promise.all([
      collectAll(client(), TrackUpdated, { pipelineId, after: 0 }),
      collectAll(client(), PipelineUpdated, { pipelineId, after: 0 }),
      collectAll(client(), Live, { pipelineId }),
    ]);
    await listening(base, 3);
    writeFileSync(gate, '');
    const [tracks, pipeline, [first, ...changes]] = await all;
    const events = await journal(pipelineId);
    expect(events.at(-1)!.type).toBe('pipeline:finished');
    expect(tracks.map((i) => i.trackUpdated.id)).toEqual(events.filter((e) => e.trackId !== null).map((e) => e.id));
    expect(pipeline.map((i) => i.pipelineUpdated.id)).toEqual(events.filter((e) => e.pipelineState !== null).map((e) => e.id));
    expect(pipeline.at(-1)!.pipelineUpdated.type).toBe('pipeline:finished');
    const cursor = first!.pipelineLive.snapshot!.cursor;
    expect(first!.pipelineLive.snapshot!.state).toBe('RUNNING');
    expect(changes.map((m) => m.pipelineLive.event!.id)).toEqual(events.filter((e) => e.id > cursor).map((e) => e.id));
    expect(changes.at(-1)!.pipelineLive.event!.type).toBe('pipeline:finished');
    await released(base);
  });

  it('a FAILED pipeline\'s streams stay open: the retry\'s events and lines arrive on the same subscriptions, which complete when it finishes', async () => {
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
    const [tracks, pipeline, live, lines] = await Promise.all([
      collectAll(client(), TrackUpdated, { pipelineId, after: 0 }, (items) => reached('tracks', items.at(-1)!.trackUpdated.id === lastOf((e) => e.trackId !== null))),
      collectAll(client(), PipelineUpdated, { pipelineId, after: 0 }, (items) => reached('pipeline', items.at(-1)!.pipelineUpdated.type === 'pipeline:failed')),
      collectAll(client(), Live, { pipelineId, after: 0 }, (items) => reached('live', items.at(-1)!.pipelineLive.event!.id === lastOf(() => true))),
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
