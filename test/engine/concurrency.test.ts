/** SPEC rule 14's decisions, pure: when a start queues, how many queued runs may start, and what becomes ready. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mustQueue, queuedReason, releasable, requireConcurrencyLimit } from '../../src/engine/concurrency.ts';
import { ValidationError } from '../../src/errors.ts';

describe('admission', () => {
  it('queues only with a limit, when it is reached or others are queued already', () => {
    expect(mustQueue({ limit: null, running: 1000, queued: 0 })).toBe(false);
    expect(mustQueue({ limit: 2, running: 1, queued: 0 })).toBe(false);
    expect(mustQueue({ limit: 2, running: 2, queued: 0 })).toBe(true);
    // A lowered limit: more run than it allows.
    expect(mustQueue({ limit: 2, running: 5, queued: 0 })).toBe(true);
    // A free slot, but the queue goes first.
    expect(mustQueue({ limit: 2, running: 1, queued: 1 })).toBe(true);
  });

  it('releases the free slots, at most the queue, and the whole queue once there is no limit', () => {
    expect(releasable({ limit: 3, running: 1, queued: 5 })).toBe(2);
    expect(releasable({ limit: 3, running: 1, queued: 1 })).toBe(1);
    expect(releasable({ limit: 3, running: 3, queued: 5 })).toBe(0);
    expect(releasable({ limit: 3, running: 7, queued: 5 })).toBe(0);
    expect(releasable({ limit: null, running: 7, queued: 5 })).toBe(5);
  });

  it('keeps the limit and the order whatever happens (a simulated graph)', () => {
    type Op = { kind: 'start' } | { kind: 'end'; pick: number } | { kind: 'cancelQueued'; pick: number } | { kind: 'limit'; to: number | null };
    const op: fc.Arbitrary<Op> = fc.oneof(
      { arbitrary: fc.constant({ kind: 'start' as const }), weight: 4 },
      { arbitrary: fc.nat(50).map((pick) => ({ kind: 'end' as const, pick })), weight: 3 },
      { arbitrary: fc.nat(50).map((pick) => ({ kind: 'cancelQueued' as const, pick })), weight: 1 },
      { arbitrary: fc.option(fc.integer({ min: 1, max: 4 }), { nil: null }).map((to) => ({ kind: 'limit' as const, to })), weight: 1 },
    );
    fc.assert(
      fc.property(fc.option(fc.integer({ min: 1, max: 4 }), { nil: null }), fc.array(op, { maxLength: 60 }), (initial, ops) => {
        let limit = initial;
        let next = 1;
        const running: number[] = [];
        const queue: number[] = [];
        const startedOrder: number[] = [];
        const queuedOrder: number[] = [];
        const release = () => {
          const n = releasable({ limit, running: running.length, queued: queue.length });
          for (const id of queue.splice(0, n)) {
            running.push(id);
            startedOrder.push(id);
          }
        };
        for (const o of ops) {
          if (o.kind === 'start') {
            const id = next++;
            if (mustQueue({ limit, running: running.length, queued: queue.length })) {
              queue.push(id);
              queuedOrder.push(id);
            } else running.push(id);
          } else if (o.kind === 'end' && running.length > 0) {
            running.splice(o.pick % running.length, 1);
            release();
          } else if (o.kind === 'cancelQueued' && queue.length > 0) {
            queuedOrder.splice(queuedOrder.indexOf(queue.splice(o.pick % queue.length, 1)[0]!), 1);
          } else if (o.kind === 'limit') {
            limit = o.to;
            release();
          }
          // Never a queue while a slot is free; never more running than the limit lets start.
          if (queue.length > 0) expect(limit === null ? Infinity : limit).toBeLessThanOrEqual(running.length);
          if (limit === null) expect(queue).toEqual([]);
        }
        // Queued pipelines that started did so in the order they were queued.
        expect(startedOrder).toEqual(queuedOrder.filter((id) => startedOrder.includes(id)));
      }),
    );
  });
});

describe('validation and explanation', () => {
  it('accepts null or 1 to 10,000', () => {
    expect(requireConcurrencyLimit('maxConcurrentPipelines', null)).toBeNull();
    expect(requireConcurrencyLimit('maxConcurrentPipelines', 1)).toBe(1);
    expect(requireConcurrencyLimit('maxConcurrentPipelines', 10_000)).toBe(10_000);
    for (const bad of [0, -3, 1.5, 10_001, Number.NaN]) {
      expect(() => requireConcurrencyLimit('input.maxConcurrentPipelines', bad)).toThrow(ValidationError);
      try {
        requireConcurrencyLimit('input.maxConcurrentPipelines', bad);
      } catch (error) {
        expect((error as ValidationError).field).toBe('input.maxConcurrentPipelines');
      }
    }
  });

  it('says behind how many and what ends the wait', () => {
    expect(queuedReason('nightly', { limit: 1, running: 1, ahead: 0 }).message).toBe(
      'Graph "nightly" runs at most 1 pipeline at once (maxConcurrentPipelines) and 1 is running. It is next in the queue. It starts when a running one ends; cancelPipeline removes it from the queue.',
    );
    expect(queuedReason('nightly', { limit: 3, running: 3, ahead: 2 }).message).toMatch(/3 are running\. 2 queued pipelines of the graph start before it\./);
    expect(queuedReason('nightly', { limit: null, running: 3, ahead: 0 })).toMatchObject({ kind: 'CONCURRENCY_LIMIT', limit: null });
  });
});
