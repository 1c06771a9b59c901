/**
 * SPEC rule 16 with several processes (PostgreSQL): three worker processes and an API process
 * run a per-second schedule for a minute; every worker's scheduler races for every tick. Its
 * script appends its pipeline id to a ledger file. Exactly one pipeline per tick: no tick
 * started twice, no second without its tick recorded (once), and every recorded tick that
 * started nothing says why.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_PROVIDER } from '../helpers/databases.ts';
import { CreateSchedule, UpdateSchedule } from '../helpers/operations.ts';
import { eventually, seedGraph } from '../helpers/seed.ts';
import { killServerProcesses, startWorkerProcess, type ServerProcess } from '../helpers/server-process.ts';
import { startTestApp, type TestApp } from '../helpers/test-app.ts';

const RUN_MS = 60_000;

const dir = mkdtempSync(path.join(tmpdir(), 'dagpipe-scheduler-workers-'));
afterAll(() => {
  killServerProcesses();
  rmSync(dir, { recursive: true, force: true });
});

describe.runIf(TEST_PROVIDER === 'postgresql')('a schedule on three workers', () => {
  let api: TestApp;
  const workers: ServerProcess[] = [];
  beforeAll(async () => {
    api = await startTestApp({ env: { ROLE: 'api' } });
    for (let i = 1; i <= 3; i++) workers.push(await startWorkerProcess(api.databaseUrl, path.join(dir, `work-${i}`), { LOG_LEVEL: 'info' }));
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await api?.stop();
  });

  it('starts exactly one pipeline per tick for a minute, and records each tick once', { timeout: RUN_MS + 60_000 }, async () => {
    const ledger = path.join(dir, 'ledger');
    const { graphId } = await seedGraph(api, { vertices: { append: { script: `echo "$PIPELINE_ID" >> ${ledger}` } } });
    const { createSchedule } = await api.request(CreateSchedule, { graphId, input: { name: 'every second', cron: '* * * * * *', overlap: 'ALLOW' } });
    if (createSchedule.__typename !== 'Schedule') throw new Error(JSON.stringify(createSchedule));
    const id = createSchedule.id;
    await new Promise((resolve) => setTimeout(resolve, RUN_MS));
    const { updateSchedule } = await api.request(UpdateSchedule, { id, input: { paused: true } });
    expect(updateSchedule).toMatchObject({ __typename: 'Schedule', paused: true });
    // A tick in flight when it was paused commits within moments; then every run ends.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const db = api.app.store.db;
    const pipelines = await eventually(async () => {
      const all = await db.pipeline.findMany({ where: { graphId }, orderBy: { id: 'asc' } });
      return all.every((p) => p.finishedAt !== null) ? all : undefined;
    }, 30_000, 'every run to end');

    const ticks = await db.scheduleTick.findMany({ where: { scheduleId: id }, orderBy: { tickAt: 'asc' } });
    const seconds = ticks.map((tick) => tick.tickAt.getTime());
    // Every second from the first tick to the last has exactly one row.
    expect(new Set(seconds).size).toBe(seconds.length);
    seconds.slice(1).forEach((second, i) => expect(second - seconds[i]!).toBe(1000));
    expect(ticks.length).toBeGreaterThanOrEqual(RUN_MS / 1000 - 3);
    const notStarted = ticks.filter((tick) => tick.outcome !== 'STARTED');
    for (const tick of notStarted) expect(tick.reason, `tick ${tick.tickAt.toISOString()} ${tick.outcome}`).toBeTruthy();

    // One pipeline per STARTED tick, with the tick's key, and no other.
    const started = ticks.filter((tick) => tick.outcome === 'STARTED');
    expect(started.every((tick) => tick.pipelineId !== null)).toBe(true);
    expect(pipelines.map((p) => p.id).sort((a, b) => a - b)).toEqual(started.map((tick) => tick.pipelineId!).sort((a, b) => a - b));
    const byId = new Map(pipelines.map((p) => [p.id, p]));
    for (const tick of started) {
      expect(byId.get(tick.pipelineId!)).toMatchObject({ idempotencyKey: `schedule:${id}:${tick.tickAt.toISOString()}`, scheduleId: id, state: 5 });
    }
    // Each ran its script once.
    const ledgerIds = existsSync(ledger) ? readFileSync(ledger, 'utf8').split('\n').filter(Boolean).map(Number) : [];
    expect(ledgerIds.sort((a, b) => a - b)).toEqual(pipelines.map((p) => p.id));

    const lateness = started.map((tick) => byId.get(tick.pipelineId!)!.createdAt.getTime() - tick.tickAt.getTime()).sort((a, b) => a - b);
    const at = (q: number) => lateness[Math.min(lateness.length - 1, Math.floor(q * lateness.length))]!;
    const byWorker = workers.map((w) => (w.output().match(/"msg":"schedule tick started a pipeline"/g) ?? []).length);
    console.log(
      `${ticks.length} ticks on 3 workers: ${started.length} started, ${notStarted.length} not (${notStarted.map((t) => t.outcome).join(', ') || 'none'}); ` +
        `started by worker ${byWorker.join(' / ')}; start after the tick's time p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${lateness.at(-1)} ms`,
    );
    expect(byWorker.reduce((a, b) => a + b, 0)).toBe(started.length);
    expect(at(0.5)).toBeLessThan(1000);
    for (const worker of workers) expect(worker.output()).not.toMatch(/"level":50/);
  });
});
