/**
 * Deleting ended pipelines (SPEC rule 17): the one way they are deleted, and retention.
 *
 * {@link PipelineDeletions} deletes (the SQL is in store/retention.ts: one transaction per
 * deletion or batch, subscribers told after the commit), then removes this process's working
 * directories of what it deleted and counts it (dagpipe_pipelines_deleted_total). An admin's
 * deletePipeline and retention both go through it.
 *
 * {@link RetentionJob} runs in every process that runs scripts (ROLE=all and worker), beside
 * the executor: every RETENTION_INTERVAL_SECONDS (the first time one interval after start-up) it
 * deletes the pipelines that ended more than RETENTION_DAYS ago, in batches of
 * RETENTION_BATCH_SIZE until none is left, then sweeps its WORK_DIR. It never stalls the
 * executor: each batch is a short transaction of its own (a few statements, capped in
 * tracks too), and the job stops between batches when the process stops. While this
 * process runs scripts (or ran one in the last {@link BUSY_AFTER_SCRIPT_MS}), the job also
 * keeps to one part in RETENTION_PACE (default 40) of the time: after a
 * batch it rests thirty-nine times as long as the batch cost (wall time, or CPU where that was
 * more: see batchCost), however long that is (a batch slowed
 * by a loaded machine means a longer rest; a cap would give the job a bigger share exactly
 * when the scripts can spare it least), ending the rest early once they no longer run. What a batch costs is mostly not its
 * SQL (about 6 ms of CPU for 100 pipelines of 5 tracks on SQLite, where it runs on the event
 * loop) but removing their directories (about 1.5 ms of CPU per pipeline of five attempts,
 * two thirds of it the kernel's), and on a machine whose cores the scripts keep busy, any CPU the job
 * takes is taken from them. With nothing running it goes at full speed, yielding a turn of
 * the event loop between batches. On PostgreSQL several workers may run it at once: a batch
 * locks its pipelines with SKIP LOCKED, so each pipeline is deleted by exactly one of them
 * and none waits for another. With RETENTION_DAYS=0 nothing is deleted for age.
 *
 * Working directories are files on the machine whose worker ran the attempt. The process
 * that deletes a pipeline removes its own at once, after the commit; each worker's sweep
 * removes those of pipelines deleted elsewhere (another worker, or an API process's
 * deletePipeline) and any that could not be removed before. A directory that cannot be
 * removed is a warning, tried again at the next sweep; it never stops the job.
 */
import { readdir, rm } from 'node:fs/promises';
import { setImmediate as turn, setTimeout as sleep } from 'node:timers/promises';
import type { Retention } from './config.ts';
import { pipelineIdOfWorkDir, pipelineWorkDir } from './executor/work-dirs.ts';
import type { Logger } from './logger.ts';
import type { DeletionObserver } from './metrics.ts';
import { deletedPipelineIds, deleteEndedPipeline, deleteExpiredBatch, type DeletedPipeline, type ExpiredBatch } from './store/retention.ts';
import type { Store } from './store/transaction.ts';

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The process counts as running scripts (and the job keeps to its RETENTION_PACE) while one runs, and
 * for this long after the last one ended: the gap between a step and the next is shorter.
 */
export const BUSY_AFTER_SCRIPT_MS = 2000;

/** When a batch started: wall clock and this process's CPU. */
interface BatchClock {
  wallMs: number;
  cpu: NodeJS.CpuUsage;
}

const batchClock = (): BatchClock => ({ wallMs: performance.now(), cpu: process.cpuUsage() });

/**
 * What a batch cost, in milliseconds: the larger of its wall time and the CPU this process
 * used meanwhile. Removing a directory tree (fs.rm) works on several of libuv's threads at
 * once, so a batch can take two or three times its wall time in CPU, and pacing by wall time
 * alone let the job take a fifth of the CPU instead of a twentieth (RETENTION_PACE 20). The CPU of whatever else
 * ran meanwhile (the executor) is counted too: the rest errs on the long side.
 */
function batchCost(started: BatchClock): number {
  const cpu = process.cpuUsage(started.cpu);
  return Math.max(performance.now() - started.wallMs, (cpu.user + cpu.system) / 1000);
}

/** How often a rest looks whether scripts still run. */
const REST_CHECK_MS = 500;

export class PipelineDeletions {
  constructor(
    private readonly store: Store,
    private readonly workDir: string,
    private readonly log: Logger,
    private readonly observer?: DeletionObserver,
  ) {}

  /** deletePipeline (role admin): one ended pipeline; a typed error naming `id` otherwise. */
  async deletePipeline(pipelineId: number): Promise<DeletedPipeline> {
    const deleted = await deleteEndedPipeline(this.store, pipelineId);
    // Its journal went with it: the log keeps that it was deleted, beside its events' lines.
    this.log.info({ pipelineId, state: deleted.state, by: 'admin' }, 'pipeline deleted');
    await this.deleted([deleted.id], 'admin');
    return deleted;
  }

  /** One batch of retention; the ids deleted. */
  async deleteExpired(batch: ExpiredBatch): Promise<number[]> {
    const ids = await deleteExpiredBatch(this.store, batch);
    await this.deleted(ids, 'retention');
    return ids;
  }

