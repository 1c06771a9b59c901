/**
 * Graph definitions (SPEC rules 1-3): every edit validates first, runs in a transaction
 * guarded by "the graph is not sealed", and resets `checked`.
 */
import { buildDag, checkFromReferences, checkGraphDefinition, findCycle } from '../engine/dag.ts';
import {
  LIMITS,
  optionalText,
  requireName,
  requireRetries,
  requireRetryBackoff,
  requireRetryDelay,
  requireScript,
  requireTimeout,
} from '../engine/fields.ts';
import { parseFromReference, parseInputSchema, serializeInputSchema } from '../engine/inputs.ts';
import { requireRunIf, type RunIf } from '../engine/run-conditions.ts';
import { assertSafePlaceholders } from '../engine/template.ts';
import { ConflictError, CycleError, NotFoundError, ValidationError, withinField } from '../errors.ts';
import type { Db } from '../db.ts';
import { requireConcurrencyLimit } from '../engine/concurrency.ts';
import { Prisma } from '../generated/prisma/client.ts';
import { DEFAULT_RETRY_POLICY } from '../engine/retry-policy.ts';
import { releaseQueued } from './concurrency.ts';
import { syncSchedules, validateScheduleDefinitions, type ScheduleDefinition } from './schedules.ts';
import { transition, type Store, type Tx } from './transaction.ts';

export interface GraphInput {
  name?: string | null;
  desc?: string | null;
  /** SPEC rule 14; null removes the limit, undefined leaves it. */
  maxConcurrentPipelines?: number | null;
}

export interface VertexInput {
  name?: string | null;
  script?: string | null;
  /** Parameter name -> spec, in the seed's JSON shape. */
  inputs?: Record<string, unknown> | null;
  timeoutSeconds?: number | null;
  /** Automatic retries (SPEC rule 13). */
  retries?: number | null;
  retryDelaySeconds?: number | null;
  retryBackoff?: number | null;
  /** SPEC rule 19. */
  runIf?: string | null;
}

/** Maps a unique-constraint race (two requests at once) to the same error a check gives. */
async function uniquely<T>(field: string, message: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') {
      throw new ConflictError(field, message);
    }
    throw error;
  }
}

/**
 * Locks the graph for an edit: resets `checked` only if the graph exists and is not
 * sealed, in the same statement, so a concurrent start cannot slip in between.
 */
async function beginEdit(tx: Tx, graphId: number, field: string): Promise<void> {
  const { count } = await tx.graph.updateMany({ where: { id: graphId, sealed: false }, data: { checked: false } });
  if (count === 1) return;
  const graph = await tx.graph.findUnique({ where: { id: graphId }, select: { name: true } });
  if (!graph) throw new NotFoundError(field, 'graph', graphId);
  throw new ConflictError(
    field,
    `Graph "${graph.name}" is sealed because a pipeline ran from it. Use cloneGraph to make an editable copy.`,
  );
}

async function vertexOf(tx: Tx, vertexId: number, field: string) {
  const vertex = await tx.vertex.findUnique({ where: { id: vertexId } });
  if (!vertex) throw new NotFoundError(field, 'vertex', vertexId);
  return vertex;
}

function duplicateGraphName(name: string) {
  return `A graph named "${name}" already exists. Choose another name.`;
}

/** An edge given by vertex names, when a whole graph is created at once. */
export interface EdgeByName {
  tail: string;
  head: string;
}

/** A whole graph as createGraph and definition files give it. */
export interface WholeGraphInput {
  name: string;
  desc?: string | null;
  /** SPEC rule 14 (default: no limit). */
  maxConcurrentPipelines?: number | null;
  vertices?: readonly VertexInput[] | null;
  edges?: readonly EdgeByName[] | null;
  /** Schedules that start it (a definition file's). */
  schedules?: readonly ScheduleDefinition[] | null;
}

/**
 * Creates a graph, optionally with its vertices and edges (by vertex name) and schedules in
 * the same transaction, validated exactly as addVertex, addEdge and createSchedule would.
 */
