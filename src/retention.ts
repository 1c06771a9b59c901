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
 * tracks too), the event loop gets a turn between batches, and the job stops between
 * batches when the process stops. On PostgreSQL several workers may run it at once: a batch
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
import { setImmediate as turn } from 'node:timers/promises';
import type { Retention } from './config.ts';
import { pipelineIdOfWorkDir, pipelineWorkDir } from './executor/work-dirs.ts';
import type { Logger } from './logger.ts';
import type { DeletionObserver } from './metrics.ts';
import { deletedPipelineIds, deleteEndedPipeline, deleteExpiredBatch, type DeletedPipeline, type ExpiredBatch } from './store/retention.ts';
import type { Store } from './store/transaction.ts';

const DAY_MS = 24 * 60 * 60 * 1000;

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
   * Removes the working directories of pipelines deleted elsewhere (or whose removal failed
   * before): those in WORK_DIR whose pipeline no longer exists. Returns how many went.
   */
  async sweepWorkDirs(): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.workDir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0; // nothing ran here yet
      throw error;
    }
    const ids = names.map(pipelineIdOfWorkDir).filter((id) => id !== undefined);
    const gone = await deletedPipelineIds(this.store, ids);
    return this.removeWorkDirs(gone);
  }

  private async deleted(ids: readonly number[], by: 'retention' | 'admin'): Promise<void> {
    if (ids.length === 0) return;
    this.observer?.pipelinesDeleted(by, ids.length);
    await this.removeWorkDirs(ids);
  }

  /** One at a time: a large tree keeps one thread of libuv's pool busy, not all of them. */
  private async removeWorkDirs(ids: readonly number[]): Promise<number> {
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
}

export class RetentionJob {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<RetentionRun> | undefined;
  private stopping = false;

  constructor(
    private readonly deletions: PipelineDeletions,
    private readonly options: Retention,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.stopping = false;
    this.schedule(this.options.intervalMs);
  }

  /** Stops after the batch in flight, if any. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
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
    const outcome: RetentionRun = { deleted: 0, batches: 0, swept: 0, ms: 0 };
    const { days, batchSize } = this.options;
    try {
      if (days > 0) {
        const batch: ExpiredBatch = { finishedBefore: new Date(Date.now() - days * DAY_MS), limit: batchSize, retentionDays: days };
        while (!this.stopping) {
          const ids = await this.deletions.deleteExpired(batch);
          if (ids.length === 0) break;
          outcome.deleted += ids.length;
          outcome.batches++;
          this.log.debug({ pipelineIds: ids }, 'retention deleted a batch of pipelines');
          // The executor's work (and the API's) goes first between two batches.
          await turn();
        }
      }
      if (!this.stopping) outcome.swept = await this.deletions.sweepWorkDirs();
    } catch (error) {
      this.log.warn({ err: error, deleted: outcome.deleted }, 'retention failed; the next run tries again');
    }
    outcome.ms = performance.now() - started;
    if (outcome.deleted > 0 || outcome.swept > 0) {
      this.log.info(
        { deleted: outcome.deleted, batches: outcome.batches, swept: outcome.swept, ms: Math.round(outcome.ms), retentionDays: days },
        'retention deleted pipelines that ended more than RETENTION_DAYS ago',
      );
    }
    return outcome;
  }
}
