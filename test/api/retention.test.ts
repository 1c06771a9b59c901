/**
 * SPEC rule 17, retention: ended pipelines (FINISH, FAILED, CANCELLED) that ended more than
 * RETENTION_DAYS ago are deleted with their tracks, attempts, events, output and working
 * directories, oldest first, in batches of RETENTION_BATCH_SIZE (and of at most 50 times as
 * many tracks), each batch one audit entry; QUEUED and RUNNING ones, younger
 * ones, and FAILED ones whose tracks still run are kept. RETENTION_DAYS=0 keeps everything.
 * Runs are started by the job's own timer, or here with runOnce() to know what one run did.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from '../../src/generated/gql/index.ts';
import { PipelineState, TrackState } from '../../src/engine/states.ts';
import { TRACKS_PER_BATCHED_PIPELINE } from '../../src/store/retention.ts';
import { BUSY_AFTER_SCRIPT_MS } from '../../src/retention.ts';
import { seedEndedRuns } from '../helpers/ended-runs.ts';
import { scrapeMetrics } from '../helpers/metrics.ts';
import { CancelPipeline, DeletePipeline, PipelineDetail, StartPipeline } from '../helpers/operations.ts';
import { eventually, seedGraph, type GraphSpec } from '../helpers/seed.ts';
import { startTestApp, type TestApp } from '../helpers/test-app.ts';

const Audit = graphql(`query RetentionAudit($action: String) { auditLog(action: $action, first: 1000) { actor tokenId action targetType targetId details } }`);

const DAY_MS = 24 * 60 * 60 * 1000;
const daysAgo = (days: number, plusMinutes = 0) => new Date(Date.now() - days * DAY_MS + plusMinutes * 60_000);

interface RetentionDetails {
  reason: string;
  retentionDays: number;
  finishedBefore: string;
  pipelineIds: number[];
  worker: { host: string; pid: number };
}

/** A test app and what the tests do with it. */
function harness(env: Record<string, string>) {
  const h = {
    t: undefined as unknown as TestApp,
    workDirOf: (pipelineId: number) => path.join(h.t.dir, 'work', `pipeline-${pipelineId}`),
    async run(spec: GraphSpec | number, until: 'FINISH' | 'FAILED' | 'RUNNING' | 'QUEUED' = 'FINISH') {
      const graphId = typeof spec === 'number' ? spec : (await seedGraph(h.t, spec)).graphId;
      const { startPipeline } = await h.t.request(StartPipeline, { graphId });
      if (startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(startPipeline));
      const pipelineId = startPipeline.id;
      if (until === 'QUEUED') expect(startPipeline.state).toBe('QUEUED');
      else if (until !== 'RUNNING') {
        await eventually(async () => ((await h.t.request(PipelineDetail, { id: pipelineId })).pipeline?.state === until ? true : undefined), 20_000, until);
      }
      return { graphId, pipelineId, trackIds: startPipeline.tracks.map((track) => track.id) };
    },
    /** Ended that long ago, as if the run had ended then (setup straight in the database). */
    age: (pipelineId: number, finishedAt: Date) => h.t.app.store.db.pipeline.update({ where: { id: pipelineId }, data: { finishedAt } }),
    /** Row counts of everything stored of these pipelines. */
    async rows(pipelineIds: number[]) {
      const db = h.t.app.store.db;
      const trackIds = (await db.track.findMany({ where: { pipelineId: { in: pipelineIds } }, select: { id: true } })).map((r) => r.id);
      return {
        pipelines: await db.pipeline.count({ where: { id: { in: pipelineIds } } }),
        tracks: trackIds.length,
        events: await db.event.count({ where: { pipelineId: { in: pipelineIds } } }),
        attempts: await db.trackAttempt.count({ where: { trackId: { in: trackIds } } }),
        output: await db.outputChunk.count({ where: { trackId: { in: trackIds } } }),
      };
    },
    async retentionAudit() {
      return (await h.t.request(Audit, { action: 'retention' })).auditLog.reverse().map((entry) => ({ ...entry, details: entry.details as RetentionDetails }));
    },
    metric: async (by: 'retention' | 'admin') => (await scrapeMetrics(h.t.url)).get(`dagpipe_pipelines_deleted_total{by="${by}"}`),
  };
  beforeAll(async () => {
    h.t = await startTestApp({ env });
  });
  afterAll(() => h.t?.stop());
  return h;
}

