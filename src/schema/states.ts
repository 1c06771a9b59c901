/** Track and pipeline states as GraphQL enums (values are the stored integer codes). */
import { PipelineState, TrackState } from '../engine/states.ts';
import { builder } from './builder.ts';

export const TrackStateEnum = builder.enumType('TrackState', {
  description: 'Where a track is in its life.',
  values: {
    WAITING: { value: TrackState.WAITING, description: 'Some predecessor has not succeeded yet.' },
    PENDING: { value: TrackState.PENDING, description: 'Ready: waiting for its inputs (needsInput) or a free worker.' },
    RUNNING: { value: TrackState.RUNNING, description: 'Its script is running.' },
    SUCCEED: { value: TrackState.SUCCEED, description: 'The script exited 0.' },
    FAILED: { value: TrackState.FAILED, description: 'Non-zero exit, timeout, or it could not start; see reason.' },
    CANCELLED: { value: TrackState.CANCELLED, description: 'It will not run in this attempt; see reason.' },
    SKIPPED: {
      value: TrackState.SKIPPED,
      description: "Its vertex's runIf can no longer hold (a FAILURE handler when nothing failed, a step below a skipped one); it did not run. See reason.",
    },
  } as const,
});

export const PipelineStateEnum = builder.enumType('PipelineState', {
  description: 'Where a pipeline (one run of a graph) is.',
  values: {
    QUEUED: {
      value: PipelineState.QUEUED,
      description: "Started while its graph ran maxConcurrentPipelines pipelines: it starts when a slot frees, in the order queued (see blockedBy). cancelPipeline removes it.",
    },
    RUNNING: { value: PipelineState.RUNNING, description: 'Tracks are running or ready to run.' },
    FAILED: { value: PipelineState.FAILED, description: 'A track failed; nothing new starts. retryPipeline resumes.' },
    FINISH: { value: PipelineState.FINISH, description: 'Every track succeeded. retryPipeline with from re-runs it from chosen steps.' },
    CANCELLED: { value: PipelineState.CANCELLED, description: 'An operator cancelled it. retryPipeline resumes.' },
  } as const,
});
