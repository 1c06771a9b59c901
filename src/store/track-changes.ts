/** Applies the engine's track changes with as few statements as possible, with their events. */
import type { TrackChange } from '../engine/transitions.ts';
import { TrackState } from '../engine/states.ts';
import type { Journal, Tx } from './transaction.ts';

const EVENT_TYPE: Record<number, string> = {
  [TrackState.WAITING]: 'track:reset',
  [TrackState.PENDING]: 'track:ready',
  [TrackState.CANCELLED]: 'track:cancelled',
};

/** Keeps every `IN (...)` list well inside the database's bind-value limit. */
const CHUNK = 5000;

function chunks<T>(groups: T[][]): T[][] {
  return groups.flatMap((group) => Array.from({ length: Math.ceil(group.length / CHUNK) }, (_, i) => group.slice(i * CHUNK, (i + 1) * CHUNK)));
}

/**
 * Groups changes by (target state, reason) into one UPDATE each. Every update keeps the
 * precondition that the track is not finished, so a result committed meanwhile wins.
 */
export async function applyTrackChanges(
  tx: Tx,
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
  for (const group of chunks([...groups.values()])) {
    const { to, reason } = group[0]!;
    const ids = group.map((c) => c.trackId);
    const data = options.retry
      ? { state: to, attempt: { increment: 1 }, exitCode: null, reason: null, output: '', startedAt: null, finishedAt: null, executorId: null }
      : { state: to, reason: reason ?? null, ...(to === TrackState.CANCELLED && { finishedAt: now }) };
    const updated = await tx.track.updateManyAndReturn({
      where: { id: { in: ids }, state: { in: options.from } },
      data,
      select: { id: true, attempt: true },
    });
    for (const track of updated) {
      journal.record({
        pipelineId,
        trackId: track.id,
        type: options.retry ? 'track:retried' : EVENT_TYPE[to]!,
        trackState: to,
        attempt: track.attempt,
        reason: reason ?? null,
      });
    }
  }
}
