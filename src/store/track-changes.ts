/** Applies the engine's track changes with as few statements as possible, with their events. */
import { cancellationsAfterFailure, type TrackChange } from '../engine/transitions.ts';
import { PipelineState, TrackState } from '../engine/states.ts';
import { sql, type SqlRunner } from './sql.ts';
import type { SealedGraph } from './dag-cache.ts';
import { advancePipeline, handlerTest, hasHandlers } from './run-conditions.ts';
import type { Journal } from './transaction.ts';

/**
 * What a track's next attempt starts from (a retry, automatic or an operator's): attempt + 1,
 * the previous outcome cleared. That outcome is kept in track_attempt (archiveAttempts).
 */
export const NEXT_ATTEMPT = sql`"attempt" = "attempt" + 1, "exitCode" = NULL, "reason" = NULL, "output" = '', "outputs" = NULL,
  "startedAt" = NULL, "finishedAt" = NULL, "executorId" = NULL`;

/**
 * Copies the current attempt of each of these tracks that is in one of `from` to
 * track_attempt, as it ended, right before the track moves on to its next attempt.
 */
export async function archiveAttempts(runner: SqlRunner, trackIds: readonly number[], from: readonly TrackState[]): Promise<void> {
  await runner.execute(sql`
    INSERT INTO "track_attempt" ("t_id", "attempt", "state", "exitCode", "reason", "startedAt", "finishedAt", "outputs")
    SELECT "id", "attempt", "state", "exitCode", "reason", "startedAt", "finishedAt", "outputs" FROM "track"
    WHERE "id" IN (${trackIds}) AND "state" IN (${from})`);
}

/** Keeps every `IN (...)` list well inside the database's bind-value limit. */
const CHUNK = 5000;

/**
 * Groups changes by (target state, reason) into one UPDATE each. Every update keeps the
 * precondition `state IN from`, so a result committed meanwhile wins. `retry` puts tracks
 * back into play with attempt + 1, their previous outcome archived and cleared, and a fresh
 * budget of automatic retries; otherwise the changes are cancellations.
 */
export async function applyTrackChanges(
  runner: SqlRunner,
  journal: Journal,
  pipelineId: number,
  changes: readonly TrackChange[],
  options: { from: TrackState[]; retry?: boolean },
): Promise<void> {
  const groups = new Map<string, TrackChange[]>();
  for (const change of changes) {
    const key = `${change.to}\u0000${change.reason ?? ''}`;
    groups.set(key, [...(groups.get(key) ?? []), change]);
  }
  const now = new Date();
  for (const group of groups.values()) {
    for (let start = 0; start < group.length; start += CHUNK) {
      const { to, reason = null } = group[0]!;
      const ids = group.slice(start, start + CHUNK).map((c) => c.trackId);
      if (options.retry) await archiveAttempts(runner, ids, options.from);
      const set = options.retry
        ? sql`"state" = ${to}, ${NEXT_ATTEMPT}, "notBefore" = NULL, "retryCount" = 0`
        : sql`"state" = ${to}, "reason" = ${reason}, "finishedAt" = ${to === TrackState.CANCELLED ? now : null}`;
      const updated = await runner.query(sql`
        UPDATE "track" SET ${set}
        WHERE "id" IN (${ids}) AND "state" IN (${options.from})
        RETURNING "id", "attempt", "input" IS NULL AS "needsInput"`);
      for (const track of updated.map((r) => ({ id: Number(r.id), attempt: Number(r.attempt), needsInput: Number(r.needsInput) === 1 })).sort((a, b) => a.id - b.id)) {
        journal.record({
          pipelineId,
          trackId: track.id,
          type: options.retry ? 'track:retried' : 'track:cancelled',
          trackState: to,
          attempt: track.attempt,
          reason,
          needsInput: track.needsInput,
        });
      }
    }
  }
}

/** A track that failed, as the failure of its pipeline names it. */
export interface FailedTrack {
  id: number;
  vertexId: number;
  pipelineId: number;
  vertexName: string;
}

/**
 * SPEC rule 8: after `failed` failed for good, its pipeline fails (if it still ran) and every
 * track that will now never run is cancelled, with a reason naming the failed one. Running
 * tracks are left to finish, and handlers (SPEC rule 19) run once their predecessors ended,
 * also after a later failure in the already failed pipeline. Returns whether the pipeline failed now: then a slot of its
 * graph is free, and the caller starts the next queued pipeline (concurrency.ts).
 */
export async function failPipelineAfter(graph: SealedGraph, runner: SqlRunner, journal: Journal, failed: FailedTrack): Promise<boolean> {
  const count = await runner.execute(sql`
    UPDATE "pipeline" SET "state" = ${PipelineState.FAILED}, "finishedAt" = ${new Date()}
    WHERE "id" = ${failed.pipelineId} AND "state" = ${PipelineState.RUNNING}`);
  if (count === 0) {
    // Already failed (this is a second failure, or a handler's) or cancelled: nothing more
    // to stop, but handlers below this track may be decided now (SPEC rule 19).
    if (hasHandlers(graph)) await advancePipeline(runner, journal, graph, failed.pipelineId, [failed.vertexId]);
    return false;
  }
  const waiting = await runner.query(sql`
    SELECT "id", "v_id", "state" FROM "track"
    WHERE "p_id" = ${failed.pipelineId} AND "state" IN (${[TrackState.WAITING, TrackState.PENDING]})`);
  const changes = cancellationsAfterFailure(
    graph.dag,
    { id: failed.id, vertexId: failed.vertexId, name: failed.vertexName, state: TrackState.FAILED },
    waiting.map((t) => ({ id: Number(t.id), vertexId: Number(t.v_id), name: '', state: Number(t.state) as TrackState })),
    handlerTest(graph),
  );
  await applyTrackChanges(runner, journal, failed.pipelineId, changes, { from: [TrackState.WAITING, TrackState.PENDING] });
  journal.record({
    pipelineId: failed.pipelineId,
    type: 'pipeline:failed',
    pipelineState: PipelineState.FAILED,
    reason: `${failed.vertexName} failed`,
  });
  // Handlers whose predecessors have all ended now run (SPEC rule 19).
  if (hasHandlers(graph)) await advancePipeline(runner, journal, graph, failed.pipelineId, null);
  return true;
}
