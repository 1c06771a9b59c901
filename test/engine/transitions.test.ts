/**
 * Unit tests of the pure state transitions (SPEC rules 4, 8, 9 and 13) on the SPEC seed
 * scenario: A -> B, A -> C, B -> D, C -> D, plus isolated E.
 */
import { describe, expect, it } from 'vitest';
import { PipelineState, TrackState } from '../../src/engine/states.ts';
import { buildDag, type Dag } from '../../src/engine/dag.ts';
import { retryDelaySeconds } from '../../src/engine/retry-policy.ts';
import { NAME_OF_TRACK, NAME_OF_VERTEX, NAMES, seedDag, TID, VID, views, type Name, type States } from '../helpers/seed-dag.ts';
import {
  afterFailedAttempt,
  cancellationsAfterFailure,
  cancellationsForCancel,
  initialStates,
  pipelineStateAfterSuccess,
  promotableSuccessors,
  retryChanges,
  type TrackChange,
  type TrackView,
} from '../../src/engine/transitions.ts';

const { WAITING, PENDING, RUNNING, SUCCEED, FAILED, CANCELLED } = TrackState;

function stateOf(states: States) {
  return (vertexId: number) => {
    const name = NAME_OF_VERTEX.get(vertexId);
    return name === undefined ? undefined : states[name];
  };
}

const names = (vertexIds: number[]) => vertexIds.map((id) => NAME_OF_VERTEX.get(id));

/** Changes keyed by track name, for readable expectations. */
function byName(changes: TrackChange[]): Record<string, { to: TrackState; reason?: string }> {
  return Object.fromEntries(
    changes.map((c) => [NAME_OF_TRACK.get(c.trackId) ?? `#${c.trackId}`, c.reason === undefined ? { to: c.to } : { to: c.to, reason: c.reason }]),
  );
}

describe('states', () => {
  it('keeps the seed integer codes', () => {
    expect(TrackState).toEqual({ WAITING: 0, PENDING: 1, RUNNING: 2, SUCCEED: 3, FAILED: 4, CANCELLED: 6 });
    expect(PipelineState).toEqual({ QUEUED: 1, RUNNING: 2, FAILED: 4, FINISH: 5, CANCELLED: 6 });
  });
});

describe('initialStates', () => {
  it('seed scenario: A and E PENDING, B, C, D WAITING', () => {
    const initial = initialStates(seedDag);
    expect(Object.fromEntries(NAMES.map((n) => [n, initial.get(VID[n])]))).toEqual({
      A: PENDING,
      B: WAITING,
      C: WAITING,
      D: WAITING,
      E: PENDING,
    });
    expect(initial.size).toBe(5);
  });

  it.each([
    { name: 'single vertex', ids: [1], edges: [], expected: { 1: PENDING } },
    { name: 'all isolated', ids: [1, 2, 3], edges: [], expected: { 1: PENDING, 2: PENDING, 3: PENDING } },
    { name: 'two starts into one', ids: [1, 2, 3], edges: [{ tailId: 1, headId: 3 }, { tailId: 2, headId: 3 }], expected: { 1: PENDING, 2: PENDING, 3: WAITING } },
    { name: 'chain', ids: [3, 2, 1], edges: [{ tailId: 1, headId: 2 }, { tailId: 2, headId: 3 }], expected: { 1: PENDING, 2: WAITING, 3: WAITING } },
  ])('$name', ({ ids, edges, expected }) => {
    expect(Object.fromEntries(initialStates(buildDag(ids, edges)))).toEqual(expected);
  });
});

