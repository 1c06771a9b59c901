/**
 * The run page's view model, folded from pipelineLive's messages: the snapshot first, then
 * one event per message. Pure (no DOM, no network), so that it is unit-tested on its own
 * (test/dashboard/run-state.test.ts).
 *
 * Idempotent: an event whose id is not above the cursor was applied already (or is in the
 * snapshot) and changes nothing. A reconnect resumes with `after: cursor`, so the service
 * sends only later events; the check is what keeps a duplicate from ever doubling a row or
 * a timeline bar if one arrived anyway.
 *
 * An event's `track` is the track as it is when the service read it, possibly several
 * transitions later than the event (see Event.track in schema.graphql); the state drawn is
 * the event's own `trackState`, so that a replay walks through the states in order, and the
 * last event of a track leaves it in its latest state.
 */
import type { PipelineState, RunBlockedQuery, RunPipelineLiveSubscription, RunTrackFragment, TrackState } from './generated/graphql.ts';

export type LiveMessage = RunPipelineLiveSubscription['pipelineLive'];
export type Snapshot = NonNullable<LiveMessage['snapshot']>;
export type LiveEvent = NonNullable<LiveMessage['event']>;

export type TrackRow = RunTrackFragment;

/** One attempt of a track, for the timeline and the track panel. */
export interface AttemptRow {
  attempt: number;
  state: TrackState;
  startedAt: string | null;
  finishedAt: string | null;
  exitCode: number | null;
  reason: string | null;
}

export interface RunView {
  id: number;
  name: string;
  desc: string | null;
  state: PipelineState;
  createdAt: string;
  finishedAt: string | null;
  blockedBy: Snapshot['blockedBy'];
  graph: Snapshot['graph'];
  /** By track id, in the snapshot's order (by id). */
  tracks: ReadonlyMap<number, TrackRow>;
  /** By track id, oldest attempt first. */
  attempts: ReadonlyMap<number, readonly AttemptRow[]>;
  /** By track id, the id of the last event (or the snapshot's cursor) its row comes from. */
  seen: ReadonlyMap<number, number>;
  /** The id of the last event applied: pipelineLive's `after` to resume from. */
  cursor: number;
}

export const ENDED_STATES: readonly PipelineState[] = ['FINISH', 'FAILED', 'CANCELLED'];

export function hasEnded(state: PipelineState): boolean {
  return ENDED_STATES.includes(state);
}

/** The view of a snapshot; the events that follow it are those after its cursor. */
export function fromSnapshot(snapshot: Snapshot): RunView {
  const tracks = new Map<number, TrackRow>();
  const attempts = new Map<number, AttemptRow[]>();
  const seen = new Map<number, number>();
  for (const { attempts: rows, ...track } of snapshot.tracks) {
    // Why it waits is read just after (RunBlockedDocument; the snapshot leaves it out).
    tracks.set(track.id, { ...track, blockedBy: null });
    attempts.set(track.id, rows.map((row) => ({ ...row })));
    seen.set(track.id, snapshot.cursor);
  }
  return {
    id: snapshot.id,
    name: snapshot.name,
    desc: snapshot.desc,
    state: snapshot.state,
    createdAt: snapshot.createdAt,
    finishedAt: snapshot.finishedAt,
    blockedBy: snapshot.blockedBy,
    graph: snapshot.graph,
    tracks,
    attempts,
    seen,
    cursor: snapshot.cursor,
  };
}

/** Replaces (or adds) the attempt `row.attempt` of a track's attempts, keeping them in order. */
function upsertAttempt(rows: readonly AttemptRow[], row: AttemptRow): AttemptRow[] {
  const next = rows.filter((r) => r.attempt !== row.attempt);
  next.push(row);
  return next.sort((a, b) => a.attempt - b.attempt);
}

/**
 * Applies messages in order: a snapshot replaces the view, an event changes it. Returns the
 * same object when nothing changed (every event already applied), so a render can be skipped.
 */
