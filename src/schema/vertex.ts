/** Vertex, its typed inputs, and Edge: types and mutations. */
import { parseInputSchema, type ParamSpec } from '../engine/inputs.ts';
import { CycleError } from '../errors.ts';
import * as graphs from '../store/graphs.ts';
import { builder } from './builder.ts';
import { ALL_ERRORS } from './errors.ts';
import { Deleted } from './graph.ts';
import { ParamType, RunIfEnum, toSchemaObject, VertexFields } from './vertex-input.ts';
import type { RunIf } from '../engine/run-conditions.ts';

const InputParam = builder.objectRef<ParamSpec>('InputParam').implement({
  description: 'A typed parameter of a vertex script, used as {name} in the script and as INPUT_<NAME>.',
  fields: (t) => ({
    name: t.exposeString('name', { description: 'Parameter name: letters, digits and _.' }),
    type: t.field({ type: ParamType, description: 'Value type.', resolve: (p) => p.type }),
    required: t.exposeBoolean('required', {
      description: 'If true the value must be given explicitly (at startPipeline or finishInput), even when a default exists.',
    }),
    default: t.field({ type: 'JSON', nullable: true, description: 'Value used when none is given.', resolve: (p) => p.default ?? null }),
    choices: t.field({ type: ['JSON'], nullable: true, description: 'Allowed values, if restricted.', resolve: (p) => p.choices ?? null }),
    pattern: t.exposeString('pattern', { nullable: true, description: 'Regular expression a string value must match in full.' }),
    secret: t.exposeBoolean('secret', {
      description:
        'Marks a sensitive value. The script gets the real value; everything the service shows has *** in its place: Track.input, Track.script, and the output (stored and live) wherever the value appears in it. Error messages and the audit trail never repeat it. The default (above) is shown as written.',
    }),
    description: t.exposeString('description', { nullable: true, description: 'What the parameter is for.' }),
    from: t.exposeString('from', {
      nullable: true,
      description:
        'The step output the value comes from, "<vertex>.<output>" (SPEC rule 18), or null. Such a parameter is not given at startPipeline or finishInput: it is read when the track is ready.',
    }),
  }),
});

export const Vertex = builder.prismaObject('Vertex', {
  description: 'A step of a graph: a bash script template with typed inputs.',
  fields: (t) => ({
    id: t.exposeInt('id', { description: 'Unique id.' }),
    name: t.exposeString('name', { description: 'Name, unique within the graph.' }),
    script: t.exposeString('script', {
      description: 'Bash script; {param} is replaced by the shell-quoted value of a declared parameter.',
    }),
    timeoutSeconds: t.exposeInt('timeoutSeconds', { description: 'The script is killed (whole process group) after this long.' }),
    retries: t.exposeInt('retries', {
      description:
        'How many times a failed attempt (non-zero exit, timeout, could not start, its worker died) is run again by itself before the track fails (0 to 10). Cancelling never retries.',
    }),
    retryDelaySeconds: t.exposeInt('retryDelaySeconds', {
      description: 'Seconds before the first retry; the track holds no worker while it waits (see Track.blockedBy).',
    }),
    retryBackoff: t.exposeFloat('retryBackoff', {
      description: 'Each further retry waits this many times longer than the one before (the wait is at most 3600 s).',
    }),
    runIf: t.field({
      type: RunIfEnum,
      description: 'When it runs: SUCCESS (every predecessor succeeded), FAILURE or ALWAYS (a handler: after its predecessors ended, also after a failure).',
      resolve: (vertex) => vertex.runIf as RunIf,
    }),
    inputs: t.field({
      type: [InputParam],
      description: 'The typed parameters of the script.',
      select: { input: true },
      resolve: (vertex) => parseInputSchema(vertex.input, 'inputs'),
    }),
    inputSchema: t.exposeString('input', { description: 'The inputs as the seed JSON text, e.g. {"ip": {"type": "str"}}.' }),
    graph: t.relation('graph', { description: 'The graph this vertex belongs to.' }),
  }),
});

