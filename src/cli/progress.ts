/**
 * What `watch` knows about a pipeline, built from a snapshot and then from its events.
 * Pure (no I/O): the watcher feeds it events from both subscriptions and the journal;
 * `apply` ignores an event it has already seen (replays and reconnects repeat them) and
 * says what changed, which the plain (CI) output prints as one line.
 *
 * Track and pipeline events share one monotonic id sequence per pipeline, but arrive on
 * two streams; each stream is in order, so each keeps its own cursor.
 */
import type { CliEventFieldsFragment, PipelineState, TrackState } from '../generated/gql/graphql.ts';

export type { PipelineState, TrackState };

export const TERMINAL_PIPELINE_STATES: readonly PipelineState[] = ['FINISH', 'FAILED', 'CANCELLED'];
export const FINAL_TRACK_STATES: readonly TrackState[] = ['SUCCEED', 'FAILED', 'CANCELLED'];

export interface TrackView {
  id: number;
  name: string;
  state: TrackState;
  attempt: number;
  /** Epoch ms; set when the current attempt was claimed. */
  startedAt: number | null;
  finishedAt: number | null;
  exitCode: number | null;
  reason: string | null;
  needsInput: boolean;
  /** What finishInput must supply, as the server says (Track.blockedBy), when known. */
  missing: string[] | null;
}

export interface ParamInfo {
  name: string;
  required: boolean;
  default?: unknown;
  secret: boolean;
}

export interface PipelineSnapshot {
  id: number;
  name: string;
  state: PipelineState;
  createdAt: string;
  finishedAt: string | null;
  /** runIf: FAILURE and ALWAYS vertices are handlers, which run after a failure too (absent: an older server). */
  graph: { id: number; name: string; vertices: Array<{ name: string; inputs: ParamInfo[]; runIf?: string }> };
  tracks: Array<{
    id: number;
    name: string;
    state: TrackState;
    attempt: number;
    needsInput: boolean;
    startedAt: string | null;
    finishedAt: string | null;
    exitCode: number | null;
    reason: string | null;
    blockedBy?: { missingParams: string[] } | null;
  }>;
}

export type ProgressEvent = CliEventFieldsFragment;

/** What one applied event changed, for the one-line-per-transition output. */
export type Transition =
  | { kind: 'track'; at: number; track: TrackView; previous: TrackState }
  | { kind: 'pipeline'; at: number; state: PipelineState; previous: PipelineState; reason: string | null };

const time = (iso: string | null | undefined): number | null => (iso ? Date.parse(iso) : null);

export class Progress {
  readonly id: number;
  readonly name: string;
  readonly graphId: number;
  readonly graphName: string;
  state: PipelineState;
  readonly createdAt: number;
  finishedAt: number | null;
  /** In track id order (the order of the graph's vertices). */
  readonly tracks: TrackView[];
  /** The last few output lines of failed tracks, by track id (filled by the watcher). */
  readonly tails = new Map<number, string[]>();
  /** Cursors: the last event id applied from each stream. */
  lastTrackEvent = 0;
  lastPipelineEvent = 0;
  private readonly byId = new Map<number, TrackView>();
  private readonly inputs = new Map<string, ParamInfo[]>();
  private readonly handlers = new Set<string>();

  constructor(snapshot: PipelineSnapshot) {
    this.id = snapshot.id;
    this.name = snapshot.name;
    this.graphId = snapshot.graph.id;
    this.graphName = snapshot.graph.name;
    this.state = snapshot.state;
    this.createdAt = Date.parse(snapshot.createdAt);
    this.finishedAt = time(snapshot.finishedAt);
    this.tracks = snapshot.tracks.map((t) => ({
      id: t.id,
      name: t.name,
      state: t.state,
      attempt: t.attempt,
      startedAt: time(t.startedAt),
      finishedAt: time(t.finishedAt),
      exitCode: t.exitCode,
      reason: t.reason,
      needsInput: t.needsInput,
      missing: t.blockedBy?.missingParams ?? null,
    }));
    for (const track of this.tracks) this.byId.set(track.id, track);
    for (const vertex of snapshot.graph.vertices) {
      this.inputs.set(vertex.name, vertex.inputs);
      if (vertex.runIf !== undefined && vertex.runIf !== 'SUCCESS') this.handlers.add(vertex.name);
    }
  }

