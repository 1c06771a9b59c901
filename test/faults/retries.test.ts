/**
 * SPEC rule 13 with real processes: an attempt whose process dies is a failed attempt, and
 * a vertex with retries left runs again by itself. The service SIGKILLed mid-script and
 * started again on the same database (both databases); on PostgreSQL, a worker SIGKILLed
 * mid-script while another one lives: the survivor settles the lost attempt and runs the
 * retry after its delay.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { graphql } from '../../src/generated/gql/index.ts';
import { freshDatabase, suiteEnvironment, TEST_PROVIDER } from '../helpers/databases.ts';
import { StartPipeline } from '../helpers/operations.ts';
import { alive } from '../helpers/processes.ts';
import { eventually, seedGraph } from '../helpers/seed.ts';
import { freePort, killServerProcesses, startServerProcess, startWorkerProcess, type ServerProcess } from '../helpers/server-process.ts';
import { httpClient, startTestApp, type GraphQLClient, type TestApp } from '../helpers/test-app.ts';

const LostAttempts = graphql(`
  query LostAttempts($id: Int!) {
    pipeline(id: $id) {
      state
      tracks { id name state attempt attempts { attempt state exitCode reason startedAt finishedAt } }
      events(first: 1000) { type trackState attempt reason }
    }
  }
`);

const dir = mkdtempSync(path.join(tmpdir(), 'dagpipe-retry-faults-'));
afterAll(() => {
  killServerProcesses();
  rmSync(dir, { recursive: true, force: true });
});

const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

/** Attempt 1 records its pid and hangs; later attempts succeed. */
function hangsOnce(ledger: string, pidFile: string): string {
  return `echo "attempt $TRACK_ATTEMPT" >> ${ledger}\nif [ "$TRACK_ATTEMPT" = 1 ]; then echo $$ > ${pidFile}; sleep 60; fi\necho done`;
}

async function startRun(api: GraphQLClient, graphId: number): Promise<number> {
  const { startPipeline } = await api.request(StartPipeline, { graphId });
  if (startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(startPipeline));
  return startPipeline.id;
}

async function finished(api: GraphQLClient, id: number) {
  return eventually(async () => {
    const { pipeline } = await api.request(LostAttempts, { id });
    return pipeline!.state === 'RUNNING' ? undefined : pipeline!;
  }, 60_000, 'the pipeline to end');
}

async function scriptPid(pidFile: string): Promise<number> {
  return eventually(
    async () => (existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() ? Number(readFileSync(pidFile, 'utf8')) : undefined),
    60_000,
    'the first attempt to start',
  );
}

describe('an attempt whose process died', () => {
  // Two server processes one after the other: room for a loaded machine.
  it('the service SIGKILLed mid-script: after the restart the attempt is failed and retried, and the run finishes', { timeout: 120_000 }, async () => {
    const ledger = path.join(dir, 'restart-ledger');
    const pidFile = path.join(dir, 'restart.pid');
    const env = { ...suiteEnvironment(), DATABASE_URL: freshDatabase(dir), WORK_DIR: path.join(dir, 'work'), PORT: String(await freePort()), WORKERS: '1' };
    const first = await startServerProcess(env);
    let api = httpClient(first.url);
    const { graphId } = await seedGraph(api, {
      vertices: { hang: { script: hangsOnce(ledger, pidFile), retries: 1, retryDelaySeconds: 0 }, after: { script: 'echo after' } },
      edges: [['hang', 'after']],
    });
    const id = await startRun(api, graphId);
    const pid = await scriptPid(pidFile);
    await first.stop('SIGKILL');
    await eventually(async () => (alive(pid) ? undefined : true), 30_000, 'the orphaned script to die');

    const second = await startServerProcess(env);
    api = httpClient(second.url);
    const done = await finished(api, id);
    expect(done.state).toBe('FINISH');
    const hang = done.tracks.find((t) => t.name === 'hang')!;
    expect(hang).toMatchObject({ state: 'SUCCEED', attempt: 2 });
    expect(hang.attempts.map((a) => [a.attempt, a.state, a.exitCode])).toEqual([
      [1, 'FAILED', null],
      [2, 'SUCCEED', 0],
    ]);
    expect(hang.attempts[0]!.reason).toMatch(/service stopped while this track was running/);
    expect(done.events.filter((e) => e.type === 'track:retrying')).toHaveLength(1);
    expect(lines(ledger)).toEqual(['attempt 1', 'attempt 2']);
    await second.stop();
  });
});

describe.runIf(TEST_PROVIDER === 'postgresql')('a worker SIGKILLed mid-attempt, with another worker alive', () => {
  const HEARTBEAT_MS = 200;
  let api: TestApp;
  const workers: ServerProcess[] = [];
  afterAll(async () => {
    for (const worker of workers) await worker.stop();
    await api?.stop();
  });

  it('counts as a failed attempt: the survivor settles it, waits the delay, and runs the retry', { timeout: 120_000 }, async () => {
    api = await startTestApp({ env: { ROLE: 'api' } });
    for (let i = 1; i <= 2; i++) {
      workers.push(await startWorkerProcess(api.databaseUrl, path.join(dir, `worker-${i}`), { HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS) }));
    }
    const ledger = path.join(dir, 'worker-ledger');
    const pidFile = path.join(dir, 'worker.pid');
    const { graphId } = await seedGraph(api, { vertices: { hang: { script: hangsOnce(ledger, pidFile), retries: 2, retryDelaySeconds: 1 } } });
    const id = await startRun(api, graphId);
    await scriptPid(pidFile);
    const track = await api.app.store.db.track.findFirstOrThrow({ where: { pipelineId: id } });
    const holder = await api.app.store.db.executor.findUniqueOrThrow({ where: { id: track.executorId! } });
    const victim = workers.find((w) => w.pid === holder.pid)!;
    await victim.stop('SIGKILL');

    const done = await finished(api, id);
    expect(done.state).toBe('FINISH');
    const hang = done.tracks[0]!;
    expect(hang).toMatchObject({ state: 'SUCCEED', attempt: 2 });
    expect(hang.attempts.map((a) => [a.attempt, a.state])).toEqual([
      [1, 'FAILED'],
      [2, 'SUCCEED'],
    ]);
    expect(hang.attempts[0]!.reason).toMatch(/stopped sending heartbeats/);
    // The retry waited its delay after the lost attempt was settled.
    expect(Date.parse(hang.attempts[1]!.startedAt!) - Date.parse(hang.attempts[0]!.finishedAt!)).toBeGreaterThanOrEqual(1000);
    const survivor = workers.find((w) => w !== victim)!;
    const ran = await api.app.store.db.executor.findMany({ where: { pid: survivor.pid } });
    expect(ran.map((e) => e.id)).toContain((await api.app.store.db.track.findUniqueOrThrow({ where: { id: hang.id } })).executorId);
    expect(lines(ledger)).toEqual(['attempt 1', 'attempt 2']);
  });
});
