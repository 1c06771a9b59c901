/**
 * SPEC rule 17 through the API: an admin deletes one ended pipeline at once, with its tracks,
 * their attempts, events, output and working directory (deletePipeline); anyone else, or a
 * pipeline that has not ended, is refused with a typed error naming `id`, and nothing
 * changes. Reads of a deleted pipeline find nothing, and its subscribers get a last payload
 * saying so (no stack trace), then their streams complete, over graphql-ws and SSE alike.
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { createClient as createSseClient } from 'graphql-sse';
import { createClient } from 'graphql-ws';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createToken } from '../../src/auth/tokens.ts';
import { graphql } from '../../src/generated/gql/index.ts';
import { scrapeMetrics } from '../helpers/metrics.ts';
import { CancelPipeline, CreateSchedule, DeletePipeline, PipelineDetail, PipelineUpdated, ScheduleTicks, StartPipeline, TrackUpdated, UpdateSchedule } from '../helpers/operations.ts';
import { eventually, seedGraph, type GraphSpec } from '../helpers/seed.ts';
import { collectAll, httpClient, startTestApp, type SubscribingClient, type TestApp } from '../helpers/test-app.ts';

const Audit = graphql(`query DeletePipelineAudit($action: String) { auditLog(action: $action) { actor tokenId action targetType targetId details } }`);
const TrackById = graphql(`query DeletePipelineTrack($id: Int!) { track(id: $id) { id } }`);
const Live = graphql(`
  subscription DeletePipelineLive($pipelineId: Int!, $after: Int) {
    pipelineLive(pipelineId: $pipelineId, after: $after) { snapshot { id state } event { id type } }
  }
`);
const Output = graphql(`
  subscription DeletePipelineOutput($trackId: Int!) {
    trackOutput(trackId: $trackId, offset: 0) { attempt line }
  }
`);

const logs: Array<{ level: number; msg: string }> = [];
let t: TestApp;
const secrets = { viewer: '', operator: '', admin: '' };
const as = (role: keyof typeof secrets) => httpClient(t.url, { authorization: `Bearer ${secrets[role]}` });

beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as { level: number; msg: string });
      done();
    },
  });
  t = await startTestApp({ env: { AUTH: 'on' }, logger: pino({ level: 'info' }, sink) });
  for (const role of ['viewer', 'operator', 'admin'] as const) {
    secrets[role] = (await createToken(t.app.store.db, { name: `${role}-dana`, role })).secret;
  }
});
afterAll(async () => {
  // The service's own faults only are errors: nothing here is one.
  expect(logs.filter((l) => l.level >= 50)).toEqual([]);
  await t?.stop();
});

const workDirOf = (pipelineId: number) => path.join(t.dir, 'work', `pipeline-${pipelineId}`);

async function start(spec: GraphSpec | number) {
  const graphId = typeof spec === 'number' ? spec : (await seedGraph(as('admin'), spec)).graphId;
  const { startPipeline } = await as('operator').request(StartPipeline, { graphId });
  if (startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(startPipeline));
  return { graphId, pipelineId: startPipeline.id, tracks: Object.fromEntries(startPipeline.tracks.map((track) => [track.name, track.id])) };
}

const ended = (pipelineId: number, state: 'FINISH' | 'FAILED' | 'CANCELLED') =>
  eventually(async () => ((await as('viewer').request(PipelineDetail, { id: pipelineId })).pipeline?.state === state ? true : undefined), 20_000, `pipeline ${state}`);

/** Everything stored of a pipeline, row counts by table. */
async function rowsOf(pipelineId: number, trackIds: number[]) {
  const db = t.app.store.db;
  return {
    pipeline: await db.pipeline.count({ where: { id: pipelineId } }),
    tracks: await db.track.count({ where: { pipelineId } }),
    events: await db.event.count({ where: { pipelineId } }),
    trackEvents: await db.event.count({ where: { trackId: { in: trackIds } } }),
    attempts: await db.trackAttempt.count({ where: { trackId: { in: trackIds } } }),
    output: await db.outputChunk.count({ where: { trackId: { in: trackIds } } }),
  };
}

const NOTHING = { pipeline: 0, tracks: 0, events: 0, trackEvents: 0, attempts: 0, output: 0 };

