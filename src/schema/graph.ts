/** Graph: the type, its queries and its mutations. */
import * as graphs from '../store/graphs.ts';
import { announceScheduleChange, scheduleDefinition } from '../store/schedules.ts';
import { builder } from './builder.ts';
import { ALL_ERRORS } from './errors.ts';
import { toDot, toMermaid } from '../engine/diagram.ts';
import { parseDefinition, printDefinition } from '../engine/definition.ts';
import { CycleError, withinField } from '../errors.ts';
import { toSchemaObject, VertexFields } from './vertex-input.ts';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from '../engine/retry-policy.ts';

/** What a delete mutation returns: the object is gone, so only its id and name remain. */
export const Deleted = builder.objectRef<{ id: number; name?: string }>('Deleted').implement({
  description: 'The id (and name, where it has one) of an object that was deleted.',
  fields: (t) => ({
    id: t.exposeInt('id', { description: 'Id of the deleted object.' }),
    name: t.string({ nullable: true, description: 'Its name, if it had one.', resolve: (d) => d.name ?? null }),
  }),
});

/** A vertex's retry fields for its definition, each only when it is not the default. */
function retryFields(vertex: RetryPolicy): Partial<RetryPolicy> {
  return Object.fromEntries(
    (Object.keys(DEFAULT_RETRY_POLICY) as Array<keyof RetryPolicy>)
      .filter((key) => vertex[key] !== DEFAULT_RETRY_POLICY[key])
      .map((key) => [key, vertex[key]]),
  );
}

/** The vertices and edges a picture of a graph needs, loaded with the parent query. */
export const GRAPH_SHAPE = {
  vertices: { select: { id: true, name: true, runIf: true }, orderBy: { id: 'asc' as const } },
  edges: { select: { tailId: true, headId: true }, orderBy: { id: 'asc' as const } },
};

