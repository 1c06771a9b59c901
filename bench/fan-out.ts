/**
 * (e) Fan-out: 1,000 graphql-ws subscribers on one pipeline of 200 tracks.
 *
 * The service runs as its own process (`node --import tsx src/server.ts`, as `npm start` runs
 * it, on a fresh migrated SQLite file, PORT=0) so that its CPU and memory are not mixed with
 * the subscribers'; the 1,000 subscribers are lean graphql-transport-ws clients (bench/lean-client.ts,
 * one `ws` WebSocket connection each; graphql-ws's own client costs more CPU per message, on
 * the cores the service shares) in this process, spread over one worker thread per core
 * (bench/subscriber-pool.ts), so that their own queue does not count as the service's latency. The server process preloads
 * bench/fan-out-probe.ts, which only observes (publish instants, listener count, heap).
 *
 * The graph: 50 layers of 4 (every vertex joined to the next layer, scripts `true`, created in
 * one createGraph call). The 4 vertices of the first layer declare a required input, so a
 * started pipeline holds still (its roots wait for finishInput) until every subscriber is
 * provably listening:
 *
 *  1. A warm-up pipeline of the same graph runs with no subscriber (its time is the baseline).
 *  2. The measured pipeline is started; its 200 `track:created` events commit at once.
 *  3. 1,000 clients connect, each subscribes to `trackUpdated(pipelineId, after)` with `after`
 *     the id of the second-to-last `track:created` event: the first message each receives is
 *     the replayed last `track:created`, which the server sends only after the subscriber's
 *     bus listener exists. All 1,000 first messages must arrive, and the probe must count
 *     1,000 listeners on the pipeline, before anything else happens.
 *  4. finishInput releases the 4 roots; the pipeline runs to FINISH.
 *  5. Each subscriber's ids must equal, in order, the pipeline's journal (Pipeline.events)
 *     restricted to track events after `after`.
 *
 * Latency is measured per (subscriber, live event) pair, the replayed first event excluded:
 *  - createdAt -> receipt: receipt on this process's wall clock (performance.timeOrigin +
 *    performance.now(), sub-millisecond) minus Event.createdAt, which the server takes inside
 *    the transaction just before inserting the events (millisecond precision, truncated: the
 *    figure is up to 1 ms high, and it includes the rest of the transaction and its commit).
 *  - publish -> receipt: process.hrtime (CLOCK_MONOTONIC, shared by both processes) at receipt
 *    minus the probe's hrtime when the server published the event on its bus, right after the
 *    commit. Microsecond precision; this is "from commit to client receipt".
 * Both include this process's own event-loop delay, reported alongside.
 *
 * Memory is the server process's: RSS from /proc/<pid>/status (VmRSS; the peak is VmHWM after
 * resetting it through /proc/<pid>/clear_refs just before step 4) and V8's heapUsed from the
 * probe (after a full GC, except the sampled peak).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { print } from 'graphql';
import type { Client } from 'graphql-ws';
import { CheckGraph, CreateWholeGraph } from '../test/helpers/operations.ts';
import { freePort, serverUrl } from '../test/helpers/server-process.ts';
import { BENCH_REDIS_URL, freshPostgres, migrateDatabase } from './app.ts';
import { connectWs, GraphQLClient, pipelineEnd } from './client.ts';
import type { ProbePublished, ProbeRequest, ProbeStats } from './fan-out-probe.ts';
import { layeredShape, type LayeredShape } from './graphs.ts';
import { cpuSeconds, cpuSplit, postgresCpuSeconds, treeCpuSeconds } from './proc.ts';
import { SubscriberPool, type Received } from './subscriber-pool.ts';
import { BenchFanOutJournal, BenchFanOutTrackUpdated, BenchFinishInput, BenchStartPipeline } from './operations.ts';

export const FAN_OUT_SUBSCRIBERS = 1000;
export const FAN_OUT_SHAPE: LayeredShape = { vertices: 200, width: 4 };
/** Scripts at once in the server process: the same as (a) on this 2-core machine. */
export const FAN_OUT_WORKERS = 2;
const CONNECT_BATCH = 100;
const RUN_TIMEOUT_MS = 300_000;
const DRAIN_TIMEOUT_MS = 120_000;