export async function createGraph(db: Db, input: WholeGraphInput) {
  const name = requireName('name', input.name, LIMITS.graphName);
  const desc = optionalText('desc', input.desc, LIMITS.graphDesc);
  const maxConcurrentPipelines = requireConcurrencyLimit('maxConcurrentPipelines', input.maxConcurrentPipelines ?? null);
  const vertices = validateVertices(input.vertices ?? []);
  const index = new Map<string, number>();
  vertices.forEach((vertex, i) => {
    if (index.has(vertex.name)) throw new ConflictError(`vertices.${i}.name`, duplicateVertexName(vertex.name));
    index.set(vertex.name, i);
  });
  const edges = (input.edges ?? []).map((edge, i) => {
    const tail = index.get(edge.tail);
    const head = index.get(edge.head);
    if (tail === undefined) throw new ValidationError(`edges.${i}.tail`, `No vertex named "${edge.tail}" is in this graph.`);
    if (head === undefined) throw new ValidationError(`edges.${i}.head`, `No vertex named "${edge.head}" is in this graph.`);
    if (tail === head) throw new ValidationError(`edges.${i}.head`, 'An edge cannot join a vertex to itself (a self-loop would never run).');
    return { tailId: tail, headId: head };
  });
  const seen = new Set<string>();
  edges.forEach((edge, i) => {
    const key = `${edge.tailId}->${edge.headId}`;
    if (seen.has(key)) throw new ConflictError(`edges.${i}.head`, `The edge ${input.edges![i]!.tail} -> ${input.edges![i]!.head} is given twice.`);
    seen.add(key);
  });
  const dag = buildDag(
    vertices.map((_, i) => i),
    edges,
  );
  const cycle = findCycle(dag);
  if (cycle) throw new CycleError(cycle.map((i) => vertices[i]!.name));
  const schedules = input.schedules ?? [];
  const validatedSchedules = validateScheduleDefinitions(schedules, {
    graphName: name,
    vertices: vertices.map((v, i) => ({ id: i, name: v.name, input: v.input ?? '{}', script: v.script ?? '' })),
  });
  // The whole graph is here: every from can be checked now, as checkGraph will (SPEC rule 18).
  checkFromReferences(
    vertices.map((vertex, i) => ({ id: i, name: vertex.name, schema: parseInputSchema(vertex.input ?? '{}', `vertices.${i}.inputs`) })),
    dag,
    (vertex, param) => `vertices.${vertex.id}.inputs.${param}`,
  );
  return uniquely('name', duplicateGraphName(name), () =>
    db.$transaction(async (tx) => {
      const graph = await tx.graph.create({ data: { name, desc, maxConcurrentPipelines } });
      if (schedules.length > 0) await syncSchedules(tx, graph.id, schedules, validatedSchedules);
      if (vertices.length === 0) return graph;
      const created = await tx.vertex.createManyAndReturn({
        data: vertices.map((vertex) => ({ ...vertex, graphId: graph.id })),
        select: { id: true, name: true },
      });
      const idOf = new Map(created.map((v) => [v.name, v.id]));
      await tx.edge.createMany({
        data: edges.map((edge) => ({
          graphId: graph.id,
          tailId: idOf.get(vertices[edge.tailId]!.name)!,
          headId: idOf.get(vertices[edge.headId]!.name)!,
        })),
      });
      return graph;
    }),
  );
}

function validateVertices(vertices: readonly VertexInput[]) {
  return vertices.map((vertex, i) =>
    withinField(`vertices.${i}`, () => {
      const data = validateVertex(vertex, true);
      checkPlaceholders(data.script ?? '', data.input ?? '{}', data.name);
      return { ...data, name: data.name! };
    }),
  );
}

/** The vertex defaults the schema gives a field that was not set. */
const VERTEX_DEFAULTS = { script: '', input: '{}', timeoutSeconds: 3600, ...DEFAULT_RETRY_POLICY, runIf: 'SUCCESS' };

/**
 * How a definition differs from a stored graph (desc, vertices in order with every field,
 * edges), in words; null when it is the same graph. The definition is validated as
 * createGraph validates it.
 */