/** A script that waits for a file: the test decides when it ends. */
const gated = (gate: string) => `while [ ! -e ${gate} ]; do sleep 0.02; done; echo released`;

describe('deletePipeline', () => {
  it('an admin deletes an ended pipeline with its tracks, attempts, events, output and working directory; the rest stays', async () => {
    // A fails its first attempt and succeeds its second (a track_attempt row), printing and writing files in its working directory.
    const { graphId, pipelineId, tracks } = await start({
      vertices: {
        A: { script: 'echo "attempt $TRACK_ATTEMPT" | tee here.txt; if [ ! -e ../tried ]; then touch ../tried; exit 3; fi', retries: 1, retryDelaySeconds: 0 },
        B: { script: 'echo b; date > b.txt' },
      },
      edges: [['A', 'B']],
    });
    await ended(pipelineId, 'FINISH');
    const kept = await start(graphId);
    await ended(kept.pipelineId, 'FINISH');
    const trackIds = Object.values(tracks);
    const before = await rowsOf(pipelineId, trackIds);
    expect(before).toMatchObject({ pipeline: 1, tracks: 2, attempts: 1 });
    for (const count of Object.values(before)) expect(count).toBeGreaterThan(0);
    expect(readdirSync(workDirOf(pipelineId)).sort()).toEqual(
      ['tried', `track-${tracks.A}-attempt-1`, `track-${tracks.A}-attempt-2`, `track-${tracks.B}-attempt-1`].sort(),
    );
    const keptBefore = await rowsOf(kept.pipelineId, Object.values(kept.tracks));

    const { name } = (await as('viewer').request(PipelineDetail, { id: pipelineId })).pipeline!;
    const { deletePipeline } = await as('admin').request(DeletePipeline, { id: pipelineId });
    expect(deletePipeline).toEqual({ __typename: 'Deleted', id: pipelineId, name });

    expect(await rowsOf(pipelineId, trackIds)).toEqual(NOTHING);
    expect(existsSync(workDirOf(pipelineId))).toBe(false);
    expect((await as('viewer').request(PipelineDetail, { id: pipelineId })).pipeline).toBeNull();
    expect((await as('viewer').request(TrackById, { id: tracks.A! })).track).toBeNull();
    // The other run of the graph, and the graph, are untouched.
    expect(await rowsOf(kept.pipelineId, Object.values(kept.tracks))).toEqual(keptBefore);
    expect(existsSync(workDirOf(kept.pipelineId))).toBe(true);
    expect(await t.app.store.db.graph.count({ where: { id: graphId } })).toBe(1);

    // The audit trail keeps it: who, what, which pipeline.
    const { auditLog } = await as('admin').request(Audit, { action: 'deletePipeline' });
    expect(auditLog).toEqual([
      { actor: 'admin-dana', tokenId: expect.any(Number), action: 'deletePipeline', targetType: 'pipeline', targetId: pipelineId, details: { id: pipelineId } },
    ]);
    const metrics = await scrapeMetrics(t.url, { authorization: `Bearer ${secrets.viewer}` });
    expect(metrics.get('dagpipe_pipelines_deleted_total{by="admin"}')).toBe(1);
    expect(metrics.get('dagpipe_pipelines_deleted_total{by="retention"}')).toBe(0);

    // Gone: a second delete does not find it.
    expect((await as('admin').request(DeletePipeline, { id: pipelineId })).deletePipeline).toEqual({
      __typename: 'NotFoundError',
      field: 'id',
      message: `No pipeline with id ${pipelineId} exists. Check the id, for example with the pipelines query.`,
    });
  });

  it("a scheduled run goes too: its schedule's tick stays, without the pipeline", { timeout: 30_000 }, async () => {
    const { graphId } = await seedGraph(as('admin'), { vertices: { once: { script: 'echo scheduled' } } });
    const { createSchedule } = await as('operator').request(CreateSchedule, { graphId, input: { name: 'every second', cron: '* * * * * *' } });
    if (createSchedule.__typename !== 'Schedule') throw new Error(JSON.stringify(createSchedule));
    const tick = await eventually(async () => {
      const ticks = (await as('viewer').request(ScheduleTicks, { id: createSchedule.id, first: 10 })).schedule!.ticks;
      return ticks.find((tk) => tk.pipeline?.state === 'FINISH');
    }, 20_000, 'a finished scheduled run');
    await as('operator').request(UpdateSchedule, { id: createSchedule.id, input: { paused: true } });
    const { deletePipeline } = await as('admin').request(DeletePipeline, { id: tick.pipeline!.id });
    expect(deletePipeline).toMatchObject({ __typename: 'Deleted', id: tick.pipeline!.id });
    const after = (await as('viewer').request(ScheduleTicks, { id: createSchedule.id, first: 10 })).schedule!.ticks.find((tk) => tk.id === tick.id);
    expect(after).toMatchObject({ outcome: 'STARTED', pipeline: null });
  });

  it('an unknown id is a NotFoundError naming id', async () => {
    expect((await as('admin').request(DeletePipeline, { id: 999_999 })).deletePipeline).toMatchObject({ __typename: 'NotFoundError', field: 'id' });
  });

  it('is for admins: an operator or a viewer gets a ForbiddenError, and nothing changes', async () => {
    const { pipelineId, tracks } = await start({ vertices: { A: { script: 'echo a' } } });
    await ended(pipelineId, 'FINISH');
    const before = await rowsOf(pipelineId, Object.values(tracks));
    for (const role of ['operator', 'viewer'] as const) {
      expect((await as(role).request(DeletePipeline, { id: pipelineId })).deletePipeline).toEqual({
        __typename: 'ForbiddenError',
        role,
        requiredRole: 'admin',
        field: 'authorization',
        message: expect.stringContaining('deletePipeline needs the admin role'),
      });
    }
    expect(await rowsOf(pipelineId, Object.values(tracks))).toEqual(before);
    expect(existsSync(workDirOf(pipelineId))).toBe(true);
    expect((await as('admin').request(Audit, { action: 'deletePipeline' })).auditLog.filter((e) => e.targetId === pipelineId)).toEqual([]);
  });

  it('a RUNNING pipeline is a ConflictError naming id (cancel it first), and nothing changes; once cancelled it goes', async () => {
    const gate = path.join(t.dir, `gate-running-${Date.now()}`);
    const { pipelineId, tracks } = await start({ vertices: { A: { script: gated(gate) }, B: { script: 'echo b' } }, edges: [['A', 'B']] });
    await eventually(async () => ((await t.app.store.db.track.findUnique({ where: { id: tracks.A! } }))?.state === 2 ? true : undefined));
    const before = await rowsOf(pipelineId, Object.values(tracks));
    const { deletePipeline } = await as('admin').request(DeletePipeline, { id: pipelineId });
    expect(deletePipeline).toEqual({
      __typename: 'ConflictError',
      field: 'id',
      message: `Pipeline ${pipelineId} is RUNNING; only an ended pipeline (FINISH, FAILED or CANCELLED) can be deleted. Cancel it first (cancelPipeline), or wait until it finishes, then delete it.`,
    });
    expect(await rowsOf(pipelineId, Object.values(tracks))).toEqual(before);
    expect((await as('viewer').request(PipelineDetail, { id: pipelineId })).pipeline).toMatchObject({ state: 'RUNNING' });

    // Cancelled, it has ended: deleted at once, while its script may still be dying.
    expect((await as('operator').request(CancelPipeline, { id: pipelineId })).cancelPipeline).toMatchObject({ state: 'CANCELLED' });
    expect((await as('admin').request(DeletePipeline, { id: pipelineId })).deletePipeline).toMatchObject({ __typename: 'Deleted', id: pipelineId });
    expect(await rowsOf(pipelineId, Object.values(tracks))).toEqual(NOTHING);
    await eventually(async () => (t.app.executor!.runningCount === 0 ? true : undefined), 10_000, 'the cancelled script to end');
    expect(existsSync(workDirOf(pipelineId))).toBe(false);
  });

  it('a FAILED pipeline whose tracks still run is refused, naming them, until they ended', async () => {
    const gate = path.join(t.dir, `gate-failed-${Date.now()}`);
    const { pipelineId, tracks } = await start({ vertices: { fails: { script: 'exit 1' }, slow: { script: gated(gate) } } });
    await ended(pipelineId, 'FAILED');
    const before = await rowsOf(pipelineId, Object.values(tracks));
    expect((await as('admin').request(DeletePipeline, { id: pipelineId })).deletePipeline).toEqual({
      __typename: 'ConflictError',
      field: 'id',
      message: expect.stringMatching(/^Pipeline \d+ is FAILED, but some of its tracks have not ended \(slow\): .* Delete it once they have ended\.$/),
    });
    expect(await rowsOf(pipelineId, Object.values(tracks))).toEqual(before);
    writeFileSync(gate, '');
    await eventually(async () => ((await t.app.store.db.track.findUnique({ where: { id: tracks.slow! } }))?.state === 3 ? true : undefined));
    expect((await as('admin').request(DeletePipeline, { id: pipelineId })).deletePipeline).toMatchObject({ __typename: 'Deleted', id: pipelineId });
    expect(await rowsOf(pipelineId, Object.values(tracks))).toEqual(NOTHING);
  });
});

