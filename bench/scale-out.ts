/**
 * (f) Scale-out: the 1,000-track DAG of (a) (250 layers of 4, every layer joined to the next)
 * run to FINISH by the service as separate OS processes, as deployed (`node dist/server.js`):
 *
 *  - SQLite: one process, ROLE=all (the embedded default).
 *  - PostgreSQL + Redis: one ROLE=api process and 1, then 2, ROLE=worker processes.
 *
 * Every process has WORKERS=2, so two workers run up to four scripts at once. Each
 * configuration gets a fresh database. Every script is one bash builtin that appends
 * "<track id> <EPOCHREALTIME>" to a ledger (no process is spawned by the script itself), so
 * the ledger tells when each script started.
 *
 * Figures: wall time from sending startPipeline to the pipeline:finished event arriving over
 * graphql-ws from the API process; tracks per second; dispatch latency per track, from the
 * commit that made it ready (the createdAt of its track:ready event, or of track:created for
 * the roots; millisecond precision, taken just before the commit) to its script's start in
 * the ledger (microseconds, same clock): p50 and p99, over the tracks that did not wait for
 * a free worker slot (their predecessor's worker was free); and the CPU the PostgreSQL
 * server's processes used during the run (from /proc; for SQLite the database runs inside
 * the service process, so the service's CPU is given instead).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { BENCH_REDIS_URL as REDIS_URL, freshPostgres, migrateDatabase } from './app.ts';
import { CheckGraph, CreateWholeGraph } from '../test/helpers/operations.ts';
import { freePort, serverUrl } from '../test/helpers/server-process.ts';
import { connectWs, GraphQLClient, pipelineEnd } from './client.ts';
import { layeredShape } from './graphs.ts';
import { BenchStartPipeline } from './operations.ts';
import { postgresCpuSeconds, treeCpuSeconds } from './proc.ts';

export interface ScaleOutOptions {
  root: string;
  dir: string;
  progress: (message: string) => void;
  problems: string[];
}

const SHAPE = { vertices: 1000, width: 4 };
const WORKERS_PER_PROCESS = 2;
const RUN_TIMEOUT_MS = 300_000;
/** Single-track pipelines for the wake-up figure. */
const WAKE_UPS = 100;

interface Percentiles {
  count: number;
  p50: number;
  p99: number;
}

interface Measured {
  label: string;
  wallMs: number;
  tracks: number;
  dispatch: Percentiles;
  /** Single-track pipelines started one at a time on idle workers: start commit -> script start. */
  wakeUp: Percentiles;
  databaseCpuMs: number | undefined;
  serviceCpuMs: number;
}

interface Service {
  children: ChildProcess[];
  apiUrl: string;
  stop(): Promise<void>;
}

async function waitForHealth(port: number, child: ChildProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`a worker process exited with code ${child.exitCode}`);
    try {
      const response = await fetch(`http://127.0.0.1:${port}/health`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`a worker process did not answer /health on port ${port} within ${timeoutMs / 1000} s`);
}

/** Starts the processes of one configuration on `databaseUrl`. */
async function startService(root: string, databaseUrl: string, workerProcesses: number, workDir: string): Promise<Service> {
  const base = {
    ...process.env,
    NODE_OPTIONS: '',
    DATABASE_URL: databaseUrl,
    AUTH: 'off',
    SCRIPT_USER: 'root',
    LOG_LEVEL: 'error',
    WORKERS: String(WORKERS_PER_PROCESS),
    MUTATIONS_PER_MINUTE: '100000000',
    MAX_ALIASES: '1000000',
    MAX_TOKENS: '10000000',
    MAX_QUERY_COST: '100000000',
  };
  const children: ChildProcess[] = [];
  const startProcess = (env: Record<string, string>) => {
    const child = spawn(process.execPath, ['--enable-source-maps', 'dist/server.js'], {
      cwd: root,
      env: { ...base, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stderr!.on('data', (chunk: Buffer) => process.stderr.write(chunk));
    children.push(child);
    return child;
  };
  const sqlite = workerProcesses === 0;
  const api = startProcess(sqlite ? { ROLE: 'all', PORT: '0', WORK_DIR: workDir } : { ROLE: 'api', PORT: '0', REDIS_URL });
  const apiUrl = await serverUrl(api, 60_000);
  for (let i = 0; i < workerProcesses; i++) {
    const port = await freePort();
    const worker = startProcess({ ROLE: 'worker', PORT: String(port), REDIS_URL, WORK_DIR: path.join(workDir, `worker-${i}`) });
    worker.stdout!.resume();
    await waitForHealth(port, worker);
  }
  return {
    children,
    apiUrl,
    async stop() {
      await Promise.all(
        children.map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null || child.signalCode !== null) return resolve();
              child.once('exit', () => resolve());
              child.kill('SIGTERM');
            }),
        ),
      );
    },
  };
}

