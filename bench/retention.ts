/**
 * (i) Retention beside the executor (SPEC rule 17: deletion "in small batches that never
 * stall the executor"): the 1,000-track DAG of (a) (250 layers of 4, every layer joined to
 * the next, scripts `true`, WORKERS=2) run to FINISH alone, then again while retention
 * deletes 10,000 ended pipelines, then alone once more; the baseline is the mean of the two
 * runs alone. Target: the run with retention takes less than 10 % longer. Before them, one
 * run that is not counted warms the process up, once the seeding's writes are settled (SQLite:
 * the WAL checkpointed; PostgreSQL: the tables analysed, as autovacuum would after such a
 * load; then the file system synced), so that none of that falls on one of the runs
 * compared. The CPU the service's process used during each run is printed too (user and
 * system, all its threads: the in-process app, which is where retention runs): on a busy
 * machine wall times wander, what the process spent much less.
 *
 * The 10,000 pipelines are written straight to the database beforehand (test/helpers/
 * ended-runs.ts), as runs of a 5-vertex graph leave them, ended 60 days ago with
 * RETENTION_DAYS=30: 50,000 tracks, 170,000 events, 50,000 output chunks, and a working
 * directory each with five attempt directories holding a file, as the executor leaves them.
 * Retention runs in the service's own process, as it does in production, with the default
 * batch size (100 pipelines): the run of the job is started with the pipeline (runOnce),
 * and its time, from that start to its last directory removed, is printed too. The timer of
 * the job is set far out (RETENTION_INTERVAL_SECONDS=86400), so no other run interferes.
 *
 * On SQLite (a fresh file) and on PostgreSQL (a fresh database on BENCH_POSTGRES_URL's server,
 * with Redis at BENCH_REDIS_URL), each in an in-process app. BENCH_ONLY=retention runs it alone.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { seedEndedRuns } from '../test/helpers/ended-runs.ts';
import { BENCH_REDIS_URL, freshPostgres, migrateDatabase, quiesce, startBenchApp, startPipeline } from './app.ts';
import { connectWs, pipelineEnd } from './client.ts';
import { buildLayeredGraphWithPrisma, type LayeredShape } from './graphs.ts';

export interface RetentionBenchOptions {
  root: string;
  dir: string;
  progress: (message: string) => void;
  problems: string[];
}

const SHAPE: LayeredShape = { vertices: 1000, width: 4 };
const WORKERS = 2;
const ENDED = 10_000;
const ENDED_VERTICES = 5;
const RUN_TIMEOUT_MS = 300_000;
const TARGET_RATIO = 1.1;
const DAY_MS = 24 * 60 * 60 * 1000;

type Provider = 'sqlite' | 'postgresql';

interface Run {
  ms: number;
  cpuMs: number;
}

interface Measured {
  alone: [Run, Run];
  withRetention: Run;
  retentionMs: number;
  /** Of retentionMs, its rests between batches while scripts ran. */
  restedMs: number;
  deleted: number;
  batches: number;
  seedMs: number;
}

const ms = (value: number) => `${value.toFixed(0)} ms`;
const since = (t0: number) => performance.now() - t0;

