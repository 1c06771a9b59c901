/**
 * The service's side of the launcher process: starts it once (again if it dies) and
 * turns its IPC messages into per-run callbacks and promises. Every output batch is
 * acknowledged once handled (acks coalesced per event-loop turn): the launcher stops
 * reading a script whose output is too far ahead of us (see launcher.ts).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { FromLauncher, ToLauncher } from './launcher-protocol.ts';
import type { ScriptOutcome, ScriptSpec } from './run-script.ts';

/** How to start the launcher process: a script, and the Node options it needs. */
export interface LauncherEntry {
  path: string;
  execArgv: string[];
}

/**
 * V8's young generation for the launcher, in MiB per semi-space. By default it grows to
 * 16 (32 MiB committed) under a flood of output, which was most of the launcher's growth
 * (+28 of +14 to +31 MiB measured): what it allocates dies at once (strings read, batched,
 * sent), so a small young generation costs only more, cheap, minor collections.
 */
const LAUNCHER_SEMI_SPACE = `--max-semi-space-size=2`;

/**
 * The built launcher runs on V8's interpreter alone. Its work is spawning and moving text
 * between pipes and IPC, done in V8's and Node's built-ins, so the optimising compilers
 * had little to speed up but cost memory: measured with the same launcher through the
 * service's Launcher, idle RSS 50.3 -> 44.2 MiB, after 600 spawns and a 100 MB flood
 * 75-77 -> 64 MiB; 300 spawns in a row 0.95-0.97 -> 0.89-0.90 s (no compile work), the
 * 100 MB flood 0.56-0.58 -> 0.69-0.76 s of launcher time, still far faster than the
 * service takes output in. --no-expose-wasm: --jitless turns WebAssembly off anyway, and
 * says so on stderr unless asked to.
 */
const LAUNCHER_INTERPRETER_ONLY = ['--jitless', '--no-expose-wasm'];

/**
 * The launcher beside this module: the built dist/launcher.cjs when the service runs built
 * (plain Node, nothing to compile: it starts in milliseconds and stays small), else the
 * TypeScript source through tsx (tests, `npm run dev`). Never the parent's execArgv: flags
 * meant for the server (a heap size, an inspector) are not the launcher's.
 */
export function defaultLauncherEntry(): LauncherEntry {
  if (!import.meta.url.endsWith('.ts')) return builtLauncherEntry(fileURLToPath(new URL('.', import.meta.url)));
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  return { path: fileURLToPath(new URL('./launcher.ts', import.meta.url)), execArgv: ['--import', tsx, LAUNCHER_SEMI_SPACE] };
}

/**
 * The built launcher in `distDir`, as the built service starts it (the bench runs it from
 * source). Without --enable-source-maps: parsing its map cost 1 MB of RSS, and the launcher
 * reports failures as messages, not stacks.
 */
export function builtLauncherEntry(distDir: string): LauncherEntry {
  return { path: path.join(distDir, 'launcher.cjs'), execArgv: [LAUNCHER_SEMI_SPACE, ...LAUNCHER_INTERPRETER_ONLY] };
}

export interface RunHandlers {
  onStarted(at: number, pid: number | undefined): void;
  /** Whole lines with their newlines, and one stream character per line (see launcher-protocol.ts). */
  onOutput(text: string, streams: string): void;
}

interface ActiveRun {
  handlers: RunHandlers;
  resolve(outcome: ScriptOutcome): void;
  /** The script's process group, once started. */
  pid?: number;
}

export class Launcher {
  constructor(private readonly entry: LauncherEntry = defaultLauncherEntry()) {}

  private child: ChildProcess | undefined;
  private readonly runs = new Map<string, ActiveRun>();
  private closed = false;
  /** Output batches handled and not acknowledged yet, by run id. */
  private readonly acks = new Map<string, number>();

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the launcher process now and waits until it is ready, so the first script starts fast. */
  async start(): Promise<void> {
    this.closed = false;
    const child = this.ensureChild();
    await new Promise<void>((resolve, reject) => {
      const onMessage = (message: FromLauncher) => {
        if (message.type !== 'ready') return;
        child.off('message', onMessage);
        child.off('exit', onExit);
        resolve();
      };
      const onExit = (code: number | null) => reject(new Error(`the launcher process exited during start-up (code ${code})`));
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
  }

  /** Starts a script; resolves with its outcome (never rejects). Returns its run id. */
  run(spec: ScriptSpec, handlers: RunHandlers): { runId: string; done: Promise<ScriptOutcome> } {
    const runId = randomUUID();
    const done = new Promise<ScriptOutcome>((resolve) => {
      this.runs.set(runId, { handlers, resolve });
    });
    this.send({ type: 'run', runId, spec });
    return { runId, done };
  }

  kill(runId: string, reason: string): void {
    if (this.runs.has(runId)) this.send({ type: 'kill', runId, reason });
  }

  /** Closes the IPC channel: the launcher kills what still runs and exits. */
  async close(): Promise<void> {
    this.closed = true;
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.disconnect();
    await exited;
  }

  private send(message: ToLauncher): void {
    if (this.closed) throw new Error('the launcher is closed');
    this.ensureChild().send(message);
  }

  private ensureChild(): ChildProcess {
    if (this.child && this.child.connected) return this.child;
    const child = fork(this.entry.path, [], {
      execArgv: this.entry.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.on('message', (message: FromLauncher) => this.onMessage(message));
    child.on('exit', () => {
      if (this.child === child) this.child = undefined;
      // Runs it was carrying can never report: they failed with the launcher. Their
      // process groups outlive it (they are detached), so end them here, or a retry would
      // run next to the old attempt.
      for (const [runId, run] of this.runs) {
        this.runs.delete(runId);
        if (run.pid !== undefined) killGroup(run.pid);
        run.resolve({
          exitCode: null,
          signal: null,
          timedOut: false,
          killedBecause: 'the launcher process died while the script ran (it is restarted for the next one)',
          spawnError: null,
          durationMs: 0,
        });
      }
    });
    this.child = child;
    return child;
  }

  /** Acknowledges one handled output batch (sent at the end of this event-loop turn). */
  private acknowledge(runId: string): void {
    if (this.acks.size === 0) {
      setImmediate(() => {
        const child = this.child;
        for (const [id, batches] of this.acks) {
          if (child?.connected) child.send({ type: 'ack', runId: id, batches } satisfies ToLauncher);
        }
        this.acks.clear();
      });
    }
    this.acks.set(runId, (this.acks.get(runId) ?? 0) + 1);
  }

  private onMessage(message: FromLauncher): void {
    if (message.type === 'ready') return;
    const run = this.runs.get(message.runId);
    if (!run) {
      // A run given up on (its launcher died). Its start may be read only now, after the
      // launcher's exit: the exit handler did not know its process group then, and nothing
      // else would end it. Its output has nobody to go to or to pace; acknowledging it keeps
      // the launcher reading should it still run.
      if (message.type === 'started' && message.pid !== undefined) killGroup(message.pid);
      if (message.type === 'output') this.acknowledge(message.runId);
      return;
    }
    switch (message.type) {
      case 'started':
        run.pid = message.pid;
        run.handlers.onStarted(message.at, message.pid);
        break;
      case 'output':
        try {
          run.handlers.onOutput(message.text, message.streams);
        } finally {
          // Even if handling failed: an unacknowledged batch would stall the script for good.
          this.acknowledge(message.runId);
        }
        break;
      case 'exit':
        this.runs.delete(message.runId);
        run.resolve(message.outcome);
        break;
    }
  }
}

/** Ends a script's process group (its scripts are group leaders: see launcher.ts). */
function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