  /**
   * The pipelines of working directories in WORK_DIR that no longer exist: deleted
   * elsewhere, or whose directory could not be removed before. See removeWorkDirs.
   */
  async leftoverWorkDirs(): Promise<number[]> {
    let names: string[];
    try {
      names = await readdir(this.workDir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []; // nothing ran here yet
      throw error;
    }
    return deletedPipelineIds(this.store, names.map(pipelineIdOfWorkDir).filter((id) => id !== undefined));
  }

  private async deleted(ids: readonly number[], by: 'retention' | 'admin'): Promise<void> {
    if (ids.length === 0) return;
    this.observer?.pipelinesDeleted(by, ids.length);
    await this.removeWorkDirs(ids);
  }

  /**
   * Removes these deleted pipelines' working directories; returns how many went. One at a
   * time, asynchronously: the event loop only hands the calls on, and a large tree keeps one
   * thread of libuv's pool busy, not all of them.
   */
  async removeWorkDirs(ids: readonly number[]): Promise<number> {
    let removed = 0;
    for (const id of ids) {
      const dir = pipelineWorkDir(this.workDir, id);
      try {
        await rm(dir, { recursive: true, force: true });
        removed++;
      } catch (error) {
        this.log.warn({ err: error, pipelineId: id, dir }, 'could not remove the working directory of a deleted pipeline; the next retention run tries again');
      }
    }
    return removed;
  }
}

/** What one run of the job did. */
export interface RetentionRun {
  deleted: number;
  batches: number;
  /** Working directories the sweep removed (of pipelines deleted elsewhere, or earlier). */
  swept: number;
  ms: number;
  /** What its batches cost (of deletion, and of the sweep): wall time, or CPU where that was more (batchCost). */
  workedMs: number;
  /** Of `ms`, the time it rested between batches because scripts were running. */
  restedMs: number;
}

export class RetentionJob {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<RetentionRun> | undefined;
  private stopping = false;
  /** Ends a rest at once when the process stops. */
  private wake = new AbortController();

  /** `busy`: whether this process runs scripts now (the job then keeps to its RETENTION_PACE). */
  constructor(
    private readonly deletions: PipelineDeletions,
    private readonly options: Retention,
    private readonly log: Logger,
    private readonly busy: () => boolean = () => false,
  ) {}

  start(): void {
    this.stopping = false;
    this.wake = new AbortController();
    this.schedule(this.options.intervalMs);
  }

  /** Stops after the batch in flight, if any. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    this.wake.abort();
    await this.running;
  }

  /**
   * One run now: every expired pipeline, in batches, then the sweep (the one in flight, if
   * a run is under way). Failures are logged and left to the next run.
   */
  runOnce(): Promise<RetentionRun> {
    this.running ??= this.run().finally(() => (this.running = undefined));
    return this.running;
  }

  private schedule(delayMs: number): void {
    if (this.stopping) return;
    this.timer = setTimeout(() => {
      void this.runOnce().finally(() => this.schedule(this.options.intervalMs));
    }, delayMs);
  }

  private async run(): Promise<RetentionRun> {
    const started = performance.now();
    const outcome: RetentionRun = { deleted: 0, batches: 0, swept: 0, ms: 0, workedMs: 0, restedMs: 0 };
    const { days, batchSize } = this.options;
    try {
      if (days > 0) {
        const batch: ExpiredBatch = { finishedBefore: new Date(Date.now() - days * DAY_MS), limit: batchSize, retentionDays: days };
        while (!this.stopping) {
          const batchStarted = batchClock();
          const ids = await this.deletions.deleteExpired(batch);
          if (ids.length === 0) break;
          outcome.deleted += ids.length;
          outcome.batches++;
          this.log.debug({ pipelineIds: ids }, 'retention deleted a batch of pipelines');
          outcome.restedMs += await this.rest(batchCost(batchStarted), outcome);
        }
      }
      // Directories of pipelines deleted elsewhere, in batches too.
      const leftovers = this.stopping ? [] : await this.deletions.leftoverWorkDirs();
      for (let start = 0; start < leftovers.length && !this.stopping; start += batchSize) {
        const batchStarted = batchClock();
        outcome.swept += await this.deletions.removeWorkDirs(leftovers.slice(start, start + batchSize));
        outcome.restedMs += await this.rest(batchCost(batchStarted), outcome);
      }
    } catch (error) {
      this.log.warn({ err: error, deleted: outcome.deleted }, 'retention failed; the next run tries again');
    }
    outcome.ms = performance.now() - started;
    if (outcome.deleted > 0 || outcome.swept > 0) {
      this.log.info(
        { deleted: outcome.deleted, batches: outcome.batches, swept: outcome.swept, ms: Math.round(outcome.ms), restedMs: Math.round(outcome.restedMs), retentionDays: days },
        'retention: deleted the pipelines that ended more than RETENTION_DAYS ago, and removed working directories of deleted pipelines',
      );
    }
    return outcome;
  }

  /**
   * After a batch that cost `workedMs` (batchCost): while scripts run, rest pace - 1 times as long (the
   * job then takes one part in pace of the time), or until they no longer run; otherwise a turn of the event loop, so that
   * what waits goes first. Returns how long it rested.
   */
  private async rest(workedMs: number, outcome: RetentionRun): Promise<number> {
    outcome.workedMs += workedMs;
    if (!this.busy() || this.options.pace <= 1) {
      await turn();
      return 0;
    }
    const started = performance.now();
    const until = started + workedMs * (this.options.pace - 1);
    // Looked at again now and then: once the scripts have ended, the rest ends too (a long one
    // would otherwise hold the job up in an idle process).
    for (let left = until - started; left > 0 && !this.stopping && this.busy(); left = until - performance.now()) {
      await sleep(Math.min(left, REST_CHECK_MS), undefined, { signal: this.wake.signal }).catch(() => undefined); // aborted: stopping
    }
    return performance.now() - started;
  }
}