async function measure(options: RetentionBenchOptions, provider: Provider, databaseUrl: string, env: Record<string, string>): Promise<Measured> {
  const workDir = path.join(options.dir, `work-retention-${provider}`);
  const { app, client } = await startBenchApp({
    root: options.root,
    databaseUrl,
    workDir,
    workers: WORKERS,
    env: { RETENTION_DAYS: '30', RETENTION_INTERVAL_SECONDS: '86400', ...env },
  });
  const ws = await connectWs(client.url);
  try {
    const graph = await buildLayeredGraphWithPrisma(app.store.db, 'retention-1000', SHAPE);
    options.progress(`(i) ${provider}: writing ${ENDED.toLocaleString('en')} ended pipelines and their working directories`);
    const t0 = performance.now();
    const small = await app.store.db.graph.create({ data: { name: 'retention-ended', checked: true } });
    await app.store.db.vertex.createMany({ data: Array.from({ length: ENDED_VERTICES }, (_, i) => ({ graphId: small.id, name: `v${i}`, script: 'echo done' })) });
    const ids = await seedEndedRuns(app.store.db, { graphId: small.id, count: ENDED, finishedAt: (i) => new Date(Date.now() - 60 * DAY_MS + i * 1000) });
    for (const id of ids) {
      for (let track = 1; track <= ENDED_VERTICES; track++) {
        const attempt = path.join(workDir, `pipeline-${id}`, `track-${track}-attempt-1`);
        mkdirSync(attempt, { recursive: true });
        writeFileSync(path.join(attempt, 'result.txt'), 'done\n');
      }
    }
    if (provider === 'sqlite') await app.store.db.$queryRawUnsafe('PRAGMA wal_checkpoint(TRUNCATE)');
    else await app.store.db.$executeRawUnsafe('ANALYZE');
    execFileSync('sync');
    const seedMs = since(t0);

    const run = async (label: string): Promise<Run> => {
      await quiesce(app);
      const cpu = process.cpuUsage();
      const start = performance.now();
      const pipelineId = await startPipeline(client, graph.graphId, label);
      const end = await pipelineEnd(ws, pipelineId, RUN_TIMEOUT_MS);
      const used = process.cpuUsage(cpu);
      if (end.state !== 'FINISH') options.problems.push(`(i) ${provider}: pipeline ${pipelineId} ended ${end.state}: ${end.reason}`);
      return { ms: end.at - start, cpuMs: (used.user + used.system) / 1000 };
    };
    options.progress(`(i) ${provider}: a run to warm up`);
    await run('warm-up');
    options.progress(`(i) ${provider}: the 1,000-track run alone`);
    const first = await run('alone-1');
    options.progress(`(i) ${provider}: the run while retention deletes ${ENDED.toLocaleString('en')} pipelines`);
    await quiesce(app);
    const retentionStart = performance.now();
    const retention = app.retention!.runOnce().then((outcome) => ({ ...outcome, ms: since(retentionStart) }));
    const withRetention = await run('with-retention');
    const outcome = await retention;
    options.progress(`(i) ${provider}: the run alone again`);
    const second = await run('alone-2');

    const left = await app.store.db.pipeline.count({ where: { id: { in: ids } } });
    if (left > 0 || outcome.deleted !== ENDED) options.problems.push(`(i) ${provider}: retention deleted ${outcome.deleted} of ${ENDED} pipelines; ${left} left`);
    const dirsLeft = readdirSync(workDir).filter((name) => ids.includes(Number(name.slice('pipeline-'.length)))).length;
    if (dirsLeft > 0) options.problems.push(`(i) ${provider}: ${dirsLeft} working directories of deleted pipelines left`);
    return { alone: [first, second], withRetention, retentionMs: outcome.ms, restedMs: outcome.restedMs, deleted: outcome.deleted, batches: outcome.batches, seedMs };
  } finally {
    await ws.dispose();
    await app.stop();
  }
}

export async function runRetention(options: RetentionBenchOptions): Promise<string[]> {
  const results = new Map<Provider, Measured>();
  options.progress('(i) SQLite: a fresh database');
  const sqliteUrl = `file:${path.join(options.dir, 'retention.db')}`;
  await migrateDatabase(options.root, sqliteUrl);
  results.set('sqlite', await measure(options, 'sqlite', sqliteUrl, {}));

  options.progress('(i) PostgreSQL: a fresh database');
  try {
    const database = await freshPostgres(options.root);
    try {
      results.set('postgresql', await measure(options, 'postgresql', database.url, BENCH_REDIS_URL ? { REDIS_URL: BENCH_REDIS_URL } : {}));
    } finally {
      await database.drop();
    }
  } catch (error) {
    options.problems.push(`(i) PostgreSQL: ${error instanceof Error ? error.message : String(error)}`);
  }

  const lines = [
    `(i) retention beside the executor: the ${SHAPE.vertices.toLocaleString('en')}-track DAG of (a) (WORKERS=${WORKERS}) alone, and while retention`,
    `    deletes ${ENDED.toLocaleString('en')} ended pipelines (${(ENDED * ENDED_VERTICES).toLocaleString('en')} tracks, working directories included; batches of 100) in the same process`,
  ];
  for (const provider of ['sqlite', 'postgresql'] as const) {
    const result = results.get(provider);
    const label = provider === 'sqlite' ? 'SQLite' : 'PostgreSQL';
    if (!result) {
      lines.push(`    ${label}: NOT MEASURED (see PROBLEMS)`);
      continue;
    }
    const baseline = (result.alone[0].ms + result.alone[1].ms) / 2;
    const ratio = result.withRetention.ms / baseline;
    const cpu = (run: Run) => ms(run.cpuMs);
    lines.push(
      `    ${label.padEnd(11)} alone ${ms(result.alone[0].ms)} / ${ms(result.alone[1].ms)} (mean ${ms(baseline)}), with retention ${ms(result.withRetention.ms)}: ratio ${ratio.toFixed(2)} (target < ${TARGET_RATIO.toFixed(2)}) ${ratio < TARGET_RATIO ? 'met' : 'MISSED'}`,
      `    ${''.padEnd(11)} service CPU during the run: alone ${cpu(result.alone[0])} / ${cpu(result.alone[1])}, with retention ${cpu(result.withRetention)}`,
      `    ${''.padEnd(11)} retention: ${result.deleted.toLocaleString('en')} pipelines in ${result.batches} batches, ${ms(result.retentionMs)}, ${ms(result.restedMs)} of it resting while scripts ran (${result.retentionMs >= result.withRetention.ms ? 'the whole run' : 'part of the run'} overlapped); seeding took ${ms(result.seedMs)}`,
    );
  }
  return lines;
}