export async function graphDifference(tx: Tx, graphId: number, input: WholeGraphInput): Promise<string | null> {
  const graph = await tx.graph.findUniqueOrThrow({
    where: { id: graphId },
    include: { vertices: { orderBy: { id: 'asc' } }, edges: { include: { tail: true, head: true } } },
  });
  if (optionalText('desc', input.desc, LIMITS.graphDesc) !== graph.desc) return 'its desc differs';
  const given = validateVertices(input.vertices ?? []).map((v) => ({ ...VERTEX_DEFAULTS, ...v }));
  if (given.length !== graph.vertices.length) return `it has ${given.length} vertices, the graph ${graph.vertices.length}`;
  for (const [i, vertex] of given.entries()) {
    const stored = graph.vertices[i]!;
    const field = (Object.keys(VERTEX_DEFAULTS) as Array<keyof typeof VERTEX_DEFAULTS>).find((key) => vertex[key] !== stored[key]);
    if (vertex.name !== stored.name) return `vertex ${i + 1} is "${vertex.name}" in the definition, "${stored.name}" in the graph`;
    if (field) return `vertex "${vertex.name}" has another ${field === 'input' ? 'inputs' : field}`;
  }
  const key = (tail: string, head: string) => `${tail} -> ${head}`;
  const storedEdges = new Set(graph.edges.map((e) => key(e.tail.name, e.head.name)));
  const givenEdges = new Set((input.edges ?? []).map((e) => key(e.tail, e.head)));
  const extra = [...givenEdges].find((e) => !storedEdges.has(e)) ?? [...storedEdges].find((e) => !givenEdges.has(e));
  return extra === undefined ? null : `the edge ${extra} is in one but not the other`;
}

/**
 * importGraph: creates the graph of a definition, with its schedules. With `updateSchedules`,
 * a graph of that name that exists already is not refused when it is that very graph (the
 * same desc, vertices and edges) and the definition has a `schedules` key: its schedules are
 * made to match the definition's (created, changed, deleted by name), and nothing else
 * changes. Returns the graph and whether any schedule changed.
 */
export async function importDefinition(db: Db, input: WholeGraphInput, updateSchedules: boolean) {
  if (updateSchedules && input.schedules != null) {
    const existing = await db.graph.findUnique({ where: { name: input.name.trim() } });
    if (existing) {
      const schedules = input.schedules;
      const changes = await db.$transaction(async (tx) => {
        const difference = await graphDifference(tx, existing.id, input);
        if (difference !== null) {
          throw new ConflictError(
            'name',
            `${duplicateGraphName(existing.name)} Only its schedules could be updated, but the definition is not the same graph: ${difference}. A graph never changes once defined: import this one under another name (a new version).`,
          );
        }
        const vertices = await tx.vertex.findMany({ where: { graphId: existing.id }, orderBy: { id: 'asc' } });
        const stored = await tx.schedule.findMany({ where: { graphId: existing.id }, select: { name: true, inputs: true } });
        const validated = validateScheduleDefinitions(schedules, { graphName: existing.name, vertices }, new Map(stored.map((s) => [s.name, s.inputs])));
        return syncSchedules(tx, existing.id, schedules, validated);
      });
      const changed = changes.created.length + changes.updated.length + changes.deleted.length > 0;
      return { graph: existing, schedulesChanged: changed };
    }
  }
  const graph = await createGraph(db, input);
  return { graph, schedulesChanged: (input.schedules?.length ?? 0) > 0 };
}

/**
 * Renames or re-describes an unsealed graph, and sets its concurrency limit (SPEC rule 14),
 * which a sealed graph may change too: it says how many runs go at once, not what runs, so it
 * neither resets `checked` nor needs a clone. A raised or removed limit starts queued
 * pipelines at once, in the same transaction.
 */
export async function updateGraph(store: Store, graphId: number, input: GraphInput) {
  const data: Prisma.GraphUpdateInput = {};
  if (input.name != null) data.name = requireName('name', input.name, LIMITS.graphName);
  if (input.desc !== undefined) data.desc = optionalText('desc', input.desc, LIMITS.graphDesc);
  const relimit = input.maxConcurrentPipelines !== undefined;
  if (relimit) data.maxConcurrentPipelines = requireConcurrencyLimit('input.maxConcurrentPipelines', input.maxConcurrentPipelines ?? null);
  return uniquely('name', duplicateGraphName(String(data.name)), async () => {
    const { result } = await transition(store, async (tx, journal, sql) => {
      if (input.name != null || input.desc !== undefined) await beginEdit(tx, graphId, 'id');
      else if (!(await tx.graph.findUnique({ where: { id: graphId }, select: { id: true } }))) throw new NotFoundError('id', 'graph', graphId);
      const graph = await tx.graph.update({ where: { id: graphId }, data });
      if (relimit) await releaseQueued(sql, journal, graphId, () => store.dags.get(tx, graphId));
      return graph;
    });
    return result;
  });
}

