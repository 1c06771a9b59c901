/** Applies the engine's track changes with as few statements as possible, with their events. */
import type { TrackChange } from '../engine/transitions.ts';
import { TrackState } from '../engine/states.ts';
import { sql, type SqlRunner } from './sql.ts';
import type { Journal } from './transaction.ts';

/**
 * What a track's next attempt starts from (a retry, automatic or an operator's): attempt + 1,
 * the previous outcome cleared. That outcome is kept in track_attempt (archiveAttempts).
 */
export const NEXT_ATTEMPT = sql`"attempt" = "attempt" + 1, "exitCode" = NULL, "reason" = NULL, "output" = '',
  "startedAt" = NULL, "finishedAt" = NULL, "executorId" = NULL`;

/**
 * Copies the current attempt of each of these tracks that is in one of `from` to
 * track_attempt, as it ended, right before the track moves on to its next attempt.
 */
export async function archiveAttempts(runner: SqlRunner, trackIds: readonly number[], from: readonly TrackState[]): Promise<void> {
  await runner.execute(sql`
    INSERT INTO "track_attempt" ("t_id", "attempt", "state", "exitCode", "reason", "startedAt", "finishedAt")
    SELECT "id", "attempt", "state", "exitCode", "reason", "startedAt", "finishedAt" FROM "track"
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
        RETURNING "id", "attempt", "script" IS NULL AS "needsInput"`);
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