  track(id: number): TrackView | undefined {
    return this.byId.get(id);
  }

  /**
   * The pipeline ended, and none of its handlers (runIf FAILURE or ALWAYS, SPEC rule 19),
   * which run after a failure, still waits or runs.
   */
  get ended(): boolean {
    return (
      TERMINAL_PIPELINE_STATES.includes(this.state) &&
      !this.tracks.some((t) => this.handlers.has(t.name) && (t.state === 'WAITING' || t.state === 'PENDING' || t.state === 'RUNNING'))
    );
  }

  /**
   * The parameters a track waiting for input lacks: as the server says, else (an older
   * server) those that must be given explicitly or have no default.
   */
  missingParams(track: TrackView): string[] {
    if (track.missing?.length) return track.missing;
    const params = this.inputs.get(track.name) ?? [];
    const candidates = params.filter((p) => p.required || p.default === undefined || p.default === null);
    return (candidates.length > 0 ? candidates : params).map((p) => p.name);
  }

  /** Applies one event; returns what changed, or undefined for a repeat or a no-op. */
  apply(event: ProgressEvent): Transition | undefined {
    const at = Date.parse(event.createdAt);
    if (event.trackId != null) {
      if (event.id <= this.lastTrackEvent) return undefined;
      this.lastTrackEvent = event.id;
      const track = this.byId.get(event.trackId);
      if (!track || !event.trackState) return undefined;
      const previous = track.state;
      const attempt = event.attempt ?? track.attempt;
      if (attempt < track.attempt) return undefined;
      track.attempt = attempt;
      // needsInput is "as it is now" (the event's track is read when delivered); an event
      // that made the track runnable is the best moment to trust it.
      if (event.track) {
        track.needsInput = event.track.needsInput;
        track.missing = event.track.blockedBy?.missingParams ?? null;
      }
      if (event.trackState === 'RUNNING') {
        track.startedAt = at;
        track.finishedAt = null;
        track.exitCode = null;
        track.reason = null;
      } else if (FINAL_TRACK_STATES.includes(event.trackState)) {
        track.finishedAt = at;
        track.exitCode = event.exitCode;
        track.reason = event.reason;
      } else {
        // Created, ready, given its input, or retried: not started in this attempt.
        track.startedAt = null;
        track.finishedAt = null;
        track.exitCode = null;
        track.reason = null;
      }
      if (event.type === 'track:input') track.needsInput = false;
      track.state = event.trackState;
      if (event.type === 'track:input' || (previous === event.trackState && event.type !== 'track:created')) return undefined;
      return { kind: 'track', at, track: { ...track }, previous };
    }
    if (event.pipelineState) {
      if (event.id <= this.lastPipelineEvent) return undefined;
      this.lastPipelineEvent = event.id;
      const previous = this.state;
      this.state = event.pipelineState;
      this.finishedAt = TERMINAL_PIPELINE_STATES.includes(event.pipelineState) ? at : null;
      if (event.type === 'pipeline:started') return undefined;
      return { kind: 'pipeline', at, state: event.pipelineState, previous, reason: event.reason };
    }
    return undefined;
  }

  counts(): Record<TrackState, number> {
    const counts: Record<TrackState, number> = { WAITING: 0, PENDING: 0, RUNNING: 0, SUCCEED: 0, FAILED: 0, CANCELLED: 0, SKIPPED: 0 };
    for (const track of this.tracks) counts[track.state]++;
    return counts;
  }
}
