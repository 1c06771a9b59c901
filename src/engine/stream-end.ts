/**
 * When a live stream is over. A subscription completes once nothing more can come, and
 * never before: a client then knows it has everything, and the server does not keep a
 * listener for ever. Pure; src/schema/event.ts and output.ts read the committed state
 * after they started listening, deliver what is left, then complete.
 *
 * A pipeline's event streams end with FINISH: every track succeeded and no transition
 * leaves FINISH. FAILED and CANCELLED are not an end: retryPipeline puts the pipeline back
 * to RUNNING, and the retry's events continue the same streams.
 *
 * A track's output stream follows the track across attempts (a retry's attempt continues
 * it), so it ends when the track SUCCEEDs: that attempt is its last, retryPipeline keeps
 * succeeded tracks. A FAILED or CANCELLED track may get another attempt: its output
 * stream stays open, like its pipeline's event streams.
 */
import { PipelineState, TrackState } from './states.ts';

/** Whether a pipeline in this state (or an event that set it) can have no later event. */
export function endsPipelineStreams(pipelineState: number | null | undefined): boolean {
  return pipelineState === PipelineState.FINISH;
}

/**
 * Whether a track in this state (or an event that set it) can print no more: once the
 * lines of the attempt that set it are delivered, its output stream is complete.
 */
export function endsOutputStream(trackState: number | null | undefined): boolean {
  return trackState === TrackState.SUCCEED;
}