/** Prints, writes a file in its working directory, and fails its first attempt (a track_attempt row). */
const FLAKY_WRITER: GraphSpec = {
  vertices: {
    A: { script: 'echo "attempt $TRACK_ATTEMPT" | tee a.txt; if [ ! -e ../tried ]; then touch ../tried; exit 3; fi', retries: 1, retryDelaySeconds: 0 },
    B: { script: 'echo b > b.txt' },
  },
  edges: [['A', 'B']],
};

describe('RETENTION_DAYS=30, batches of 3, RETENTION_PACE=3', () => {
  // A pace of 3 (rest twice as long as a batch took) rather than 20 keeps the rests, which
  // scripts held at a gate cause, short on a loaded machine.
  const h = harness({ RETENTION_DAYS: '30', RETENTION_BATCH_SIZE: '3', RETENTION_INTERVAL_SECONDS: '86400', RETENTION_PACE: '3' });

  it('deletes the ended pipelines older than the limit, oldest first, 3 per transaction, with everything of theirs; keeps the rest', async () => {
    const gate = path.join(h.t.dir, 'gate');
    const flaky = await h.run(FLAKY_WRITER);
    const old = [flaky.pipelineId];
    for (let i = 0; i < 4; i++) old.push((await h.run(flaky.graphId)).pipelineId);
    old.push((await h.run({ vertices: { F: { script: 'echo failing; exit 1' } } }, 'FAILED')).pipelineId);
    const toCancel = await h.run({ vertices: { C: { script: `while [ ! -e ${gate} ]; do sleep 0.02; done` } } }, 'RUNNING');
    await eventually(async () => (h.t.app.executor!.runningCount === 1 ? true : undefined));
    expect((await h.t.request(CancelPipeline, { id: toCancel.pipelineId })).cancelPipeline).toMatchObject({ state: 'CANCELLED' });
    old.push(toCancel.pipelineId);
    // Ended 40 days ago, a minute apart: the oldest first.
    for (const [i, id] of old.entries()) await h.age(id, daysAgo(40, i));

    // Kept: ended recently, or 29 days ago; QUEUED or RUNNING (whatever finishedAt says); FAILED with a track still running.
    const recent = (await h.run(flaky.graphId)).pipelineId;
    const young = (await h.run(flaky.graphId)).pipelineId;
    await h.age(young, daysAgo(29));
    const running = await h.run({ maxConcurrentPipelines: 1, vertices: { R: { script: `while [ ! -e ${gate}-2 ]; do sleep 0.02; done` } } }, 'RUNNING');
    await h.age(running.pipelineId, daysAgo(50));
    // Queued behind it for real (a QUEUED row of a graph without a limit is one the sweep
    // of PostgreSQL starts at any moment).
    const queued = (await h.run(running.graphId, 'QUEUED')).pipelineId;
    await h.age(queued, daysAgo(50));
    const failedRunning = await h.run({ vertices: { F: { script: 'exit 1' }, S: { script: `while [ ! -e ${gate}-3 ]; do sleep 0.02; done` } } }, 'FAILED');
    await h.age(failedRunning.pipelineId, daysAgo(50));
    const kept = [recent, young, queued, running.pipelineId, failedRunning.pipelineId];
    // Their gated scripts claimed (the claim's event committed) before the count: under load a
    // start returns well before its tracks are claimed.
    const runningTracks = (pipelineId: number) => h.t.app.store.db.track.count({ where: { pipelineId, state: TrackState.RUNNING } });
    await eventually(async () => ((await runningTracks(running.pipelineId)) === 1 && (await runningTracks(failedRunning.pipelineId)) === 1 ? true : undefined));
    const keptBefore = await h.rows(kept);

    const before = await h.rows(old);
    expect(before.pipelines).toBe(7);
    expect(before.attempts).toBe(5);
    for (const count of Object.values(before)) expect(count).toBeGreaterThan(0);
    for (const id of old) expect(existsSync(h.workDirOf(id))).toBe(true);

    const outcome = await h.t.app.retention!.runOnce();
    expect(outcome).toMatchObject({ deleted: 7, batches: 3 });
    // Scripts were running (the gated ones): the job rested after each batch twice as long as
    // it took, however long that was (a timer may end a millisecond early).
    expect(outcome.restedMs).toBeGreaterThan(0);
    expect(outcome.restedMs).toBeGreaterThanOrEqual(2 * outcome.workedMs - outcome.batches);
    expect(await h.rows(old)).toEqual({ pipelines: 0, tracks: 0, events: 0, attempts: 0, output: 0 });
    for (const id of old) expect(existsSync(h.workDirOf(id))).toBe(false);
    for (const id of old) expect((await h.t.request(PipelineDetail, { id })).pipeline).toBeNull();
    expect(await h.rows(kept)).toEqual(keptBefore);
    for (const id of [recent, young]) expect(existsSync(h.workDirOf(id))).toBe(true);

    // One audit entry per batch: which pipelines, why, who.
    const audit = await h.retentionAudit();
    expect(audit.map((entry) => entry.details.pipelineIds)).toEqual([old.slice(0, 3), old.slice(3, 6), old.slice(6)]);
    for (const entry of audit) {
      expect(entry).toMatchObject({ actor: 'retention', tokenId: null, action: 'retention', targetType: 'pipeline', targetId: null });
      expect(entry.details).toMatchObject({ reason: 'ended more than RETENTION_DAYS=30 days ago', retentionDays: 30, worker: { pid: process.pid } });
      expect(Date.parse(entry.details.finishedBefore)).toBeCloseTo(daysAgo(30).getTime(), -5);
    }
    expect(await h.metric('retention')).toBe(7);
    expect(await h.metric('admin')).toBe(0);

    // Nothing more to do; once the failed pipeline's last track ended it goes at the next run.
    expect(await h.t.app.retention!.runOnce()).toMatchObject({ deleted: 0, batches: 0 });
    writeFileSync(`${gate}-3`, '');
    await eventually(async () => ((await h.t.app.store.db.track.count({ where: { pipelineId: failedRunning.pipelineId, state: 2 } })) === 0 ? true : undefined));
    expect(await h.t.app.retention!.runOnce()).toMatchObject({ deleted: 1 });
    expect(await h.rows([failedRunning.pipelineId])).toMatchObject({ pipelines: 0, tracks: 0 });
    expect(await h.rows([recent, young, queued, running.pipelineId])).toMatchObject({ pipelines: 4 });
    writeFileSync(gate, '');
    writeFileSync(`${gate}-2`, '');
  });

  it(`a batch holds at most ${3 * TRACKS_PER_BATCHED_PIPELINE} tracks (${TRACKS_PER_BATCHED_PIPELINE} per pipeline of the batch size): a bigger pipeline is deleted alone`, async () => {
    const db = h.t.app.store.db;
    const big = await db.graph.create({ data: { name: 'retention-big', checked: true } });
    await db.vertex.createMany({ data: Array.from({ length: 3 * TRACKS_PER_BATCHED_PIPELINE + 1 }, (_, i) => ({ graphId: big.id, name: `v${i}`, script: 'true' })) });
    const small = await seedGraph(h.t, { vertices: { s: { script: 'true' } } });
    const [bigId] = await seedEndedRuns(db, { graphId: big.id, count: 1, finishedAt: () => daysAgo(60) });
    const smallIds = await seedEndedRuns(db, { graphId: small.graphId, count: 4, finishedAt: (i) => daysAgo(59, i) });
    const entries = (await h.retentionAudit()).length;
    await eventually(async () => (h.t.app.executor!.runningCount === 0 ? true : undefined), 10_000, 'the scripts to end');
    // A script ended a moment ago: the process still counts as running scripts (the next
    // step of a run is being claimed), until BUSY_AFTER_SCRIPT_MS passed with none.
    expect(h.t.app.executor!.ranWithin(60_000)).toBe(true);
    await eventually(async () => (h.t.app.executor!.ranWithin(BUSY_AFTER_SCRIPT_MS) ? undefined : true), 10_000, 'no script for a while');
    // Nothing running: no rest between batches.
    expect(await h.t.app.retention!.runOnce()).toMatchObject({ deleted: 5, batches: 3, restedMs: 0 });
    expect((await h.retentionAudit()).slice(entries).map((entry) => entry.details.pipelineIds)).toEqual([[bigId], smallIds.slice(0, 3), smallIds.slice(3)]);
    expect(await h.rows([bigId!, ...smallIds])).toEqual({ pipelines: 0, tracks: 0, events: 0, attempts: 0, output: 0 });
  });

  it('the sweep removes working directories of pipelines deleted elsewhere, and nothing else', async () => {
    const { pipelineId } = await h.run({ vertices: { A: { script: 'echo a > a.txt' } } });
    // Deleted by another process (an API's deletePipeline, another worker's retention): its directory is still here.
    const { deletePipeline } = await h.t.request(DeletePipeline, { id: pipelineId });
    expect(deletePipeline.__typename).toBe('Deleted');
    mkdirSync(path.join(h.workDirOf(pipelineId), 'track-1-attempt-1'), { recursive: true });
    const newest = (await h.t.app.store.db.pipeline.aggregate({ _max: { id: true } }))._max.id!;
    // An id no pipeline has had yet (a directory left by another database): its pipeline may still come.
    mkdirSync(h.workDirOf(newest + 1000));
    writeFileSync(path.join(h.t.dir, 'work', 'notes.txt'), 'not a pipeline');
    const before = readdirSync(path.join(h.t.dir, 'work')).sort();

    expect(await h.t.app.retention!.runOnce()).toMatchObject({ deleted: 0, swept: 1 });
    expect(readdirSync(path.join(h.t.dir, 'work')).sort()).toEqual(before.filter((name) => name !== `pipeline-${pipelineId}`));
  });
});