export function applyMessages(view: RunView | undefined, messages: readonly LiveMessage[]): RunView | undefined {
  let current = view;
  let tracks: Map<number, TrackRow> | undefined;
  let attempts: Map<number, AttemptRow[]> | undefined;
  let seen: Map<number, number> | undefined;
  let changed = false;
  for (const message of messages) {
    if (message.snapshot) {
      // A new snapshot (only when there was no cursor to resume from): start over from it.
      if (current && message.snapshot.cursor < current.cursor) continue;
      current = fromSnapshot(message.snapshot);
      tracks = undefined;
      attempts = undefined;
      seen = undefined;
      changed = true;
      continue;
    }
    const event = message.event;
    if (!event || !current || event.id <= current.cursor) continue;
    if (!changed) current = { ...current };
    changed = true;
    current.cursor = event.id;
    if (event.pipelineState) {
      current.state = event.pipelineState;
      current.finishedAt = event.pipeline.finishedAt;
      current.blockedBy = event.pipeline.blockedBy;
    }
    if (event.trackId !== null && event.track) {
      tracks ??= new Map(current.tracks);
      attempts ??= new Map(current.attempts as Map<number, AttemptRow[]>);
      seen ??= new Map(current.seen);
      current.tracks = tracks;
      current.attempts = attempts;
      current.seen = seen;
      seen.set(event.track.id, event.id);
      const track: TrackRow = { ...event.track, state: event.trackState ?? event.track.state };
      tracks.set(track.id, track);
      // The track as read now describes its current attempt; an event of an earlier attempt
      // (a replay) only settles that attempt's state, exit code and reason.
      const attempt = event.attempt ?? event.track.attempt;
      let rows = attempts.get(track.id) ?? [];
      // track:retrying names the new attempt but carries how the previous one failed.
      const retrying = event.type === 'track:retrying';
      if (retrying) {
        const failed = rows.find((r) => r.attempt === attempt - 1);
        if (failed) rows = upsertAttempt(rows, { ...failed, state: 'FAILED', exitCode: event.exitCode, reason: event.reason });
      }
      const known = rows.find((r) => r.attempt === attempt);
      const fromTrack = attempt === event.track.attempt;
      attempts.set(
        track.id,
        upsertAttempt(rows, {
          attempt,
          state: track.state,
          startedAt: fromTrack ? event.track.startedAt : (known?.startedAt ?? null),
          finishedAt: fromTrack ? event.track.finishedAt : (known?.finishedAt ?? null),
          exitCode: (retrying ? null : event.exitCode) ?? (fromTrack ? event.track.exitCode : (known?.exitCode ?? null)),
          reason: (retrying ? null : event.reason) ?? (fromTrack ? event.track.reason : (known?.reason ?? null)),
        }),
      );
    }
  }
  return changed ? current : view;
}

/** The state of each vertex by name (for the DAG's colours). */
export function statesByName(view: RunView): Map<string, TrackState> {
  return new Map([...view.tracks.values()].map((track) => [track.name, track.state]));
}

/**
 * Whether an event may have changed why other tracks wait (their blockedBy), though it
 * carries only its own track: a pipeline event, or a track ending or put back into play.
 */
export function movesBlockedBy(message: LiveMessage): boolean {
  const event = message.event;
  if (!event) return false;
  return event.pipelineState !== null || ['SUCCEED', 'FAILED', 'CANCELLED', 'SKIPPED'].includes(event.trackState ?? '') || event.type === 'track:retried';
}

export type BlockedRead = NonNullable<RunBlockedQuery['pipeline']>;

/**
 * Applies blockedBy as read at `read.cursor`, to the rows no later event has rewritten (an
 * event read after the query would be newer than its answer).
 */
export function applyBlocked(view: RunView, read: BlockedRead): RunView {
  let tracks: Map<number, TrackRow> | undefined;
  for (const { id, blockedBy } of read.tracks) {
    const row = view.tracks.get(id);
    if (!row || (view.seen.get(id) ?? 0) > read.cursor) continue;
    if (JSON.stringify(row.blockedBy) === JSON.stringify(blockedBy)) continue;
    tracks ??= new Map(view.tracks);
    tracks.set(id, { ...row, blockedBy });
  }
  return tracks ? { ...view, tracks } : view;
}