function percentile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

/** Runs the 1,000-track pipeline on one configuration and measures it. */
async function measure(options: ScaleOutOptions, label: string, databaseUrl: string, workerProcesses: number): Promise<Measured> {
  const dir = path.join(options.dir, `scale-out-${workerProcesses}`);
  mkdirSync(dir, { recursive: true });
  const ledger = path.join(dir, 'ledger');
  const service = await startService(options.root, databaseUrl, workerProcesses, path.join(dir, 'work'));
  try {
    const client = new GraphQLClient(service.apiUrl);
    const { names, edges } = layeredShape(SHAPE);
    const created = await client.request(CreateWholeGraph, {
      name: `scale-out-${workerProcesses}`,
      vertices: names.map((name) => ({ name, script: `echo "$TRACK_ID $EPOCHREALTIME" >> ${ledger}` })),
      edges: edges.map(([tail, head]) => ({ tail: names[tail]!, head: names[head]! })),
    });
    if (created.createGraph.__typename !== 'Graph') throw new Error(`createGraph failed: ${JSON.stringify(created.createGraph)}`);
    const graphId = created.createGraph.id;
    const checked = await client.request(CheckGraph, { id: graphId });
    if (checked.checkGraph.__typename !== 'Graph') throw new Error(`checkGraph failed: ${JSON.stringify(checked.checkGraph)}`);

    const ws = await connectWs(service.apiUrl);
    const databaseCpu0 = workerProcesses > 0 ? postgresCpuSeconds() * 1000 : 0;
    const serviceCpu0 = service.children.reduce((sum, child) => sum + treeCpuSeconds(child.pid!) * 1000, 0);
    const t0 = performance.now();
    const { startPipeline } = await client.request(BenchStartPipeline, { graphId, name: label });
    if (startPipeline.__typename !== 'Pipeline') throw new Error(`startPipeline failed: ${JSON.stringify(startPipeline)}`);
    const end = await pipelineEnd(ws, startPipeline.id, RUN_TIMEOUT_MS);
    const wallMs = end.at - t0;
    const serviceCpuMs = service.children.reduce((sum, child) => sum + treeCpuSeconds(child.pid!) * 1000, 0) - serviceCpu0;
    const databaseCpuMs = workerProcesses > 0 ? postgresCpuSeconds() * 1000 - databaseCpu0 : undefined;
    await ws.dispose();
    if (end.state !== 'FINISH') options.problems.push(`(f) ${label}: the pipeline ended ${end.state}: ${end.reason}`);

    // Ready instants from the journal, script starts from the ledger.
    const journal = await client.requestRaw<{ pipeline: { events: Array<{ trackId: number | null; type: string; trackState: string | null; createdAt: string }> } }>(
      `query($id: Int!) { pipeline(id: $id) { events(first: 10000) { trackId type trackState createdAt } } }`,
      { id: startPipeline.id },
    );
    const readyAt = new Map<number, number>();
    for (const event of journal.pipeline.events) {
      if (event.trackId !== null && event.trackState === 'PENDING') readyAt.set(event.trackId, Date.parse(event.createdAt));
    }
    const startedAt = new Map<number, number>();
    for (const line of readFileSync(ledger, 'utf8').trim().split('\n')) {
      const [trackId, epoch] = line.split(' ');
      startedAt.set(Number(trackId), Number(epoch) * 1000);
    }
    if (startedAt.size !== SHAPE.vertices) options.problems.push(`(f) ${label}: ${startedAt.size} scripts ran, expected ${SHAPE.vertices}`);
    const latencies = [...startedAt].filter(([id]) => readyAt.has(id)).map(([id, at]) => at - readyAt.get(id)!);
    latencies.sort((a, b) => a - b);

    // Wake-up: a track made ready on the API process (its pipeline's start) reaching an idle
    // worker process, one at a time.
    const wakeLedger = path.join(dir, 'wake-ledger');
    const single = await client.request(CreateWholeGraph, {
      name: `scale-out-${workerProcesses}-single`,
      vertices: [{ name: 'one', script: `echo "$PIPELINE_ID $EPOCHREALTIME" >> ${wakeLedger}` }],
      edges: [],
    });
    if (single.createGraph.__typename !== 'Graph') throw new Error(`createGraph failed: ${JSON.stringify(single.createGraph)}`);
    await client.request(CheckGraph, { id: single.createGraph.id });
    const wsWake = await connectWs(service.apiUrl);
    const wakeLatencies: number[] = [];
    for (let i = 0; i < WAKE_UPS; i++) {
      const { startPipeline: one } = await client.request(BenchStartPipeline, { graphId: single.createGraph.id, name: `wake-${i}` });
      if (one.__typename !== 'Pipeline') throw new Error(`startPipeline failed: ${JSON.stringify(one)}`);
      const oneEnd = await pipelineEnd(wsWake, one.id, 30_000);
      if (oneEnd.state !== 'FINISH') options.problems.push(`(f) ${label}: wake-up pipeline ${one.id} ended ${oneEnd.state}`);
      const events = await client.requestRaw<{ pipeline: { events: Array<{ type: string; createdAt: string }> } }>(
        `query($id: Int!) { pipeline(id: $id) { events(first: 10) { type createdAt } } }`,
        { id: one.id },
      );
      const created = events.pipeline.events.find((e) => e.type === 'track:created')!;
      const line = readFileSync(wakeLedger, 'utf8').trim().split('\n').find((l) => l.startsWith(`${one.id} `))!;
      wakeLatencies.push(Number(line.split(' ')[1]) * 1000 - Date.parse(created.createdAt));
    }
    await wsWake.dispose();
    wakeLatencies.sort((a, b) => a - b);
    return {
      label,
      wallMs,
      tracks: startedAt.size,
      dispatch: { count: latencies.length, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) },
      wakeUp: { count: wakeLatencies.length, p50: percentile(wakeLatencies, 0.5), p99: percentile(wakeLatencies, 0.99) },
      databaseCpuMs,
      serviceCpuMs,
    };
  } finally {
    await service.stop();
  }
}