export async function deleteGraph(db: Db, graphId: number) {
  return db.$transaction(async (tx) => {
    const graph = await tx.graph.findUnique({ where: { id: graphId }, include: { _count: { select: { pipelines: true } } } });
    if (!graph) throw new NotFoundError('id', 'graph', graphId);
    if (graph._count.pipelines > 0) {
      throw new ConflictError(
        'id',
        `Graph "${graph.name}" has ${graph._count.pipelines} pipeline(s); it is kept so their history stays complete.`,
      );
    }
    await tx.graph.delete({ where: { id: graphId } });
    return graph;
  });
}

/** Copies vertices and edges into a new, unsealed graph (SPEC rule 3). */
export async function cloneGraph(db: Db, graphId: number, input: { name?: string | null }) {
  return db.$transaction(async (tx) => {
    const source = await tx.graph.findUnique({ where: { id: graphId }, include: { vertices: true, edges: true } });
    if (!source) throw new NotFoundError('id', 'graph', graphId);
    let name: string;
    if (input.name != null) {
      name = requireName('name', input.name, LIMITS.graphName);
    } else {
      const base = source.name.replace(/ \(copy \d+\)$/, '').slice(0, LIMITS.graphName - 12);
      const siblings = await tx.graph.count({ where: { name: { startsWith: `${base} (copy ` } } });
      name = `${base} (copy ${siblings + 1})`;
    }
    if (await tx.graph.findUnique({ where: { name }, select: { id: true } })) {
      throw new ConflictError('name', duplicateGraphName(name));
    }
    const copy = await tx.graph.create({
      data: { name, desc: source.desc, checked: source.checked, checkedAt: source.checkedAt, maxConcurrentPipelines: source.maxConcurrentPipelines },
    });
    const vertices = await tx.vertex.createManyAndReturn({
      data: source.vertices.map((v) => ({
        graphId: copy.id,
        name: v.name,
        script: v.script,
        input: v.input,
        timeoutSeconds: v.timeoutSeconds,
        retries: v.retries,
        retryDelaySeconds: v.retryDelaySeconds,
        retryBackoff: v.retryBackoff,
        runIf: v.runIf,
      })),
      select: { id: true, name: true },
    });
    const newId = new Map(vertices.map((v) => [v.name, v.id]));
    const oldName = new Map(source.vertices.map((v) => [v.id, v.name]));
    await tx.edge.createMany({
      data: source.edges.map((e) => ({
        graphId: copy.id,
        tailId: newId.get(oldName.get(e.tailId)!)!,
        headId: newId.get(oldName.get(e.headId)!)!,
      })),
    });
    return copy;
  });
}

function validateVertex(input: VertexInput, creating: boolean) {
  const data: {
    name?: string;
    script?: string;
    input?: string;
    timeoutSeconds?: number;
    retries?: number;
    retryDelaySeconds?: number;
    retryBackoff?: number;
    runIf?: RunIf;
  } = {};
  if (input.name != null || creating) data.name = requireName('name', input.name ?? '', LIMITS.vertexName);
  if (input.script != null) data.script = requireScript('script', input.script);
  if (input.inputs != null) data.input = serializeInputSchema(parseInputSchema(input.inputs, 'inputs'));
  if (input.timeoutSeconds != null) data.timeoutSeconds = requireTimeout('timeoutSeconds', input.timeoutSeconds);
  if (input.retries != null) data.retries = requireRetries('retries', input.retries);
  if (input.retryDelaySeconds != null) data.retryDelaySeconds = requireRetryDelay('retryDelaySeconds', input.retryDelaySeconds);
  if (input.retryBackoff != null) data.retryBackoff = requireRetryBackoff('retryBackoff', input.retryBackoff);
  if (input.runIf != null) data.runIf = requireRunIf('runIf', input.runIf);
  return data;
}

/**
 * The script's placeholders must be safe for the parameters the vertex will have, and no
 * input may read the vertex's own outputs (whether another step's are an ancestor's is for
 * checkGraph: the edges may come later).
 */
function checkPlaceholders(script: string, input: string, name?: string): void {
  const schema = parseInputSchema(input, 'inputs');
  assertSafePlaceholders(script, new Set(schema.map((p) => p.name)), 'script');
  const own = schema.find((p) => p.from !== undefined && parseFromReference(p.from)?.vertex === name);
  if (own) {
    throw new ValidationError(`inputs.${own.name}.from`, `Step "${name}" cannot read its own outputs: from names an output of a step that runs before it.`);
  }
}

