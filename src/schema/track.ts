/** Track: one vertex of one pipeline. The type, its queries and finishInput. */
import { parseInputSchema, type InputSchema, type ParamValue } from '../engine/inputs.ts';
import { maskedValues, maskSecrets, secretsOf } from '../engine/secrets.ts';
import { TrackState } from '../engine/states.ts';
import * as pipelines from '../store/pipelines.ts';
import { builder } from './builder.ts';
import { ALL_ERRORS } from './errors.ts';
import { PipelineStateEnum, TrackStateEnum } from './states.ts';

function inputSchemaOf(vertex: { input: string }): InputSchema {
  return parseInputSchema(vertex.input, 'input');
}

function parseValues(input: string): Record<string, ParamValue> {
  return JSON.parse(input) as Record<string, ParamValue>;
}

export const Track = builder.prismaObject('Track', {
  description: 'One vertex of one pipeline: its resolved inputs, rendered script, state and output.',
  fields: (t) => ({
    id: t.exposeInt('id', { description: 'Unique id.' }),
    name: t.string({ description: 'The vertex name.', select: { vertex: { select: { name: true } } }, resolve: (track) => track.vertex.name }),
    state: t.field({ type: TrackStateEnum, description: 'Current state.', resolve: (track) => track.state as never }),
    needsInput: t.boolean({
      description: 'True while the track cannot run until finishInput supplies its parameters.',
      select: { script: true, state: true },
      resolve: (track) => track.script === null && (track.state === TrackState.WAITING || track.state === TrackState.PENDING),
    }),
    input: t.field({
      type: 'JSON',
      nullable: true,
      description: 'The resolved parameters (secret ones as ***), or null while inputs are missing.',
      select: { input: true, vertex: { select: { input: true } } },
      resolve: (track) => (track.input === null ? null : maskedValues(inputSchemaOf(track.vertex), parseValues(track.input))),
    }),
    script: t.string({
      nullable: true,
      description: 'The rendered script (secret values as ***), or null while inputs are missing.',
      select: { script: true, input: true, vertex: { select: { input: true } } },
      resolve: (track) =>
        track.script === null || track.input === null
          ? track.script
          : maskSecrets(track.script, secretsOf(inputSchemaOf(track.vertex), parseValues(track.input))),
    }),
    exitCode: t.exposeInt('exitCode', { nullable: true, description: 'The script exit code, once it ended on its own.' }),
    reason: t.exposeString('reason', { nullable: true, description: 'Why it failed or was cancelled, in plain words.' }),
    attempt: t.exposeInt('attempt', { description: 'Starts at 1; retryPipeline adds 1 to each track it puts back into play.' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true, description: 'When the script started.' }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true, description: 'When it ended.' }),
    vertex: t.relation('vertex', { description: 'The vertex this track runs.' }),
    pipeline: t.relation('pipeline', { description: 'The pipeline it belongs to.' }),
  }),
});

builder.queryFields((t) => ({
  track: t.prismaField({
    type: 'Track',
    nullable: true,
    description: 'One track by id, or null.',
    args: { id: t.arg.int({ description: 'The track id.' }) },
    resolve: (query, _root, args, ctx) => ctx.db.track.findUnique({ ...query, where: { id: args.id } }),
  }),
  tracks: t.prismaField({
    type: ['Track'],
    description: 'Tracks across pipelines (the seed\'s show_pipeline), by id, e.g. every RUNNING track of RUNNING pipelines.',
    args: {
      pipelineId: t.arg.int({ required: false, description: 'Only tracks of this pipeline.' }),
      states: t.arg({ type: [TrackStateEnum], required: false, description: 'Only tracks in these states.' }),
      excludePipelineStates: t.arg({ type: [PipelineStateEnum], required: false, description: 'Skip pipelines in these states.' }),
      first: t.arg.int({ required: false, description: 'At most this many (default 1000, at most 10000).' }),
    },
    resolve: (query, _root, args, ctx) =>
      ctx.db.track.findMany({
        ...query,
        where: {
          ...(args.pipelineId != null && { pipelineId: args.pipelineId }),
          ...(args.states != null && { state: { in: args.states as number[] } }),
          ...(args.excludePipelineStates != null && { pipeline: { state: { notIn: args.excludePipelineStates as number[] } } }),
        },
        orderBy: { id: 'asc' },
        take: Math.min(Math.max(args.first ?? 1000, 0), 10_000),
      }),
  }),
}));

builder.mutationFields((t) => ({
  finishInput: t.field({
    type: Track,
    description: 'Supplies the parameters of a track that has not started; it then runs when its predecessors succeeded.',
    errors: { types: [...ALL_ERRORS], directResult: true },
    args: {
      trackId: t.arg.int({ description: 'The track.' }),
      params: t.arg({ type: 'JSON', description: 'Parameter name -> value; missing ones take their defaults.' }),
    },
    resolve: (_root, args, ctx) => pipelines.finishInput(ctx.store, args.trackId, args.params),
  }),
}));
