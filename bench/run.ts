/**
 * The benchmark (`npm run bench`). Everything runs against a fresh, migrated SQLite file
 * in a temporary directory, through the real GraphQL API of an in-process app on a free
 * port; every figure comes from this one run.
 *
 *  a. A 1,000-vertex DAG (250 layers of 4, each layer fully joined to the next, every
 *     script `true`) built by API and run to FINISH with WORKERS=2: wall time from sending
 *     startPipeline to the pipeline:finished event arriving over graphql-ws. Baseline: the
 *     same 1,000 scripts spawned by a plain concurrency-2 loop in a fresh Node process
 *     (bench/bare-spawn.ts), once before and once after the engine run; the mean is used.
 *  b. startPipeline on a 10,000-vertex graph (built with Prisma): that one mutation's time.
 *     The pipeline is then cancelled and the executor left to quiesce.
 *  c. SQL statements run by `pipeline(id) { tracks { vertex { name } } }` at 10 and at
 *     1,000 tracks, counted with db.onQuery during that one HTTP request only, in an app
 *     whose executor is stopped, so nothing else touches the database meanwhile.
 *  d. Dispatch latency p50/p99 (ready commit -> process start) from executor.latencyStats()
 *     right after (a).
 *  e. Fan-out (bench/fan-out.ts): the service as its own process (`src/server.ts`, a fresh
 *     migrated SQLite file, WORKERS=2) and 1,000 graphql-ws clients in this process, one
 *     connection each, all subscribed to trackUpdated of one 200-track pipeline (50 layers of
 *     4, scripts `true`) before it is released. Events delivered (every subscriber must get the
 *     journal's track events, same ids, same order), p50/p99 latency from commit to receipt
 *     (from Event.createdAt, ms precision, and from the instant the server published the event
 *     after its commit, seen by a probe preloaded into the server: bench/fan-out-probe.ts), and
 *     the server's RSS and heap before, with 1,000 subscribed, at the peak of the run, and after
 *     they disconnect. Runs last, after (h), on its own database and server.
 *  h. startPipeline on 10,000 vertices on SQLite and on PostgreSQL (bench/big-start.ts): fresh
 *     databases of its own (the PostgreSQL one created and dropped on BENCH_POSTGRES_URL's server,
 *     Redis at BENCH_REDIS_URL), an in-process app each, the median of 5 starts through the HTTP
 *     API, against the target (<= 1 s) and the figure before startPipeline became plain SQL.
 *
 * The last line printed is `ratio engine/bare-spawn: <x>`. Exits non-zero if a pipeline does
 * not FINISH, cancelPipeline fails in (b), (c)'s counts differ, or in (e) a subscriber misses,
 * repeats or reorders an event, or listeners outlive their subscribers, or (h) cannot run on
 * PostgreSQL, or (i)'s retention leaves a pipeline or a working directory behind.
 *
 *  i. Retention beside the executor (bench/retention.ts): the 1,000-track DAG of (a) alone and
 *     while retention deletes 10,000 ended pipelines in the same process, on SQLite and on
 *     PostgreSQL, alternating (BENCH_RETENTION_ROUNDS runs with retention, default 5, each
 *     between two alone); the median ratio against the target (less than 10 % longer).
 *
 *  j. The dashboard (bench/dashboard.ts): a live 200-track run page in Chromium, time from
 *     navigation to all its DAG nodes drawn with their state (median of 5, target <= 1 s), and
 *     the page's JS heap; then the track output viewer (bench/dashboard-output.ts): 1,000
 *     lines a second for a minute (no long task over 200 ms, heap bounded) and 100,000 stored
 *     lines scrolled (p99 frame under 50 ms). BENCH_ONLY=dashboard runs it alone,
 *     BENCH_ONLY=dashboardoutput only the output viewer's part.
 *
 *  s. Start-up and footprint (bench/startup.ts): `pipectl --help`, server start to healthy on
 *     an existing database and idle RSS of the server and its launcher, built (dist/) beside
 *     the same code through tsx and beside a plain `node -e 0`. Runs first, on (a)'s migrated
 *     database before anything else loads the machine.
 *
 * The service in (a)-(d) runs in this process (tsx), with the built launcher (dist/launcher.cjs)
 * as `npm start` has it: the launcher is what spawns the scripts.
 *
 * BENCH_ONLY=fanout runs (e) alone (under two minutes; no ratio line then), for quick iteration;
 * BENCH_ONLY=startup runs (s) alone, BENCH_ONLY=scaleout (f) (bench/scale-out.ts: the 1,000-track
 * DAG on SQLite in one process and on PostgreSQL with 1 and 2 worker processes, and the
 * wake-up latency across processes; needs the local PostgreSQL and Redis), BENCH_ONLY=bigstart (h)
 * (1.5-2.5 minutes on a loaded machine),
 * BENCH_ONLY=fanoutapart (g): (e) with a ROLE=api and a ROLE=worker process on PostgreSQL and Redis,
 * BENCH_ONLY=retention (i) (five rounds of 10,000 ended pipelines written and deleted on each
 * database: about 20 minutes on a quiet machine; BENCH_RETENTION_ROUNDS=1 for a quick look).
 *
 * BENCH_CPU_PROF=<dir> writes CPU profiles of this process during the engine run of (a) and
 * the startPipeline of (b), makes the launcher process write its own profile there when it
 * exits (bench/cpu-profile.mjs), and (e)'s server process its whole life's (--cpu-prof). BENCH_SETUP=prisma builds (a)'s graphs with Prisma instead of
 * the API (about 80 s faster; addEdge costs ~16 ms a call). BENCH_LOG_LEVEL sets the service's
 * log level (default error, to stderr).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type { ResultOf } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import type { App } from '../src/app.ts';
import type { DbOptions } from '../src/db.ts';
import { CancelPipeline, PipelineTrackNames } from '../test/helpers/operations.ts';
import { migrateDatabase, quiesce, startBenchApp, startPipeline } from './app.ts';
import { runBigStart } from './big-start.ts';
import { runDashboard } from './dashboard.ts';
import { connectWs, GraphQLClient, pipelineEnd } from './client.ts';
import { buildLayeredGraphViaApi, buildLayeredGraphWithPrisma, type LayeredShape } from './graphs.ts';
import { runFanOut } from './fan-out.ts';
import { runDashboardOutput } from './dashboard-output.ts';
import { runRetention } from './retention.ts';
import { runScaleOut } from './scale-out.ts';
import { runStartup } from './startup.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const WORKERS = 2;
const ENGINE_SHAPE: LayeredShape = { vertices: 1000, width: 4 };
const SMALL_SHAPE: LayeredShape = { vertices: 10, width: 4 };
const LARGE_SHAPE: LayeredShape = { vertices: 10_000, width: 4 };
const RUN_TIMEOUT_MS = 120_000;
/** BENCH_SETUP=prisma writes (a)'s graphs straight to the database: not the spec'd setup, but far faster. */
const PRISMA_SETUP = process.env.BENCH_SETUP === 'prisma';
const PROFILE_DIR = process.env.BENCH_CPU_PROF ? path.resolve(process.env.BENCH_CPU_PROF) : undefined;
/** BENCH_ONLY=fanout runs (e) alone, BENCH_ONLY=startup (s), BENCH_ONLY=scaleout (f), BENCH_ONLY=bigstart (h), BENCH_ONLY=retention (i), BENCH_ONLY=dashboard (j). */
const ONLY = process.env.BENCH_ONLY;

