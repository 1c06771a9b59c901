/** Track: one vertex of one pipeline. The type, its queries and finishInput. */
import { parseInputSchema, type InputSchema, type ParamValue } from '../engine/inputs.ts';
import { maskedOutputs, maskedValues, maskSecrets, secretsOf } from '../engine/secrets.ts';
import type { Outputs } from '../engine/outputs.ts';
import DataLoader from 'dataloader';
import type { RunIf } from '../engine/run-conditions.ts';
import { blockedBy, type BlockedReason as BlockedReasonShape, type TrackRef } from '../engine/blocked-by.ts';
import { PipelineState, TrackState } from '../engine/states.ts';
import type { Context } from '../context.ts';
import * as pipelines from '../store/pipelines.ts';
import { builder, OPERATOR_ONLY } from './builder.ts';
import { ALL_ERRORS } from './errors.ts';
import { PipelineStateEnum, TrackStateEnum } from './states.ts';

function inputSchemaOf(vertex: { input: string }): InputSchema {
  return parseInputSchema(vertex.input, 'input');
}

function parseValues(input: string): Record<string, ParamValue> {
  return JSON.parse(input) as Record<string, ParamValue>;
}

const BlockedKind = builder.enumType('BlockedKind', {
  description: 'Why a track is not running.',
  values: {
    PIPELINE_QUEUED: { description: "Its pipeline is QUEUED behind the graph's maxConcurrentPipelines (the pipeline's blockedBy says behind how many)." },
    PREDECESSORS: { description: 'It waits for predecessors to succeed (listed in tracks).' },
    INPUT: { description: 'It waits for finishInput to supply its parameters (listed in missingParams).' },
    RETRY_DELAY: {
      description: 'An attempt failed and the track waits out the delay before its automatic retry (until when: until). It holds no worker meanwhile.',
    },
    WORKER: { description: 'It is ready and waits for a free worker.' },
    PIPELINE_FAILED: { description: 'The pipeline failed (the failed tracks are listed), so it will not run unless retried.' },
    PIPELINE_CANCELLED: { description: 'The pipeline was cancelled, so it will not run unless retried.' },
  } as const,
});

const TrackRefType = builder.objectRef<TrackRef>('TrackRef').implement({
  description: 'Another track of the same pipeline, named in a BlockedReason.',
  fields: (t) => ({
    trackId: t.exposeInt('trackId', { description: 'Its id.' }),
    name: t.exposeString('name', { description: 'Its vertex name.' }),
    state: t.field({ type: TrackStateEnum, description: 'Its state now.', resolve: (r) => r.state as never }),
  }),
});

const BlockedReason = builder.objectRef<BlockedReasonShape>('BlockedReason').implement({
  description: 'Why a track is not running, machine-readable, with a sentence for people.',
  fields: (t) => ({
    kind: t.field({ type: BlockedKind, description: 'The kind of reason.', resolve: (r) => r.kind }),
    message: t.exposeString('message', { description: 'The reason in plain words, with what to do where something can be done.' }),
    tracks: t.field({
      type: [TrackRefType],
      description: 'PREDECESSORS: the predecessors not succeeded yet. PIPELINE_FAILED: the tracks that failed. Otherwise empty.',
      resolve: (r) => r.tracks,
    }),
    missingParams: t.exposeStringList('missingParams', {
      description: 'Parameters finishInput must supply before it can run (also while it waits for predecessors).',
    }),
    until: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'RETRY_DELAY: when the retry may start (it starts then, or as soon as a worker is free). Otherwise null.',
      resolve: (r) => r.until ?? null,
    }),
  }),
});

/** One output of a track, as shown (see TrackOutputValue). */
interface OutputShape {
  name: string;
  value: string;
}

const TrackOutputValue = builder.objectRef<OutputShape>('TrackOutputValue').implement({
  description:
    "A step output: a name=value line (or a name<<DELIMITER block) the attempt's script wrote to $DAGPIPE_OUTPUT. Later steps read it with an input's from.",
  fields: (t) => ({
    name: t.exposeString('name', { description: 'Its name (letters, digits and _).' }),
    value: t.exposeString('value', { description: 'Its text as written; *** when a secret input reads it (and wherever another output holds that text).' }),
  }),
});

/** The outputs of an attempt (JSON, or null), masked by the secret ones (see maskedOutputs). */
function shownOutputs(outputs: string | null, secret: ReadonlySet<string>): OutputShape[] {
  return outputs === null ? [] : maskedOutputs(JSON.parse(outputs) as Outputs, secret);
}

/** One attempt of a track, as Track.attempts lists it; `outputs` already masked. */
interface AttemptShape {
  attempt: number;
  state: number;
  exitCode: number | null;
  reason: string | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  outputs: OutputShape[];
}

