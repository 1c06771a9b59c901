import { describe, expect, it } from 'vitest';
import { PipelineState, TrackState } from '../../src/engine/states.ts';
import { endsOutputStream, endsPipelineStreams } from '../../src/engine/stream-end.ts';

describe('when a stream is over', () => {
  it('a pipeline\'s event streams end with FINISH only: FAILED and CANCELLED may be retried', () => {
    const ends = Object.fromEntries(Object.entries(PipelineState).map(([name, code]) => [name, endsPipelineStreams(code)]));
    expect(ends).toEqual({ RUNNING: false, FAILED: false, FINISH: true, CANCELLED: false });
  });

  it('a track\'s output stream ends when it succeeded only: a failed or cancelled track may get another attempt', () => {
    const ends = Object.fromEntries(Object.entries(TrackState).map(([name, code]) => [name, endsOutputStream(code)]));
    expect(ends).toEqual({ WAITING: false, PENDING: false, RUNNING: false, SUCCEED: true, FAILED: false, CANCELLED: false });
  });

  it('an event that sets no state (a track event for the pipeline rule, and the other way round) ends nothing', () => {
    expect(endsPipelineStreams(null)).toBe(false);
    expect(endsPipelineStreams(undefined)).toBe(false);
    expect(endsOutputStream(null)).toBe(false);
    expect(endsOutputStream(undefined)).toBe(false);
  });
});
