/**
 * Run conditions (SPEC rule 19) as pure functions. A vertex's `runIf`:
 *
 *   SUCCESS (default)  every predecessor succeeded (the seed's rule 8)
 *   FAILURE            every predecessor has ended, and some track of the pipeline failed
 *   ALWAYS             every predecessor has ended, whatever the outcome
 *
 * A track whose condition can no longer hold ends SKIPPED: a SUCCESS track with a skipped
 * predecessor, a FAILURE track whose predecessors ended with nothing failed. When a track
 * fails, the tracks that can no longer run are CANCELLED as in rule 8, except FAILURE and
 * ALWAYS ones (handlers), which run once their predecessors have ended; after a failure
 * nothing but a handler starts. A condition is decided when its track's predecessors have
 * ended (or, for SUCCESS, as soon as one cannot succeed): a FAILURE handler downstream of
 * steps that succeeded is skipped even if another branch fails later, so put handlers below
 * the steps they guard.
 */
import { ValidationError } from '../errors.ts';
import type { Dag } from './dag.ts';
import { TrackState } from './states.ts';

export const RUN_CONDITIONS = ['SUCCESS', 'FAILURE', 'ALWAYS'] as const;
export type RunIf = (typeof RUN_CONDITIONS)[number];

export function requireRunIf(field: string, value: string): RunIf {
  if (!(RUN_CONDITIONS as readonly string[]).includes(value)) {
    throw new ValidationError(field, `${field} must be SUCCESS (the default: every predecessor succeeded), FAILURE or ALWAYS; got "${value}".`);
  }
  return value as RunIf;
}

/** A handler runs after failures too: FAILURE and ALWAYS. */
export function isHandler(runIf: RunIf): boolean {
  return runIf !== 'SUCCESS';
}

/** SUCCEED, FAILED, CANCELLED or SKIPPED: the track will not run in this attempt. */
export function hasEnded(state: TrackState | undefined): boolean {
  return state === TrackState.SUCCEED || state === TrackState.FAILED || state === TrackState.CANCELLED || state === TrackState.SKIPPED;
}

export interface Decision {
  vertexId: number;
  to: typeof TrackState.PENDING | typeof TrackState.SKIPPED;
  reason?: string;
}

export interface PipelineView {
  dag: Dag;
  runIf: (vertexId: number) => RunIf;
  name: (vertexId: number) => string;
  /** Current track states by vertex (after the change that prompted this). */
  stateOf: (vertexId: number) => TrackState | undefined;
  /** Whether some track of the pipeline failed (the pipeline is FAILED). */
  failed: boolean;
}

/**
 * What the given WAITING tracks become now, cascading through skips: PENDING when their
 * condition holds, SKIPPED when it can no longer hold; the rest keep waiting. After a
 * failure only handlers are decided (everything else was cancelled). The order of the
 * candidates does not matter: a skip re-examines the skipped track's successors. Returns
 * the decisions in the order made; the caller applies them.
 */
export function decideWaiting(view: PipelineView, candidates: Iterable<number>): Decision[] {
  const decided = new Map<number, TrackState>();
  const state = (vertexId: number) => decided.get(vertexId) ?? view.stateOf(vertexId);
  const decisions: Decision[] = [];
  const queue = [...candidates];
  while (queue.length > 0) {
    const vertexId = queue.shift()!;
    if (state(vertexId) !== TrackState.WAITING) continue;
    const decision = decide(view, vertexId, state);
    if (!decision) continue;
    decided.set(vertexId, decision.to);
    decisions.push(decision);
    // A skip ends the track: its successors may be decided by it in turn.
    if (decision.to === TrackState.SKIPPED) queue.push(...view.dag.successors.get(vertexId)!);
  }
  return decisions;
}

/** After the tracks of `changed` ended (or were skipped): what their WAITING successors become. */
export function decideSuccessors(view: PipelineView, changed: Iterable<number>): Decision[] {
  return decideWaiting(view, [...changed].flatMap((v) => view.dag.successors.get(v) ?? []));
}

function decide(view: PipelineView, vertexId: number, state: (vertexId: number) => TrackState | undefined): Decision | undefined {
  const predecessors = view.dag.predecessors.get(vertexId)!;
  const runIf = view.runIf(vertexId);
  if (runIf === 'SUCCESS') {
    if (view.failed) return undefined; // cancelled by the failure (rule 8), not decided here
    const skipped = predecessors.find((p) => state(p) === TrackState.SKIPPED);
    if (skipped !== undefined) {
      return { vertexId, to: TrackState.SKIPPED, reason: `skipped: its predecessor ${view.name(skipped)} was skipped, so not every predecessor succeeded (runIf SUCCESS)` };
    }
    return predecessors.every((p) => state(p) === TrackState.SUCCEED) ? { vertexId, to: TrackState.PENDING } : undefined;
  }
  if (!predecessors.every((p) => hasEnded(state(p)))) return undefined;
  if (runIf === 'ALWAYS' || view.failed) return { vertexId, to: TrackState.PENDING };
  return { vertexId, to: TrackState.SKIPPED, reason: 'skipped: its predecessors ended and no track of the pipeline failed (runIf FAILURE)' };
}
