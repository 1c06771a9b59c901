/**
 * The executor: claims ready tracks, has the launcher run them, records their results,
 * and keeps at most `workers` scripts running. It is woken after every commit that may
 * have made a track ready, and also polls, so tracks made ready by another process are
 * picked up too.
 *
 * Liveness: the executor registers itself with a heartbeat. Tracks RUNNING under an
 * executor that is gone (its heartbeat is stale, or it was on this host and its pid is
 * dead) are failed by reconciliation (SPEC rule 10).
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Event } from '../generated/prisma/client.ts';
import { TrackState } from '../engine/states.ts';
import { inputEnvironment } from '../engine/template.ts';
import type { ParamValue } from '../engine/inputs.ts';
import { claimTracks, completeTrack, reconcileOrphans, type ClaimedTrack } from '../store/executions.ts';
import type { Store } from '../store/transaction.ts';
import type { Logger } from '../logger.ts';
import type { ExecutorObserver } from '../metrics.ts';
import { Launcher, type LauncherEntry } from './launcher-client.ts';
import { secretsOf } from '../engine/secrets.ts';
import type { OutputChunkData } from '../engine/output-window.ts';
import { OutputRecorder } from './output-recorder.ts';
import type { ScriptUser } from './script-user.ts';
import { nowMs } from './clock.ts';
import type { ScriptOutcome } from './run-script.ts';

export interface ExecutorOptions {
  workers: number;
  outputLimitBytes: number;
  workDir: string;
  /** How often to look for work made ready elsewhere, and to heartbeat. */
  pollMs?: number;
  heartbeatMs?: number;
  /** Environment variables passed through to scripts (values from the service's env). */
  baseEnv: Record<string, string>;
  /** Told of dispatch latencies and script durations (metrics). */
  observer?: ExecutorObserver;
  /** Who scripts run as, when not the service's own user (see script-user.ts). */
  scriptUser?: ScriptUser;
  /** Another launcher than the one beside this module (the bench runs the built one). */
  launcher?: LauncherEntry;
}

interface RunningTrack {
  claimed: ClaimedTrack;
  output: OutputRecorder;
  runId?: string;
}

export interface Percentiles {
  count: number;
  p50: number;
  p99: number;
}

/**
 * Dispatch latency, in milliseconds: from the commit that made a track ready (for a
 * successor, its predecessor's SUCCEED commit) to its process start. `immediate` counts
 * only tracks claimed in that same commit, i.e. that did not wait for a free worker.
 */
export interface LatencyStats {
  all: Percentiles;
  immediate: Percentiles;
}

const LATENCY_SAMPLES = 100_000;
const RESULT_RETRY_DELAYS_MS = [50, 250, 1000, 5000, 15000];

