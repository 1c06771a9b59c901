/**
 * (s) Start-up and footprint: what a user meets before any pipeline runs, built (dist/, what
 * `npm start` and the pipectl bin run) beside the same code through tsx (what `npm run dev`
 * runs) and beside a plain `node -e 0`, all measured in this run, so every figure has its
 * baseline next to it.
 *
 *  - `pipectl --help`: wall time of the whole process, the median of 7 runs (after one
 *    unmeasured run, so the file cache is warm as it is for any second call).
 *  - Start to healthy: from spawning the server on an existing, migrated database until
 *    `GET /health` answers 200 (polled every 10 ms), the median of 5 starts; each start is
 *    stopped with SIGTERM before the next. `npm start` adds npm's own start-up and the
 *    staleness check of the build, measured once apart.
 *  - Memory: RSS (VmRSS) of the idle server and of its launcher process, 1 s after healthy,
 *    beside an idle plain node; and the launcher's private memory (smaps_rollup), since most of
 *    a node process's RSS is the node binary's code, shared with every other node process.
 */
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { launcherPidOf, memoryOf } from '../test/helpers/server-process.ts';

export interface StartupOptions {
  root: string;
  /** A migrated SQLite database of this bench run. */
  databaseUrl: string;
  dir: string;
  progress: (message: string) => void;
  problems: string[];
}

const run = promisify(execFile);
const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis));
const MiB = 1024 * 1024;
const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MB`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const pad = (label: string) => `    ${label.padEnd(35)}`;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Median wall time of a command run `times` times, after one unmeasured run. */
async function timeCommand(root: string, argv: string[], times: number): Promise<number> {
  const once = async () => {
    const t0 = performance.now();
    await run(argv[0]!, argv.slice(1), { cwd: root, env: { ...process.env, NODE_OPTIONS: '' }, timeout: 60_000 });
    return performance.now() - t0;
  };
  await once();
  const samples: number[] = [];
  for (let i = 0; i < times; i++) samples.push(await once());
  return median(samples);
}

interface Started {
  healthyMs: number;
  serverRss: number;
  launcherRss: number | undefined;
  launcherPrivate: number | undefined;
}

/** Memory only this process uses (not shared with other processes), from /proc/<pid>/smaps_rollup. */
function privateMemoryOf(pid: number): number | undefined {
  try {
    const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? 0);
    return (kib('Private_Clean') + kib('Private_Dirty')) * 1024;
  } catch {
    return undefined;
  }
}

/** RSS of a plain node process doing nothing, 1 s after it started. */
async function idleNodeRss(): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 5000)'], { stdio: 'ignore', env: { ...process.env, NODE_OPTIONS: '' } });
  await sleep(1000);
  const rss = memoryOf(child.pid!)?.rss ?? Number.NaN;
  child.kill('SIGKILL');
  return rss;
}

/** Starts a server with `argv`, waits for /health, measures, stops it. */
async function startToHealthy(options: StartupOptions, argv: string[], port: number): Promise<Started> {
  const t0 = performance.now();
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: options.root,
    // detached: `npm start` runs the server as its grandchild; the group is stopped together.
    detached: true,
    env: {
      ...process.env,
      NODE_OPTIONS: '',
      DATABASE_URL: options.databaseUrl,
      PORT: String(port),
      WORK_DIR: path.join(options.dir, 'startup-work'),
      AUTH: 'off',
      SCRIPT_USER: 'root',
      LOG_LEVEL: 'warn',
      WORKERS: '2',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the server exited during start-up: ${stderr}`);
      if (performance.now() - t0 > 60_000) throw new Error(`the server was not healthy within 60 s: ${stderr}`);
      const healthy = await fetch(`http://127.0.0.1:${port}/health`).then(
        (response) => response.ok,
        () => false,
      );
      if (healthy) break;
      await sleep(10);
    }
    const healthyMs = performance.now() - t0;
    await sleep(1000);
    const serverPid = serverProcessOf(child.pid!);
    const launcherPid = launcherPidOf(serverPid);
    return {
      healthyMs,
      serverRss: memoryOf(serverPid)?.rss ?? Number.NaN,
      launcherRss: launcherPid === undefined ? undefined : memoryOf(launcherPid)?.rss,
      launcherPrivate: launcherPid === undefined ? undefined : privateMemoryOf(launcherPid),
    };
  } finally {
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      // gone already
    }
    await exited;
  }
}

