/**
 * Runs one rendered script: `bash --noprofile --norc -eo pipefail -c <script>` in its own
 * process group and working directory, reporting its output in whole lines as they
 * arrive. On timeout or kill the whole group gets SIGTERM, then SIGKILL after a grace
 * period; when the script ends, anything it left behind in its group is killed too, so no
 * step outlives itself. Reading its output can be paused (flow control): the script then
 * blocks on its writes.
 */
import { chownSync, mkdirSync } from 'node:fs';
import { execa } from 'execa';
import type { OutputFile } from '../engine/outputs.ts';
import { nowMs } from './clock.ts';
import { createOutputFile, readOutputFile } from './output-file.ts';

export const BASH_ARGS = ['--noprofile', '--norc', '-eo', 'pipefail', '-c'] as const;

export interface ScriptSpec {
  script: string;
  cwd: string;
  env: Record<string, string>;
  timeoutMs: number;
  /** Between SIGTERM and SIGKILL when the group is stopped. */
  killGraceMs?: number;
  /** Run as this user (the service runs as root); the working directory becomes theirs. */
  user?: { uid: number; gid: number };
  /**
   * The step's output file ($DAGPIPE_OUTPUT, SPEC rule 18): created empty for the script
   * before it starts, read once it exited 0 (see output-file.ts).
   */
  outputFile?: string;
}

export interface ScriptOutcome {
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  /** Set when the script was stopped on request (cancel); the reason given. */
  killedBecause: string | null;
  /** Set when bash could not be started at all. */
  spawnError: string | null;
  durationMs: number;
  /** What the script left in its output file, when it has one and exited 0 on its own. */
  outputFile?: OutputFile;
}

export interface RunningScript {
  /** Epoch milliseconds (sub-millisecond precision) when the process was spawned. */
  readonly startedAt: number;
  readonly pid: number | undefined;
  readonly done: Promise<ScriptOutcome>;
  kill(reason: string): void;
  /**
   * Stops reading the script's stdout and stderr (flow control): once the pipes fill, its
   * writes block, so a script printing faster than its output can be handled waits
   * instead of growing anyone's memory. `resume` reads on, in order.
   */
  pause(): void;
  resume(): void;
}

/**
 * Receives a script's output as it arrives, in whole lines: `text` is `lines` lines, each
 * with its newline (a carriage return before it removed).
 */
export type OutputSink = (stream: 'stdout' | 'stderr', text: string, lines: number) => void;

/** Longest line passed on in one piece; a longer one (a binary dump, say) is cut into pieces. */
export const MAX_LINE_LENGTH = 64 * 1024;

/**
 * Splits a stream into lines as chunks arrive, holding at most one partial line of at
 * most MAX_LINE_LENGTH characters: a script printing one endless line cannot grow memory.
 * The complete lines of a chunk are passed on together as one text, never as a string per
 * line: two million lines would be two million strings to make, send and collect.
 */
export class LineSplitter {
  private partial = '';

  constructor(private readonly emit: (text: string, lines: number) => void) {}

  push(chunk: string): void {
    let text = this.partial + chunk;
    const last = text.lastIndexOf('\n');
    if (last !== -1) {
      this.emitLines(text.slice(0, last + 1));
      text = text.slice(last + 1);
    }
    while (text.length >= MAX_LINE_LENGTH) {
      this.emit(`${text.slice(0, MAX_LINE_LENGTH)}\n`, 1);
      text = text.slice(MAX_LINE_LENGTH);
    }
    this.partial = text;
  }

  end(): void {
    if (this.partial !== '') this.emit(`${this.partial}\n`, 1);
    this.partial = '';
  }

  /** Passes on whole lines, cutting any longer than MAX_LINE_LENGTH (rare: the slow path). */
  private emitLines(text: string): void {
    if (text.includes('\r\n')) text = text.replaceAll('\r\n', '\n');
    let lines = 0;
    let tooLong = false;
    for (let start = 0; start < text.length; lines++) {
      const newline = text.indexOf('\n', start);
      if (newline - start > MAX_LINE_LENGTH) tooLong = true;
      start = newline + 1;
    }
    if (!tooLong) {
      this.emit(text, lines);
      return;
    }
    const pieces: string[] = [];
    for (const line of text.slice(0, -1).split('\n')) {
      for (let start = 0; start < line.length || start === 0; start += MAX_LINE_LENGTH) {
        pieces.push(line.slice(start, start + MAX_LINE_LENGTH));
        if (line.length === 0) break;
      }
    }
    this.emit(`${pieces.join('\n')}\n`, pieces.length);
  }
}

function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

export async function startScript(spec: ScriptSpec, onOutput: OutputSink): Promise<RunningScript> {
  // Synchronous on purpose: one mkdir syscall is far cheaper than a thread-pool round trip
  // through a launcher event loop that is busy forking the other scripts.
  mkdirSync(spec.cwd, { recursive: true });
  if (spec.user) chownSync(spec.cwd, spec.user.uid, spec.user.gid);
  if (spec.outputFile !== undefined) createOutputFile(spec.outputFile, spec.user);
  const startedAt = nowMs();
  const subprocess = execa('bash', [...BASH_ARGS, spec.script], {
    cwd: spec.cwd,
    env: spec.env,
    extendEnv: false,
    detached: true, // own process group, so the whole tree can be signalled
    ...(spec.user && { uid: spec.user.uid, gid: spec.user.gid }),
    stdin: 'ignore',
    buffer: false,
    reject: false,
    stripFinalNewline: false,
  });
  for (const stream of ['stdout', 'stderr'] as const) {
    const lines = new LineSplitter((text, count) => onOutput(stream, text, count));
    subprocess[stream]?.setEncoding('utf8');
    subprocess[stream]?.on('data', (chunk: string) => lines.push(chunk));
    subprocess[stream]?.on('end', () => lines.end());
  }
  const pid = subprocess.pid;
  let timedOut = false;
  let killedBecause: string | null = null;
  let killTimer: NodeJS.Timeout | undefined;
  const stopGroup = () => {
    signalGroup(pid, 'SIGTERM');
    killTimer ??= setTimeout(() => signalGroup(pid, 'SIGKILL'), spec.killGraceMs ?? 2000);
  };
  const timeout = setTimeout(() => {
    timedOut = true;
    stopGroup();
  }, spec.timeoutMs);
  // bash has exited: whatever it left running in its group would hold our pipes open.
  subprocess.once('exit', () => signalGroup(pid, 'SIGKILL'));

  const done = subprocess.then((result) => {
    clearTimeout(timeout);
    clearTimeout(killTimer);
    const spawnError = pid === undefined ? (result.shortMessage ?? 'bash could not be started') : null;
    const exitCode = result.exitCode ?? null;
    const durationMs = nowMs() - startedAt;
    const exitedZero = exitCode === 0 && !timedOut && killedBecause === null && spawnError === null;
    return {
      exitCode,
      signal: result.signal ?? null,
      timedOut,
      killedBecause,
      spawnError,
      durationMs,
      ...(exitedZero && spec.outputFile !== undefined && { outputFile: readOutputFile(spec.outputFile, spec.user?.uid ?? process.getuid?.()) }),
    };
  });
  return {
    startedAt,
    pid,
    done,
    kill(reason) {
      killedBecause ??= reason;
      stopGroup();
    },
    pause() {
      subprocess.stdout?.pause();
      subprocess.stderr?.pause();
    },
    resume() {
      subprocess.stdout?.resume();
      subprocess.stderr?.resume();
    },
  };
}
