/**
 * SPEC rule 11, liveness and fencing with real worker processes on PostgreSQL (the way
 * Solid Queue tests its process pruning): a worker frozen (SIGSTOP) while its script runs
 * is taken for dead and its track settled by the other worker; when it comes back
 * (SIGCONT) with the script's successful result, it records nothing, starts nothing, and
 * registers again. A worker SIGKILLed mid-script has its track settled within the bound:
 * LEASE_MS + HEARTBEAT_INTERVAL_MS after its last heartbeat.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from '../../src/generated/gql/index.ts';
import { TEST_PROVIDER } from '../helpers/databases.ts';
import { PipelineDetail, StartPipeline } from '../helpers/operations.ts';
import { alive } from '../helpers/processes.ts';
import { eventually, seedGraph } from '../helpers/seed.ts';
import { killServerProcesses, startWorkerProcess, type ServerProcess } from '../helpers/server-process.ts';
import { startTestApp, type TestApp } from '../helpers/test-app.ts';

const WorkerJournal = graphql(`
  query WorkerJournal($id: Int!) {
    pipeline(id: $id) { state events(first: 1000) { id seq type trackId trackState pipelineState attempt exitCode reason } }
  }
`);

const HEARTBEAT_MS = 200;
const LEASE_MS = 3 * HEARTBEAT_MS;

const dir = mkdtempSync(path.join(tmpdir(), 'dagpipe-workers-'));
afterAll(() => {
  killServerProcesses();
  rmSync(dir, { recursive: true, force: true });
});

const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

describe.runIf(TEST_PROVIDER === 'postgresql')('worker liveness and fencing', () => {
  let api: TestApp;
  const workers: ServerProcess[] = [];
  beforeAll(async () => {
    api = await startTestApp({ env: { ROLE: 'api' } });
  });
  afterEach(async () => {
    for (const worker of workers.splice(0)) {
      worker.child.kill('SIGCONT');
      await worker.stop();
    }
  });
  afterAll(() => api?.stop());

  let workDirs = 0;
  const startWorker = async () => {
    const worker = await startWorkerProcess(api.databaseUrl, path.join(dir, `work-${++workDirs}`), {
      HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS),
      // Woken by LISTEN: an idle worker then has no transaction open that a SIGSTOP could freeze.
      POLL_INTERVAL_MS: '60000',
    });
    workers.push(worker);
    return worker;
  };

  /** The worker process that holds a track now (its executor row names its pid). */
  const holderOf = async (trackId: number, among: ServerProcess[]) => {
    const track = await api.app.store.db.track.findUniqueOrThrow({ where: { id: trackId } });
    const executor = await api.app.store.db.executor.findUniqueOrThrow({ where: { id: track.executorId! } });
    return { worker: among.find((w) => w.pid === executor.pid)!, executorId: executor.id };
  };

  const start = async (graphId: number) => {
    const { startPipeline } = await api.request(StartPipeline, { graphId });
    if (startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(startPipeline));
    return startPipeline;
  };

  it('a worker frozen past its lease loses its track: when it comes back, its late result changes nothing', async () => {
    const ledger = path.join(dir, 'ledger');
    const successorLedger = path.join(dir, 'successor-ledger');
    const workerA = await startWorker();
    const workerB = await startWorker();
    const { graphId } = await seedGraph(api, {
      vertices: {
        slow: { script: `echo "start $TRACK_ATTEMPT" >> ${ledger}; sleep 3; echo "end $TRACK_ATTEMPT" >> ${ledger}` },
        successor: { script: `echo ran >> ${successorLedger}` },
      },
      edges: [['slow', 'successor']],
    });
    const pipeline = await start(graphId);
    const slowId = pipeline.tracks.find((t) => t.name === 'slow')!.id;
    await eventually(async () => (lines(ledger).length > 0 ? true : undefined), 15_000, 'the script to start');
    const { worker: stale, executorId: staleId } = await holderOf(slowId, [workerA, workerB]);
    process.kill(stale.pid, 'SIGSTOP');

    // The other worker takes it for dead and settles its track (rule 10: failed, the
    // pipeline failed, the successor cancelled).
    const settled = await eventually(async () => {
      const { pipeline: p } = await api.request(PipelineDetail, { id: pipeline.id });
      return p!.state === 'FAILED' ? p! : undefined;
    }, 15_000, 'the track to be settled');
    const slow = settled.tracks.find((t) => t.name === 'slow')!;
    expect(slow).toMatchObject({ state: 'FAILED', exitCode: null, attempt: 1 });
    expect(slow.reason).toMatch(/worker running this track stopped sending heartbeats.*outcome is unknown.*Retry the pipeline/);
    expect(settled.tracks.find((t) => t.name === 'successor')).toMatchObject({ state: 'CANCELLED', reason: 'upstream slow failed' });
    expect(await api.app.store.db.executor.findUnique({ where: { id: staleId } })).toBeNull();
    const journal = (await api.request(WorkerJournal, { id: pipeline.id })).pipeline!.events;

    // The script ran on (its launcher is not frozen) and succeeded; the frozen worker
    // holds that success when it comes back.
    await eventually(async () => (lines(ledger).length === 2 ? true : undefined), 15_000, 'the script to end');
    process.kill(stale.pid, 'SIGCONT');
    await eventually(
      async () => (/"msg":"result discarded: the track was settled without it/.test(stale.output()) ? true : undefined),
      15_000,
      'the late result to be discarded',
    );
    await eventually(async () => (/"msg":"this worker was taken for dead/.test(stale.output()) ? true : undefined), 15_000, 'the worker to notice');
    const rejoined = await eventually(async () => {
      const rows = await api.app.store.db.executor.findMany({ where: { pid: stale.pid } });
      return rows.length === 1 ? rows[0]! : undefined;
    });
    expect(rejoined.id).not.toBe(staleId);
    expect((await (await fetch(stale.url)).json()).executor.id).toBe(rejoined.id);
    // A few more heartbeats and polls of both workers: still nothing changes.
    await new Promise((resolve) => setTimeout(resolve, 5 * HEARTBEAT_MS + 1000));

    const after = (await api.request(PipelineDetail, { id: pipeline.id })).pipeline!;
    expect(after.tracks.find((t) => t.name === 'slow')).toMatchObject({ state: 'FAILED', exitCode: null, reason: slow.reason });
    expect(after.tracks.find((t) => t.name === 'successor')).toMatchObject({ state: 'CANCELLED' });
    expect((await api.request(WorkerJournal, { id: pipeline.id })).pipeline!.events).toEqual(journal);
    expect(lines(ledger)).toEqual(['start 1', 'end 1']);
    expect(existsSync(successorLedger)).toBe(false);
    expect(stale.output()).not.toMatch(/"level":50/);

    // Both workers still take work.
    const again = await start((await seedGraph(api, { vertices: { a: { script: 'sleep 1' }, b: { script: 'sleep 1' } } })).graphId);
    await eventually(async () => ((await api.request(PipelineDetail, { id: again.id })).pipeline!.state === 'FINISH' ? true : undefined));
  });

  it('a SIGKILLed worker has its running track settled within LEASE_MS + HEARTBEAT_INTERVAL_MS', async () => {
    const pidFile = path.join(dir, 'killed.pid');
    const workerA = await startWorker();
    const workerB = await startWorker();
    const { graphId } = await seedGraph(api, { vertices: { long: { script: `echo $$ > ${pidFile}; sleep 60` } } });
    const pipeline = await start(graphId);
    const scriptPid = await eventually(async () => (existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() ? Number(readFileSync(pidFile, 'utf8')) : undefined));
    const { worker: victim } = await holderOf(pipeline.tracks[0]!.id, [workerA, workerB]);
    await victim.stop('SIGKILL');
    const killedAt = Date.now();

    const settled = await eventually(async () => {
      const { pipeline: p } = await api.request(PipelineDetail, { id: pipeline.id });
      return p!.state === 'FAILED' ? p! : undefined;
    }, 15_000, 'the track to be settled');
    const settledAfter = Date.now() - killedAt;
    console.log(`SIGKILLed worker's track settled ${settledAfter} ms after the kill (bound ${LEASE_MS + HEARTBEAT_MS} ms after its last heartbeat)`);
    expect(settled.tracks[0]).toMatchObject({ state: 'FAILED', reason: expect.stringMatching(/stopped sending heartbeats/) });
    // The bound, with room for a loaded machine (timers late, the poll of this test).
    expect(settledAfter).toBeLessThan(LEASE_MS + HEARTBEAT_MS + 2500);
    // Its launcher killed the script when the worker died.
    await eventually(async () => (alive(scriptPid) ? undefined : true), 10_000, 'the orphaned script to be killed');
    const survivor = victim === workerA ? workerB : workerA;
    expect((await (await fetch(survivor.url)).json()).status).toBe('ok');
  });
});