const TrackAttempt = builder.objectRef<AttemptShape>('TrackAttempt').implement({
  description: "One attempt of a track: an automatic retry (the vertex's retries) or retryPipeline starts the next one. Its output: Track.output(attempt:).",
  fields: (t) => ({
    attempt: t.exposeInt('attempt', { description: 'Its number: 1, 2, 3, ...' }),
    state: t.field({
      type: TrackStateEnum,
      description: 'How it ended (FAILED or CANCELLED, or SUCCEED for a step re-run from, for an earlier attempt), or the state of the current one.',
      resolve: (a) => a.state as never,
    }),
    exitCode: t.exposeInt('exitCode', { nullable: true, description: 'The script exit code, if it ended on its own.' }),
    reason: t.exposeString('reason', { nullable: true, description: 'Why it failed or was cancelled, in plain words.' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true, description: 'When its script started (null if it never did).' }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true, description: 'When it ended.' }),
    outputs: t.field({
      type: [TrackOutputValue],
      description: 'What it wrote to $DAGPIPE_OUTPUT, if it succeeded (in the order first written); empty otherwise.',
      resolve: (a) => a.outputs,
    }),
  }),
});

const NO_SECRETS: ReadonlySet<string> = new Set();

/**
 * A vertex's outputs that a secret input reads, from its sealed graph (cached), when there
 * are outputs to show (`outputs`: the attempts' JSON); most tracks have none.
 */
async function secretOutputsOf(
  ctx: Context,
  track: { vertexId: number; vertex: { graphId: number } },
  outputs: ReadonlyArray<string | null>,
): Promise<ReadonlySet<string>> {
  if (outputs.every((o) => o === null)) return NO_SECRETS;
  return (await ctx.store.dags.get(ctx.db, track.vertex.graphId)).vertices.get(track.vertexId)?.secretOutputs ?? NO_SECRETS;
}

type PeerTrack = { id: number; vertexId: number; state: number };

const peerLoaders = new WeakMap<Context, DataLoader<number, PeerTrack[]>>();

/**
 * Every track of a pipeline, for the tracks of one request asking why they are blocked:
 * one query per batch. Not cached: a subscription keeps its context for many payloads.
 */
function pipelineTracks(ctx: Context): DataLoader<number, PeerTrack[]> {
  let loader = peerLoaders.get(ctx);
  if (!loader) {
    loader = new DataLoader(
      async (pipelineIds) => {
        const rows = await ctx.db.track.findMany({
          where: { pipelineId: { in: [...pipelineIds] } },
          select: { id: true, vertexId: true, state: true, pipelineId: true },
        });
        return pipelineIds.map((id) => rows.filter((r) => r.pipelineId === id));
      },
      { cache: false },
    );
    peerLoaders.set(ctx, loader);
  }
  return loader;
}

