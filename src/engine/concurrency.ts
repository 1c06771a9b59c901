/**
 * Concurrency limits (SPEC rule 14) as pure functions. A graph may set
 * maxConcurrentPipelines: a start, or a retry, beyond it leaves the pipeline QUEUED with its
 * tracks WAITING; queued pipelines start in the order they were queued as running ones end
 * (or as the limit is raised). The store decides with these inside the transaction that
 * starts, ends or re-limits a pipeline, holding the graph's row lock, so that processes
 * starting and ending the same graph's pipelines at once agree on the count.
 */
import { ValidationError } from '../errors.ts';

/** The largest maxConcurrentPipelines a graph may set (beyond it, leave it unset). */
export const MAX_CONCURRENT_PIPELINES = 10_000;

/** A graph's maxConcurrentPipelines: null (no limit) or a whole number from 1. */
export function requireConcurrencyLimit(field: string, limit: number | null): number | null {
  if (limit === null) return null;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_CONCURRENT_PIPELINES) {
    throw new ValidationError(
      field,
      `${field} must be a whole number from 1 to ${MAX_CONCURRENT_PIPELINES} (how many pipelines of the graph may run at once), or null for no limit; got ${limit}.`,
    );
  }
  return limit;
}

/** What a graph's pipelines look like to a start or a release. */
export interface GraphLoad {
  /** maxConcurrentPipelines; null: no limit. */
  limit: number | null;
  running: number;
  queued: number;
}

/**
 * Whether a start (or a retry) has to queue: the graph is at its limit, or others are queued
 * already (they go first: a new start never overtakes the queue).
 */
export function mustQueue({ limit, running, queued }: GraphLoad): boolean {
  return limit !== null && (running >= limit || queued > 0);
}

/** How many queued pipelines may start now, oldest first. */
export function releasable({ limit, running, queued }: GraphLoad): number {
  if (limit === null) return queued;
  return Math.max(0, Math.min(queued, limit - running));
}

/** Why a pipeline is QUEUED, for Pipeline.blockedBy. */
export interface QueuedReason {
  kind: 'CONCURRENCY_LIMIT' | 'SCHEDULE_OVERLAP';
  message: string;
  /** The graph's maxConcurrentPipelines now (null if it was removed meanwhile). */
  limit: number | null;
  /** The graph's pipelines running now. */
  running: number;
  /** Queued pipelines of the graph that start before this one. */
  ahead: number;
}

export function queuedReason(graphName: string, load: { limit: number | null; running: number; ahead: number }): QueuedReason {
  const { limit, running, ahead } = load;
  const behind = ahead === 0 ? 'It is next in the queue.' : `${ahead} queued pipeline${ahead === 1 ? '' : 's'} of the graph start${ahead === 1 ? 's' : ''} before it.`;
  const message =
    limit === null
      ? `Graph "${graphName}" no longer has a concurrency limit; this pipeline starts at once. ${behind}`
      : `Graph "${graphName}" runs at most ${limit} pipeline${limit === 1 ? '' : 's'} at once (maxConcurrentPipelines) and ${running} ${running === 1 ? 'is' : 'are'} running. ${behind} It starts when a running one ends; cancelPipeline removes it from the queue.`;
  return { kind: 'CONCURRENCY_LIMIT', message, limit, running, ahead };
}

/**
 * A pipeline a schedule with overlap QUEUE (SPEC rule 16) queued behind its previous run,
 * which still runs.
 */
export function behindScheduleReason(scheduleName: string, previous: { id: number }, load: { limit: number | null; running: number; ahead: number }): QueuedReason {
  return {
    kind: 'SCHEDULE_OVERLAP',
    message: `Schedule "${scheduleName}" runs one pipeline at a time (overlap QUEUE) and its pipeline ${previous.id} is still RUNNING; this one starts when that one ends. cancelPipeline removes it from the queue.`,
    ...load,
  };
}
