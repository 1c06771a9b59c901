/**
 * The DAG itself: adjacency, start vertices, cycle detection and the checkGraph rules.
 * Pure: works on plain ids and names, never on the database.
 */
import { CycleError, ValidationError } from '../errors.ts';
import { requireRetries, requireRetryBackoff, requireRetryDelay } from './fields.ts';
import { parseFromReference, parseInputSchema, type InputSchema } from './inputs.ts';
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
  return reachable(dag.successors, roots);
}

/** The `roots` and every vertex reached from them along `next`; iterative, for long chains. */
function reachable(next: ReadonlyMap<number, readonly number[]>, roots: Iterable<number>): Set<number> {
  const seen = new Set<number>();
  const stack = [...roots];
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    stack.push(...next.get(id)!);
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

/** Every vertex from which `to` can be reached: the steps that have run when it starts. */
export function ancestors(dag: Dag, to: number): Set<number> {
  return reachable(dag.predecessors, dag.predecessors.get(to)!);
}

/** A vertex as the `from` check needs it: its id in `dag` and its parsed inputs. */
export interface VertexInputs {
  id: number;
  name: string;
  schema: InputSchema;
}

/**
 * SPEC rule 18: every input's `from` names an output of an ancestor (a step that has
 * succeeded whenever this one starts), and an output read by a secret input is read only
 * by secret inputs (otherwise one of them would show what the other hides).
 * @param fieldOf the argument path of a vertex's parameter, e.g. "vertices.health.inputs.port".
 * @throws ValidationError naming the parameter's `from` (or `secret`).
 */
export function checkFromReferences(vertices: readonly VertexInputs[], dag: Dag, fieldOf: (vertex: VertexInputs, param: string) => string): void {
  const byName = new Map(vertices.map((v) => [v.name, v]));
  const secretReader = new Map<string, string>();
  for (const vertex of vertices) {
    for (const spec of vertex.schema) if (spec.from !== undefined && spec.secret) secretReader.set(spec.from, fieldOf(vertex, spec.name));
  }
  for (const vertex of vertices) {
    const readers = vertex.schema.filter((spec) => spec.from !== undefined);
    if (readers.length === 0) continue;
    const before = ancestors(dag, vertex.id);
    for (const spec of readers) {
      const field = `${fieldOf(vertex, spec.name)}.from`;
      const ref = parseFromReference(spec.from!)!;
      const source = byName.get(ref.vertex);
      if (!source) {
        throw new ValidationError(field, `No step named "${ref.vertex}" is in this graph. from names an output of a step that runs before "${vertex.name}", as "<vertex>.<output>".`);
      }
      if (source.id === vertex.id) {
        throw new ValidationError(field, `Step "${vertex.name}" cannot read its own outputs: from names an output of a step that runs before it.`);
      }
      if (!before.has(source.id)) {
        throw new ValidationError(
          field,
          `Step "${ref.vertex}" is not an ancestor of "${vertex.name}" (no path of edges leads from it to "${vertex.name}"), so its outputs are not there when "${vertex.name}" starts. Add edges so that "${ref.vertex}" runs before "${vertex.name}", or read another step's output.`,
        );
      }
      const secret = secretReader.get(spec.from!);
      if (!spec.secret && secret !== undefined) {
        throw new ValidationError(
          `${fieldOf(vertex, spec.name)}.secret`,
          `The output ${spec.from} is read by the secret input ${secret} too. Mark this input secret as well, or it would show the value the other one hides.`,
        );
      }
    }
  }
}

/**
 * SPEC rule 2: at least one vertex, no cycle, every input schema valid; every
 * placeholder where its value is inert (SPEC rule 6); retries within their bounds (rule 13);
 * every `from` an ancestor's output (rule 18).
 * @throws ValidationError or CycleError naming what to fix.
 */
export function checkGraphDefinition(vertices: readonly CheckableVertex[], edges: readonly EdgeLike[]): void {
  if (vertices.length === 0) {
    throw new ValidationError('vertices', 'The graph has no vertices. Add at least one with addVertex.');
  }
  const schemas: VertexInputs[] = [];
  for (const vertex of vertices) {
    const schema = parseInputSchema(vertex.input, `vertices.${vertex.name}.inputs`);
    schemas.push({ id: vertex.id, name: vertex.name, schema });
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
  checkFromReferences(schemas, dag, (vertex, param) => `vertices.${vertex.name}.inputs.${param}`);
}
