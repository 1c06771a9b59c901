import { describe, expect, it } from 'vitest';
import { blockedBy, type BlockingFacts } from '../../src/engine/blocked-by.ts';
import { PipelineState, TrackState } from '../../src/engine/states.ts';

const a = { trackId: 1, name: 'A', state: TrackState.SUCCEED };
const b = { trackId: 2, name: 'B', state: TrackState.RUNNING };
const base: BlockingFacts = { state: TrackState.WAITING, needsInput: false, pipelineState: PipelineState.RUNNING, predecessors: [a, b], failed: [], missingParams: [] };

describe('blockedBy', () => {
  it.each([
    ['running', { state: TrackState.RUNNING }],
    ['succeeded', { state: TrackState.SUCCEED }],
    ['failed on its own', { state: TrackState.FAILED, pipelineState: PipelineState.FAILED }],
  ])('is null for a track that is %s', (_name, facts) => {
    expect(blockedBy({ ...base, ...facts })).toBeNull();
  });

  it('names only the predecessors that have not succeeded, and the input it will need', () => {
    expect(blockedBy({ ...base, needsInput: true, missingParams: ['ip'] })).toEqual({
      kind: 'PREDECESSORS',
      message: 'Waiting for B to succeed; it will also need ip through finishInput.',
      tracks: [b],
      missingParams: ['ip'],
    });
  });

  it('a ready track without inputs waits for finishInput; with them, for a worker', () => {
    expect(blockedBy({ ...base, state: TrackState.PENDING, needsInput: true, missingParams: ['ip', 'port'] })).toMatchObject({
      kind: 'INPUT',
      message: 'Waiting for input: supply ip, port with finishInput.',
      missingParams: ['ip', 'port'],
    });
    expect(blockedBy({ ...base, state: TrackState.PENDING })).toMatchObject({ kind: 'WORKER', tracks: [], missingParams: [] });
  });

  it('a track that will not run because the pipeline failed names the failed tracks', () => {
    const failed = { trackId: 3, name: 'C', state: TrackState.FAILED };
    expect(blockedBy({ ...base, state: TrackState.CANCELLED, pipelineState: PipelineState.FAILED, failed: [failed] })).toEqual({
      kind: 'PIPELINE_FAILED',
      message: 'The pipeline failed (C failed), so this track will not run; retryPipeline runs it again.',
      tracks: [failed],
      missingParams: [],
    });
  });

  it('a cancelled track, or one of a cancelled pipeline, says the pipeline was cancelled', () => {
    expect(blockedBy({ ...base, state: TrackState.CANCELLED, pipelineState: PipelineState.CANCELLED })).toMatchObject({ kind: 'PIPELINE_CANCELLED' });
    expect(blockedBy({ ...base, state: TrackState.PENDING, pipelineState: PipelineState.CANCELLED })).toMatchObject({ kind: 'PIPELINE_CANCELLED' });
  });

  it("a track waiting out a retry's delay says which attempt failed, why, and until when; once it is over, it waits for a worker", () => {
    const notBefore = new Date('2026-12-02T03:00:10.000Z');
    const retry = { notBefore, retryNumber: 2, retries: 3, failedAttempt: 2, failedReason: 'The script exited with code 3.', now: new Date('2026-12-02T03:00:00.000Z') };
    expect(blockedBy({ ...base, state: TrackState.PENDING, retry })).toEqual({
      kind: 'RETRY_DELAY',
      message: 'Attempt 2 failed (The script exited with code 3); retry 2 of 3 starts at 2026-12-02T03:00:10.000Z.',
      tracks: [],
      missingParams: [],
      until: notBefore,
    });
    expect(blockedBy({ ...base, state: TrackState.PENDING, retry: { ...retry, now: notBefore } })).toMatchObject({ kind: 'WORKER' });
    // Cancelled or failed meanwhile: that is what it says.
    expect(blockedBy({ ...base, state: TrackState.CANCELLED, pipelineState: PipelineState.CANCELLED, retry })).toMatchObject({ kind: 'PIPELINE_CANCELLED' });
    expect(blockedBy({ ...base, state: TrackState.CANCELLED, pipelineState: PipelineState.FAILED, retry })).toMatchObject({ kind: 'PIPELINE_FAILED' });
  });
});