export class Executor {
  readonly id = randomUUID();
  private readonly launcher: Launcher;
  /** By "trackId:attempt": a cancelled attempt may still be dying while the next one runs. */
  private readonly running = new Map<string, RunningTrack>();
  /** Output of attempts that ended, until their result (with the last lines) is committed. */
  private readonly ending = new Map<string, OutputRecorder>();
  private readonly readyAt = new Map<number, { at: number; immediate: boolean }>();
  private readonly latencies: Array<{ ms: number; immediate: boolean }> = [];
  /** Slots promised to claims in flight, so two claims never overfill the workers. */
  private reserved = 0;
  private pumping = false;
  private pumpAgain = false;
  private stopped = true;
  private pollTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly store: Store,
    private readonly options: ExecutorOptions,
    private readonly log: Logger,
  ) {
    this.launcher = new Launcher(options.launcher);
  }

  /** Registers, reconciles what a dead process left, and starts dispatching. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.launcher.start();
    this.store.commitListeners.push((events) => this.onCommit(events));
    await this.store.db.executor.create({ data: { id: this.id, host: hostname(), pid: process.pid } });
    await this.reconcile();
    this.pollTimer = setInterval(() => this.wake(), this.options.pollMs ?? 1000);
    this.heartbeatTimer = setInterval(() => this.track(this.heartbeat()), this.options.heartbeatMs ?? 5000);
    this.wake();
  }

  /**
   * Stops claiming, kills running scripts and records them as failed (the service is
   * going away, their outcome would be unknown), then unregisters.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.pollTimer);
    clearInterval(this.heartbeatTimer);
    for (const run of this.running.values()) {
      if (run.runId) this.launcher.kill(run.runId, 'the service is shutting down');
    }
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    await this.launcher.close();
    await this.store.db.executor.deleteMany({ where: { id: this.id } }).catch(() => undefined);
  }

  /** Asks for a dispatch pass soon; passes never overlap. */
  wake(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.track(this.pump());
  }

  /** Dispatch latency percentiles in milliseconds, over the most recent samples. */
  latencyStats(): LatencyStats {
    const percentiles = (values: number[]): Percentiles => {
      const sorted = values.sort((a, b) => a - b);
      const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
      return { count: sorted.length, p50: at(0.5), p99: at(0.99) };
    };
    return {
      all: percentiles(this.latencies.map((l) => l.ms)),
      immediate: percentiles(this.latencies.filter((l) => l.immediate).map((l) => l.ms)),
    };
  }

  /** The launcher process, for health checks and tests. */
  get launcherPid(): number | undefined {
    return this.launcher.pid;
  }

  get runningCount(): number {
    return this.running.size;
  }

  /**
   * The lines of a track's running attempt from `offset` on that are not stored yet (see
   * OutputRecorder), or undefined when this executor does not run that attempt.
   */
  unflushedOutput(trackId: number, attempt: number, offset = 0): OutputChunkData[] | undefined {
    const key = runKey(trackId, attempt);
    return (this.running.get(key)?.output ?? this.ending.get(key))?.unflushed(offset);
  }

  /**
   * Everything kept of a track attempt this executor runs (or has just ended), stored or
   * not, from `offset` on; undefined when it does not run that attempt. See OutputRecorder.kept.
   */
  keptOutput(trackId: number, attempt: number, offset = 0): ReturnType<OutputRecorder['kept']> | undefined {
    const key = runKey(trackId, attempt);
    return (this.running.get(key)?.output ?? this.ending.get(key))?.kept(offset);
  }

  /** Log lines about one track attempt carry its ids. */
  private trackLog(claimed: ClaimedTrack): Logger {
    return this.log.child({ pipelineId: claimed.pipelineId, trackId: claimed.id, attempt: claimed.attempt, vertex: claimed.vertexName });
  }

  private track<T>(promise: Promise<T>): void {
    this.inFlight.add(promise);
    promise
      .catch((error: unknown) => this.log.error({ err: error }, 'executor task failed'))
      .finally(() => this.inFlight.delete(promise));
  }

  private onCommit(events: readonly Event[]): void {
    let ready = false;
    const now = nowMs();
    const claimedNow = new Set(events.filter((e) => e.type === 'track:claimed').map((e) => e.trackId));
    for (const event of events) {
      if (event.trackId === null) continue;
      if (event.trackState === TrackState.PENDING || event.type === 'track:input') {
        this.readyAt.set(event.trackId, { at: now, immediate: claimedNow.has(event.trackId) });
        ready = true;
      } else if (event.type === 'track:cancelled') {
        this.readyAt.delete(event.trackId);
        const run = this.running.get(runKey(event.trackId, event.attempt ?? 0));
        if (run?.runId) this.launcher.kill(run.runId, event.reason ?? 'cancelled');
      }
    }
    // Tracks another executor ran never reach onStarted here: keep the map bounded.
    if (this.readyAt.size > LATENCY_SAMPLES) this.readyAt.clear();
    if (ready) this.wake();
  }

  private freeSlots(): number {
    return this.stopped ? 0 : this.options.workers - this.running.size - this.reserved;
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        for (;;) {
          const want = this.freeSlots();
          if (want <= 0) break;
          this.reserved += want;
          let claimed: ClaimedTrack[];
          try {
            claimed = await claimTracks(this.store, { executorId: this.id, limit: want });
            for (const track of claimed) this.launch(track);
          } finally {
            this.reserved -= want;
          }
          if (claimed.length < want) break;
        }
      } while (this.pumpAgain && !this.stopped);
    } finally {
      this.pumping = false;
    }
  }

  private launch(claimed: ClaimedTrack): void {
    const values = JSON.parse(claimed.input) as Record<string, ParamValue>;
    const output = new OutputRecorder(
      this.store,
      claimed.id,
      claimed.attempt,
      this.options.outputLimitBytes,
      secretsOf(claimed.inputs, values),
      this.log,
    );
    const run: RunningTrack = { claimed, output };
    this.running.set(runKey(claimed.id, claimed.attempt), run);
    const log = this.trackLog(claimed);
    const cwd = path.join(this.options.workDir, `pipeline-${claimed.pipelineId}`, `track-${claimed.id}-attempt-${claimed.attempt}`);
    const user = this.options.scriptUser;
    const { runId, done } = this.launcher.run(
      {
        script: claimed.script,
        cwd,
        ...(user && { user: { uid: user.uid, gid: user.gid } }),
        env: {
          ...this.options.baseEnv,
          // A script run as another user gets that user's name, and its working directory as
          // home when the user's own (nobody's /nonexistent) is not there.
          ...(user && { USER: user.name, LOGNAME: user.name, HOME: existsSync(user.home) ? user.home : cwd }),
          ...inputEnvironment(values),
          PIPELINE_ID: String(claimed.pipelineId),
          TRACK_ID: String(claimed.id),
          TRACK_ATTEMPT: String(claimed.attempt),
          VERTEX_NAME: claimed.vertexName,
        },
        timeoutMs: claimed.timeoutSeconds * 1000,
      },
      {
        onStarted: (at, pid) => {
          const ready = this.readyAt.get(claimed.id);
          this.readyAt.delete(claimed.id);
          if (ready !== undefined) {
            if (this.latencies.length >= LATENCY_SAMPLES) this.latencies.shift();
            this.latencies.push({ ms: at - ready.at, immediate: ready.immediate });
            this.options.observer?.dispatched((at - ready.at) / 1000);
          }
          log.info({ pid }, 'track started');
        },
        onOutput: (text, streams) => output.append(text, streams),
      },
    );
    run.runId = runId;
    if (this.stopped) this.launcher.kill(runId, 'the service is shutting down');
    this.track(this.finish(claimed, done, output));
  }

  /** Records the result and, in the same transaction, claims work for the freed worker. */
  private async finish(claimed: ClaimedTrack, done: Promise<ScriptOutcome>, output: OutputRecorder): Promise<void> {
    const outcome = await done;
    const outputChunks = await output.close();
    const key = runKey(claimed.id, claimed.attempt);
    this.ending.set(key, output);
    this.running.delete(key);
    const want = Math.max(0, this.freeSlots());
    this.reserved += want;
    try {
      const result = {
        succeeded: outcome.exitCode === 0 && !outcome.timedOut && outcome.killedBecause === null,
        exitCode: outcome.exitCode,
        reason: failureReason(outcome, claimed.timeoutSeconds),
        output: output.toString(),
        outputChunks,
      };
      this.options.observer?.finished(outcome.durationMs / 1000, result.succeeded ? 'succeeded' : 'failed');
      const next = await this.withRetries(`recording the result of track ${claimed.id}`, () =>
        completeTrack(this.store, claimed, result, { executorId: this.id, limit: want }),
      );
      this.trackLog(claimed)[result.succeeded ? 'info' : 'warn'](
        { exitCode: outcome.exitCode, durationMs: Math.round(outcome.durationMs), reason: result.reason ?? undefined, recorded: next.outcome },
        result.succeeded ? 'track succeeded' : 'track failed',
      );
      for (const track of next.claimed) this.launch(track);
      // Fewer than asked means nothing else is ready now; a later commit or the poll wakes us.
      if (next.claimed.length === want && want > 0) this.pumpAgain = true;
    } catch (error) {
      this.pumpAgain = true;
      throw error;
    } finally {
      this.ending.delete(key);
      this.reserved -= want;
      if (this.pumpAgain) this.wake();
    }
  }

  /**
   * A result that cannot be written (the database busy or briefly unreachable) would leave
   * the track RUNNING under a live executor, which reconciliation never touches: retry.
   */
  private async withRetries<T>(what: string, work: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await work();
      } catch (error) {
        if (attempt >= RESULT_RETRY_DELAYS_MS.length + 1) throw error;
        this.log.warn({ err: error, attempt }, `${what} failed; retrying`);
        await new Promise((resolve) => setTimeout(resolve, RESULT_RETRY_DELAYS_MS[attempt - 1]));
      }
    }
  }

  private async heartbeat(): Promise<void> {
    await this.store.db.executor.upsert({
      where: { id: this.id },
      update: { heartbeatAt: new Date() },
      create: { id: this.id, host: hostname(), pid: process.pid },
    });
    await this.reconcile();
  }

  /** Fails tracks of executors that are gone, and forgets those executors. */
  private async reconcile(): Promise<void> {
    const staleBefore = new Date(Date.now() - 3 * (this.options.heartbeatMs ?? 5000));
    const executors = await this.store.db.executor.findMany();
    // On this host a dead pid settles it at once; our own pid under another id is an
    // earlier incarnation (a restarted container reuses pids).
    const dead = executors.filter(
      (e) =>
        e.id !== this.id &&
        (e.heartbeatAt < staleBefore || (e.host === hostname() && (e.pid === process.pid || !processAlive(e.pid)))),
    );
    const alive = executors.filter((e) => !dead.includes(e)).map((e) => e.id);
    const failed = await reconcileOrphans(this.store, alive);
    if (failed > 0) this.log.warn({ failed }, 'failed tracks left running by a stopped executor');
    if (dead.length > 0) await this.store.db.executor.deleteMany({ where: { id: { in: dead.map((e) => e.id) } } });
  }
}

function runKey(trackId: number, attempt: number): string {
  return `${trackId}:${attempt}`;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The reason stored with a failed track, in the operator's terms; null on success. */
export function failureReason(outcome: ScriptOutcome, timeoutSeconds: number): string | null {
  if (outcome.spawnError) return `The script could not be started: ${outcome.spawnError}`;
  if (outcome.timedOut) return `Timed out after ${timeoutSeconds} s; the whole process group was killed.`;
  if (outcome.killedBecause) return `Stopped: ${outcome.killedBecause}.`;
  if (outcome.exitCode === 0) return null;
  if (outcome.exitCode === null) return `Killed by signal ${outcome.signal ?? 'unknown'}.`;
  return `The script exited with code ${outcome.exitCode}.`;
}