/** The node process serving: `pid` itself, or the one `npm start` (sh -> node) started. */
function serverProcessOf(pid: number): number {
  let current = pid;
  for (let depth = 0; depth < 4; depth++) {
    const cmdline = readFileSync(`/proc/${current}/cmdline`, 'utf8');
    if (/server\.(js|ts)/.test(cmdline)) return current;
    const children = readFileSync(`/proc/${current}/task/${current}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    if (children.length === 0) break;
    current = children.at(-1)!;
  }
  return pid;
}

export async function runStartup(options: StartupOptions): Promise<string[]> {
  const { root, progress, problems } = options;
  const node = process.execPath;
  progress('(s) start-up: node -e 0 and pipectl --help');
  const bare = await timeCommand(root, [node, '-e', '0'], 7);
  const pipectl = await timeCommand(root, [node, 'dist/pipectl.js', '--help'], 7);
  const pipectlTsx = await timeCommand(root, [node, '--import', 'tsx', 'src/cli/pipectl.ts', '--help'], 7);

  progress('(s) start-up: server start to healthy, built and through tsx');
  const port = 20_000 + (process.pid % 20_000);
  const built: Started[] = [];
  for (let i = 0; i < 5; i++) built.push(await startToHealthy(options, [node, '--enable-source-maps', 'dist/server.js'], port));
  const tsx: Started[] = [];
  for (let i = 0; i < 3; i++) tsx.push(await startToHealthy(options, [node, '--import', 'tsx', 'src/server.ts'], port));
  const npmStart = await startToHealthy(options, ['npm', 'start', '--silent'], port);

  const builtHealthy = median(built.map((s) => s.healthyMs));
  const tsxHealthy = median(tsx.map((s) => s.healthyMs));
  const serverRss = median(built.map((s) => s.serverRss));
  const launcherRss = median(built.map((s) => s.launcherRss ?? Number.NaN));
  const launcherPrivate = median(built.map((s) => s.launcherPrivate ?? Number.NaN));
  const nodeRss = await idleNodeRss();
  const tsxServerRss = median(tsx.map((s) => s.serverRss));
  const tsxLauncherRss = median(tsx.map((s) => s.launcherRss ?? Number.NaN));
  if (built.some((s) => s.launcherRss === undefined)) problems.push('(s) a built server had no launcher process 1 s after it was healthy');

  return [
    `(s) start-up and footprint: built (dist/) beside tsx and a plain node; medians`,
    `${pad('node -e 0')}${seconds(bare)}`,
    `${pad('pipectl --help, built')}${seconds(pipectl)}  (target <= 0.30 s; tsx: ${seconds(pipectlTsx)})`,
    `${pad('start -> healthy, built')}${seconds(builtHealthy)}  (target <= 2 s, existing database; tsx: ${seconds(tsxHealthy)})`,
    `${pad('start -> healthy, npm start')}${seconds(npmStart.healthyMs)}  (npm itself and the build's staleness check included)`,
    `${pad('server RSS, idle')}${mib(serverRss)}  (tsx: ${mib(tsxServerRss)})`,
    `${pad('launcher RSS, idle')}${mib(launcherRss)}  (target <= 50 MB; tsx: ${mib(tsxLauncherRss)})`,
    `${pad('launcher private memory, idle')}${mib(launcherPrivate)}  (the rest of its RSS is node's code, shared)`,
    `${pad('node -e 0 RSS, idle')}${mib(nodeRss)}`,
  ];
}