describe('promotableSuccessors', () => {
  it.each<{ name: string; done: Name; states: States; expected: Name[] }>([
    {
      name: 'A done (still RUNNING in the view): B and C',
      done: 'A',
      states: { A: RUNNING, B: WAITING, C: WAITING, D: WAITING, E: PENDING },
      expected: ['B', 'C'],
    },
    {
      name: 'A done (already SUCCEED in the view): B and C',
      done: 'A',
      states: { A: SUCCEED, B: WAITING, C: WAITING, D: WAITING, E: RUNNING },
      expected: ['B', 'C'],
    },
    {
      name: 'B done while C is still RUNNING: nothing',
      done: 'B',
      states: { A: SUCCEED, B: RUNNING, C: RUNNING, D: WAITING, E: SUCCEED },
      expected: [],
    },
    {
      name: 'B done while C is PENDING: nothing',
      done: 'B',
      states: { A: SUCCEED, B: RUNNING, C: PENDING, D: WAITING, E: SUCCEED },
      expected: [],
    },
    {
      name: 'C done while B FAILED: nothing',
      done: 'C',
      states: { A: SUCCEED, B: FAILED, C: RUNNING, D: WAITING, E: SUCCEED },
      expected: [],
    },
    {
      name: 'C done after B SUCCEED: D',
      done: 'C',
      states: { A: SUCCEED, B: SUCCEED, C: RUNNING, D: WAITING, E: SUCCEED },
      expected: ['D'],
    },
    {
      name: 'B done after C SUCCEED: D',
      done: 'B',
      states: { A: SUCCEED, B: RUNNING, C: SUCCEED, D: WAITING, E: RUNNING },
      expected: ['D'],
    },
    {
      name: 'D already PENDING: not again',
      done: 'C',
      states: { A: SUCCEED, B: SUCCEED, C: RUNNING, D: PENDING, E: SUCCEED },
      expected: [],
    },
    {
      name: 'D already CANCELLED: not revived',
      done: 'B',
      states: { A: SUCCEED, B: RUNNING, C: SUCCEED, D: CANCELLED, E: SUCCEED },
      expected: [],
    },
    {
      name: 'B already PENDING (e.g. after retry): only C',
      done: 'A',
      states: { A: RUNNING, B: PENDING, C: WAITING, D: WAITING, E: SUCCEED },
      expected: ['C'],
    },
    { name: 'D has no successors', done: 'D', states: { A: SUCCEED, B: SUCCEED, C: SUCCEED, D: RUNNING, E: SUCCEED }, expected: [] },
    { name: 'isolated E has no successors', done: 'E', states: { A: PENDING, B: WAITING, C: WAITING, D: WAITING, E: RUNNING }, expected: [] },
  ])('$name', ({ done, states, expected }) => {
    expect(names(promotableSuccessors(seedDag, VID[done], stateOf(states)))).toEqual(expected);
  });
});

describe('pipelineStateAfterSuccess', () => {
  it.each([
    [0, PipelineState.FINISH],
    [1, PipelineState.RUNNING],
    [4, PipelineState.RUNNING],
  ])('%i tracks not yet succeeded -> %i', (left, expected) => {
    expect(pipelineStateAfterSuccess(left)).toBe(expected);
  });
});

