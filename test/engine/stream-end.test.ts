import { describe, expect, it } from 'vitest';
import { TrackState } from '../../src/engine/states.ts';
import { endsOutputStream } from '../../src/engine/stream-end.ts';

describe('when a stream is over', () => {
  // A pipeline's event streams have no end state (a FINISH pipeline may be re-run from a
  // step, SPEC rule 17): test/api/stream-end.test.ts shows them open after FINISH.

  it('a track\'s output stream ends when it succeeded only: a failed or cancelled track may get another attempt', () => {
    const ends = Object.fromEntries(Object.entries(TrackState).map(([name, code]) => [name, endsOutputStream(code)]));
    expect(ends).toEqual({ WAITING: false, PENDING: false, RUNNING: false, SUCCEED: true, FAILED: false, CANCELLED: false, SKIPPED: false });
  });

  it('an event that sets no track state (a pipeline event) ends nothing', () => {
    expect(endsOutputStream(null)).toBe(false);
    expect(endsOutputStream(undefined)).toBe(false);
  });
});
