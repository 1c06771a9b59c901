/**
 * Re-run from a step (SPEC rule 17), pure: retryChanges with `from` and rerunVertexIds.
 * Table tests on the seed scenario (A -> B, A -> C, B -> D, C -> D, isolated E), then
 * properties on random DAGs (fast-check): exactly the named vertices, their descendants and
 * the failed and cancelled tracks go back, each PENDING iff its predecessors stay
 * succeeded; running the re-run with every script succeeding then reaches FINISH, each
 * re-run track run once, in dependency order.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConflictError, ValidationError } from '../../src/errors.ts';
import { buildDag, withDescendants } from '../../src/engine/dag.ts';
import { NAME_OF_TRACK, NAMES, seedDag, VID, views, type Name, type States } from '../helpers/seed-dag.ts';
import { PipelineState, TrackState } from '../../src/engine/states.ts';
import { pipelineStateAfterSuccess, promotableSuccessors, rerunVertexIds, retryChanges, type TrackView } from '../../src/engine/transitions.ts';
import { fcSeed } from '../helpers/hostile.ts';

const seed = fcSeed('test/engine/rerun.test.ts');
const { WAITING, PENDING, RUNNING, SUCCEED, FAILED, CANCELLED } = TrackState;

const VERTICES = NAMES.map((name) => ({ id: VID[name], name }));
const allSucceeded = { A: SUCCEED, B: SUCCEED, C: SUCCEED, D: SUCCEED, E: SUCCEED };

/** retryChanges from the named vertices, as { track name: new state }. */
function rerun(states: States, from: Name[]) {
  const changes = retryChanges(seedDag, views(states), rerunVertexIds(from, VERTICES));
  return Object.fromEntries(changes.map((c) => [NAME_OF_TRACK.get(c.trackId)!, c.to]));
}

describe('withDescendants', () => {
  it('is the roots and everything below them', () => {
    const names = (ids: Set<number>) => NAMES.filter((n) => ids.has(VID[n]));
    expect(names(withDescendants(seedDag, [VID.B]))).toEqual(['B', 'D']);
    expect(names(withDescendants(seedDag, [VID.A]))).toEqual(['A', 'B', 'C', 'D']);
    expect(names(withDescendants(seedDag, [VID.C, VID.E]))).toEqual(['C', 'D', 'E']);
    expect(names(withDescendants(seedDag, []))).toEqual([]);
  });
});

describe('retryChanges from named vertices', () => {
  it('a FINISH pipeline re-run from B: B (its predecessor A kept) PENDING, D WAITING for B; A, C, E kept', () => {
    expect(rerun(allSucceeded, ['B'])).toEqual({ B: PENDING, D: WAITING });
  });

  it('from A: the whole diamond, only A ready; E kept', () => {
    expect(rerun(allSucceeded, ['A'])).toEqual({ A: PENDING, B: WAITING, C: WAITING, D: WAITING });
  });

  it('from D, a sink: only D, ready at once', () => {
    expect(rerun(allSucceeded, ['D'])).toEqual({ D: PENDING });
  });

  it('from several, repeated or overlapping names: each track once', () => {
    expect(rerun(allSucceeded, ['D', 'B', 'B', 'E'])).toEqual({ B: PENDING, D: WAITING, E: PENDING });
    expect(rerunVertexIds(['D', 'B', 'B'], VERTICES)).toEqual([VID.D, VID.B]);
  });

  it('a FAILED pipeline re-run from E also puts its failed and cancelled tracks back (D could never run after a FAILED C)', () => {
    const failed = { A: SUCCEED, B: SUCCEED, C: FAILED, D: CANCELLED, E: SUCCEED };
    expect(rerun(failed, ['E'])).toEqual({ C: PENDING, D: WAITING, E: PENDING });
    // From B: B and D, and C as a retry would; D waits for both.
    expect(rerun(failed, ['B'])).toEqual({ B: PENDING, C: PENDING, D: WAITING });
  });

  it('without from it is the plain retry: failed and cancelled only', () => {
    const failed = { A: SUCCEED, B: SUCCEED, C: FAILED, D: CANCELLED, E: CANCELLED };
    const changes = retryChanges(seedDag, views(failed));
    expect(Object.fromEntries(changes.map((c) => [NAME_OF_TRACK.get(c.trackId)!, c.to]))).toEqual({ C: PENDING, D: WAITING, E: PENDING });
    expect(retryChanges(seedDag, views(allSucceeded))).toEqual([]);
  });

  it('refuses to re-run a track still RUNNING (a FAILED pipeline lets it finish), naming from and the track', () => {
    const running = { A: SUCCEED, B: RUNNING, C: FAILED, D: CANCELLED, E: SUCCEED };
    expect(() => rerun(running, ['A'])).toThrow(ConflictError);
    expect(() => rerun(running, ['A'])).toThrow(/Track "B" is still RUNNING/);
    try {
      rerun(running, ['A']);
    } catch (error) {
      expect((error as ConflictError).field).toBe('from');
    }
    // A running track outside the re-run is left to finish.
    expect(rerun(running, ['E'])).toEqual({ C: PENDING, D: WAITING, E: PENDING });
  });
});