export async function runScaleOut(options: ScaleOutOptions): Promise<string[]> {
  const results: Measured[] = [];
  const sqliteFile = path.join(options.dir, 'scale-out.db');
  const sqliteUrl = `file:${sqliteFile}`;
  options.progress('(f) SQLite, one process: migrating');
  await migrateDatabase(options.root, sqliteUrl);
  options.progress('(f) SQLite, one process: running 1,000 tracks');
  results.push(await measure(options, 'SQLite, 1 process (ROLE=all)', sqliteUrl, 0));
  rmSync(sqliteFile, { force: true });

  for (const workers of [1, 2]) {
    options.progress(`(f) PostgreSQL, ${workers} worker process(es): a fresh database`);
    const database = await freshPostgres(options.root);
    try {
      options.progress(`(f) PostgreSQL, ${workers} worker process(es): running 1,000 tracks`);
      results.push(await measure(options, `PostgreSQL, 1 API + ${workers} worker${workers > 1 ? 's' : ''}`, database.url, workers));
    } finally {
      await database.drop();
    }
  }

  const baseline = results[0]!;
  return [
    `(f) scale-out: the ${SHAPE.vertices.toLocaleString('en')}-track DAG (${SHAPE.vertices / SHAPE.width} layers of ${SHAPE.width}), processes as deployed, WORKERS=${WORKERS_PER_PROCESS} each`,
    '    configuration                        wall      tracks/s  vs SQLite  dispatch p50 / p99       database CPU   service CPU',
    ...results.map(
      (r) =>
        `    ${r.label.padEnd(36)} ${`${(r.wallMs / 1000).toFixed(2)} s`.padStart(8)}  ${(r.tracks / (r.wallMs / 1000)).toFixed(0).padStart(8)}  ${(r.wallMs / baseline.wallMs).toFixed(2).padStart(9)}  ${`${r.dispatch.p50.toFixed(1)} / ${r.dispatch.p99.toFixed(1)} ms`.padStart(20)}  ${r.databaseCpuMs === undefined ? '  (in-process)' : `${(r.databaseCpuMs / 1000).toFixed(1)} s`.padStart(12)}  ${`${(r.serviceCpuMs / 1000).toFixed(1)} s`.padStart(11)}`,
    ),
    '    dispatch: ready commit (its event\'s createdAt, ms) -> the script\'s first instruction (EPOCHREALTIME), every track;',
    '    it includes waiting for a free slot (4 tracks become ready at once per layer)',
    `    wake-up across processes: ${WAKE_UPS} single-track pipelines started one at a time on the API process, idle workers;`,
    '    start commit -> script start (target p50 <= 20 ms, p99 <= 100 ms)',
    ...results.map((r) => `    ${r.label.padEnd(36)} p50 ${r.wakeUp.p50.toFixed(1)} ms, p99 ${r.wakeUp.p99.toFixed(1)} ms`),
  ];
}