describe('cancellationsAfterFailure', () => {
  const failedC: TrackView = { id: TID.C, vertexId: VID.C, name: 'C', state: FAILED };

  it('C fails while B runs: D is cancelled as "upstream C failed", B is left to finish', () => {
    const states: States = { A: SUCCEED, B: RUNNING, C: FAILED, D: WAITING, E: SUCCEED };
    expect(byName(cancellationsAfterFailure(seedDag, failedC, views(states)))).toEqual({
      D: { to: CANCELLED, reason: 'upstream C failed' },
    });
  });

  it('the failed track itself is not cancelled, whether the view says RUNNING or FAILED', () => {
    for (const state of [RUNNING, FAILED]) {
      const states: States = { A: SUCCEED, B: SUCCEED, C: state, D: WAITING, E: SUCCEED };
      const changes = cancellationsAfterFailure(seedDag, { ...failedC, state }, views(states));
      expect(changes.map((c) => NAME_OF_TRACK.get(c.trackId))).toEqual(['D']);
    }
  });

  it('unrelated tracks that have not run are cancelled too, with a reason naming C', () => {
    const states: States = { A: SUCCEED, B: SUCCEED, C: FAILED, D: WAITING, E: PENDING };
    const changes = byName(cancellationsAfterFailure(seedDag, failedC, views(states)));
    expect(Object.keys(changes).sort()).toEqual(['D', 'E']);
    expect(changes.D).toEqual({ to: CANCELLED, reason: 'upstream C failed' });
    expect(changes.E!.to).toBe(CANCELLED);
    expect(changes.E!.reason).toMatch(/\bC\b/);
    expect(changes.E!.reason).not.toBe('upstream C failed');
  });

  it('an unrelated RUNNING track is left alone', () => {
    const states: States = { A: SUCCEED, B: SUCCEED, C: FAILED, D: WAITING, E: RUNNING };
    expect(Object.keys(byName(cancellationsAfterFailure(seedDag, failedC, views(states))))).toEqual(['D']);
  });

  it('A fails: B, C, D are all "upstream A failed"; running E is left alone', () => {
    const states: States = { A: FAILED, B: WAITING, C: WAITING, D: WAITING, E: RUNNING };
    const failedA: TrackView = { id: TID.A, vertexId: VID.A, name: 'A', state: FAILED };
    expect(byName(cancellationsAfterFailure(seedDag, failedA, views(states)))).toEqual({
      B: { to: CANCELLED, reason: 'upstream A failed' },
      C: { to: CANCELLED, reason: 'upstream A failed' },
      D: { to: CANCELLED, reason: 'upstream A failed' },
    });
  });

  it('E fails while A runs: waiting B, C, D are cancelled naming E, but not as its downstream', () => {
    const states: States = { A: RUNNING, B: WAITING, C: WAITING, D: WAITING, E: FAILED };
    const failedE: TrackView = { id: TID.E, vertexId: VID.E, name: 'E', state: FAILED };
    const changes = byName(cancellationsAfterFailure(seedDag, failedE, views(states)));
    expect(Object.keys(changes).sort()).toEqual(['B', 'C', 'D']);
    for (const change of Object.values(changes)) {
      expect(change.to).toBe(CANCELLED);
      expect(change.reason).toMatch(/\bE\b/);
      expect(change.reason).not.toBe('upstream E failed');
    }
  });

  it('finished tracks are never changed', () => {
    const states: States = { A: SUCCEED, B: FAILED, C: FAILED, D: CANCELLED, E: SUCCEED };
    expect(cancellationsAfterFailure(seedDag, failedC, views(states))).toEqual([]);
  });

  it('every track below the failure is cancelled on a long chain', () => {
    const ids = Array.from({ length: 50 }, (_, i) => i + 1);
    const dag = buildDag(ids, ids.slice(1).map((id) => ({ tailId: id - 1, headId: id })));
    const tracks: TrackView[] = ids.map((id) => ({
      id: 1000 + id,
      vertexId: id,
      name: `v${id}`,
      state: id < 10 ? SUCCEED : id === 10 ? FAILED : WAITING,
    }));
    const changes = cancellationsAfterFailure(dag, tracks[9]!, tracks);
    expect(changes).toHaveLength(40);
    expect(changes.every((c) => c.to === CANCELLED && c.reason === 'upstream v10 failed')).toBe(true);
  });
});

describe('cancellationsForCancel', () => {
  it.each<{ name: string; states: States; cancelled: Name[] }>([
    { name: 'at start', states: { A: PENDING, B: WAITING, C: WAITING, D: WAITING, E: PENDING }, cancelled: ['A', 'B', 'C', 'D', 'E'] },
    { name: 'mid-run: running ones too', states: { A: SUCCEED, B: RUNNING, C: PENDING, D: WAITING, E: RUNNING }, cancelled: ['B', 'C', 'D', 'E'] },
    { name: 'after a failure: nothing unfinished', states: { A: SUCCEED, B: SUCCEED, C: FAILED, D: CANCELLED, E: SUCCEED }, cancelled: [] },
  ])('$name', ({ states, cancelled }) => {
    const changes = cancellationsForCancel(views(states), 'cancelled by operator');
    expect(changes.map((c) => NAME_OF_TRACK.get(c.trackId))).toEqual(cancelled);
    for (const change of changes) expect(change).toEqual({ trackId: change.trackId, to: CANCELLED, reason: 'cancelled by operator' });
  });
});

