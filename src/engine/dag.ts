/**
 * The DAG itself: adjacency, start vertices, cycle detection and the checkGraph rules.
 * Pure: works on plain ids and names, never on the database.
 */
import { CycleError, ValidationError } from '../errors.ts';
import { requireRetries, requireRetryBackoff, requireRetryDelay } from './fields.ts';
import { parseInputSchema } from './inputs.ts';
import { requireRunIf } from './run-conditions.ts';
import { assertSafePlaceholders } from './template.ts';

export interface EdgeLike {
  tailId: number;
  headId: number;
}

export interface Dag {
  vertexIds: readonly number[];
  successors: ReadonlyMap<number, readonly number[]>;
  predecessors: ReadonlyMap<number, readonly number[]>;
}

export function buildDag(vertexIds: readonly number[], edges: readonly EdgeLike[]): Dag {
  const successors = new Map<number, number[]>(vertexIds.map((id) => [id, []]));
  const predecessors = new Map<number, number[]>(vertexIds.map((id) => [id, []]));
  for (const { tailId, headId } of edges) {
    successors.get(tailId)?.push(headId);
    predecessors.get(headId)?.push(tailId);
  }
  return { vertexIds, successors, predecessors };
}

/** Zero in-degree vertices: they start PENDING. Isolated vertices are among them. */
export function startVertices(dag: Dag): number[] {
  return dag.vertexIds.filter((id) => dag.predecessors.get(id)!.length === 0);
}

/** Every vertex reachable from `from` (not including it: the graph has no cycle). */
export function descendants(dag: Dag, from: number): Set<number> {
  return withDescendants(dag, dag.successors.get(from)!);
}

/** The `roots` and every vertex reachable from them: what a re-run from them runs again. */
export function withDescendants(dag: Dag, roots: Iterable<number>): Set<number> {
  const seen = new Set<number>();
  const stack = [...roots];
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    stack.push(...dag.successors.get(id)!);
  }
  return seen;
}

/**
 * Finds a cycle and returns its vertex ids in edge order with the first repeated last
 * (A -> B -> A), or null. Iterative, so a 10,000-vertex chain cannot overflow the stack.
 */
export function findCycle(dag: Dag): number[] | null {
  const WHITE = 0;
  const GREY = 1;
  const BLACK = 2;
  const colour = new Map<number, number>(dag.vertexIds.map((id) => [id, WHITE]));
  const parent = new Map<number, number>();
  for (const root of dag.vertexIds) {
    if (colour.get(root) !== WHITE) continue;
    const stack: Array<{ id: number; next: number }> = [{ id: root, next: 0 }];
    colour.set(root, GREY);
    while (stack.length > 0) {
      const frame = stack[stack.length - 1]!;
      const out = dag.successors.get(frame.id)!;
      if (frame.next >= out.length) {
        colour.set(frame.id, BLACK);
        stack.pop();
        continue;
      }
      const child = out[frame.next++]!;
      const c = colour.get(child);
      if (c === GREY) {
        const cycle = [child];
        for (let at = frame.id; at !== child; at = parent.get(at)!) cycle.push(at);
        cycle.push(child);
        return cycle.reverse();
      }
      if (c === WHITE) {
        colour.set(child, GREY);
        parent.set(child, frame.id);
        stack.push({ id: child, next: 0 });
      }
    }
  }
  return null;
}

export interface CheckableVertex {
  id: number;
  name: string;
  input: string;
  script: string;
  /** Its automatic retries (SPEC rule 13), when known. */
  retries?: number;
  retryDelaySeconds?: number;
  retryBackoff?: number;
  /** Its run condition (SPEC rule 19), when known. */
  runIf?: string;
}

/**
 * SPEC rule 2: at least one vertex, no cycle, every input schema valid; every
 * placeholder where its value is inert (SPEC rule 6); retries within their bounds (rule 13).
 * @throws ValidationError or CycleError naming what to fix.
 */
export function checkGraphDefinition(vertices: readonly CheckableVertex[], edges: readonly EdgeLike[]): void {
  if (vertices.length === 0) {
    throw new ValidationError('vertices', 'The graph has no vertices. Add at least one with addVertex.');
  }
  for (const vertex of vertices) {
    const schema = parseInputSchema(vertex.input, `vertices.${vertex.name}.inputs`);
    assertSafePlaceholders(vertex.script, new Set(schema.map((p) => p.name)), `vertices.${vertex.name}.script`);
    if (vertex.retries !== undefined) requireRetries(`vertices.${vertex.name}.retries`, vertex.retries);
    if (vertex.retryDelaySeconds !== undefined) requireRetryDelay(`vertices.${vertex.name}.retryDelaySeconds`, vertex.retryDelaySeconds);
    if (vertex.retryBackoff !== undefined) requireRetryBackoff(`vertices.${vertex.name}.retryBackoff`, vertex.retryBackoff);
    if (vertex.runIf !== undefined) requireRunIf(`vertices.${vertex.name}.runIf`, vertex.runIf);
  }
  const dag = buildDag(
    vertices.map((v) => v.id),
    edges,
  );
  const cycle = findCycle(dag);
  if (cycle) {
    const names = new Map(vertices.map((v) => [v.id, v.name]));
    throw new CycleError(cycle.map((id) => names.get(id)!));
  }
  // A handler runs after its predecessors ended: without any it would be decided at the start.
  const handler = vertices.find((v) => v.runIf !== undefined && v.runIf !== 'SUCCESS' && dag.predecessors.get(v.id)!.length === 0);
  if (handler) {
    throw new ValidationError(
      `vertices.${handler.name}.runIf`,
      `Vertex "${handler.name}" has runIf ${handler.runIf} but no predecessors: a handler runs after the steps it follows have ended. Add edges from the steps it should follow, or set runIf SUCCESS.`,
    );
  }
}