describe('RETENTION_DAYS=0 keeps everything', () => {
  const h = harness({ RETENTION_DAYS: '0', RETENTION_INTERVAL_SECONDS: '1' });

  it('however old; the job still runs every interval and sweeps the working directories of deleted pipelines', async () => {
    const { pipelineId } = await h.run({ vertices: { A: { script: 'echo a > a.txt' } } });
    await h.age(pipelineId, new Date('2000-01-01T00:00:00Z'));
    const before = await h.rows([pipelineId]);
    const deleted = await h.run({ vertices: { A: { script: 'echo b > b.txt' } } });
    expect((await h.t.request(DeletePipeline, { id: deleted.pipelineId })).deletePipeline.__typename).toBe('Deleted');
    mkdirSync(h.workDirOf(deleted.pipelineId));
    // The timer's runs (every second) remove it, and nothing else.
    await eventually(async () => (existsSync(h.workDirOf(deleted.pipelineId)) ? undefined : true), 10_000, 'the sweep');
    expect(await h.t.app.retention!.runOnce()).toMatchObject({ deleted: 0, batches: 0 });
    expect(await h.rows([pipelineId])).toEqual(before);
    expect(existsSync(h.workDirOf(pipelineId))).toBe(true);
    expect(await h.retentionAudit()).toEqual([]);
    expect(await h.metric('retention')).toBe(0);
  });
});

describe('the job runs by itself', () => {
  const h = harness({ RETENTION_DAYS: '1', RETENTION_INTERVAL_SECONDS: '1' });

  it('every RETENTION_INTERVAL_SECONDS: a pipeline that ended two days ago goes within moments', async () => {
    const { pipelineId } = await h.run(FLAKY_WRITER);
    await h.age(pipelineId, daysAgo(2));
    // Its rows go in the batch's transaction, its working directory right after the commit.
    await eventually(async () => ((await h.rows([pipelineId])).pipelines === 0 && !existsSync(h.workDirOf(pipelineId)) ? true : undefined), 10_000, 'retention');
    expect(await h.rows([pipelineId])).toEqual({ pipelines: 0, tracks: 0, events: 0, attempts: 0, output: 0 });
    expect((await h.retentionAudit()).map((entry) => entry.details.pipelineIds)).toEqual([[pipelineId]]);
    expect(await h.metric('retention')).toBe(1);
  });
});