describe('retryChanges', () => {
  it.each<{ name: string; states: States; expected: Partial<Record<Name, TrackState>> }>([
    {
      name: 'C failed, D cancelled: C PENDING (A succeeded), D WAITING (C not yet)',
      states: { A: SUCCEED, B: SUCCEED, C: FAILED, D: CANCELLED, E: SUCCEED },
      expected: { C: PENDING, D: WAITING },
    },
    {
      name: 'only D cancelled, B and C succeeded: D PENDING',
      states: { A: SUCCEED, B: SUCCEED, C: SUCCEED, D: CANCELLED, E: SUCCEED },
      expected: { D: PENDING },
    },
    {
      name: 'cancelled at start: starts PENDING, the rest WAITING',
      states: { A: CANCELLED, B: CANCELLED, C: CANCELLED, D: CANCELLED, E: CANCELLED },
      expected: { A: PENDING, B: WAITING, C: WAITING, D: WAITING, E: PENDING },
    },
    {
      name: 'A failed with E succeeded: A PENDING, B, C, D WAITING, E kept',
      states: { A: FAILED, B: CANCELLED, C: CANCELLED, D: CANCELLED, E: SUCCEED },
      expected: { A: PENDING, B: WAITING, C: WAITING, D: WAITING },
    },
    {
      name: 'isolated E failed: PENDING',
      states: { A: SUCCEED, B: SUCCEED, C: SUCCEED, D: SUCCEED, E: FAILED },
      expected: { E: PENDING },
    },
    {
      name: 'B and C both failed: both PENDING, D WAITING',
      states: { A: SUCCEED, B: FAILED, C: FAILED, D: CANCELLED, E: SUCCEED },
      expected: { B: PENDING, C: PENDING, D: WAITING },
    },
    {
      name: 'D cancelled while B still running: D WAITING, B left alone',
      states: { A: SUCCEED, B: RUNNING, C: FAILED, D: CANCELLED, E: SUCCEED },
      expected: { C: PENDING, D: WAITING },
    },
    {
      name: 'all succeeded: nothing to do',
      states: { A: SUCCEED, B: SUCCEED, C: SUCCEED, D: SUCCEED, E: SUCCEED },
      expected: {},
    },
  ])('$name', ({ states, expected }) => {
    const changes = retryChanges(seedDag, views(states));
    expect(Object.fromEntries(changes.map((c) => [NAME_OF_TRACK.get(c.trackId), c.to]))).toEqual(expected);
    // Succeeded (and running) tracks are never touched.
    for (const change of changes) {
      const name = NAME_OF_TRACK.get(change.trackId)!;
      expect([FAILED, CANCELLED]).toContain(states[name]);
    }
  });
});

/**
 * A whole run of the seed scenario driven only by the pure functions, as the store and
 * executor would apply them: claim PENDING tracks, finish RUNNING ones one at a time.
 */
class Simulation {
  readonly states: States;
  readonly reasons: Partial<Record<Name, string>> = {};
  pipeline: PipelineState = PipelineState.RUNNING;
  readonly ran: Name[] = [];
  readonly log: string[] = [];

  constructor(private readonly dag: Dag) {
    const initial = initialStates(dag);
    this.states = Object.fromEntries(NAMES.map((n) => [n, initial.get(VID[n])!])) as States;
  }