describe.each([
  ['graphql-ws', () => createClient({ url: t.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true, connectionParams: { authorization: `Bearer ${secrets.viewer}` } })],
  ['graphql-sse', () => createSseClient({ url: t.url, retryAttempts: 0, headers: { authorization: `Bearer ${secrets.viewer}` } })],
] as Array<[string, () => SubscribingClient & { dispose(): void | Promise<void> }]>)('the subscribers of a deleted pipeline, over %s', (_transport, connect) => {
  it('each gets a last payload saying it was deleted (code NOT_FOUND, no stack), then its stream completes', async () => {
    const { pipelineId, tracks } = await start({ vertices: { fails: { script: 'echo doomed; exit 1' } } });
    await ended(pipelineId, 'FAILED');
    const clients: Array<{ dispose(): void | Promise<void> }> = [];
    const follow = <R, V>(document: TypedDocumentNode<R, V>, variables: V) => {
      const client = connect();
      clients.push(client);
      const payloads: R[] = [];
      // Collected to the end: the error payload rejects, with what the server said.
      const outcome = collectAll(client, document, variables, (items) => payloads.splice(0, payloads.length, ...items)).then(
        () => 'completed without an error',
        (error: Error) => error.message,
      );
      return { payloads, outcome };
    };
    const base = t.app.store.bus.subscriptions;
    const streams = {
      snapshot: follow(Live, { pipelineId }),
      replay: follow(Live, { pipelineId, after: 0 }),
      tracks: follow(TrackUpdated, { pipelineId, after: 0 }),
      pipeline: follow(PipelineUpdated, { pipelineId }),
      // A failed track's output stays open (a retry may continue it).
      output: follow(Output, { trackId: tracks.fails! }),
    };
    await eventually(async () => (t.app.store.bus.subscriptions >= base + 5 ? true : undefined), 10_000, 'the subscriptions to listen');
    await eventually(async () => (streams.snapshot.payloads.length === 1 && streams.output.payloads.length === 1 ? true : undefined));

    expect((await as('admin').request(DeletePipeline, { id: pipelineId })).deletePipeline).toMatchObject({ __typename: 'Deleted' });
    for (const [name, stream] of Object.entries(streams)) {
      const said = JSON.parse(await stream.outcome) as Array<{ message: string; extensions?: Record<string, unknown> }>;
      expect(said, name).toEqual([
        expect.objectContaining({
          message: `Pipeline ${pipelineId} was deleted (by an admin with deletePipeline, or by retention: RETENTION_DAYS), with its tracks, events and output; nothing more will come on this subscription.`,
          extensions: expect.objectContaining({ code: 'NOT_FOUND', field: name === 'output' ? 'trackId' : 'pipelineId' }),
        }),
      ]);
      expect(JSON.stringify(said)).not.toMatch(/stack|at .*\.ts/);
    }
    // What came before the end was the pipeline as it was.
    expect(streams.snapshot.payloads[0]).toMatchObject({ pipelineLive: { snapshot: { id: pipelineId, state: 'FAILED' } } });
    expect(streams.output.payloads).toEqual([{ trackOutput: { attempt: 1, line: 'doomed' } }]);
    // The server completed them all: nothing listens any more.
    await eventually(async () => (t.app.store.bus.subscriptions === base ? true : undefined), 10_000, 'the streams to stop listening');

    // Subscribing now is refused as for any unknown id.
    const late = follow(TrackUpdated, { pipelineId, after: 0 });
    expect(await late.outcome).toContain(`No pipeline with id ${pipelineId} exists`);
    for (const client of clients) await client.dispose();
  });
});