export interface FanOutOptions {
  /**
   * 'one-process' (e): the service as one process on SQLite. 'api-and-worker' (g): a ROLE=api
   * process (the subscribers' server, with the probe) and a ROLE=worker process (the scripts)
   * on a fresh PostgreSQL database, events passing through Redis.
   */
  mode?: 'one-process' | 'api-and-worker';
  root: string;
  /** A fresh temporary directory of this bench run. */
  dir: string;
  progress: (message: string) => void;
  problems: string[];
}

const run = promisify(execFile);
const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis));
const hrMs = () => Number(process.hrtime.bigint()) / 1e6;
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
const num = (value: number) => value.toLocaleString('en');
const pad = (label: string) => `    ${label.padEnd(35)}`;

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function summary(samples: number[]): { count: number; p50: number; p99: number; max: number } {
  const sorted = Float64Array.from(samples).sort();
  return { count: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? Number.NaN };
}

// ---- The server process and what /proc says about it.

interface Server {
  child: ChildProcess;
  /** ROLE=worker, in 'api-and-worker' mode. */
  worker?: ChildProcess;
  url: string;
  ask<T>(request: Omit<ProbeRequest, 'id'>): Promise<T>;
  stop(): Promise<void>;
}

async function startServer(options: FanOutOptions, databaseUrl: string): Promise<Server> {
  const separate = options.mode === 'api-and-worker';
  // BENCH_CPU_PROF=<dir>: the server writes CPU profiles of its whole life there when it exits
  // (CPU.<date>.<pid>.<thread>...: one per thread; tsx's loader hooks run in a worker thread).
  const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(process.env.BENCH_CPU_PROF)}`] : [];
  const child = spawn(
    process.execPath,
    [...profile, '--expose-gc', '--import', 'tsx', '--import', './bench/fan-out-probe.ts', 'src/server.ts'],
    {
      cwd: options.root,
      env: {
        ...process.env,
        NODE_OPTIONS: '',
        PORT: '0',
        HOST: '127.0.0.1',
        DATABASE_URL: databaseUrl,
        WORKERS: String(FAN_OUT_WORKERS),
        WORK_DIR: path.join(options.dir, 'fan-out-work'),
        ...(separate && { ROLE: 'api', REDIS_URL: BENCH_REDIS_URL }),
        LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'error',
        // The bench measures delivery, not the limits that protect a public service.
        AUTH: 'off',
        SCRIPT_USER: 'root',
        MUTATIONS_PER_MINUTE: '100000000',
        MAX_ALIASES: '1000000',
        MAX_TOKENS: '10000000',
        MAX_QUERY_COST: '100000000',
      },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    },
  );
  const url = await serverUrl(child, 60_000);
  let worker: ChildProcess | undefined;
  if (separate) {
    const port = await freePort();
    worker = spawn(process.execPath, [...profile, '--enable-source-maps', 'dist/server.js'], {
      cwd: options.root,
      env: {
        ...process.env,
        NODE_OPTIONS: '',
        ROLE: 'worker',
        PORT: String(port),
        HOST: '127.0.0.1',
        DATABASE_URL: databaseUrl,
        REDIS_URL: BENCH_REDIS_URL,
        WORKERS: String(FAN_OUT_WORKERS),
        WORK_DIR: path.join(options.dir, 'fan-out-worker-work'),
        LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'error',
        AUTH: 'off',
        SCRIPT_USER: 'root',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    worker.stderr!.on('data', (chunk: Buffer) => process.stderr.write(`[fan-out worker] ${chunk.toString()}`));
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (worker.exitCode !== null) throw new Error(`the fan-out worker process exited (${worker.exitCode})`);
      const healthy = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false);
      if (healthy) break;
      if (Date.now() > deadline) throw new Error('the fan-out worker process did not answer /health within 60 s');
      await sleep(50);
    }
  }
  // From now on its logs (LOG_LEVEL, default error) go to our stderr.
  child.stdout!.removeAllListeners('data');
  child.stderr!.removeAllListeners('data');
  child.stdout!.on('data', (chunk: Buffer) => process.stderr.write(`[fan-out server] ${chunk.toString()}`));
  child.stderr!.on('data', (chunk: Buffer) => process.stderr.write(`[fan-out server] ${chunk.toString()}`));

  let nextId = 0;
  const ask = <T>(request: Omit<ProbeRequest, 'id'>) =>
    new Promise<T>((resolve, reject) => {
      const id = ++nextId;
      const onMessage = (message: { probeReply?: number; body?: T }) => {
        if (message?.probeReply !== id) return;
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve(message.body as T);
      };
      const timer = setTimeout(() => {
        child.off('message', onMessage);
        reject(new Error(`the probe in the server process did not answer ${JSON.stringify(request)} within 60 s`));
      }, 60_000);
      child.on('message', onMessage);
      child.send({ ...request, id });
    });

  const stopOne = async (process: ChildProcess) => {
    if (process.exitCode !== null || process.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => process.once('exit', () => resolve()));
    process.kill('SIGTERM');
    const timer = setTimeout(() => process.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  };
  const stop = async () => {
    await Promise.all([stopOne(child), ...(worker ? [stopOne(worker)] : [])]);
  };
  return { child, ...(worker && { worker }), url, ask, stop };
}

interface ProcMemory {
  rss: number;
  hwm: number;
}

/** VmRSS and VmHWM (peak RSS) in bytes, or undefined without /proc. */
function procMemory(pid: number): ProcMemory | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return undefined;
  }
}

/** Resets VmHWM to the current RSS (Linux >= 4.0); false if not allowed. */
function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

// ---- The graph and its pipelines.

async function buildGraph(api: GraphQLClient): Promise<{ graphId: number; edgeCount: number }> {
  const { names, edges } = layeredShape(FAN_OUT_SHAPE);
  const roots = new Set(names.slice(0, FAN_OUT_SHAPE.width));
  const created = await api.request(CreateWholeGraph, {
    name: 'bench-fan-out',
    vertices: names.map((name) => ({
      name,
      script: 'true',
      // The roots wait for finishInput: the pipeline holds still until the subscribers listen.
      ...(roots.has(name) && { inputs: [{ name: 'go', type: 'STRING' as const, required: true }] }),
    })),
    edges: edges.map(([tail, head]) => ({ tail: names[tail]!, head: names[head]! })),
  });
  if (created.createGraph.__typename !== 'Graph') throw new Error(`(e) createGraph failed: ${JSON.stringify(created.createGraph)}`);
  const graphId = created.createGraph.id;
  const checked = await api.request(CheckGraph, { id: graphId });
  if (checked.checkGraph.__typename !== 'Graph' || !checked.checkGraph.checked) {
    throw new Error(`(e) checkGraph failed: ${JSON.stringify(checked.checkGraph)}`);
  }
  return { graphId, edgeCount: edges.length };
}

async function startHeld(api: GraphQLClient, graphId: number, name: string) {
  const { startPipeline } = await api.request(BenchStartPipeline, { graphId, name });
  if (startPipeline.__typename !== 'Pipeline') throw new Error(`(e) startPipeline failed: ${JSON.stringify(startPipeline)}`);
  const journal = await journalOf(api, startPipeline.id, 0);
  const held = journal.tracks.filter((t) => t.needsInput).map((t) => t.id);
  if (held.length !== FAN_OUT_SHAPE.width) throw new Error(`(e) expected ${FAN_OUT_SHAPE.width} tracks waiting for input, found ${held.length}`);
  return { pipelineId: startPipeline.id, events: journal.events, held };
}

async function journalOf(api: GraphQLClient, id: number, after: number) {
  const { pipeline } = await api.request(BenchFanOutJournal, { id, after });
  if (!pipeline) throw new Error(`(e) pipeline ${id} not found`);
  return pipeline;
}

async function release(api: GraphQLClient, held: readonly number[]): Promise<void> {
  for (const trackId of held) {
    const { finishInput } = await api.request(BenchFinishInput, { trackId, params: { go: 'now' } });
    if (finishInput.__typename !== 'Track') throw new Error(`(e) finishInput(${trackId}) failed: ${JSON.stringify(finishInput)}`);
  }
}

/** Commit-stamp duration of a run: first track:input -> pipeline:finished (Event.createdAt). */
function runMs(events: ReadonlyArray<{ type: string; createdAt: string }>): number {
  const first = events.find((e) => e.type === 'track:input');
  const last = events.find((e) => e.type === 'pipeline:finished');
  return first && last ? Date.parse(last.createdAt) - Date.parse(first.createdAt) : Number.NaN;
}

async function within<T>(promise: Promise<T>, millis: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`(e) ${what}: not within ${millis} ms`)), millis)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---- The benchmark.

export async function runFanOut(options: FanOutOptions): Promise<string[]> {
  const { progress, problems } = options;
  const separate = options.mode === 'api-and-worker';
  const section = separate ? '(g)' : '(e)';
  let databaseUrl = `file:${path.join(options.dir, 'fan-out.db')}`;
  let dropDatabase = async () => {};
  if (separate) {
    progress('(g) fan-out, API and worker apart: a fresh PostgreSQL database, then an API and a worker process');
    const database = await freshPostgres(options.root);
    databaseUrl = database.url;
    dropDatabase = database.drop;
  } else {
    progress(`${section} fan-out: fresh database, then the server as its own process`);
    await migrateDatabase(options.root, databaseUrl);
  }
  const server = await startServer(options, databaseUrl);
  const pid = server.child.pid!;
  /** CPU of the service: the API process, and in (g) the worker and its launcher too. */
  const serviceCpu = () => cpuSeconds(pid) + (server.worker ? treeCpuSeconds(server.worker.pid!) : 0);
  /** Where the CPU of a run went: the API (or only) process, the worker with its launcher, PostgreSQL. */
  const cpuParts = () => {
    const worker = server.worker ? cpuSeconds(server.worker.pid!) : 0;
    return {
      api: cpuSeconds(pid),
      worker,
      launcher: server.worker ? treeCpuSeconds(server.worker.pid!) - worker : 0,
      database: separate ? postgresCpuSeconds() : 0,
    };
  };
  const cpuSince = (before: ReturnType<typeof cpuParts>) => {
    const now = cpuParts();
    return { api: now.api - before.api, worker: now.worker - before.worker, launcher: now.launcher - before.launcher, database: now.database - before.database };
  };
  const api = new GraphQLClient(server.url);
  const pool = await SubscriberPool.start();
  let subscribers: Received[] = [];
  let watcher: Client | undefined;
  const disconnectAll = async () => {
    subscribers = [];
    await pool.disconnect();
    await watcher?.dispose();
    watcher = undefined;
  };
  try {
    const stats = (request: Omit<Extract<ProbeRequest, { probe: 'stats' }>, 'id' | 'probe'>) => server.ask<ProbeStats>({ probe: 'stats', ...request });
    const graph = await buildGraph(api);

    progress(`${section} warm-up: the same pipeline with no subscriber`);
    watcher = await connectWs(server.url);
    const warm = await startHeld(api, graph.graphId, 'fan-out-warm-up');
    const warmEnd = pipelineEnd(watcher, warm.pipelineId, RUN_TIMEOUT_MS);
    const warmCpuBefore = serviceCpu();
    const warmPartsBefore = cpuParts();
    await release(api, warm.held);
    if ((await warmEnd).state !== 'FINISH') problems.push(`${section} warm-up pipeline ${warm.pipelineId} did not FINISH`);
    const warmCpu = serviceCpu() - warmCpuBefore;
    const warmParts = cpuSince(warmPartsBefore);
    const warmRunMs = runMs((await journalOf(api, warm.pipelineId, 0)).events);

    const measured = await startHeld(api, graph.graphId, 'fan-out');
    const { pipelineId } = measured;
    const created = measured.events.filter((e) => e.trackId !== null);
    const after = created.at(-2)!.id; // replay exactly one event: the last track:created
    const before = { proc: procMemory(pid), probe: await stats({ gc: true, pipelineId }) };

    progress(`${section} connecting ${num(FAN_OUT_SUBSCRIBERS)} lean graphql-transport-ws clients on ${pool.threadCount} threads (${CONNECT_BATCH} at a time in all) and subscribing`);
    let t0 = performance.now();
    await pool.connect(server.url, FAN_OUT_SUBSCRIBERS, Math.ceil(CONNECT_BATCH / pool.threadCount));
    const connectMs = performance.now() - t0;
    t0 = performance.now();
    await within(pool.subscribe(print(BenchFanOutTrackUpdated), { pipelineId, after }, 'trackUpdated'), 120_000, 'every subscriber receives its first (replayed) event');
    const subscribeMs = performance.now() - t0;
    subscribers = await pool.collect();
    const notListening = subscribers.filter((s) => s.ids.length !== 1 || s.ids[0] !== created.at(-1)!.id || s.errors.length > 0);
    if (notListening.length > 0) {
      throw new Error(`${section} ${notListening.length} subscriber(s) did not start as expected: ${notListening[0]!.errors.join('; ') || JSON.stringify(notListening[0]!.ids)}`);
    }
    const connected = { proc: procMemory(pid), probe: await stats({ gc: true, pipelineId, resetPeak: true }) };
    if (connected.probe.listeners !== null && connected.probe.listeners !== FAN_OUT_SUBSCRIBERS) {
      throw new Error(`${section} the server counts ${connected.probe.listeners} listeners on pipeline ${pipelineId}, expected ${FAN_OUT_SUBSCRIBERS}`);
    }

    progress(`${section} releasing the pipeline and following it`);
    const peakReset = resetPeakRss(pid);
    const cpuBefore = serviceCpu();
    const partsBefore = cpuParts();
    const apiCpuBefore = cpuSplit(pid);
    const ownCpuBefore = process.cpuUsage();
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    await pool.loopDelay(true);
    const end = pipelineEnd(watcher, pipelineId, RUN_TIMEOUT_MS);
    const released = hrMs();
    await release(api, measured.held);
    const ended = await end;
    if (ended.state !== 'FINISH') problems.push(`${section} pipeline ${pipelineId} ended ${ended.state}: ${ended.reason}`);
    const journal = await journalOf(api, pipelineId, after);
    const expected = journal.events.filter((e) => e.trackId !== null);
    const lastId = expected.at(-1)!.id;
    const drainDeadline = Date.now() + DRAIN_TIMEOUT_MS;
    while ((await pool.behind(lastId)) > 0 && Date.now() < drainDeadline) {
      await sleep(20);
    }
    loopDelay.disable();
    const threadsDelay = await pool.loopDelay();
    const cpuRun = serviceCpu() - cpuBefore;
    const runParts = cpuSince(partsBefore);
    const apiCpuAfter = cpuSplit(pid);
    const apiCpu = { user: apiCpuAfter.user - apiCpuBefore.user, system: apiCpuAfter.system - apiCpuBefore.system };
    const ownCpu = process.cpuUsage(ownCpuBefore);
    const ownCpuRun = (ownCpu.user + ownCpu.system) / 1e6;
    const peak = { proc: procMemory(pid), probe: await stats({ pipelineId }) };
    const published = new Map<number, number>();
    const { published: pairs } = await server.ask<ProbePublished>({ probe: 'published' });
    for (let i = 0; i < pairs.length; i += 2) published.set(pairs[i]!, pairs[i + 1]!);
    await sleep(500); // a late duplicate would arrive now, and be counted below
    subscribers = await pool.collect();

    // ---- Delivery: the same ids in the same order for every subscriber.
    const expectedIds = expected.map((e) => e.id);
    const expectedSet = new Set(expectedIds);
    let delivered = 0;
    let exact = 0;
    const faults: string[] = [];
    for (const [index, s] of subscribers.entries()) {
      const unique = new Set(s.ids.filter((id) => expectedSet.has(id)));
      delivered += unique.size;
      const same = s.ids.length === expectedIds.length && s.ids.every((id, i) => id === expectedIds[i]);
      if (same && s.errors.length === 0) exact++;
      else if (faults.length < 5) {
        const missing = expectedIds.filter((id) => !unique.has(id)).length;
        const extra = s.ids.length - unique.size;
        faults.push(`subscriber ${index}: ${s.ids.length} received, ${missing} missing, ${extra} duplicate/unexpected, ${same ? '' : 'order or content differs, '}errors: ${s.errors.join('; ') || 'none'}`);
      }
    }
    const expectedPairs = expectedIds.length * subscribers.length;
    if (exact !== subscribers.length) {
      problems.push(`${section} ${subscribers.length - exact} of ${subscribers.length} subscribers did not receive exactly the journal's ${expectedIds.length} track events in order (${delivered}/${expectedPairs} delivered)`);
      problems.push(...faults.map((f) => `${section}   ${f}`));
    }

    // ---- Latency over (subscriber, live event) pairs; the first, replayed event is not live.
    const createdAt = new Map(expected.map((e) => [e.id, Date.parse(e.createdAt)]));
    const wallMinusHr = performance.timeOrigin + performance.now() - hrMs();
    const fromCreatedAt: number[] = [];
    const fromPublish: number[] = [];
    let lastReceipt = 0;
    for (const s of subscribers) {
      for (let i = 1; i < s.ids.length; i++) {
        const id = s.ids[i]!;
        const at = s.at[i]!;
        lastReceipt = Math.max(lastReceipt, at);
        const stamp = createdAt.get(id);
        if (stamp !== undefined) fromCreatedAt.push(at + wallMinusHr - stamp);
        const publishedAt = published.get(id);
        if (publishedAt !== undefined) fromPublish.push(at - publishedAt);
      }
    }
    const stamped = summary(fromCreatedAt);
    const precise = summary(fromPublish);
    const liveEvents = expected.length - 1;
    // In (g) the worker process publishes; the API process only receives from Redis.
    if (precise.count === 0 && !separate) problems.push('(e) the probe saw no publish on the bus: publish -> receipt latency not measured');
    const fullRunMs = runMs(journal.events);
    const firstInput = expected.find((e) => e.type === 'track:input');
    const lastDeliveryMs = firstInput ? lastReceipt + wallMinusHr - Date.parse(firstInput.createdAt) : Number.NaN;
    const releasedToLast = lastReceipt - released;

    // ---- Disconnect everyone: the server must let go of them.
    progress(`${section} disconnecting the subscribers`);
    const subscriberCount = subscribers.length;
    await disconnectAll();
    let after0 = await stats({ gc: true, pipelineId });
    for (let i = 0; i < 50 && (after0.listeners ?? 0) > 0; i++) {
      await sleep(100);
      after0 = await stats({ gc: true, pipelineId });
    }
    const disconnected = { proc: procMemory(pid), probe: after0 };
    if ((after0.listeners ?? 0) > 0) problems.push(`${section} ${after0.listeners} listener(s) still on pipeline ${pipelineId} 5 s after every subscriber disconnected`);

    const rss = (m: { proc: ProcMemory | undefined; probe: ProbeStats }) => mb(m.proc?.rss ?? m.probe.memory.rss);
    const perSubscriber = (connected.probe.memory.heapUsed - before.probe.memory.heapUsed) / FAN_OUT_SUBSCRIBERS;
    const perSubscriberRss = ((connected.proc?.rss ?? connected.probe.memory.rss) - (before.proc?.rss ?? before.probe.memory.rss)) / FAN_OUT_SUBSCRIBERS;
    const ms1 = (value: number) => `${value.toFixed(1)} ms`;
    const latencyLine = (s: ReturnType<typeof summary>) => `p50 ${ms1(s.p50)}, p99 ${ms1(s.p99)}, max ${ms1(s.max)}  (${num(s.count)} samples)`;
    const eld = (value: number) => `${(value / 1e6).toFixed(1)} ms`;
    const runRatio = fullRunMs / warmRunMs;
    if (separate && runRatio > 1.3) problems.push(`(g) the run with ${num(FAN_OUT_SUBSCRIBERS)} subscribers took ${runRatio.toFixed(2)} times the run with none (target <= 1.3)`);
    if (separate && stamped.p99 > 150) problems.push(`(g) commit -> receipt p99 ${stamped.p99.toFixed(0)} ms (target <= 150 ms)`);
    return [
      separate
        ? `(g) fan-out with API and worker apart: ${num(FAN_OUT_SUBSCRIBERS)} graphql-transport-ws subscribers (lean clients in the bench process) on one ROLE=api process, the scripts on one ROLE=worker process, PostgreSQL and Redis`
        : `(e) fan-out: ${num(FAN_OUT_SUBSCRIBERS)} graphql-transport-ws subscribers (lean clients, one connection each, in the bench process) on one ${FAN_OUT_SHAPE.vertices}-track pipeline`,
      `    (${FAN_OUT_SHAPE.vertices}-track pipeline, ${FAN_OUT_SHAPE.vertices / FAN_OUT_SHAPE.width} layers of ${FAN_OUT_SHAPE.width}, ${graph.edgeCount} edges, scripts \`true\`; ${separate ? 'worker' : 'server: its own process,'} WORKERS=${FAN_OUT_WORKERS}; subscription trackUpdated)`,
      ...(separate
        ? [
            `${pad('run with / without subscribers')}${runRatio.toFixed(2)}  (target <= 1.30)`,
            `${pad('commit -> receipt p99')}${stamped.p99.toFixed(1)} ms  (target <= 150 ms; createdAt -> receipt below)`,
          ]
        : []),
      `${pad('connect 1,000 / subscribe 1,000')}${connectMs.toFixed(0)} ms / ${subscribeMs.toFixed(0)} ms  (server-side listeners on the pipeline: ${connected.probe.listeners ?? 'n/a'})`,
      `${pad('events delivered')}${num(delivered)} / ${num(expectedPairs)}  (${expectedIds.length} per subscriber: 1 replayed + ${liveEvents} live; ${num(exact)} of ${num(subscriberCount)} subscribers exact, in journal order)`,
      `${pad('run, first input -> FINISH commit')}${fullRunMs.toFixed(0)} ms  (no subscriber: ${warmRunMs.toFixed(0)} ms)`,
      `${pad('last delivery, after first input')}${lastDeliveryMs.toFixed(0)} ms  (${releasedToLast.toFixed(0)} ms after finishInput was sent)`,
      `${pad('latency createdAt -> receipt')}${latencyLine(stamped)}`,
      `${pad('latency publish -> receipt')}${separate ? 'n/a (the worker process publishes; the API process receives from Redis)' : latencyLine(precise)}`,
      `${pad('event-loop delay, subscribers')}p50 ${threadsDelay.p50.toFixed(1)} ms, p99 ${threadsDelay.p99.toFixed(1)} ms, max ${threadsDelay.max.toFixed(1)} ms  (the worst thread's; inflates both latencies; the bench's main thread: p99 ${eld(loopDelay.percentile(99))})`,
      `${pad(`event-loop delay, ${separate ? 'API' : 'server'} process`)}p50 ${peak.probe.loopDelay.p50.toFixed(1)} ms, p99 ${peak.probe.loopDelay.p99.toFixed(1)} ms, max ${peak.probe.loopDelay.max.toFixed(1)} ms`,
      `${pad('CPU during the run, server / bench')}${cpuRun.toFixed(1)} s / ${ownCpuRun.toFixed(1)} s  (user + system; the ${separate ? 'API and worker processes (with the launcher)' : 'server process alone'} / the 1,000 subscribers' process)`,
      `${pad(`${separate ? 'API' : 'server'} process CPU, user / system`)}${apiCpu.user.toFixed(1)} s / ${apiCpu.system.toFixed(1)} s  (${num(peak.probe.socketWrites - connected.probe.socketWrites)} writes to TCP sockets: ${((peak.probe.socketWrites - connected.probe.socketWrites) / delivered).toFixed(2)} per delivery)`,
      ...(separate
        ? [
            `${pad('CPU, run with none / with 1,000')}API ${warmParts.api.toFixed(1)} / ${runParts.api.toFixed(1)} s, worker ${warmParts.worker.toFixed(1)} / ${runParts.worker.toFixed(1)} s, its launcher ${warmParts.launcher.toFixed(1)} / ${runParts.launcher.toFixed(1)} s, PostgreSQL (the whole server) ${warmParts.database.toFixed(1)} / ${runParts.database.toFixed(1)} s`,
          ]
        : []),
      `${pad('server CPU per delivery')}${(((cpuRun - warmCpu) / delivered) * 1e6).toFixed(1)} us  (the run's server CPU less the warm-up's, ${warmCpu.toFixed(1)} s with no subscriber, over the deliveries)`,
      '    server memory                      RSS        heap used',
      `      before subscribers (after GC)    ${rss(before).padEnd(11)}${mb(before.probe.memory.heapUsed)}`,
      `      1,000 subscribed (after GC)      ${rss(connected).padEnd(11)}${mb(connected.probe.memory.heapUsed)}  (${(perSubscriberRss / 1024).toFixed(1)} KB RSS, ${(perSubscriber / 1024).toFixed(1)} KB heap per subscriber)`,
      `      peak during the run              ${(peak.proc && peakReset ? mb(peak.proc.hwm) : `${rss(peak)} (now)`).padEnd(11)}${mb(peak.probe.peakHeapUsed)}  (RSS: VmHWM, reset before the run${peakReset ? '' : ' FAILED: RSS at the end instead'}; heap: sampled every 100 ms)`,
      `      after the run (no GC)            ${rss(peak).padEnd(11)}${mb(peak.probe.memory.heapUsed)}`,
      `      all disconnected (after GC)      ${rss(disconnected).padEnd(11)}${mb(disconnected.probe.memory.heapUsed)}  (listeners left: ${disconnected.probe.listeners ?? 'n/a'})`,
    ];
  } finally {
    await disconnectAll();
    await pool.close();
    await server.stop();
    await dropDatabase();
  }
}
