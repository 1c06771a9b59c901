/** Pipeline: the type, its queries, the operator mutations (start, cancel, retry) and the admin's deletePipeline. */
import { behindScheduleReason, queuedReason, type QueuedReason } from '../engine/concurrency.ts';
import { toDot, toMermaid } from '../engine/diagram.ts';
import { PipelineState } from '../engine/states.ts';
import * as pipelines from '../store/pipelines.ts';
import { Deleted, GRAPH_SHAPE } from './graph.ts';
import { builder, OPERATOR_ONLY } from './builder.ts';
import { ALL_ERRORS } from './errors.ts';
import { PipelineStateEnum, TrackStateEnum } from './states.ts';

/** What a picture of a run needs, loaded with the parent query (no N+1). */
const runPicture = {
  name: true,
  graph: { select: GRAPH_SHAPE },
  tracks: { select: { vertexId: true, state: true } },
};

function pictureOf(pipeline: {
  graph: { vertices: Array<{ id: number; name: string }>; edges: Array<{ tailId: number; headId: number }> };
  tracks: Array<{ vertexId: number; state: number }>;
}) {
  return { ...pipeline.graph, states: new Map(pipeline.tracks.map((t) => [t.vertexId, t.state])) };
}

const QueueReasonKind = builder.enumType('PipelineBlockedKind', {
  description: 'Why a pipeline has not started.',
  values: {
    CONCURRENCY_LIMIT: { description: "Its graph runs maxConcurrentPipelines pipelines already; it starts, in the order queued, when one ends." },
    SCHEDULE_OVERLAP: { description: "Its schedule (overlap QUEUE) runs one pipeline at a time and the previous one still runs; it starts when that one ends." },
  } as const,
});

const PipelineBlockedReason = builder.objectRef<QueuedReason>('PipelineBlockedReason').implement({
  description: 'Why a QUEUED pipeline waits, and behind how many.',
  fields: (t) => ({
    kind: t.field({ type: QueueReasonKind, description: 'What it waits for.', resolve: (r) => r.kind }),
    message: t.exposeString('message', { description: 'The same, as a sentence for people.' }),
    limit: t.exposeInt('limit', { nullable: true, description: "The graph's maxConcurrentPipelines now." }),
    running: t.exposeInt('running', { description: "The graph's pipelines running now." }),
    ahead: t.exposeInt('ahead', { description: 'Queued pipelines of the graph that start before this one (0: it is next).' }),
  }),
});

