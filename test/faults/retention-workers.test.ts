/**
 * SPEC rule 17 with several workers on PostgreSQL: three worker processes run retention at
 * once on 2,000 old pipelines. Each batch locks its pipelines with SKIP LOCKED, so every
 * pipeline is deleted exactly once (the audit entries, one per batch, name each once; each
 * worker's counter matches its entries), no worker reports an error or a failed run, and
 * every working directory goes, also those on the other workers' disks (their sweeps).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_PROVIDER, TEST_REDIS_URL } from '../helpers/databases.ts';
import { seedEndedRuns } from '../helpers/ended-runs.ts';
import { scrapeMetrics } from '../helpers/metrics.ts';
import { eventually, seedGraph } from '../helpers/seed.ts';
import { freePort, killServerProcesses, startServerProcess, type ServerProcess } from '../helpers/server-process.ts';
import { startTestApp, type TestApp } from '../helpers/test-app.ts';

const PIPELINES = 2000;
const BATCH = 20;
const DAY_MS = 24 * 60 * 60 * 1000;

const dir = mkdtempSync(path.join(tmpdir(), 'dagpipe-retention-'));
afterAll(() => {
  killServerProcesses();
  rmSync(dir, { recursive: true, force: true });
});

describe.runIf(TEST_PROVIDER === 'postgresql')('retention with three worker processes', () => {
  let api: TestApp;
  const workers: Array<ServerProcess & { workDir: string }> = [];
  beforeAll(async () => {
    api = await startTestApp({ env: { ROLE: 'api' } });
  });
  afterAll(async () => {
    for (const worker of workers) await worker.stop();
    await api?.stop();
  });

  // Three processes to start and 2,000 runs to write: more than a test's default 30 s on a busy machine.
  it(`deletes ${PIPELINES} old pipelines between them, each exactly once, with no error, and every working directory`, { timeout: 120_000 }, async () => {
    const setup = Date.now();
    const { graphId } = await seedGraph(api, { vertices: { a: { script: 'true' }, b: { script: 'true' } }, edges: [['a', 'b']] });
    // Ended just now: nothing to delete until the workers are all up.
    const ids = await seedEndedRuns(api.app.store.db, { graphId, count: PIPELINES, finishedAt: () => new Date() });
    const workDirs = [1, 2, 3].map((n) => path.join(dir, `work-${n}`));
    // Each worker has run tracks of every pipeline: its directories are on each one's disk.
    for (const workDir of workDirs) for (const id of ids) mkdirSync(path.join(workDir, `pipeline-${id}`, 'track-1-attempt-1'), { recursive: true });
    workers.push(
      ...(await Promise.all(
        workDirs.map(async (workDir) => ({
          workDir,
          ...(await startServerProcess({
            ROLE: 'worker',
            DATABASE_URL: api.databaseUrl,
            REDIS_URL: TEST_REDIS_URL,
            PORT: String(await freePort()),
            WORK_DIR: workDir,
            WORKERS: '1',
            RETENTION_DAYS: '1',
            RETENTION_INTERVAL_SECONDS: '1',
            RETENTION_BATCH_SIZE: String(BATCH),
          })),
        })),
      )),
    );
    const setupMs = Date.now() - setup;
    const started = Date.now();
    await api.app.store.db.pipeline.updateMany({ where: { id: { in: ids } }, data: { finishedAt: new Date(Date.now() - 2 * DAY_MS) } });

    await eventually(async () => ((await api.app.store.db.pipeline.count({ where: { id: { in: ids } } })) === 0 ? true : undefined), 60_000, 'retention');
    const deletedMs = Date.now() - started;
    await eventually(async () => (workDirs.every((workDir) => readdirSync(workDir).length === 0) ? true : undefined), 30_000, 'every working directory to go');

    // Every pipeline in exactly one batch; the batches split between the workers.
    const audit = await api.app.store.db.auditEntry.findMany({ where: { action: 'retention' }, orderBy: { id: 'asc' } });
    const batches = audit.map((entry) => JSON.parse(entry.details) as { pipelineIds: number[]; worker: { pid: number } });
    const deleted = batches.flatMap((batch) => batch.pipelineIds);
    expect(deleted.length).toBe(PIPELINES);
    expect([...deleted].sort((a, b) => a - b)).toEqual(ids);
    for (const batch of batches) expect(batch.pipelineIds.length).toBeLessThanOrEqual(BATCH);
    const byWorker = new Map(workers.map((worker) => [worker.pid, 0]));
    for (const batch of batches) {
      expect(byWorker.has(batch.worker.pid)).toBe(true);
      byWorker.set(batch.worker.pid, byWorker.get(batch.worker.pid)! + batch.pipelineIds.length);
    }
    for (const worker of workers) {
      const metrics = await scrapeMetrics(worker.url);
      expect(metrics.get('dagpipe_pipelines_deleted_total{by="retention"}')).toBe(byWorker.get(worker.pid));
    }
    // Nothing of theirs is left anywhere.
    expect(await api.app.store.db.track.count({ where: { pipelineId: { in: ids } } })).toBe(0);
    expect(await api.app.store.db.event.count({ where: { pipelineId: { in: ids } } })).toBe(0);
    expect(await api.app.store.db.outputChunk.count()).toBe(0);
    for (const worker of workers) {
      const output = worker.output();
      expect(output).not.toMatch(/"level":50/);
      expect(output).not.toContain('retention failed');
      expect(output).not.toContain('could not remove');
    }
    for (const workDir of workDirs) expect(existsSync(workDir)).toBe(true);
    console.log(
      `three workers deleted ${PIPELINES} pipelines in ${batches.length} batches within ${deletedMs} ms: ${[...byWorker.values()].join(' / ')} pipelines each (setup ${setupMs} ms)`,
    );
  });
});
