/**
 * The real server as a child process (what `npm start` runs: the built dist/server.js,
 * which the global setup rebuilds when a source changed), for tests that kill it, restart
 * it on the same database, or watch its memory from outside.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const started = new Set<ChildProcess>();

/** A TCP port that was free a moment ago on the loopback interface. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface ServerProcess {
  child: ChildProcess;
  pid: number;
  /** The GraphQL endpoint (http://host:port/graphql); a worker's (ROLE=worker) /health. */
  url: string;
  /** What it printed so far, stdout and stderr (the last megabyte). */
  output(): string;
  /** Resolves once the process has exited. */
  exited: Promise<void>;
  /** Sends `signal` and waits for the process to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Resolves with the GraphQL URL a starting server prints (a worker's /health URL), or
 * rejects with what it printed if it exits or says nothing within `timeoutMs`.
 */
export function serverUrl(child: ChildProcess, timeoutMs: number): Promise<string> {
  let output = '';
  const keep = (chunk: Buffer) => {
    output += chunk.toString();
    if (output.length > 100_000) output = output.slice(-50_000);
  };
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start within ${timeoutMs / 1000} s: ${output}`)), timeoutMs);
    child.stdout!.on('data', (chunk: Buffer) => {
      keep(chunk);
      const match = /^(?:GraphiQL|Worker): (\S+)/m.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.stderr!.on('data', keep);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code ?? signal}): ${output}`));
    });
  });
}

/**
 * Starts dist/server.js with `env` on top of this process's environment, and resolves
 * once it prints its URL. Authentication is off explicitly (it listens on loopback only).
 */
export async function startServerProcess(env: Record<string, string>): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--enable-source-maps', 'dist/server.js'], {
    env: { ...process.env, AUTH: 'off', SCRIPT_USER: 'root', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.add(child);
  let printed = '';
  const keep = (chunk: Buffer) => {
    printed += chunk.toString();
    if (printed.length > 2_000_000) printed = printed.slice(-1_000_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  void exited.then(() => started.delete(child));
  const url = await serverUrl(child, 30_000);
  return {
    child,
    pid: child.pid!,
    url,
    output: () => printed,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/**
 * A ROLE=worker process of a deployment on PostgreSQL and Redis, on a free port, with its own
 * work directory and two workers; `env` adds or overrides settings.
 */
export async function startWorkerProcess(
  deployment: { databaseUrl: string; redisUrl: string; workDir: string },
  env: Record<string, string> = {},
): Promise<ServerProcess> {
  return startServerProcess({
    ROLE: 'worker',
    DATABASE_URL: deployment.databaseUrl,
    REDIS_URL: deployment.redisUrl,
    PORT: String(await freePort()),
    WORK_DIR: deployment.workDir,
    WORKERS: '2',
    ...env,
  });
}

/** SIGKILLs every server process a test started that is still running (for afterAll). */
export function killServerProcesses(): void {
  for (const child of started) child.kill('SIGKILL');
  started.clear();
}

/** The pids of a process's direct children (Linux /proc). */
export function childPids(pid: number): number[] {
  const pids: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  for (const task of tasks) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      if (text) pids.push(...text.split(/\s+/).map(Number));
    } catch {
      // the thread ended meanwhile
    }
  }
  return pids;
}

/** A process's command line (Linux /proc), '' when it is gone. */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

/** The server's launcher process (its child running launcher.cjs, or launcher.ts in-process), if it runs. */
export function launcherPidOf(serverPid: number): number | undefined {
  return childPids(serverPid).find((pid) => /launcher\.(cjs|ts)\b/.test(commandLine(pid)));
}

export interface Memory {
  /** Resident set size now, in bytes. */
  rss: number;
  /** Peak resident set size over the process's life (VmHWM), in bytes. */
  hwm: number;
}

/** A process's memory from /proc/<pid>/status, or undefined once it is gone. */
export function memoryOf(pid: number): Memory | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
  return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
}

/** CPU seconds a process has used (user + system), from /proc/<pid>/stat. */
export function cpuSecondsOf(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after the command name (which may contain spaces) start at field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
