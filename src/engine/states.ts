/**
 * Track and pipeline states, with the seed's integer codes (they are what the database
 * stores). GraphQL exposes them as enums.
 *
 * Track:    WAITING -> PENDING -> RUNNING -> SUCCEED | FAILED
 *           RUNNING -> PENDING                    (automatic retry, attempt + 1, after a delay)
 *           WAITING | PENDING -> CANCELLED        (pipeline failed or cancelled)
 *           RUNNING -> CANCELLED                  (cancelPipeline)
 *           FAILED | CANCELLED -> PENDING | WAITING (retryPipeline, attempt + 1)
 *           SUCCEED -> PENDING | WAITING          (retryPipeline from a step, attempt + 1)
 *           WAITING -> SKIPPED                    (its runIf can no longer hold, SPEC rule 19)
 *           SKIPPED -> PENDING | WAITING          (retryPipeline, attempt + 1)
 * Pipeline: QUEUED -> RUNNING                   (a slot of the graph's maxConcurrentPipelines freed)
 *           QUEUED -> CANCELLED
 *           RUNNING -> FINISH | FAILED | CANCELLED; FAILED | CANCELLED -> RUNNING (retry);
 *           FINISH | FAILED | CANCELLED -> RUNNING (retryPipeline from a step)
 */
export const TrackState = {
  WAITING: 0,
  PENDING: 1,
  RUNNING: 2,
  SUCCEED: 3,
  FAILED: 4,
  CANCELLED: 6,
  /** Its run condition (runIf, SPEC rule 19) can no longer hold; it did not run. */
  SKIPPED: 7,
} as const;
export type TrackState = (typeof TrackState)[keyof typeof TrackState];

export const PipelineState = {
  /** Started beyond its graph's maxConcurrentPipelines: waits for a slot (SPEC rule 14). */
  QUEUED: 1,
  RUNNING: 2,
  FAILED: 4,
  FINISH: 5,
  CANCELLED: 6,
} as const;
export type PipelineState = (typeof PipelineState)[keyof typeof PipelineState];

/** Tracks that have not run yet in this attempt and may still run. */
export const NOT_STARTED: readonly TrackState[] = [TrackState.WAITING, TrackState.PENDING];

/** QUEUED or RUNNING: the pipeline has not ended. */
export const ACTIVE_PIPELINE_STATES: readonly PipelineState[] = [PipelineState.QUEUED, PipelineState.RUNNING];

export function isTerminalPipelineState(state: number): boolean {
  return state !== PipelineState.RUNNING && state !== PipelineState.QUEUED;
}

/** SUCCEED, FAILED, CANCELLED or SKIPPED: the track will not run again unless retried. */
export function isTerminalTrackState(state: number): boolean {
  return state === TrackState.SUCCEED || state === TrackState.FAILED || state === TrackState.CANCELLED || state === TrackState.SKIPPED;
}

export function trackStateName(state: number): keyof typeof TrackState {
  const entry = Object.entries(TrackState).find(([, code]) => code === state);
  if (!entry) throw new Error(`unknown track state code ${state}`);
  return entry[0] as keyof typeof TrackState;
}

/** What an event announces, as "domain:action". Every transition appends one or more. */
export type EventType =
  /** Started beyond its graph's maxConcurrentPipelines: QUEUED (SPEC rule 14). */
  | 'pipeline:queued'
  /** RUNNING: at its start, or when it left the queue. */
  | 'pipeline:started'
  | 'pipeline:finished'
  | 'pipeline:failed'
  | 'pipeline:cancelled'
  | 'pipeline:retried'
  | 'track:created'
  | 'track:ready'
  | 'track:input'
  | 'track:claimed'
  | 'track:succeeded'
  | 'track:failed'
  /** An attempt failed and the track will run again by itself (SPEC rule 13). */
  | 'track:retrying'
  | 'track:cancelled'
  /** Its run condition can no longer hold (SPEC rule 19). */
  | 'track:skipped'
  | 'track:retried';
