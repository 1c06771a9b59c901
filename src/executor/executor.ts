/**
 * The executor: claims ready tracks, has the launcher run them, records their results,
 * and keeps at most `workers` scripts running. It is woken after every commit of this
 * process that may have made a track ready, by hints from other processes (hinted(): on
 * PostgreSQL, store/work-listener.ts), and by a poll, the fallback.
 *
 * Liveness (SPEC rules 10, 11; store/worker-registry.ts): the executor registers a row and
 * renews its heartbeat every HEARTBEAT_INTERVAL_MS. At start-up it settles what executors
 * that are gone left RUNNING (on this host: a dead pid). On PostgreSQL every executor also
 * sweeps, at the same interval: the rows of executors whose heartbeat is older than
 * LEASE_MS (default three intervals) are deleted and their RUNNING tracks failed. A dead
 * worker's tracks are therefore settled at most LEASE_MS + HEARTBEAT_INTERVAL_MS after its
 * last heartbeat (four intervals by default), plus the time the sweep itself takes, while
 * any executor lives; there is no leader. A worker that was only frozen, and finds at its
 * next heartbeat that its row is gone, kills its scripts (their results would be
 * discarded: completeTrack fences by attempt and owner) and registers again under a new id.
 *
 * Retries (SPEC rule 13): a failed attempt with retries left is PENDING again at once, with
 * a time before which no claim takes it (store/executions.ts), so it holds no worker while
 * it waits. The executor that recorded the failure sets a timer for that time; every
 * executor's poll finds it too (a busy one leaves it to the others).
 *
 * On SQLite one process runs everything: a second one is refused at start-up.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Event } from '../generated/prisma/client.ts';
import { TrackState } from '../engine/states.ts';
import { inputEnvironment } from '../engine/template.ts';
import type { ParamValue } from '../engine/inputs.ts';
import {
  claimTracks,
  completeTrack,
  heldAttempts,
  settleOrphans,
  STOPPED_REASON,
  WORKER_LOST_REASON,
  type ClaimedTrack,
} from '../store/executions.ts';
import {
  listExecutors,
  processAlive,
  registerExecutor,
  removeDeadExecutors,
  renewHeartbeat,
  THIS_PROCESS,
  unregisterExecutor,
  type ExecutorRow,
} from '../store/worker-registry.ts';
import { releaseStalledQueues } from '../store/concurrency.ts';
import { CANCEL_HINT, type Store } from '../store/transaction.ts';
import type { Logger } from '../logger.ts';
import type { ExecutorObserver } from '../metrics.ts';
import { Launcher, type LauncherEntry } from './launcher-client.ts';
import { secretsOf } from '../engine/secrets.ts';
import type { OutputChunkData } from '../engine/output-window.ts';
import { OUTPUT_FILE_NAME, outputsOf } from '../engine/outputs.ts';
import { OutputRecorder } from './output-recorder.ts';
import { attemptWorkDir } from './work-dirs.ts';
import type { ScriptUser } from './script-user.ts';
import { nowMs } from './clock.ts';
import type { ScriptOutcome } from './run-script.ts';

export interface ExecutorOptions {
  workers: number;
  outputLimitBytes: number;
  workDir: string;
  /** How often to look for work made ready elsewhere when no hint came (default 1 s). */
  pollMs?: number;
  /** How often to heartbeat and, on PostgreSQL, sweep for dead workers (default 5 s). */
  heartbeatMs?: number;
  /** An executor whose heartbeat is older than this is dead (default three heartbeats). */
  leaseMs?: number;
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

/** Why a worker that was taken for dead kills what it still runs. */
const TAKEN_FOR_DEAD = 'this worker was taken for dead and its tracks were settled by another one';

/** Another process uses the SQLite database (SPEC rule 11: one process on SQLite). */
export class DatabaseInUseError extends Error {
  override name = 'DatabaseInUseError';
}

