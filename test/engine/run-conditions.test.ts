/**
 * Run conditions (SPEC rule 19), pure: the decisions on the seed scenario's DAG, and a
 * property test that plays the store's part on random DAGs with random conditions and
 * outcomes (and an operator's retry): every run ends with no track left waiting, in FINISH
 * exactly when nothing failed; a handler runs at most once per attempt and only when its
 * condition holds; a track is skipped only when its condition can no longer hold, cancelled
 * only by a failure, and never a handler.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildDag } from '../../src/engine/dag.ts';
import { decideSuccessors, decideWaiting, hasEnded, isHandler, requireRunIf, type PipelineView, type RunIf } from '../../src/engine/run-conditions.ts';
import { TrackState } from '../../src/engine/states.ts';
import { cancellationsAfterFailure, initialStates, retryChanges, type TrackView } from '../../src/engine/transitions.ts';
import { ValidationError } from '../../src/errors.ts';
import { fcSeed } from '../helpers/hostile.ts';
import { NAME_OF_VERTEX, NAMES, seedDag, VID, type Name } from '../helpers/seed-dag.ts';

const { WAITING, PENDING, RUNNING, SUCCEED, FAILED, CANCELLED, SKIPPED } = TrackState;

function seedView(states: Partial<Record<Name, TrackState>>, conditions: Partial<Record<Name, RunIf>>, failed: boolean): PipelineView {
  return {
    dag: seedDag,
    runIf: (v) => conditions[NAME_OF_VERTEX.get(v)!] ?? 'SUCCESS',
    name: (v) => NAME_OF_VERTEX.get(v)!,
    stateOf: (v) => states[NAME_OF_VERTEX.get(v)!] ?? WAITING,
    failed,
  };
}

const named = (decisions: ReturnType<typeof decideWaiting>) => decisions.map((d) => [NAME_OF_VERTEX.get(d.vertexId), d.to]);

describe('decisions on the seed DAG (A -> B, A -> C, B -> D, C -> D; E)', () => {
  it('SUCCESS is the seed rule: ready when every predecessor succeeded', () => {
    expect(named(decideSuccessors(seedView({ A: SUCCEED }, {}, false), [VID.A]))).toEqual([
      ['B', PENDING],
      ['C', PENDING],
    ]);
    expect(named(decideSuccessors(seedView({ A: SUCCEED, B: SUCCEED, C: RUNNING }, {}, false), [VID.B]))).toEqual([]);
  });

  it('a FAILURE handler waits for every predecessor to end, then runs if something failed, else is skipped', () => {
    const conditions = { D: 'FAILURE' as const };
    expect(named(decideSuccessors(seedView({ A: SUCCEED, B: SUCCEED, C: RUNNING }, conditions, false), [VID.B]))).toEqual([]);
    expect(named(decideSuccessors(seedView({ A: SUCCEED, B: SUCCEED, C: SUCCEED }, conditions, false), [VID.C]))).toEqual([['D', SKIPPED]]);
    expect(named(decideSuccessors(seedView({ A: SUCCEED, B: FAILED, C: SUCCEED }, conditions, true), [VID.C]))).toEqual([['D', PENDING]]);
    // Cancelled predecessors have ended too.
    expect(named(decideWaiting(seedView({ A: FAILED, B: CANCELLED, C: CANCELLED, E: CANCELLED }, conditions, true), [VID.D]))).toEqual([['D', PENDING]]);
  });

  it('ALWAYS runs once every predecessor ended, whatever the outcome', () => {
    const conditions = { D: 'ALWAYS' as const };
    expect(named(decideSuccessors(seedView({ A: SUCCEED, B: SUCCEED, C: SUCCEED }, conditions, false), [VID.C]))).toEqual([['D', PENDING]]);
    expect(named(decideSuccessors(seedView({ A: SUCCEED, B: FAILED, C: SUCCEED }, conditions, true), [VID.C]))).toEqual([['D', PENDING]]);
  });

  it('a skip cascades: SUCCESS below a skipped track is skipped, ALWAYS below it runs', () => {
    // B is a FAILURE handler after A; D (SUCCESS) needs B and C.
    const decisions = decideSuccessors(seedView({ A: SUCCEED }, { B: 'FAILURE' }, false), [VID.A]);
    expect(named(decisions)).toEqual([
      ['B', SKIPPED],
      ['C', PENDING],
      ['D', SKIPPED],
    ]);
    expect(decisions.find((d) => d.vertexId === VID.D)!.reason).toMatch(/predecessor B was skipped/);
    expect(named(decideSuccessors(seedView({ A: SUCCEED, C: SUCCEED }, { B: 'FAILURE', D: 'ALWAYS' }, false), [VID.C, VID.A]))).toEqual([
      ['B', SKIPPED],
      ['D', PENDING],
    ]);
  });

  it('after a failure only handlers are decided; the failure cancels everything else but them', () => {
    expect(named(decideSuccessors(seedView({ A: SUCCEED, B: SUCCEED }, {}, true), [VID.B]))).toEqual([]);
    const tracks: TrackView[] = NAMES.map((n) => ({ id: 100 + VID[n], vertexId: VID[n], name: n, state: n === 'A' ? FAILED : WAITING }));
    const handler = (v: number) => v === VID.D;
    const cancelled = cancellationsAfterFailure(seedDag, tracks[0]!, tracks, handler).map((c) => NAME_OF_VERTEX.get(c.trackId - 100));
    expect(cancelled).toEqual(['B', 'C', 'E']);
  });

  it('validates runIf', () => {
    expect(requireRunIf('runIf', 'ALWAYS')).toBe('ALWAYS');
    expect(() => requireRunIf('vertices.3.runIf', 'sometimes')).toThrow(ValidationError);
    expect(isHandler('SUCCESS')).toBe(false);
    expect(isHandler('FAILURE') && isHandler('ALWAYS')).toBe(true);
  });
});

interface Scenario {
  size: number;
  edges: Array<[number, number]>;
  conditions: RunIf[];
  /** outcomes[round][i]: does track i succeed in that round (attempt)? */
  outcomes: boolean[][];
  choices: number[];
}