  private check(): void {
    // Invariant: a track is PENDING or RUNNING only when all its predecessors succeeded.
    for (const n of NAMES) {
      if (this.states[n] === PENDING || this.states[n] === RUNNING) {
        for (const p of this.dag.predecessors.get(VID[n])!) {
          expect(this.states[NAME_OF_VERTEX.get(p)!], `${n} is ${this.states[n]} before ${NAME_OF_VERTEX.get(p)} succeeded`).toBe(SUCCEED);
        }
      }
    }
  }

  private apply(changes: TrackChange[]): void {
    for (const change of changes) {
      const name = NAME_OF_TRACK.get(change.trackId)!;
      this.states[name] = change.to;
      if (change.reason !== undefined) this.reasons[name] = change.reason;
      else delete this.reasons[name];
    }
  }

  /** Claims every PENDING track, if the pipeline still runs. */
  claim(): Name[] {
    if (this.pipeline !== PipelineState.RUNNING) return [];
    const claimed = NAMES.filter((n) => this.states[n] === PENDING);
    for (const n of claimed) {
      this.states[n] = RUNNING;
      this.ran.push(n);
    }
    this.check();
    return claimed;
  }

  succeed(n: Name): void {
    expect(this.states[n]).toBe(RUNNING);
    const promoted = promotableSuccessors(this.dag, VID[n], stateOf(this.states));
    this.states[n] = SUCCEED;
    this.log.push(`${n} SUCCEED`);
    if (this.pipeline === PipelineState.RUNNING) {
      for (const id of promoted) this.states[NAME_OF_VERTEX.get(id)!] = PENDING;
      this.pipeline = pipelineStateAfterSuccess(NAMES.filter((x) => this.states[x] !== SUCCEED).length);
    }
    this.check();
  }

  fail(n: Name): void {
    expect(this.states[n]).toBe(RUNNING);
    this.states[n] = FAILED;
    this.log.push(`${n} FAILED`);
    this.pipeline = PipelineState.FAILED;
    this.apply(cancellationsAfterFailure(this.dag, { id: TID[n], vertexId: VID[n], name: n, state: FAILED }, views(this.states)));
    this.check();
  }

  retry(): void {
    this.apply(retryChanges(this.dag, views(this.states)));
    this.pipeline = PipelineState.RUNNING;
    this.check();
  }

  snapshot(): States {
    return { ...this.states };
  }
}

