/**
 * When a live stream is over. A subscription completes once nothing more can come, and
 * never before: a client then knows it has everything, and the server does not keep a
 * listener for ever. Pure; src/schema/output.ts reads the committed state after it started
 * listening, delivers what is left, then completes.
 *
 * A pipeline's event streams (pipelineLive, trackUpdated, pipelineUpdated) have no end
 * state: FAILED and CANCELLED pipelines can be retried, and since SPEC rule 17 a FINISH one
 * can be re-run from a step, so its next events may come at any time, and arrive on the
 * same subscriptions. They stay open until the client leaves; a client that follows a run
 * to its end (pipectl watch) stops on the pipeline event that ends it.
 *
 * A track's output stream follows the track across attempts (a retry's attempt continues
 * it) and ends when the track SUCCEEDs. A re-run from a step may give a succeeded track a
 * new attempt later: that one is followed with a new subscription, which the pipeline's
 * track:retried event announces, so that one open stream per pipeline, not one per track
 * ever shown, is what a UI keeps. A FAILED or CANCELLED track's output stream stays open,
 * like its pipeline's event streams.
 */
import { TrackState } from './states.ts';

/**
 * Whether a track in this state (or an event that set it) can print no more: once the
 * lines of the attempt that set it are delivered, its output stream is complete.
 */
export function endsOutputStream(trackState: number | null | undefined): boolean {
  return trackState === TrackState.SUCCEED;
}
