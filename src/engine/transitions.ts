/**
 * Pipeline state transitions (SPEC rules 4, 8, 9, 10) as pure functions: given the DAG
 * and the states that matter, say which tracks change and to what. The store applies the
 * result in one transaction together with the events that announce it.
 *
 *   start:    zero in-degree -> PENDING, others WAITING; pipeline RUNNING
 *   success:  track SUCCEED; each WAITING successor whose predecessors all SUCCEED -> PENDING;
 *             no track left unsucceeded -> pipeline FINISH
 *   failure:  with automatic retries left (SPEC rule 13) and the pipeline RUNNING: track
 *             PENDING, attempt + 1, not claimed before its delay; nothing else changes.
 *             Otherwise track FAILED; pipeline FAILED; every WAITING/PENDING track ->
 *             CANCELLED with a reason naming the failed track (running ones finish on
 *             their own)
 *   cancel:   pipeline CANCELLED; WAITING/PENDING/RUNNING tracks -> CANCELLED
 *   retry:    FAILED/CANCELLED tracks -> PENDING (all predecessors SUCCEED) or WAITING,
 *             attempt + 1, a fresh budget of automatic retries; pipeline RUNNING
 *   re-run:   retry from named vertices (SPEC rule 17), also of a FINISH pipeline: those
 *             vertices' tracks and all their descendants too, even SUCCEED ones
 */
import { ConflictError, ValidationError } from '../errors.ts';
import { descendants, startVertices, withDescendants, type Dag } from './dag.ts';
import { retryDelaySeconds, type RetryPolicy } from './retry-policy.ts';
import { PipelineState, TrackState } from './states.ts';

export interface TrackView {
  id: number;
  vertexId: number;
  name: string;
  state: TrackState;
}

export interface TrackChange {
  trackId: number;
  to: TrackState;
  reason?: string;
}

/** SPEC rule 4: the state each vertex's track starts in. */
export function initialStates(dag: Dag): Map<number, TrackState> {
  const starts = new Set(startVertices(dag));
  return new Map(dag.vertexIds.map((id) => [id, starts.has(id) ? TrackState.PENDING : TrackState.WAITING]));
}

/**
 * After the track of `vertexId` succeeded: the successors that become PENDING.
 * @param stateOf current state of a vertex's track in this pipeline (at least for the
 *   successors of `vertexId` and all their predecessors).
 */
export function promotableSuccessors(dag: Dag, vertexId: number, stateOf: (vertexId: number) => TrackState | undefined): number[] {
  return dag.successors.get(vertexId)!.filter(
    (successor) =>
      stateOf(successor) === TrackState.WAITING &&
      dag.predecessors.get(successor)!.every((p) => p === vertexId || stateOf(p) === TrackState.SUCCEED),
  );
}

/** What becomes of a track whose attempt failed: run again after a delay, or fail (rule 8). */
export type AfterFailedAttempt = { retry: true; retryNumber: number; delaySeconds: number } | { retry: false };

/**
 * SPEC rule 13: a failed attempt (non-zero exit, timeout, could not start, its worker died)
 * is retried while the vertex has retries left and the pipeline still runs; only the last
 * failure fails the track and the pipeline. A cancelled attempt never comes here.
 * @param retriesTaken automatic retries the track has had since it was started or retried by an operator.
 */
export function afterFailedAttempt(policy: RetryPolicy, retriesTaken: number, pipelineState: PipelineState): AfterFailedAttempt {
  if (pipelineState !== PipelineState.RUNNING || retriesTaken >= policy.retries) return { retry: false };
  const retryNumber = retriesTaken + 1;
  return { retry: true, retryNumber, delaySeconds: retryDelaySeconds(policy, retryNumber) };
}

/** The pipeline state once no track is left unsucceeded, else unchanged. */
export function pipelineStateAfterSuccess(unsucceededTracks: number): PipelineState {
  return unsucceededTracks === 0 ? PipelineState.FINISH : PipelineState.RUNNING;
}

/**
 * After `failed` failed (or was reconciled as failed): every track that will now never
 * run is cancelled, with a reason naming the failed one. Running tracks are left to finish,
 * and handlers (SPEC rule 19) are left to their run condition.
 */
