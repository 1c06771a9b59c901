/** The event journal and the live subscriptions built on it. */
import { createGraphQLError } from 'graphql-yoga';
import type { Context } from '../context.ts';
import type { Event as EventRow } from '../generated/prisma/client.ts';
import type { OutputLine as OutputLineShape } from '../pubsub.ts';
import { builder } from './builder.ts';
import { PipelineStateEnum, TrackStateEnum } from './states.ts';

export const Event = builder.prismaObject('Event', {
  description: 'One committed transition of a pipeline or one of its tracks. Ids grow monotonically.',
  fields: (t) => ({
    id: t.exposeInt('id', { description: 'Monotonic id: the order transitions committed in.' }),
    type: t.exposeString('type', {
      description:
        'What happened, as "domain:action": pipeline:started|finished|failed|cancelled|retried, track:created|ready|input|claimed|succeeded|failed|cancelled|retried.',
    }),
    pipelineId: t.exposeInt('pipelineId', { description: 'The pipeline.' }),
    trackId: t.exposeInt('trackId', { nullable: true, description: 'The track, for track events.' }),
    pipelineState: t.field({
      type: PipelineStateEnum,
      nullable: true,
      description: 'The pipeline state this event set, for pipeline events.',
      resolve: (e) => e.pipelineState as never,
    }),
    trackState: t.field({
      type: TrackStateEnum,
      nullable: true,
      description: 'The track state this event set, for track events.',
      resolve: (e) => e.trackState as never,
    }),
    attempt: t.exposeInt('attempt', { nullable: true, description: 'The track attempt this event belongs to.' }),
    exitCode: t.exposeInt('exitCode', { nullable: true, description: 'The exit code, for finished scripts.' }),
    reason: t.exposeString('reason', { nullable: true, description: 'Why, for failures and cancellations.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'Commit time.' }),
    pipeline: t.relation('pipeline', { description: 'The pipeline, as it is now.' }),
    track: t.relation('track', { nullable: true, description: 'The track, as it is now.' }),
  }),
});

const OutputStream = builder.enumType('OutputStream', {
  description: 'Which stream a line came from.',
  values: { STDOUT: { value: 'stdout', description: 'Standard output.' }, STDERR: { value: 'stderr', description: 'Standard error.' } } as const,
});

const OutputLine = builder.objectRef<OutputLineShape>('OutputLine').implement({
  description: 'One line a running track printed.',
  fields: (t) => ({
    trackId: t.exposeInt('trackId', { description: 'The track.' }),
    attempt: t.exposeInt('attempt', { description: 'The attempt that printed it.' }),
    stream: t.field({ type: OutputStream, description: 'stdout or stderr.', resolve: (l) => l.stream }),
    line: t.exposeString('line', { description: 'The text, without its newline.' }),
  }),
});

/**
 * Persisted events after `after` (when given), then live ones, skipping any already sent.
 * Listening starts before the replay query, so an event committed in between is not lost.
 */
async function* replayThenLive(
  ctx: Context,
  pipelineId: number,
  after: number | null | undefined,
  keep: (event: EventRow) => boolean,
): AsyncGenerator<EventRow> {
  const live = ctx.bus.subscribe('pipeline:event', pipelineId)[Symbol.asyncIterator]();
  let next = live.next(); // starts the subscription now
  let last = after ?? 0;
  try {
    if (after != null) {
      for (;;) {
        const page = await ctx.db.event.findMany({ where: { pipelineId, id: { gt: last } }, orderBy: { id: 'asc' }, take: 1000 });
        for (const event of page) {
          last = event.id;
          if (keep(event)) yield event;
        }
        if (page.length < 1000) break;
      }
    }
    for (;;) {
      const { value, done } = await next;
      if (done) return;
      next = live.next();
      if (value.id <= last) continue;
      last = value.id;
      if (keep(value)) yield value;
    }
  } finally {
    await live.return?.();
  }
}

async function requirePipeline(ctx: Context, pipelineId: number): Promise<void> {
  const found = await ctx.db.pipeline.findUnique({ where: { id: pipelineId }, select: { id: true } });
  if (!found) {
    throw createGraphQLError(`No pipeline with id ${pipelineId} exists. Check the id, for example with the pipelines query.`, {
      extensions: { code: 'NOT_FOUND', field: 'pipelineId' },
    });
  }
}

const followArgs = builder.args((t) => ({
  pipelineId: t.int({ description: 'The pipeline to follow.' }),
  after: t.int({
    required: false,
    description: 'Replay the persisted events with an id greater than this first (0: from the beginning), then continue live.',
  }),
}));

builder.subscriptionFields((t) => ({
  trackUpdated: t.field({
    type: Event,
    description: 'Every track transition of a pipeline, as it commits, in order.',
    args: followArgs,
    subscribe: async function* (_root, args, ctx) {
      await requirePipeline(ctx, args.pipelineId);
      yield* replayThenLive(ctx, args.pipelineId, args.after, (event) => event.trackId !== null);
    },
    resolve: (event) => event,
  }),
  pipelineUpdated: t.field({
    type: Event,
    description: 'Every change of the pipeline state (started, finished, failed, cancelled, retried), as it commits.',
    args: followArgs,
    subscribe: async function* (_root, args, ctx) {
      await requirePipeline(ctx, args.pipelineId);
      yield* replayThenLive(ctx, args.pipelineId, args.after, (event) => event.pipelineState !== null);
    },
    resolve: (event) => event,
  }),
  trackOutput: t.field({
    type: OutputLine,
    description: 'The lines a track prints while it runs, live. The whole output is stored in Track.output when it ends.',
    args: { trackId: t.arg.int({ description: 'The track to follow.' }) },
    subscribe: async (_root, args, ctx) => {
      const found = await ctx.db.track.findUnique({ where: { id: args.trackId }, select: { id: true } });
      if (!found) {
        throw createGraphQLError(`No track with id ${args.trackId} exists.`, { extensions: { code: 'NOT_FOUND', field: 'trackId' } });
      }
      return ctx.bus.subscribe('track:output', args.trackId);
    },
    resolve: (line) => line,
  }),
}));