export const Pipeline = builder.prismaObject('Pipeline', {
  description: 'One run of a graph. Each vertex of the graph has a track in it.',
  fields: (t) => ({
    id: t.exposeInt('id', { description: 'Unique id.' }),
    name: t.exposeString('name', { description: 'Name (defaults to the graph name).' }),
    desc: t.exposeString('desc', { nullable: true, description: 'Description.' }),
    state: t.field({ type: PipelineStateEnum, description: 'Current state.', resolve: (p) => p.state as never }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When it was started (or queued).' }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true, description: 'When it reached FINISH, FAILED or CANCELLED.' }),
    idempotencyKey: t.exposeString('idempotencyKey', {
      nullable: true,
      description:
        'The key it was started with (startPipeline\'s idempotencyKey), or null. Another start of the same graph with this key returns this pipeline.',
    }),
    blockedBy: t.field({
      type: PipelineBlockedReason,
      nullable: true,
      description: "Why a QUEUED pipeline has not started (its graph's concurrency limit, or its schedule's previous run with overlap QUEUE) and behind how many; null in every other state.",
      select: {
        state: true,
        graphId: true,
        queuedAt: true,
        scheduleId: true,
        graph: { select: { name: true, maxConcurrentPipelines: true } },
        schedule: { select: { name: true, overlap: true } },
      },
      resolve: async (pipeline, _args, ctx) => {
        if (pipeline.state !== PipelineState.QUEUED) return null;
        const queuedAt = pipeline.queuedAt ?? new Date(0);
        const [running, ahead] = await Promise.all([
          ctx.db.pipeline.count({ where: { graphId: pipeline.graphId, state: PipelineState.RUNNING } }),
          ctx.db.pipeline.count({
            where: {
              graphId: pipeline.graphId,
              state: PipelineState.QUEUED,
              OR: [{ queuedAt: { lt: queuedAt } }, { queuedAt, id: { lt: pipeline.id } }],
            },
          }),
        ]);
        const load = { limit: pipeline.graph.maxConcurrentPipelines, running, ahead };
        if (pipeline.schedule?.overlap === 'QUEUE') {
          const previous = await ctx.db.pipeline.findFirst({
            where: { scheduleId: pipeline.scheduleId, state: PipelineState.RUNNING, id: { not: pipeline.id } },
            select: { id: true },
            orderBy: { id: 'desc' },
          });
          if (previous) return behindScheduleReason(pipeline.schedule.name, previous, load);
        }
        return queuedReason(pipeline.graph.name, load);
      },
    }),
    cursor: t.int({
      description:
        'The id of this pipeline\'s newest event, read with the rest of it: pass it as `after` to pipelineLive, trackUpdated or pipelineUpdated to follow every change from this state on.',
      select: { events: { select: { id: true }, orderBy: { id: 'desc' }, take: 1 } },
      resolve: (pipeline) => pipeline.events[0]?.id ?? 0,
    }),
    graph: t.relation('graph', { description: 'The exact (sealed) graph this pipeline runs.' }),
    tracks: t.relation('tracks', {
      description: 'Its tracks, by id; optionally only those in the given states.',
      args: { states: t.arg({ type: [TrackStateEnum], required: false, description: 'Only tracks in these states.' }) },
      query: (args) => ({
        where: args.states ? { state: { in: args.states as number[] } } : {},
        orderBy: { id: 'asc' },
      }),
    }),
    mermaid: t.string({
      description: 'The run as a Mermaid flowchart, each step coloured and labelled with its track state.',
      select: runPicture,
      resolve: (pipeline) => toMermaid(pictureOf(pipeline)),
    }),
    dot: t.string({
      description: 'The run in Graphviz DOT, each step coloured by its track state.',
      select: runPicture,
      resolve: (pipeline) => toDot(pictureOf(pipeline), pipeline.name),
    }),
    events: t.relation('events', {
      description: 'Its journal: every transition, in commit order.',
      args: {
        after: t.arg.int({ required: false, description: 'Only events with an id greater than this.' }),
        first: t.arg.int({ required: false, description: 'At most this many (default 1000, at most 10000).' }),
      },
      query: (args) => ({
        where: args.after != null ? { id: { gt: args.after } } : {},
        orderBy: { id: 'asc' },
        take: Math.min(Math.max(args.first ?? 1000, 0), 10_000),
      }),
    }),
  }),
});

builder.queryFields((t) => ({
  pipelines: t.prismaField({
    type: ['Pipeline'],
    description: 'Pipelines, newest first. Page with `after` set to the last id you received.',
    args: {
      state: t.arg({ type: PipelineStateEnum, required: false, description: 'Only pipelines in this state.' }),
      graphId: t.arg.int({ required: false, description: 'Only runs of this graph.' }),
      first: t.arg.int({ required: false, description: 'At most this many (default 20, at most 100).' }),
      after: t.arg.int({ required: false, description: 'Only pipelines with an id lower than this (the cursor).' }),
    },
    resolve: (query, _root, args, ctx) =>
      ctx.db.pipeline.findMany({
        ...query,
        where: {
          ...(args.state != null && { state: args.state as number }),
          ...(args.graphId != null && { graphId: args.graphId }),
          ...(args.after != null && { id: { lt: args.after } }),
        },
        orderBy: { id: 'desc' },
        take: Math.min(Math.max(args.first ?? 20, 0), 100),
      }),
  }),
  pipeline: t.prismaField({
    type: 'Pipeline',
    nullable: true,
    description: 'One pipeline by id, or null.',
    args: { id: t.arg.int({ description: 'The pipeline id.' }) },
    resolve: (query, _root, args, ctx) => ctx.db.pipeline.findUnique({ ...query, where: { id: args.id } }),
  }),
}));

export const VertexParamsInput = builder.inputType('VertexParams', {
  description: 'Parameter values for one vertex of the graph being started.',
  fields: (t) => ({
    vertex: t.string({ description: 'The vertex name.' }),
    params: t.field({ type: 'JSON', description: 'Parameter name -> value, e.g. {"ip": "127.0.0.1"}.' }),
  }),
});

builder.mutationFields((t) => ({
  startPipeline: t.field({
    ...OPERATOR_ONLY,
    type: Pipeline,
    description:
      'Starts a checked graph (and seals it). Tracks whose parameters resolve from the given values and defaults run automatically; the others wait for finishInput. With idempotencyKey, at most one pipeline of the graph ever has that key: a start with a key the graph already has returns that pipeline as it is now and starts nothing (its other arguments are not compared), however many callers race.',
    errors: { types: [...ALL_ERRORS], directResult: true },
    args: {
      graphId: t.arg.int({ description: 'The graph to run.' }),
      name: t.arg.string({ required: false, description: 'Pipeline name (default: the graph name).' }),
      desc: t.arg.string({ required: false, description: 'Description (default: the graph description).' }),
      inputs: t.arg({ type: [VertexParamsInput], required: false, description: 'Parameter values per vertex.' }),
      idempotencyKey: t.arg.string({
        required: false,
        description:
          'Makes the start safe to repeat (e.g. a client retrying after a timeout, or a scheduler that may run twice): at most 200 characters, compared exactly, one pipeline per graph and key. Leave it out for a start that always creates a pipeline.',
      }),
    },
    resolve: (_root, args, ctx) =>
      pipelines.startPipeline(ctx.store, {
        ...args,
        inputs: args.inputs?.map((i) => ({ vertex: i.vertex, params: i.params as Record<string, unknown> })),
      }),
  }),
  cancelPipeline: t.field({
    ...OPERATOR_ONLY,
    type: Pipeline,
    description: 'Kills running tracks and marks the pipeline and every unfinished track CANCELLED.',
    errors: { types: [...ALL_ERRORS], directResult: true },
    args: { id: t.arg.int({ description: 'The pipeline.' }) },
    resolve: (_root, args, ctx) => pipelines.cancelPipeline(ctx.store, args.id),
  }),
  retryPipeline: t.field({
    ...OPERATOR_ONLY,
    type: Pipeline,
    description:
      'Puts the failed and cancelled tracks of a FAILED or CANCELLED pipeline back into play (attempt + 1); succeeded tracks are kept. With from, re-runs an ended pipeline (FINISH too) from those steps: their tracks and all their descendants go back into play as well, even if they had succeeded, each PENDING once its predecessors all succeeded, else WAITING; the other succeeded tracks are kept. The pipeline is RUNNING again; each track put back gets a track:retried event, the pipeline a pipeline:retried event (its reason names the steps), on the subscriptions that follow it.',
    errors: { types: [...ALL_ERRORS], directResult: true },
    args: {
      id: t.arg.int({ description: 'The pipeline.' }),
      from: t.arg.stringList({
        required: false,
        description:
          'Vertex names to re-run from (SPEC rule 17), e.g. ["build"]: a name the graph does not have is a ValidationError naming from. A step still RUNNING (in a FAILED pipeline) cannot be re-run until it ends. Leave it out for a plain retry.',
      }),
    },
    resolve: (_root, args, ctx) => pipelines.retryPipeline(ctx.store, args.id, args.from),
  }),
}));

builder.mutationFields((t) => ({
  deletePipeline: t.field({
    type: Deleted,
    description:
      'Deletes an ended pipeline (FINISH, FAILED or CANCELLED) at once, with its tracks, their attempts, events, output and working directories (role admin), as retention does after RETENTION_DAYS; returns its id and name. A QUEUED or RUNNING pipeline is a ConflictError naming id (cancel it or let it finish first), and so is a FAILED one whose tracks that were running when it failed have not ended yet. Subscriptions following it get an error (code NOT_FOUND) as their last payload, then complete. The audit trail keeps the deletion.',
    errors: { types: [...ALL_ERRORS], directResult: true },
    args: { id: t.arg.int({ description: 'The pipeline.' }) },
    resolve: (_root, args, ctx) => ctx.deletions.deletePipeline(args.id),
  }),
}));