describe('rerunVertexIds', () => {
  it.each([
    [[], /from lists no vertex/],
    [['B', 'nope'], /has no vertex named "nope"\. Its vertices: "A", "B", "C", "D", "E"\./],
    [['x', 'y'], /has no vertex named "x", "y"/],
    [['b'], /has no vertex named "b"/],
  ])('%j is a ValidationError naming from', (names, message) => {
    expect(() => rerunVertexIds(names, VERTICES)).toThrow(message);
    try {
      rerunVertexIds(names, VERTICES);
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).field).toBe('from');
    }
  });

  it('lists at most 20 vertices in the message', () => {
    const many = Array.from({ length: 30 }, (_, i) => ({ id: i + 1, name: `v${i + 1}` }));
    expect(() => rerunVertexIds(['zz'], many)).toThrow(/"v20" and 10 more\.$/);
  });
});

// ---------------------------------------------------------------------------------------
// Properties on random DAGs
// ---------------------------------------------------------------------------------------

/** Reference: the vertices reachable from `roots` (roots included), by index. */
function reachable(edges: Array<[number, number]>, roots: number[]): Set<number> {
  const seen = new Set<number>();
  const stack = [...roots];
  while (stack.length > 0) {
    const at = stack.pop()!;
    if (seen.has(at)) continue;
    seen.add(at);
    for (const [tail, head] of edges) if (tail === at) stack.push(head);
  }
  return seen;
}

/** An ended pipeline: a DAG, each track SUCCEED, FAILED or CANCELLED, and vertices to re-run from. */
const endedRun = fc.integer({ min: 1, max: 12 }).chain((n) => {
  const pairs: Array<[number, number]> = [];
  for (let t = 0; t < n; t++) for (let h = t + 1; h < n; h++) pairs.push([t, h]);
  return fc.record({
    n: fc.constant(n),
    ids: fc.uniqueArray(fc.integer({ min: 1, max: 100_000 }), { minLength: n, maxLength: n }),
    edges: fc.subarray(pairs),
    states: fc.array(fc.constantFrom<TrackState>(SUCCEED, SUCCEED, FAILED, CANCELLED), { minLength: n, maxLength: n }),
    from: fc.uniqueArray(fc.nat({ max: n - 1 }), { minLength: 1, maxLength: n }),
  });
});

describe('re-run on random DAGs', () => {
  it('puts back exactly from, the failed and cancelled tracks, and their descendants; each PENDING iff its predecessors stay succeeded', () => {
    fc.assert(
      fc.property(endedRun, ({ n, ids, edges, states, from }) => {
        const dag = buildDag(
          ids,
          edges.map(([t, h]) => ({ tailId: ids[t]!, headId: ids[h]! })),
        );
        const tracks = ids.map((vertexId, i) => ({ id: vertexId + 1_000_000, vertexId, name: `v${i}`, state: states[i]! }));
        const changes = retryChanges(dag, tracks, from.map((i) => ids[i]!));
        // Everything below a track that did not succeed goes back too: in a real run only a
        // handler (SPEC rule 19) can have succeeded there, and it must be decided anew.
        const notSucceeded = [...Array(n).keys()].filter((i) => states[i] !== SUCCEED);
        const expected = new Set([...reachable(edges, [...from, ...notSucceeded])].concat(notSucceeded));
        const changed = new Map(changes.map((c) => [c.trackId - 1_000_000, c.to]));
        expect(changes).toHaveLength(changed.size);
        expect(new Set([...changed.keys()].map((v) => ids.indexOf(v)))).toEqual(expected);
        for (const [vertexId, to] of changed) {
          const i = ids.indexOf(vertexId);
          const predecessors = edges.filter(([, h]) => h === i).map(([t]) => t);
          const ready = predecessors.every((p) => !expected.has(p) && states[p] === SUCCEED);
          expect(to).toBe(ready ? PENDING : WAITING);
        }
      }),
      { seed, numRuns: 300 },
    );
  });

  it('then, with every script succeeding, runs each re-run track once after its predecessors and reaches FINISH', () => {
    fc.assert(
      fc.property(endedRun, fc.array(fc.nat(), { minLength: 1, maxLength: 50 }), ({ ids, edges, states, from }, choices) => {
        const dag = buildDag(
          ids,
          edges.map(([t, h]) => ({ tailId: ids[t]!, headId: ids[h]! })),
        );
        const state = new Map(ids.map((id, i) => [id, states[i]!]));
        const tracks = ids.map((vertexId, i) => ({ id: vertexId, vertexId, name: `v${i}`, state: states[i]! }));
        const changes = retryChanges(dag, tracks, from.map((i) => ids[i]!));
        for (const change of changes) state.set(change.trackId, change.to);
        const toRun = new Set(changes.map((c) => c.trackId));
        const ran: number[] = [];
        let pipeline: PipelineState = PipelineState.RUNNING;
        for (let step = 0; pipeline === PipelineState.RUNNING; step++) {
          const pending = ids.filter((id) => state.get(id) === PENDING);
          // Never stuck: something is ready while the pipeline runs.
          expect(pending.length, `stuck after ${ran.length} run(s)`).toBeGreaterThan(0);
          const next = pending[choices[step % choices.length]! % pending.length]!;
          for (const p of dag.predecessors.get(next)!) expect(state.get(p)).toBe(SUCCEED);
          state.set(next, SUCCEED);
          ran.push(next);
          for (const successor of promotableSuccessors(dag, next, (id) => state.get(id))) state.set(successor, PENDING);
          pipeline = pipelineStateAfterSuccess(ids.filter((id) => state.get(id) !== SUCCEED).length);
        }
        expect(pipeline).toBe(PipelineState.FINISH);
        expect([...ran].sort((a, b) => a - b)).toEqual([...toRun].sort((a, b) => a - b));
      }),
      { seed, numRuns: 300 },
    );
  });
});