export class Executor {
  private executorId = randomUUID();
  private readonly launcher: Launcher;
  /** By "trackId:attempt": a cancelled attempt may still be dying while the next one runs. */
  private readonly running = new Map<string, RunningTrack>();
  /** When the last attempt this executor ran ended (performance.now()); see ranWithin. */
  private lastEndedAt = Number.NEGATIVE_INFINITY;
  /** Output of attempts that ended, until their result (with the last lines) is committed. */
  private readonly ending = new Map<string, OutputRecorder>();
  private readonly readyAt = new Map<number, { at: number; immediate: boolean }>();
  private readonly latencies: Array<{ ms: number; immediate: boolean }> = [];
  /** Slots promised to claims in flight, so two claims never overfill the workers. */
  private reserved = 0;
  private pumping = false;
  private pumpAgain = false;
  /**
   * A wake-up found every free slot reserved by a result being recorded (whose own claim
   * may have looked before the new work committed): pump once that reservation is released.
   */
  private wakeWhenFreed = false;
  private stopped = true;
  private pollTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private beating = false;
  private sweeping = false;
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Wake-ups at the end of retry delays. */
  private readonly retryTimers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly store: Store,
    private readonly options: ExecutorOptions,
    private readonly log: Logger,
  ) {
    this.launcher = new Launcher(options.launcher);
  }

  /** The id of its row in `executor`; a new one after it registered again (see rejoin). */
  get id(): string {
    return this.executorId;
  }

  private get heartbeatMs(): number {
    return this.options.heartbeatMs ?? 5000;
  }

  private get leaseMs(): number {
    return this.options.leaseMs ?? 3 * this.heartbeatMs;
  }

  /** Whether other processes may share the database (PostgreSQL), so that this one sweeps. */
  private get shared(): boolean {
    return this.store.fast.provider === 'postgres';
  }

  /**
   * Registers, settles what dead executors left, and starts dispatching.
   * @throws DatabaseInUseError on SQLite when another live process uses the database.
   */
  async start(): Promise<void> {
    // From the moment its row exists, other workers expect its heartbeats: the launcher's
    // spawn comes first, since on a busy machine it can outlast a short lease, and the
    // heartbeats start before leftovers are settled.
    await this.launcher.start();
    try {
      await this.register();
    } catch (error) {
      await this.launcher.close();
      throw error;
    }
    this.stopped = false;
    this.heartbeatTimer = setInterval(() => this.track(this.beat()), this.heartbeatMs);
    this.store.commitListeners.push((events) => this.onCommit(events));
    await this.settleLeftovers();
    this.pollTimer = setInterval(() => this.wake(), this.options.pollMs ?? 1000);
    if (this.shared) this.sweepTimer = setInterval(() => this.track(this.sweep()), this.heartbeatMs);
    this.wake();
  }

  /**
   * A hint from another process (PostgreSQL NOTIFY): work may be ready, or a track was
   * cancelled (the one running it kills it).
   */
  hinted(payload: string): void {
    if (this.stopped) return;
    if (payload === CANCEL_HINT) this.track(this.dropLostRuns());
    else this.wake();
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
    clearInterval(this.sweepTimer);
    for (const timer of this.retryTimers) clearTimeout(timer);
    this.retryTimers.clear();
    for (const run of this.running.values()) {
      if (run.runId) this.launcher.kill(run.runId, 'the service is shutting down');
    }
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    await this.launcher.close();
    await unregisterExecutor(this.store, this.id).catch(() => undefined);
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

  /**
   * Wakes once a retry's delay is over, when the track may be claimed. A few milliseconds
   * late rather than early: the claim compares the delay's end with its own clock.
   */
  private wakeAt(at: Date): void {
    if (this.stopped) return;
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer);
      this.wake();
    }, Math.max(0, at.getTime() - Date.now()) + 10);
    this.retryTimers.add(timer);
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
   * Whether this executor runs a script now or ended one in the last `ms`. A run of short
   * steps has no script running for a moment between one step and the next (its successors
   * are being claimed), and is busy all the same.
   */
  ranWithin(ms: number): boolean {
    return this.running.size > 0 || performance.now() - this.lastEndedAt < ms;
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
      if (event.type === 'track:retrying') {
        // Ready only once its delay is over (see wakeAt): not a dispatch latency sample.
        this.readyAt.delete(event.trackId);
        ready = true;
      } else if (event.trackState === TrackState.PENDING || event.type === 'track:input') {
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
          if (want <= 0) {
            if (this.reserved > 0) this.wakeWhenFreed = true;
            break;
          }
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
    const cwd = attemptWorkDir(this.options.workDir, claimed.pipelineId, claimed.id, claimed.attempt);
    const outputFile = path.join(cwd, OUTPUT_FILE_NAME);
    const user = this.options.scriptUser;
    const { runId, done } = this.launcher.run(
      {
        script: claimed.script,
        cwd,
        outputFile,
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
          DAGPIPE_OUTPUT: outputFile,
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
    this.lastEndedAt = performance.now();
    const want = Math.max(0, this.freeSlots());
    this.reserved += want;
    try {
      // SPEC rule 18: an attempt that exited 0 succeeds only if its outputs can be kept.
      const exitedZero = outcome.exitCode === 0 && !outcome.timedOut && outcome.killedBecause === null;
      const outputs = exitedZero ? outputsOf(outcome.outputFile ?? { text: '' }) : undefined;
      const result = {
        succeeded: outputs?.ok === true,
        exitCode: outcome.exitCode,
        reason: outputs !== undefined && !outputs.ok ? outputs.reason : failureReason(outcome, claimed.timeoutSeconds),
        output: output.toString(),
        outputChunks,
        ...(outputs?.ok && { outputs: outputs.outputs }),
      };
      this.options.observer?.finished(outcome.durationMs / 1000, result.succeeded ? 'succeeded' : 'failed');
      const next = await this.withRetries(`recording the result of track ${claimed.id}`, () =>
        completeTrack(this.store, claimed, result, { executorId: this.id, limit: want }),
      );
      const fields = { exitCode: outcome.exitCode, durationMs: Math.round(outcome.durationMs), reason: result.reason ?? undefined, recorded: next.outcome };
      if (next.discarded === 'superseded') {
        this.trackLog(claimed).warn(
          { ...fields, succeeded: result.succeeded },
          'result discarded: the track was settled without it (this worker was taken for dead) or has moved on to another attempt',
        );
      } else if (next.discarded === 'deleted') {
        this.trackLog(claimed).info(fields, 'result discarded: the pipeline was deleted while the script was ending');
      } else if (next.retryAt) {
        this.trackLog(claimed).warn({ ...fields, retryAt: next.retryAt.toISOString() }, 'track attempt failed; it will be retried');
      } else {
        this.trackLog(claimed)[result.succeeded ? 'info' : 'warn'](fields, result.succeeded ? 'track succeeded' : 'track failed');
      }
      if (next.retryAt) this.retried(next.retryAt);
      for (const track of next.claimed) this.launch(track);
      // Fewer than asked means nothing else is ready now; a later commit or the poll wakes us.
      if (next.claimed.length === want && want > 0) this.pumpAgain = true;
    } catch (error) {
      this.pumpAgain = true;
      throw error;
    } finally {
      this.ending.delete(key);
      this.reserved -= want;
      if (this.pumpAgain || this.wakeWhenFreed) {
        this.wakeWhenFreed = false;
        this.wake();
      }
    }
  }

  /** A failed attempt was put back for a retry at `at`: count it, and claim it then. */
  private retried(at: Date): void {
    this.options.observer?.retried();
    this.wakeAt(at);
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

  /**
   * Registers this executor. On SQLite, refuses to run beside another live process: same
   * host, its pid alive and its heartbeat fresh; another host, a fresh heartbeat. (A pid
   * alive with a stale heartbeat is taken for a reused pid: a crash must never block the
   * restart.) Both of two processes starting at once see each other, and both refuse.
   */
  private async register(): Promise<void> {
    await registerExecutor(this.store, this.id);
    if (this.shared) return;
    const now = Date.now();
    const other = (await listExecutors(this.store)).find(
      (e) =>
        e.id !== this.id &&
        now - e.heartbeatAt.getTime() < this.leaseMs &&
        (e.host !== THIS_PROCESS.host || (e.pid !== THIS_PROCESS.pid && processAlive(e.pid))),
    );
    if (other === undefined) return;
    await unregisterExecutor(this.store, this.id);
    throw new DatabaseInUseError(
      `Another dagpipe process (pid ${other.pid} on ${other.host}, last heartbeat ${Math.round((now - other.heartbeatAt.getTime()) / 1000)} s ago) uses this SQLite database. ` +
        'SQLite serves one process, which runs everything (ROLE=all): stop the other process first. ' +
        'To run several processes (API and workers), use PostgreSQL and Redis: DATABASE_URL=postgresql://... and REDIS_URL=redis://... (docs/deploy.md).',
    );
  }

  /**
   * At start-up: fails the tracks that executors which are gone left RUNNING (SPEC rule 10).
   * Gone: on this host, a dead pid, or this very pid under another id (an earlier
   * incarnation: a restarted container reuses pids); on PostgreSQL also a stale heartbeat;
   * on SQLite every other one (a live one made register() refuse).
   */
  private async settleLeftovers(): Promise<void> {
    const others = (await listExecutors(this.store)).filter((e) => e.id !== this.id);
    const stoppedHere = others.filter(
      (e) => !this.shared || (e.host === THIS_PROCESS.host && (e.pid === THIS_PROCESS.pid || !processAlive(e.pid))),
    );
    const stopped = new Set(stoppedHere.map((e) => e.id));
    const removed = await removeDeadExecutors(this.store, {
      except: this.id,
      ids: [...stopped],
      ...(this.shared && { leaseMs: this.leaseMs }),
    });
    const lost = new Set(removed.filter((e) => !stopped.has(e.id)).map((e) => e.id));
    if (lost.size > 0) this.logDead(removed.filter((e) => lost.has(e.id)));
    const failed = await settleOrphans(
      this.store,
      (owner) => (owner !== null && lost.has(owner) ? WORKER_LOST_REASON : STOPPED_REASON),
      (at) => this.retried(at),
    );
    if (failed > 0) this.log.warn({ failed }, 'failed tracks left running by a stopped executor');
  }

  /** Renews the heartbeat; rejoins if this worker was taken for dead; drops runs it no longer holds. */
  private async beat(): Promise<void> {
    if (this.beating || this.stopped) return;
    this.beating = true;
    try {
      const registered = await renewHeartbeat(this.store, this.id);
      if (this.stopped) return;
      if (!registered) await this.rejoin();
      await this.dropLostRuns();
    } catch (error) {
      this.log.warn({ err: error }, 'the heartbeat could not be written; trying again at the next interval');
    } finally {
      this.beating = false;
    }
  }

  /**
   * This worker's row is gone: another executor took it for dead (no heartbeat for a lease:
   * it was frozen, or could not reach the database) and settled its running tracks. What
   * it still runs would be discarded: kill it, and register again to take new work.
   */
  private async rejoin(): Promise<void> {
    const runs = [...this.running.values()];
    this.log.warn(
      { executorId: this.id, running: runs.length, leaseMs: this.leaseMs },
      'this worker was taken for dead (no heartbeat for longer than LEASE_MS) and another one settled its running tracks: killing their scripts, whose results would be discarded, and registering again',
    );
    for (const run of runs) if (run.runId) this.launcher.kill(run.runId, TAKEN_FOR_DEAD);
    const id = randomUUID();
    await registerExecutor(this.store, id);
    this.executorId = id;
    this.log.info({ executorId: id }, 'registered again');
    this.wake();
  }

  /**
   * Kills the scripts of attempts this executor no longer holds in the database: cancelled
   * by another process, or settled by a sweep. (Cancels committed in this process are
   * killed at once, in onCommit.)
   */
  private async dropLostRuns(): Promise<void> {
    // Only runs whose claim committed before the query: those launched later are held.
    const runs = [...this.running.entries()].filter(([, run]) => run.runId !== undefined);
    if (runs.length === 0) return;
    try {
      const held = await heldAttempts(this.store, this.id);
      for (const [key, run] of runs) {
        if (!held.has(key) && this.running.get(key) === run) {
          this.launcher.kill(run.runId!, 'the track is no longer running on this worker (cancelled, or settled by another one)');
        }
      }
    } catch (error) {
      this.log.warn({ err: error }, 'could not check which running tracks are still this worker\'s; trying again at the next heartbeat');
    }
  }

  /**
   * PostgreSQL: deletes the rows of executors whose heartbeat is older than the lease
   * (SKIP LOCKED: sweepers never wait for each other) and fails the tracks they, or any
   * executor without a row, left RUNNING: each a short transaction of its own. Then starts
   * queued pipelines a race left waiting with a free slot (releaseStalledQueues).
   */
  private async sweep(): Promise<void> {
    if (this.sweeping || this.stopped) return;
    this.sweeping = true;
    try {
      const dead = await removeDeadExecutors(this.store, { except: this.id, leaseMs: this.leaseMs });
      if (dead.length > 0) this.logDead(dead);
      const failed = await settleOrphans(this.store, () => WORKER_LOST_REASON, (at) => this.retried(at));
      if (failed > 0) this.log.warn({ failed }, 'failed the running tracks of workers taken for dead');
      const released = await releaseStalledQueues(this.store);
      if (released.length > 0) this.log.info({ pipelines: released }, 'started queued pipelines that a race had left waiting with a free slot');
    } catch (error) {
      this.log.warn({ err: error }, 'sweeping for dead workers failed; trying again at the next interval');
    } finally {
      this.sweeping = false;
    }
  }

  private logDead(dead: readonly ExecutorRow[]): void {
    this.log.warn(
      { workers: dead.map((e) => ({ id: e.id, host: e.host, pid: e.pid })), leaseMs: this.leaseMs },
      'workers taken for dead (no heartbeat for longer than LEASE_MS); settling their running tracks',
    );
  }
}

function runKey(trackId: number, attempt: number): string {
  return `${trackId}:${attempt}`;
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