/** Plays the store (executions.ts, pipelines.ts) with the engine's decisions; checks every step. */
function simulate(scenario: Scenario): void {
  const ids = Array.from({ length: scenario.size }, (_, i) => i + 1);
  const dag = buildDag(
    ids,
    scenario.edges.map(([t, h]) => ({ tailId: t + 1, headId: h + 1 })),
  );
  // A handler needs predecessors (checkGraph refuses one without).
  const runIf = (v: number): RunIf => (dag.predecessors.get(v)!.length === 0 ? 'SUCCESS' : scenario.conditions[v - 1]!);
  const handler = (v: number) => isHandler(runIf(v));
  const state = new Map<number, TrackState>(initialStates(dag));
  const attempt = new Map(ids.map((v) => [v, 1]));
  const ran = new Set<string>();
  let pipeline: 'RUNNING' | 'FAILED' | 'FINISH' = 'RUNNING';
  let running: number[] = [];
  let choice = 0;
  const choose = (n: number) => (scenario.choices[choice++ % scenario.choices.length]! + Math.floor(choice / scenario.choices.length)) % n;
  const anyFailed = () => ids.some((v) => state.get(v) === FAILED);
  const view = (): PipelineView => ({ dag, runIf, name: String, stateOf: (v) => state.get(v), failed: pipeline === 'FAILED' });
  const check = (decisions: ReturnType<typeof decideWaiting>) => {
    for (const d of decisions) {
      const preds = dag.predecessors.get(d.vertexId)!.map((p) => state.get(p));
      if (d.to === SKIPPED) {
        if (runIf(d.vertexId) === 'SUCCESS') expect(preds).toContain(SKIPPED);
        else expect(runIf(d.vertexId) === 'FAILURE' && !anyFailed() && preds.every(hasEnded)).toBe(true);
      }
      state.set(d.vertexId, d.to);
    }
  };
  let rounds = 0;
  for (let step = 0; step < 10_000; step++) {
    // Claim every PENDING track (RUNNING pipeline, or FAILED for handlers).
    for (const v of ids.filter((id) => state.get(id) === PENDING)) {
      expect(pipeline === 'RUNNING' || handler(v), `v${v} claimed in a ${pipeline} pipeline`).toBe(true);
      const preds = dag.predecessors.get(v)!.map((p) => state.get(p)!);
      if (runIf(v) === 'SUCCESS') expect(preds.every((s) => s === SUCCEED)).toBe(true);
      else expect(preds.every(hasEnded)).toBe(true);
      if (runIf(v) === 'FAILURE') expect(anyFailed()).toBe(true);
      const key = `${v}@${attempt.get(v)}`;
      expect(ran.has(key), `v${v} ran twice in attempt ${attempt.get(v)}`).toBe(false);
      ran.add(key);
      state.set(v, RUNNING);
      running.push(v);
    }
    if (running.length === 0) {
      // Nothing runs, nothing is claimable: the run has ended.
      for (const v of ids) expect([SUCCEED, FAILED, CANCELLED, SKIPPED], `v${v} left ${state.get(v)}`).toContain(state.get(v));
      expect(pipeline).toBe(anyFailed() ? 'FAILED' : 'FINISH');
      for (const v of ids.filter((id) => state.get(id) === CANCELLED)) expect(handler(v)).toBe(false);
      if (pipeline === 'FINISH' || rounds >= 2) return;
      // An operator retries the failed pipeline, as retryPipeline does.
      rounds++;
      const back = retryChanges(dag, ids.map((v) => ({ id: v, vertexId: v, name: String(v), state: state.get(v)! })), [], handler);
      for (const change of back) {
        state.set(change.trackId, change.to);
        attempt.set(change.trackId, attempt.get(change.trackId)! + 1);
      }
      pipeline = 'RUNNING';
      check(decideWaiting(view(), ids.filter((v) => state.get(v) === WAITING)));
      if (ids.every((v) => state.get(v) === SUCCEED || state.get(v) === SKIPPED)) pipeline = 'FINISH';
      continue;
    }
    const v = running.splice(choose(running.length), 1)[0]!;
    const round = Math.min(attempt.get(v)! - 1, scenario.outcomes.length - 1);
    const succeeds = scenario.outcomes[round]?.[v - 1] ?? true;
    state.set(v, succeeds ? SUCCEED : FAILED);
    if (succeeds) {
      if (pipeline !== 'FINISH') check(decideSuccessors(view(), [v]));
    } else if (pipeline === 'RUNNING') {
      pipeline = 'FAILED';
      const tracks = ids.map((id) => ({ id, vertexId: id, name: String(id), state: state.get(id)! }));
      for (const change of cancellationsAfterFailure(dag, tracks[v - 1]!, tracks, handler)) state.set(change.trackId, change.to);
      check(decideWaiting(view(), ids.filter((id) => state.get(id) === WAITING)));
    } else {
      check(decideSuccessors(view(), [v]));
    }
    if (pipeline === 'RUNNING' && ids.every((id) => state.get(id) === SUCCEED || state.get(id) === SKIPPED)) pipeline = 'FINISH';
  }
  throw new Error('the simulation does not end');
}