export function cancellationsAfterFailure(
  dag: Dag,
  failed: TrackView,
  tracks: readonly TrackView[],
  isHandler: (vertexId: number) => boolean = () => false,
): TrackChange[] {
  const downstream = descendants(dag, failed.vertexId);
  return tracks
    // Handlers (runIf FAILURE or ALWAYS, SPEC rule 19) are decided once their predecessors end.
    .filter((t) => (t.state === TrackState.WAITING || t.state === TrackState.PENDING) && !isHandler(t.vertexId))
    .map((t) => ({
      trackId: t.id,
      to: TrackState.CANCELLED,
      reason: downstream.has(t.vertexId)
        ? `upstream ${failed.name} failed`
        : `not started: the pipeline failed because ${failed.name} failed`,
    }));
}

/** cancelPipeline: every unfinished track is cancelled. */
export function cancellationsForCancel(tracks: readonly TrackView[], reason: string): TrackChange[] {
  return tracks
    .filter((t) => t.state === TrackState.WAITING || t.state === TrackState.PENDING || t.state === TrackState.RUNNING)
    .map((t) => ({ trackId: t.id, to: TrackState.CANCELLED, reason }));
}

/**
 * retryPipeline (SPEC rules 9 and 17): the tracks that go back into play (the store adds 1
 * to their attempt). Without `from`, the FAILED, CANCELLED and SKIPPED ones and the
 * handlers below them (SPEC rule 19). With `from` (vertex ids), also those vertices' tracks
 * and all their descendants, even if they had succeeded: the failed and cancelled ones are
 * re-run too, since a track downstream of one left FAILED could never run. Each goes
 * PENDING when every predecessor succeeded and is not re-run itself, else WAITING; a handler
 * always WAITING, for the store to decide by its condition. Every other track is kept as it is.
 * @throws ConflictError naming `from` when a track to re-run is still RUNNING (a failed
 *   pipeline lets its running tracks finish): its late result would race the re-run.
 */
export function retryChanges(
  dag: Dag,
  tracks: readonly TrackView[],
  from: readonly number[] = [],
  isHandler: (vertexId: number) => boolean = () => false,
): TrackChange[] {
  // What did not succeed goes back with everything below it: below a failed, cancelled or
  // skipped track only handlers can have run (SPEC rule 19), and they must be decided anew.
  const notSucceeded = tracks
    .filter((t) => t.state === TrackState.FAILED || t.state === TrackState.CANCELLED || t.state === TrackState.SKIPPED)
    .map((t) => t.vertexId);
  const rerun = withDescendants(dag, [...from, ...notSucceeded]);
  const again = tracks.filter((t) => rerun.has(t.vertexId));
  const running = again.find((t) => t.state === TrackState.RUNNING);
  if (running) {
    throw new ConflictError(
      'from',
      `Track "${running.name}" is still RUNNING; it cannot be re-run before it ends. Wait for it (or cancel the pipeline), then re-run.`,
    );
  }
  const back = new Set(again.map((t) => t.vertexId));
  const stateByVertex = new Map(tracks.map((t) => [t.vertexId, t.state]));
  const staysSucceeded = (vertexId: number) => !back.has(vertexId) && stateByVertex.get(vertexId) === TrackState.SUCCEED;
  // A handler waits: the store decides it by its condition (run-conditions.ts) once it is back.
  return again.map((t) => ({
    trackId: t.id,
    to: !isHandler(t.vertexId) && dag.predecessors.get(t.vertexId)!.every(staysSucceeded) ? TrackState.PENDING : TrackState.WAITING,
  }));
}

/**
 * The vertex ids of the names given as retryPipeline's `from`, in the order given, without
 * repeats.
 * @throws ValidationError naming `from` for an empty list or a name the graph does not have.
 */
export function rerunVertexIds(names: readonly string[], vertices: ReadonlyArray<{ id: number; name: string }>): number[] {
  if (names.length === 0) {
    throw new ValidationError('from', 'from lists no vertex: name the steps to re-run, or leave from out to retry the failed and cancelled tracks.');
  }
  const byName = new Map(vertices.map((v) => [v.name, v.id]));
  const unknown = names.filter((name) => !byName.has(name));
  if (unknown.length > 0) {
    const known = vertices.map((v) => `"${v.name}"`);
    const list = known.length <= 20 ? known.join(', ') : `${known.slice(0, 20).join(', ')} and ${known.length - 20} more`;
    throw new ValidationError(
      'from',
      `The pipeline's graph has no vertex named ${unknown.map((n) => `"${n}"`).join(', ')}. Its vertices: ${list}.`,
    );
  }
  return [...new Set(names.map((name) => byName.get(name)!))];
}