export const Graph = builder.prismaObject('Graph', {
  description: 'A workflow definition: a DAG of vertices (script steps) joined by edges.',
  fields: (t) => ({
    id: t.exposeInt('id', { description: 'Unique id.' }),
    name: t.exposeString('name', { description: 'Unique name, at most 48 characters.' }),
    desc: t.exposeString('desc', { nullable: true, description: 'Free description, at most 100 characters.' }),
    checked: t.exposeBoolean('checked', {
      description: 'True once checkGraph proved the graph runnable; any edit resets it. Only checked graphs start.',
    }),
    sealed: t.exposeBoolean('sealed', {
      description: 'True once a pipeline started from it. A sealed graph never changes; cloneGraph makes an editable copy.',
    }),
    maxConcurrentPipelines: t.exposeInt('maxConcurrentPipelines', {
      nullable: true,
      description:
        'At most this many of its pipelines run at once; a start beyond it is QUEUED and starts, in the order queued, when one ends. Null: no limit. It may change on a sealed graph too (updateGraph).',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When the graph was created.' }),
    vertices: t.relation('vertices', { description: 'The steps of the graph.', query: { orderBy: { id: 'asc' } } }),
    edges: t.relation('edges', { description: 'The dependencies: tail runs before head.', query: { orderBy: { id: 'asc' } } }),
    mermaid: t.string({
      description: 'The graph as a Mermaid flowchart (paste into any Mermaid renderer or a Markdown ```mermaid block).',
      select: GRAPH_SHAPE,
      resolve: (graph) => toMermaid(graph),
    }),
    dot: t.string({
      description: 'The graph in Graphviz DOT (render with `dot -Tsvg`).',
      select: { name: true, ...GRAPH_SHAPE },
      resolve: (graph) => toDot(graph, graph.name),
    }),
    definition: t.string({
      description:
        'The whole graph as a file (vertices, scripts, inputs, timeouts, retries, edges by name, and its schedules if it has any; secret parameter values in schedules show as ***) for git; importGraph reads it back.',
      args: { format: t.arg({ type: DefinitionFormatEnum, required: false, description: 'YAML (default) or JSON.' }) },
      select: {
        name: true,
        desc: true,
        maxConcurrentPipelines: true,
        vertices: {
          select: { id: true, name: true, script: true, input: true, timeoutSeconds: true, retries: true, retryDelaySeconds: true, retryBackoff: true, runIf: true },
          orderBy: { id: 'asc' },
        },
        edges: { select: { tailId: true, headId: true }, orderBy: { id: 'asc' } },
        schedules: {
          select: { name: true, cron: true, timeZone: true, inputs: true, overlap: true, misfireGraceSeconds: true, paused: true },
          orderBy: { name: 'asc' },
        },
      },
      resolve: (graph, args) => {
        const names = new Map(graph.vertices.map((v) => [v.id, v.name]));
        return printDefinition(
          {
            name: graph.name,
            desc: graph.desc,
            ...(graph.maxConcurrentPipelines !== null && { maxConcurrentPipelines: graph.maxConcurrentPipelines }),
            vertices: graph.vertices.map((v) => ({
              name: v.name,
              script: v.script,
              timeoutSeconds: v.timeoutSeconds,
              ...retryFields(v),
              ...(v.runIf !== 'SUCCESS' && { runIf: v.runIf }),
              inputs: JSON.parse(v.input) as Record<string, unknown>,
            })),
            edges: graph.edges.map((e) => ({ tail: names.get(e.tailId)!, head: names.get(e.headId)! })),
            ...(graph.schedules.length > 0 && { schedules: graph.schedules.map((s) => scheduleDefinition(s, graph.vertices)) }),
          },
          args.format ?? 'yaml',
        );
      },
    }),
    pipelines: t.relation('pipelines', {
      description: 'Runs of this graph, newest first.',
      args: { first: t.arg.int({ required: false, description: 'At most this many (default 20, at most 100).' }) },
      query: (args) => ({ orderBy: { id: 'desc' }, take: Math.min(Math.max(args.first ?? 20, 0), 100) }),
    }),
  }),
});

builder.queryFields((t) => ({
  graphs: t.prismaField({
    type: ['Graph'],
    description: 'All graphs, by id.',
    resolve: (query, _root, _args, ctx) => ctx.db.graph.findMany({ ...query, orderBy: { id: 'asc' } }),
  }),
  graph: t.prismaField({
    type: 'Graph',
    nullable: true,
    description: 'One graph by id, or null.',
    args: { id: t.arg.int({ description: 'The graph id.' }) },
    resolve: (query, _root, args, ctx) => ctx.db.graph.findUnique({ ...query, where: { id: args.id } }),
  }),
}));

const DefinitionFormatEnum = builder.enumType('DefinitionFormat', {
  description: 'The file format of a graph definition.',
  values: {
    YAML: { value: 'yaml', description: 'YAML.' },
    JSON: { value: 'json', description: 'JSON.' },
  } as const,
});

const EdgeByNameInput = builder.inputType('EdgeByName', {
  description: 'An edge between two vertices of the graph being created, by their names: tail runs first.',
  fields: (t) => ({
    tail: t.string({ description: 'Name of the vertex that runs first.' }),
    head: t.string({ description: 'Name of the vertex that runs after it.' }),
  }),
});

const GraphFields = builder.inputType('GraphInput', {
  description: 'Name, description and concurrency limit of a graph.',
  fields: (t) => ({
    name: t.string({ required: false, description: 'Unique name, 1 to 48 characters.' }),
    desc: t.string({ required: false, description: 'Description, at most 100 characters; empty clears it.' }),
    maxConcurrentPipelines: t.int({
      required: false,
      description:
        'At most this many of its pipelines run at once (1 to 10,000); null removes the limit. Allowed on a sealed graph; raising or removing it starts queued pipelines at once.',
    }),
  }),
});

builder.mutationFields((t) => ({
  createGraph: t.field({
    type: Graph,
    description: 'Creates a graph: empty, or whole with its vertices and edges in one call. Run checkGraph before starting it.',
    errors: { types: [...ALL_ERRORS, CycleError], directResult: true },
    args: {
      name: t.arg.string({ description: 'Unique name, 1 to 48 characters.' }),
      desc: t.arg.string({ required: false, description: 'Description, at most 100 characters.' }),
      maxConcurrentPipelines: t.arg.int({
        required: false,
        description: 'At most this many of its pipelines run at once (1 to 10,000); further starts are QUEUED. Default: no limit.',
      }),
      vertices: t.arg({ type: [VertexFields], required: false, description: 'Vertices to create with it (each needs a name).' }),
      edges: t.arg({ type: [EdgeByNameInput], required: false, description: 'Edges between those vertices, by name.' }),
    },
    resolve: (_root, args, ctx) =>
      graphs.createGraph(ctx.db, {
        ...args,
        vertices: args.vertices?.map((vertex, i) =>
          withinField(`vertices.${i}`, () => ({ ...vertex, inputs: toSchemaObject(vertex.inputs) })),
        ),
      }),
  }),
  importGraph: t.field({
    type: Graph,
    description:
      'Creates a graph from a definition file (as Graph.definition prints it), with its schedules, validated like createGraph and createSchedule. Run checkGraph before starting it. A graph of that name existing is a ConflictError naming name, unless updateSchedules is true and the definition is that very graph with a schedules key: then only its schedules are made to match.',
    errors: { types: [...ALL_ERRORS, CycleError], directResult: true },
    args: {
      definition: t.arg.string({ description: 'The definition text.' }),
      format: t.arg({ type: DefinitionFormatEnum, required: false, description: 'YAML (default) or JSON.' }),
      name: t.arg.string({ required: false, description: "Name for the new graph, instead of the definition's own." }),
      updateSchedules: t.arg.boolean({
        required: false,
        description:
          "When a graph of this name exists with exactly the definition's desc, vertices and edges, and the definition has a schedules key (an empty list too): make that graph's schedules match it (created, changed and deleted by name; a schedule the file does not say is paused keeps its pause) and return the graph, instead of refusing. A graph itself never changes: another desc, vertex or edge is still a ConflictError (import it under another name). Default false.",
      }),
    },
    resolve: async (_root, args, ctx) => {
      const definition = parseDefinition(args.definition, args.format ?? 'yaml');
      const imported = await withinField('definition', () =>
        graphs.importDefinition(ctx.db, { ...definition, name: args.name ?? definition.name }, args.updateSchedules ?? false),
      );
      if (imported.schedulesChanged) await announceScheduleChange(ctx.store);
      return imported.graph;
    },
  }),
  updateGraph: t.field({
    type: Graph,
    description: "Renames or re-describes an unsealed graph; sets any graph's maxConcurrentPipelines.",
    errors: { types: [...ALL_ERRORS], directResult: true },
    args: { id: t.arg.int({ description: 'The graph id.' }), input: t.arg({ type: GraphFields, description: 'The fields to change.' }) },
    resolve: (_root, args, ctx) => graphs.updateGraph(ctx.store, args.id, args.input),
  }),
  deleteGraph: t.field({
    type: Deleted,
    description: 'Deletes a graph that has no pipelines, with its vertices and edges. Returns what was deleted.',
    errors: { types: [...ALL_ERRORS], directResult: true },
    args: { id: t.arg.int({ description: 'The graph id.' }) },
    resolve: (_root, args, ctx) => graphs.deleteGraph(ctx.db, args.id),
  }),
  cloneGraph: t.field({
    type: Graph,
    description: 'Copies a graph (typically a sealed one) into a new, editable graph.',
    errors: { types: [...ALL_ERRORS], directResult: true },
    args: {
      id: t.arg.int({ description: 'The graph to copy.' }),
      name: t.arg.string({ required: false, description: 'Name of the copy; default "<name> (copy N)".' }),
    },
    resolve: (_root, args, ctx) => graphs.cloneGraph(ctx.db, args.id, args),
  }),
  checkGraph: t.field({
    type: Graph,
    description: 'Validates the graph (at least one vertex, no cycle, valid inputs) and marks it checked.',
    errors: { types: [...ALL_ERRORS, CycleError], directResult: true },
    args: { id: t.arg.int({ description: 'The graph id.' }) },
    resolve: (_root, args, ctx) => graphs.checkGraph(ctx.db, args.id),
  }),
}));