const problems: string[] = [];
const benchStart = performance.now();
const progress = (message: string) => process.stderr.write(`· [${((performance.now() - benchStart) / 1000).toFixed(1)} s] ${message}\n`);
const ms = (value: number) => `${value.toFixed(0)} ms`;
const since = (t0: number) => performance.now() - t0;

const dir = mkdtempSync(path.join(tmpdir(), 'dagpipe-bench-'));
const databaseFile = path.join(dir, 'bench.db');
const databaseUrl = `file:${databaseFile}`;

const migrate = () => migrateDatabase(ROOT, databaseUrl);

interface BareResult {
  count: number;
  concurrency: number;
  ms: number;
  failures: number;
}

/** The baseline, in a fresh Node process that times itself. */
async function bareSpawn(count: number): Promise<BareResult> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'bench/bare-spawn.ts', String(count), String(WORKERS), 'true'], {
    cwd: ROOT,
    env: { ...process.env, NODE_OPTIONS: '' },
    timeout: 120_000,
  });
  const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as BareResult;
  if (result.failures > 0) problems.push(`bare spawn: ${result.failures} of ${result.count} scripts failed`);
  return result;
}

function startApp(db?: DbOptions): Promise<{ app: App; client: GraphQLClient }> {
  return startBenchApp({ root: ROOT, databaseUrl, workDir: path.join(dir, 'work'), workers: WORKERS, ...(db && { db }) });
}