describe('whole run of the seed scenario', () => {
  it('all succeed: A and E first, B and C after A, D only after both, then FINISH', () => {
    const sim = new Simulation(seedDag);
    expect(sim.snapshot()).toEqual({ A: PENDING, B: WAITING, C: WAITING, D: WAITING, E: PENDING });

    expect(sim.claim()).toEqual(['A', 'E']);
    sim.succeed('A');
    expect(sim.snapshot()).toEqual({ A: SUCCEED, B: PENDING, C: PENDING, D: WAITING, E: RUNNING });
    expect(sim.claim()).toEqual(['B', 'C']);
    sim.succeed('B');
    expect(sim.states.D).toBe(WAITING);
    expect(sim.claim()).toEqual([]);
    sim.succeed('C');
    expect(sim.states.D).toBe(PENDING);
    expect(sim.pipeline).toBe(PipelineState.RUNNING);
    expect(sim.claim()).toEqual(['D']);
    sim.succeed('D');
    expect(sim.pipeline).toBe(PipelineState.RUNNING); // E is still running
    sim.succeed('E');
    expect(sim.pipeline).toBe(PipelineState.FINISH);
    expect(sim.snapshot()).toEqual({ A: SUCCEED, B: SUCCEED, C: SUCCEED, D: SUCCEED, E: SUCCEED });
    expect(sim.ran).toEqual(['A', 'E', 'B', 'C', 'D']);
  });

  it('C fails: pipeline FAILED, running B finishes, D never runs and is CANCELLED naming C; retry then finishes', () => {
    const sim = new Simulation(seedDag);
    sim.claim();
    sim.succeed('E');
    sim.succeed('A');
    expect(sim.claim()).toEqual(['B', 'C']);
    sim.fail('C');
    expect(sim.pipeline).toBe(PipelineState.FAILED);
    expect(sim.snapshot()).toEqual({ A: SUCCEED, B: RUNNING, C: FAILED, D: CANCELLED, E: SUCCEED });
    expect(sim.reasons.D).toBe('upstream C failed');

    // B's late success is recorded but revives nothing and does not finish the pipeline.
    sim.succeed('B');
    expect(sim.snapshot()).toEqual({ A: SUCCEED, B: SUCCEED, C: FAILED, D: CANCELLED, E: SUCCEED });
    expect(sim.pipeline).toBe(PipelineState.FAILED);
    expect(sim.claim()).toEqual([]);
    expect(sim.ran).not.toContain('D');
    // No track is left waiting forever.
    expect(Object.values(sim.states).filter((s) => s === WAITING || s === PENDING || s === RUNNING)).toEqual([]);

    sim.retry();
    expect(sim.snapshot()).toEqual({ A: SUCCEED, B: SUCCEED, C: PENDING, D: WAITING, E: SUCCEED });
    expect(sim.pipeline).toBe(PipelineState.RUNNING);
    expect(sim.claim()).toEqual(['C']);
    sim.succeed('C');
    expect(sim.claim()).toEqual(['D']);
    sim.succeed('D');
    expect(sim.pipeline).toBe(PipelineState.FINISH);
    expect(sim.ran).toEqual(['A', 'E', 'B', 'C', 'C', 'D']);
  });

  it('A fails: nothing else of the diamond runs; running E still finishes', () => {
    const sim = new Simulation(seedDag);
    sim.claim();
    sim.fail('A');
    expect(sim.snapshot()).toEqual({ A: FAILED, B: CANCELLED, C: CANCELLED, D: CANCELLED, E: RUNNING });
    expect(sim.reasons).toEqual({ B: 'upstream A failed', C: 'upstream A failed', D: 'upstream A failed' });
    sim.succeed('E');
    expect(sim.pipeline).toBe(PipelineState.FAILED);
    expect(sim.claim()).toEqual([]);
  });
});

describe('afterFailedAttempt (SPEC rule 13)', () => {
  const policy = { retries: 3, retryDelaySeconds: 10, retryBackoff: 2 };

  it.each([
    [0, { retry: true, retryNumber: 1, delaySeconds: 10 }],
    [1, { retry: true, retryNumber: 2, delaySeconds: 20 }],
    [2, { retry: true, retryNumber: 3, delaySeconds: 40 }],
    [3, { retry: false }],
  ])('with %i of 3 retries taken: %o', (taken, expected) => {
    expect(afterFailedAttempt(policy, taken, PipelineState.RUNNING)).toEqual(expected);
  });

  it('never retries without retries, or in a pipeline that no longer runs (failed by another track, cancelled)', () => {
    expect(afterFailedAttempt({ ...policy, retries: 0 }, 0, PipelineState.RUNNING)).toEqual({ retry: false });
    for (const state of [PipelineState.FAILED, PipelineState.CANCELLED, PipelineState.FINISH]) {
      expect(afterFailedAttempt(policy, 0, state)).toEqual({ retry: false });
    }
  });

  it('delays grow by the backoff and stop at an hour; a backoff of 1 keeps them equal; 0 s retries at once', () => {
    const ten = { retries: 10, retryDelaySeconds: 600, retryBackoff: 2 };
    expect([1, 2, 3, 4, 10].map((n) => retryDelaySeconds(ten, n))).toEqual([600, 1200, 2400, 3600, 3600]);
    expect([1, 2, 3].map((n) => retryDelaySeconds({ ...ten, retryBackoff: 1 }, n))).toEqual([600, 600, 600]);
    expect(retryDelaySeconds({ ...ten, retryDelaySeconds: 0 }, 5)).toBe(0);
    expect(retryDelaySeconds({ retries: 2, retryDelaySeconds: 3, retryBackoff: 1.5 }, 2)).toBe(4.5);
  });
});