function duplicateVertexName(name: string | undefined) {
  return `This graph already has a vertex named "${name}". Vertex names are unique within a graph.`;
}

export async function addVertex(db: Db, graphId: number, input: VertexInput) {
  const data = validateVertex(input, true);
  checkPlaceholders(data.script ?? '', data.input ?? '{}', data.name);
  return uniquely('name', duplicateVertexName(data.name), () =>
    db.$transaction(async (tx) => {
      await beginEdit(tx, graphId, 'graphId');
      return tx.vertex.create({ data: { ...data, name: data.name!, graphId } });
    }),
  );
}

export async function updateVertex(db: Db, vertexId: number, input: VertexInput) {
  const data = validateVertex(input, false);
  return uniquely('name', duplicateVertexName(data.name), () =>
    db.$transaction(async (tx) => {
      const vertex = await vertexOf(tx, vertexId, 'id');
      checkPlaceholders(data.script ?? vertex.script, data.input ?? vertex.input, data.name ?? vertex.name);
      await beginEdit(tx, vertex.graphId, 'id');
      return tx.vertex.update({ where: { id: vertexId }, data });
    }),
  );
}

/** Removes the vertex and every edge touching it. */
export async function deleteVertex(db: Db, vertexId: number) {
  return db.$transaction(async (tx) => {
    const vertex = await vertexOf(tx, vertexId, 'id');
    await beginEdit(tx, vertex.graphId, 'id');
    await tx.vertex.delete({ where: { id: vertexId } });
    return vertex;
  });
}

/**
 * Adds tail -> head. Refuses self-loops, duplicates, ends from different graphs, and
 * edges that would close a cycle (naming it), so a graph is never left cyclic.
 */
export async function addEdge(db: Db, input: { tailId: number; headId: number }) {
  if (input.tailId === input.headId) {
    throw new ValidationError('headId', 'An edge cannot join a vertex to itself (a self-loop would never run).');
  }
  return db.$transaction(async (tx) => {
    const [tail, head] = await Promise.all([vertexOf(tx, input.tailId, 'tailId'), vertexOf(tx, input.headId, 'headId')]);
    if (head.graphId !== tail.graphId) {
      throw new ValidationError('headId', `Vertex ${head.id} belongs to another graph than vertex ${tail.id}; both ends must be in one graph.`);
    }
    await beginEdit(tx, tail.graphId, 'tailId');
    const edges = await tx.edge.findMany({ where: { graphId: tail.graphId }, select: { tailId: true, headId: true } });
    if (edges.some((e) => e.tailId === tail.id && e.headId === head.id)) {
      throw new ConflictError('headId', `The edge ${tail.name} -> ${head.name} already exists.`);
    }
    const vertexIds = [...new Set(edges.flatMap((e) => [e.tailId, e.headId]).concat(tail.id, head.id))];
    const cycle = findCycle(buildDag(vertexIds, [...edges, { tailId: tail.id, headId: head.id }]));
    if (cycle) {
      // Names only when there is something to report.
      const vertices = await tx.vertex.findMany({ where: { id: { in: cycle } }, select: { id: true, name: true } });
      const names = new Map(vertices.map((v) => [v.id, v.name]));
      throw new CycleError(cycle.map((id) => names.get(id)!));
    }
    return tx.edge.create({ data: { graphId: tail.graphId, tailId: tail.id, headId: head.id } });
  });
}

export async function deleteEdge(db: Db, edgeId: number) {
  return db.$transaction(async (tx) => {
    const edge = await tx.edge.findUnique({ where: { id: edgeId } });
    if (!edge) throw new NotFoundError('id', 'edge', edgeId);
    await beginEdit(tx, edge.graphId, 'id');
    await tx.edge.delete({ where: { id: edgeId } });
    return edge;
  });
}

/** SPEC rule 2: sets `checked` when the graph is runnable; otherwise says why. */
export async function checkGraph(db: Db, graphId: number) {
  // One transaction: an edit cannot slip in between the check and the flag.
  return db.$transaction(async (tx) => {
    const graph = await tx.graph.findUnique({ where: { id: graphId }, include: { vertices: true, edges: true } });
    if (!graph) throw new NotFoundError('id', 'graph', graphId);
    checkGraphDefinition(graph.vertices, graph.edges);
    if (graph.checked) return graph;
    return tx.graph.update({ where: { id: graphId }, data: { checked: true, checkedAt: new Date() } });
  });
}