async function profiled<T>(name: string, work: () => Promise<T>): Promise<T> {
  if (!PROFILE_DIR) return work();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  try {
    return await work();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    const file = path.join(PROFILE_DIR, `${name}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
    progress(`CPU profile of the service process: ${file}`);
  }
}

async function main(): Promise<number> {
  const total = performance.now();
  if (PROFILE_DIR) mkdirSync(PROFILE_DIR, { recursive: true });
  const sections: Record<string, { title: string; run: () => Promise<string[]> }> = {
    fanout: { title: 'fan-out', run: () => runFanOut({ root: ROOT, dir, progress, problems }) },
    fanoutapart: { title: 'fan-out, API and worker apart', run: () => runFanOut({ mode: 'api-and-worker', root: ROOT, dir, progress, problems }) },
    startup: { title: 'start-up', run: async () => (await migrate(), runStartup({ root: ROOT, databaseUrl, dir, progress, problems })) },
    scaleout: { title: 'scale-out', run: () => runScaleOut({ root: ROOT, dir, progress, problems }) },
    bigstart: { title: 'large start', run: () => runBigStart({ root: ROOT, dir, progress, problems }) },
    retention: { title: 'retention beside the executor', run: () => runRetention({ root: ROOT, dir, progress, problems }) },
    dashboard: { title: 'dashboard', run: () => runDashboard({ root: ROOT, dir, progress, problems }) },
    dashboardoutput: { title: 'dashboard output viewer', run: () => runDashboardOutput({ root: ROOT, dir, progress, problems }) },
  };
  if (ONLY !== undefined && !(ONLY in sections)) {
    throw new Error(`BENCH_ONLY=${ONLY}: the values are ${Object.keys(sections).map((name) => `"${name}"`).join(', ')}`);
  }
  await run(process.execPath, ['scripts/build.mjs', '--if-stale'], { cwd: ROOT });
  if (ONLY !== undefined) {
    const section = await sections[ONLY]!.run();
    const lines = [
      '',
      `dagpipe benchmark, ${sections[ONLY]!.title} only (BENCH_ONLY=${ONLY}; node ${process.version})`,
      '',
      ...section,
      '',
      `total bench time                   ${(since(total) / 1000).toFixed(1)} s`,
      ...(problems.length > 0 ? ['', 'PROBLEMS:', ...problems.map((p) => `  - ${p}`)] : []),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    return problems.length > 0 ? 1 : 0;
  }

  progress(`fresh database ${databaseFile}: applying migrations`);
  await migrate();

  const startup = await runStartup({ root: ROOT, databaseUrl, dir, progress, problems });

  progress('baseline: 1,000 bare spawns (before)');
  const bareBefore = await bareSpawn(ENGINE_SHAPE.vertices);

  // ---- (a), (d), (b): the service as it runs in production, without query logging.
  const nodeOptions = process.env.NODE_OPTIONS;
  if (PROFILE_DIR) {
    // The launcher is forked (at start or on the first run) with this environment: it profiles
    // itself until it exits. Restored after (a).
    const hook = pathToFileURL(path.join(ROOT, 'bench/cpu-profile.mjs')).href;
    process.env.NODE_OPTIONS = `${nodeOptions ?? ''} --import ${hook}`.trim();
  }
  let { app, client } = await startApp();

  progress(`building the 1,000-vertex graph ${PRISMA_SETUP ? 'with Prisma (BENCH_SETUP=prisma)' : 'through the API'}`);
  const build = (name: string, shape: LayeredShape) =>
    PRISMA_SETUP ? buildLayeredGraphWithPrisma(app.store.db, name, shape) : buildLayeredGraphViaApi(client, name, shape);
  let t0 = performance.now();
  const engineGraph = await build('bench-1000', ENGINE_SHAPE);
  const engineSetupMs = since(t0);
  const smallGraph = await build('bench-10', SMALL_SHAPE);

  progress('(a) running the 1,000-vertex pipeline');
  const ws = await connectWs(client.url);
  const engine = await profiled('engine-run', async () => {
    const start = performance.now();
    const pipelineId = await startPipeline(client, engineGraph.graphId, 'bench-1000');
    const end = await pipelineEnd(ws, pipelineId, RUN_TIMEOUT_MS);
    return { pipelineId, end, ms: end.at - start };
  });
  if (PROFILE_DIR) process.env.NODE_OPTIONS = nodeOptions ?? '';
  if (engine.end.state !== 'FINISH') problems.push(`(a) pipeline ${engine.pipelineId} ended ${engine.end.state}: ${engine.end.reason}`);
  const latency = app.executor!.latencyStats(); // (d): right after (a), before anything else runs

  progress('baseline: 1,000 bare spawns (after)');
  await quiesce(app);
  const bareAfter = await bareSpawn(ENGINE_SHAPE.vertices);

  progress('running the 10-vertex pipeline (for c)');
  const smallPipelineId = await startPipeline(client, smallGraph.graphId, 'bench-10');
  const small = await pipelineEnd(ws, smallPipelineId, RUN_TIMEOUT_MS);
  if (small.state !== 'FINISH') problems.push(`10-vertex pipeline ${smallPipelineId} ended ${small.state}: ${small.reason}`);
  await ws.dispose();

  progress('(b) building the 10,000-vertex graph with Prisma, then starting it');
  t0 = performance.now();
  const largeGraph = await buildLayeredGraphWithPrisma(app.store.db, 'bench-10000', LARGE_SHAPE);
  const largeSetupMs = since(t0);
  await quiesce(app);
  const { largePipelineId, startLargeMs } = await profiled('start-10000', async () => {
    const start = performance.now();
    const id = await startPipeline(client, largeGraph.graphId, 'bench-10000');
    return { largePipelineId: id, startLargeMs: since(start) };
  });
  t0 = performance.now();
  const cancelled = await client.post<ResultOf<typeof CancelPipeline>>(print(CancelPipeline), { id: largePipelineId });
  const cancelLargeMs = since(t0);
  const cancelResult = cancelled.data?.cancelPipeline;
  const cancelOk = !cancelled.errors?.length && cancelResult?.__typename === 'Pipeline' && cancelResult.state === 'CANCELLED';
  if (!cancelOk) {
    throw new Error(`(b) cancelPipeline(${largePipelineId}) failed: ${JSON.stringify(cancelled.errors ?? cancelResult)}`);
  }
  await quiesce(app);
  await app.stop();

  // ---- (c): the same database, an app that counts statements, its executor stopped.
  let counting = false;
  const statements: string[] = [];
  ({ app, client } = await startApp({ onQuery: (sql) => counting && statements.push(sql) }));
  await app.executor!.stop(); // no polling, no heartbeat: the request is all that runs SQL
  await app.deliverer?.stop(); // nor the webhook deliverer's poll
  const countStatements = async (pipelineId: number) => {
    statements.length = 0;
    counting = true;
    const data = await client.request(PipelineTrackNames, { id: pipelineId });
    counting = false;
    return { tracks: data.pipeline?.tracks.length ?? 0, sql: [...statements] };
  };
  progress('(c) counting SQL statements');
  const at10 = await countStatements(smallPipelineId);
  const at1000 = await countStatements(engine.pipelineId);
  await app.stop();
  if (at10.tracks !== SMALL_SHAPE.vertices || at1000.tracks !== ENGINE_SHAPE.vertices) {
    problems.push(`(c) expected ${SMALL_SHAPE.vertices} and ${ENGINE_SHAPE.vertices} tracks, got ${at10.tracks} and ${at1000.tracks}`);
  }
  const countsEqual = at10.sql.length === at1000.sql.length;
  if (!countsEqual) problems.push(`(c) ${at10.sql.length} statements at 10 tracks but ${at1000.sql.length} at 1,000`);

  // ---- (h): its own databases and apps.
  const bigStart = await runBigStart({ root: ROOT, dir, progress, problems });

  // ---- (i): its own databases and apps.
  const retention = await runRetention({ root: ROOT, dir, progress, problems });

  // ---- (j): its own database and app, and Chromium.
  const dashboard = await runDashboard({ root: ROOT, dir, progress, problems });

  // ---- (e): its own server process and database; last, so nothing of it weighs on (a)-(d), (h).
  const fanOut = await runFanOut({ root: ROOT, dir, progress, problems });

  // ---- (g): the same with API and worker as separate processes on PostgreSQL and Redis.
  const fanOutApart = await runFanOut({ mode: 'api-and-worker', root: ROOT, dir, progress, problems });

  // ---- (f): the service as separate processes on SQLite and on PostgreSQL.
  const scaleOut = await runScaleOut({ root: ROOT, dir, progress, problems });

  // ---- Report.
  const bareMs = (bareBefore.ms + bareAfter.ms) / 2;
  const ratio = engine.ms / bareMs;
  const perTrack = (value: number) => `${(value / ENGINE_SHAPE.vertices).toFixed(2)} ms/script`;
  const lines = [
    '',
    `dagpipe benchmark (node ${process.version}, WORKERS=${WORKERS}, SQLite ${databaseFile})`,
    '',
    `(a) ${ENGINE_SHAPE.vertices}-vertex DAG (${ENGINE_SHAPE.vertices / ENGINE_SHAPE.width} layers of ${ENGINE_SHAPE.width}, ${engineGraph.edgeCount} edges, scripts \`true\`)`,
    `    ${(PRISMA_SETUP ? 'built with Prisma (BENCH_SETUP)' : 'built through the API in').padEnd(31)}${ms(engineSetupMs)}`,
    `    engine, start -> FINISH        ${ms(engine.ms)}  (${perTrack(engine.ms)})`,
    `    bare spawn, before / after     ${ms(bareBefore.ms)} / ${ms(bareAfter.ms)}`,
    `    bare spawn, mean               ${ms(bareMs)}  (${perTrack(bareMs)})`,
    `    ratio engine/bare-spawn        ${ratio.toFixed(2)}  (target <= 1.50)`,
    '',
    `(b) startPipeline on ${LARGE_SHAPE.vertices.toLocaleString('en')} vertices (${largeGraph.edgeCount.toLocaleString('en')} edges, built with Prisma in ${ms(largeSetupMs)})`,
    `    startPipeline mutation         ${ms(startLargeMs)}`,
    `    cancelPipeline afterwards      ${cancelOk ? ms(cancelLargeMs) : `FAILED after ${ms(cancelLargeMs)}`}`,
    '',
    '(c) SQL statements for pipeline(id) { tracks { vertex { name } } }',
    `    at ${SMALL_SHAPE.vertices} tracks                    ${at10.sql.length}`,
    `    at ${ENGINE_SHAPE.vertices.toLocaleString('en')} tracks                 ${at1000.sql.length}`,
    `    equal                          ${countsEqual ? 'yes' : 'NO'}`,
    ...at1000.sql.map((sql) => `      ${sql.replace(/\s+/g, ' ').slice(0, 140)}`),
    '',
    '(d) dispatch latency: SUCCEED commit (which makes the successor ready) -> successor process start',
    `    all tracks (${String(latency.all.count).padEnd(5)} samples)     p50 ${latency.all.p50.toFixed(2)} ms, p99 ${latency.all.p99.toFixed(2)} ms`,
    '      (includes waiting for a free worker: 4 tracks become ready at once, 2 workers)',
    `    claimed at once (${String(latency.immediate.count).padEnd(5)} samples) p50 ${latency.immediate.p50.toFixed(2)} ms, p99 ${latency.immediate.p99.toFixed(2)} ms`,
    '      (a worker was free: claimed in the same commit that made the track ready)',
    '',
    ...bigStart,
    '',
    ...retention,
    '',
    ...dashboard,
    '',
    ...fanOut,
    '',
    ...scaleOut,
    '',
    ...fanOutApart,
    '',
    ...startup,
    '',
    `total bench time                   ${(since(total) / 1000).toFixed(1)} s`,
    ...(problems.length > 0 ? ['', 'PROBLEMS:', ...problems.map((p) => `  - ${p}`)] : []),
    '',
    `ratio engine/bare-spawn: ${ratio.toFixed(2)}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  return problems.length > 0 ? 1 : 0;
}

let code = 1;
try {
  code = await main();
} catch (error) {
  process.stderr.write(`benchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(code);
