/**
 * Why a track is not running, as data a UI or a script can act on (and as a sentence for
 * people). Pure: the caller supplies the facts.
 *
 *   not started, pipeline QUEUED        -> PIPELINE_QUEUED (its graph's concurrency limit)
 *   WAITING, pipeline RUNNING           -> PREDECESSORS (the ones not succeeded yet; for a
 *                                          handler, SPEC rule 19, not ended yet, also in a
 *                                          FAILED pipeline)
 *   PENDING without inputs              -> INPUT (the parameters finishInput must supply)
 *   PENDING, a retry's delay not over   -> RETRY_DELAY (until when)
 *   PENDING with inputs                 -> WORKER (ready; every worker is busy)
 *   not started or CANCELLED, pipeline FAILED    -> PIPELINE_FAILED (the failed tracks)
 *   not started or CANCELLED, pipeline CANCELLED -> PIPELINE_CANCELLED
 *   RUNNING, SUCCEED, FAILED            -> not blocked (null)
 */
import type { RunIf } from './run-conditions.ts';
import { isTerminalTrackState, PipelineState, TrackState } from './states.ts';

export type BlockedKind = 'PIPELINE_QUEUED' | 'PREDECESSORS' | 'INPUT' | 'RETRY_DELAY' | 'WORKER' | 'PIPELINE_FAILED' | 'PIPELINE_CANCELLED';

export interface TrackRef {
  trackId: number;
  name: string;
  state: number;
}

export interface BlockedReason {
  kind: BlockedKind;
  message: string;
  /** PREDECESSORS: the ones it waits for; PIPELINE_FAILED: the tracks that failed. */
  tracks: TrackRef[];
  /** Parameters finishInput must supply (also while it waits for predecessors). */
  missingParams: string[];
  /** RETRY_DELAY: when the retry may start. */
  until?: Date;
}

/** A track waiting out the delay of an automatic retry. */
export interface RetryWait {
  /** Not claimed before this time. */
  notBefore: Date;
  /** Which retry it is (1 for the first) and how many the vertex has. */
  retryNumber: number;
  retries: number;
  /** The attempt that failed and its reason. */
  failedAttempt: number;
  failedReason: string | null;
  /** The time now: the delay may be over. */
  now: Date;
}

export interface BlockingFacts {
  state: number;
  /** No resolved inputs yet. */
  needsInput: boolean;
  pipelineState: number;
  predecessors: readonly TrackRef[];
  /** Failed tracks of the pipeline. */
  failed: readonly TrackRef[];
  missingParams: readonly string[];
  /** Its vertex's run condition (SPEC rule 19); default SUCCESS. */
  runIf?: RunIf;
  /** The track's retry delay, when it has one (a PENDING track after a failed attempt). */
  retry?: RetryWait | null;
}

const names = (tracks: readonly TrackRef[]) => tracks.map((t) => t.name).join(', ');

export function blockedBy(facts: BlockingFacts): BlockedReason | null {
  const notStarted = facts.state === TrackState.WAITING || facts.state === TrackState.PENDING;
  if (!notStarted && facts.state !== TrackState.CANCELLED) return null;
  const missingParams = facts.needsInput && notStarted ? [...facts.missingParams] : [];
  // A handler (runIf FAILURE or ALWAYS) not started in a failed pipeline still runs.
  const handler = facts.runIf !== undefined && facts.runIf !== 'SUCCESS';
  if (facts.pipelineState === PipelineState.FAILED && !(handler && notStarted)) {
    const failed = [...facts.failed];
    return {
      kind: 'PIPELINE_FAILED',
      message: `The pipeline failed${failed.length ? ` (${names(failed)} failed)` : ''}, so this track will not run; retryPipeline runs it again.`,
      tracks: failed,
      missingParams,
    };
  }
  if (facts.pipelineState === PipelineState.CANCELLED || facts.state === TrackState.CANCELLED) {
    return {
      kind: 'PIPELINE_CANCELLED',
      message: 'The pipeline was cancelled, so this track will not run; retryPipeline runs it again.',
      tracks: [],
      missingParams,
    };
  }
  if (facts.pipelineState === PipelineState.QUEUED) {
    const needs = missingParams.length ? `; it will also need ${missingParams.join(', ')} through finishInput` : '';
    return {
      kind: 'PIPELINE_QUEUED',
      message: `The pipeline is queued behind its graph's concurrency limit (see the pipeline's blockedBy); this track runs after it starts${needs}.`,
      tracks: [],
      missingParams,
    };
  }
  if (facts.state === TrackState.WAITING) {
    const waiting = facts.predecessors.filter((p) => (handler ? !isTerminalTrackState(p.state) : p.state !== TrackState.SUCCEED));
    const needs = missingParams.length ? `; it will also need ${missingParams.join(', ')} through finishInput` : '';
    return {
      kind: 'PREDECESSORS',
      message: `Waiting for ${names(waiting) || 'its predecessors'} to ${handler ? `end (runIf ${facts.runIf})` : 'succeed'}${needs}.`,
      tracks: waiting,
      missingParams,
    };
  }
  if (facts.needsInput) {
    return {
      kind: 'INPUT',
      message: `Waiting for input: supply ${missingParams.join(', ') || 'its parameters'} with finishInput.`,
      tracks: [],
      missingParams,
    };
  }
  if (facts.retry && facts.state === TrackState.PENDING && facts.retry.notBefore.getTime() > facts.retry.now.getTime()) {
    const { notBefore, retryNumber, retries, failedAttempt, failedReason } = facts.retry;
    const why = failedReason ? ` (${failedReason.replace(/\.$/, '')})` : '';
    return {
      kind: 'RETRY_DELAY',
      message: `Attempt ${failedAttempt} failed${why}; retry ${retryNumber} of ${retries} starts at ${notBefore.toISOString()}.`,
      tracks: [],
      missingParams: [],
      until: notBefore,
    };
  }
  return { kind: 'WORKER', message: 'Ready to run; waiting for a free worker.', tracks: [], missingParams: [] };
}