export const Track = builder.prismaObject('Track', {
  description: 'One vertex of one pipeline: its resolved inputs, rendered script, state and output.',
  fields: (t) => ({
    id: t.exposeInt('id', { description: 'Unique id.' }),
    name: t.string({ description: 'The vertex name.', select: { vertex: { select: { name: true } } }, resolve: (track) => track.vertex.name }),
    state: t.field({ type: TrackStateEnum, description: 'Current state.', resolve: (track) => track.state as never }),
    needsInput: t.boolean({
      description: 'True while the track cannot run until finishInput supplies its parameters.',
      // Not the script: a track that reads step outputs has its inputs but no script until it is ready.
      select: { input: true, state: true },
      resolve: (track) => track.input === null && (track.state === TrackState.WAITING || track.state === TrackState.PENDING),
    }),
    input: t.field({
      type: 'JSON',
      nullable: true,
      description:
        'The resolved parameters (secret ones as ***), or null while inputs are missing. Those that read a step output (from) are there once the track is ready.',
      select: { input: true, vertex: { select: { input: true } } },
      resolve: (track) => (track.input === null ? null : maskedValues(inputSchemaOf(track.vertex), parseValues(track.input))),
    }),
    script: t.string({
      nullable: true,
      description:
        'The rendered script (secret values as ***), or null while inputs are missing, and until the track is ready when it reads step outputs (from).',
      select: { script: true, input: true, vertex: { select: { input: true } } },
      resolve: (track) =>
        track.script === null || track.input === null
          ? track.script
          : maskSecrets(track.script, secretsOf(inputSchemaOf(track.vertex), parseValues(track.input))),
    }),
    exitCode: t.exposeInt('exitCode', { nullable: true, description: 'The script exit code, once it ended on its own.' }),
    reason: t.exposeString('reason', { nullable: true, description: 'Why it failed or was cancelled, in plain words.' }),
    attempt: t.exposeInt('attempt', {
      description:
        "The current attempt: starts at 1; an automatic retry (the vertex's retries) and retryPipeline each add 1. exitCode, reason, startedAt, finishedAt and output are this attempt's; attempts lists them all.",
    }),
    attempts: t.field({
      type: [TrackAttempt],
      description: 'Every attempt, oldest first, the current one last: exit code, reason and times. Read an attempt\'s output with output(attempt:).',
      select: {
        attempt: true,
        state: true,
        exitCode: true,
        reason: true,
        startedAt: true,
        finishedAt: true,
        outputs: true,
        vertexId: true,
        vertex: { select: { graphId: true } },
        pastAttempts: { orderBy: { attempt: 'asc' } },
      },
      resolve: async (track, _args, ctx) => {
        const secret = await secretOutputsOf(ctx, track, [track.outputs, ...track.pastAttempts.map((a) => a.outputs)]);
        return [
          ...track.pastAttempts.map((a) => ({ ...a, outputs: shownOutputs(a.outputs, secret) })),
          {
            attempt: track.attempt,
            state: track.state,
            exitCode: track.exitCode,
            reason: track.reason,
            startedAt: track.startedAt,
            finishedAt: track.finishedAt,
            outputs: shownOutputs(track.outputs, secret),
          },
        ];
      },
    }),
    outputs: t.field({
      type: [TrackOutputValue],
      description:
        "What the current attempt's script wrote to $DAGPIPE_OUTPUT (name=value lines, name<<DELIMITER blocks), kept once it succeeded; empty until then. Outputs a secret input reads are ***. Earlier attempts' outputs: attempts.",
      select: { outputs: true, vertexId: true, vertex: { select: { graphId: true } } },
      resolve: async (track, _args, ctx) => shownOutputs(track.outputs, await secretOutputsOf(ctx, track, [track.outputs])),
    }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true, description: 'When the script started.' }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true, description: 'When it ended.' }),
    blockedBy: t.field({
      type: BlockedReason,
      nullable: true,
      description:
        "Why it is not running (its pipeline is queued; waiting for predecessors, input, a retry's delay or a worker; the pipeline failed or was cancelled); null while it runs or after it ran.",
      select: {
        state: true,
        input: true,
        pipelineId: true,
        vertexId: true,
        attempt: true,
        notBefore: true,
        retryCount: true,
        pipeline: { select: { state: true, graphId: true } },
        vertex: { select: { input: true, retries: true, runIf: true } },
        pastAttempts: { select: { attempt: true, reason: true }, orderBy: { attempt: 'desc' }, take: 1 },
      },
      resolve: async (track, _args, ctx) => {
        if (
          track.state === TrackState.RUNNING ||
          track.state === TrackState.SUCCEED ||
          track.state === TrackState.FAILED ||
          track.state === TrackState.SKIPPED
        ) {
          return null;
        }
        let predecessors: TrackRef[] = [];
        let failed: TrackRef[] = [];
        if (track.state === TrackState.WAITING || track.pipeline.state === PipelineState.FAILED) {
          const [graph, peers] = await Promise.all([
            ctx.store.dags.get(ctx.db, track.pipeline.graphId),
            pipelineTracks(ctx).load(track.pipelineId),
          ]);
          const ref = (peer: PeerTrack): TrackRef => ({ trackId: peer.id, name: graph.vertices.get(peer.vertexId)?.name ?? '', state: peer.state });
          const byVertex = new Map(peers.map((p) => [p.vertexId, p]));
          predecessors = (graph.dag.predecessors.get(track.vertexId) ?? []).flatMap((v) => (byVertex.has(v) ? [ref(byVertex.get(v)!)] : []));
          failed = peers.filter((p) => p.state === TrackState.FAILED).map(ref);
        }
        return blockedBy({
          state: track.state,
          runIf: track.vertex.runIf as RunIf,
          needsInput: track.input === null,
          pipelineState: track.pipeline.state,
          predecessors,
          failed,
          missingParams: inputSchemaOf(track.vertex)
            .filter((p) => p.from === undefined && (p.required || p.default === undefined))
            .map((p) => p.name),
          retry:
            track.notBefore === null
              ? null
              : {
                  notBefore: track.notBefore,
                  retryNumber: track.retryCount,
                  retries: track.vertex.retries,
                  failedAttempt: track.attempt - 1,
                  failedReason: track.pastAttempts[0]?.reason ?? null,
                  now: new Date(),
                },
        });
      },
    }),
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
    ...OPERATOR_ONLY,
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