// Declared after Vertex so the fields can refer to it.
builder.prismaObjectFields(Vertex, (t) => ({
  predecessors: t.field({
    type: [Vertex],
    description: 'Vertices that must succeed before this one runs.',
    select: { inEdges: { select: { tail: true }, orderBy: { id: 'asc' } } },
    resolve: (vertex) => vertex.inEdges.map((e) => e.tail),
  }),
  successors: t.field({
    type: [Vertex],
    description: 'Vertices that wait for this one.',
    select: { outEdges: { select: { head: true }, orderBy: { id: 'asc' } } },
    resolve: (vertex) => vertex.outEdges.map((e) => e.head),
  }),
}));

export const Edge = builder.prismaObject('Edge', {
  description: 'A dependency: tail runs before head.',
  fields: (t) => ({
    id: t.exposeInt('id', { description: 'Unique id.' }),
    tail: t.relation('tail', { description: 'The vertex that runs first.' }),
    head: t.relation('head', { description: 'The vertex that runs after tail succeeded.' }),
    graph: t.relation('graph', { description: 'The graph this edge belongs to.' }),
  }),
});

builder.queryField('vertex', (t) =>
  t.prismaField({
    type: 'Vertex',
    nullable: true,
    description: 'One vertex by id, or null.',
    args: { id: t.arg.int({ description: 'The vertex id.' }) },
    resolve: (query, _root, args, ctx) => ctx.db.vertex.findUnique({ ...query, where: { id: args.id } }),
  }),
);

builder.mutationFields((t) => ({
  addVertex: t.field({
    type: Vertex,
    description: 'Adds a vertex to an unsealed graph.',
    errors: { types: [...ALL_ERRORS], directResult: true },
    args: { graphId: t.arg.int({ description: 'The graph.' }), input: t.arg({ type: VertexFields, description: 'The new vertex.' }) },
    resolve: (_root, args, ctx) =>
      graphs.addVertex(ctx.db, args.graphId, { ...args.input, inputs: toSchemaObject(args.input.inputs) }),
  }),
  updateVertex: t.field({
    type: Vertex,
    description: 'Changes a vertex of an unsealed graph.',
    errors: { types: [...ALL_ERRORS], directResult: true },
    args: { id: t.arg.int({ description: 'The vertex id.' }), input: t.arg({ type: VertexFields, description: 'The fields to change.' }) },
    resolve: (_root, args, ctx) =>
      graphs.updateVertex(ctx.db, args.id, { ...args.input, inputs: toSchemaObject(args.input.inputs) }),
  }),
  deleteVertex: t.field({
    type: Deleted,
    description: 'Removes a vertex and its edges from an unsealed graph. Returns what was deleted.',
    errors: { types: [...ALL_ERRORS], directResult: true },
    args: { id: t.arg.int({ description: 'The vertex id.' }) },
    resolve: (_root, args, ctx) => graphs.deleteVertex(ctx.db, args.id),
  }),
  addEdge: t.field({
    type: Edge,
    description: 'Adds tail -> head (tail runs first). Refuses self-loops, duplicates and cycles.',
    errors: { types: [...ALL_ERRORS, CycleError], directResult: true },
    args: {
      tailId: t.arg.int({ description: 'The vertex that runs first.' }),
      headId: t.arg.int({ description: 'The vertex that runs after it.' }),
    },
    resolve: (_root, args, ctx) => graphs.addEdge(ctx.db, args),
  }),
  deleteEdge: t.field({
    type: Deleted,
    description: 'Removes an edge from an unsealed graph. Returns what was deleted.',
    errors: { types: [...ALL_ERRORS], directResult: true },
    args: { id: t.arg.int({ description: 'The edge id.' }) },
    resolve: (_root, args, ctx) => graphs.deleteEdge(ctx.db, args.id),
  }),
}));