describe('run conditions on random DAGs (property)', () => {
  const scenario: fc.Arbitrary<Scenario> = fc.integer({ min: 1, max: 9 }).chain((size) =>
    fc.record({
      size: fc.constant(size),
      // Pairs ordered tail < head (acyclic by construction), without repeats.
      edges: fc
        .array(fc.tuple(fc.nat(size - 1), fc.nat(size - 1)), { maxLength: size * 2 })
        .map((pairs) => [...new Map(pairs.filter(([a, b]) => a !== b).map(([a, b]) => [`${Math.min(a, b)}-${Math.max(a, b)}`, [Math.min(a, b), Math.max(a, b)] as [number, number]])).values()]),
      conditions: fc.array(fc.constantFrom<RunIf>('SUCCESS', 'SUCCESS', 'FAILURE', 'ALWAYS'), { minLength: size, maxLength: size }),
      outcomes: fc.array(fc.array(fc.boolean(), { minLength: size, maxLength: size }), { minLength: 1, maxLength: 3 }),
      choices: fc.array(fc.nat(100), { minLength: 1, maxLength: 20 }),
    }),
  );

  it('ends every run with nothing waiting, FINISH exactly when nothing failed, each handler at most once per attempt', () => {
    fc.assert(fc.property(scenario, simulate), { seed: fcSeed('test/engine/run-conditions.test.ts'), numRuns: 2000 });
  });
});
