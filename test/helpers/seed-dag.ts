/**
 * The SPEC seed scenario's graph for pure engine tests: A -> B, A -> C, B -> D, C -> D, and
 * an isolated E. Vertex ids and track ids differ on purpose, so that a test catches code
 * that mixes them up.
 */
import { buildDag, type Dag } from '../../src/engine/dag.ts';
import type { TrackState } from '../../src/engine/states.ts';
import type { TrackView } from '../../src/engine/transitions.ts';

export type Name = 'A' | 'B' | 'C' | 'D' | 'E';
export const NAMES: Name[] = ['A', 'B', 'C', 'D', 'E'];
export const VID: Record<Name, number> = { A: 11, B: 12, C: 13, D: 14, E: 15 };
export const TID: Record<Name, number> = { A: 101, B: 102, C: 103, D: 104, E: 105 };
export const NAME_OF_VERTEX = new Map(NAMES.map((n) => [VID[n], n]));
export const NAME_OF_TRACK = new Map(NAMES.map((n) => [TID[n], n]));

export const seedDag: Dag = buildDag(
  NAMES.map((n) => VID[n]),
  [
    { tailId: VID.A, headId: VID.B },
    { tailId: VID.A, headId: VID.C },
    { tailId: VID.B, headId: VID.D },
    { tailId: VID.C, headId: VID.D },
  ],
);

export type States = Record<Name, TrackState>;

/** The pipeline's tracks in these states, as the transitions see them. */
export function views(states: States): TrackView[] {
  return NAMES.map((n) => ({ id: TID[n], vertexId: VID[n], name: n, state: states[n] }));
}
