/** The event journal and the live subscriptions built on it. */
import { createGraphQLError } from 'graphql-yoga';
import type { Context } from '../context.ts';
import type { Event as EventRow } from '../generated/prisma/client.ts';
import { pushThrough, type Sink } from '../live-push.ts';
import { isPipelineDeleted, type Feed, type PipelineDeleted, type PipelineMessage } from '../pubsub.ts';
import { builder } from './builder.ts';
import { PipelineStateEnum, TrackStateEnum } from './states.ts';

export const Event = builder.prismaObject('Event', {
  description: 'One committed transition of a pipeline or one of its tracks. Ids grow monotonically.',
  fields: (t) => ({
    id: t.exposeInt('id', { description: 'Monotonic id: the order transitions committed in.' }),
    type: t.exposeString('type', {
      description:
        'What happened, as "domain:action": pipeline:started|finished|failed|cancelled|retried, track:created|ready|input|claimed|succeeded|failed|cancelled|retried|retrying. track:retrying: an attempt failed and the track will run again by itself (the vertex\'s retries): trackState PENDING, attempt the new attempt, exitCode the failed attempt\'s, reason how it failed and when the retry starts. track:failed is only the last failure, which fails the pipeline; track:retried is retryPipeline putting a track back into play.',
    }),
    pipelineId: t.exposeInt('pipelineId', { description: 'The pipeline.' }),
    seq: t.exposeInt('seq', {
      description:
        "The event's position in its pipeline: 1, 2, 3, ... in commit order, without gaps (a missing number means a missed event). Ids grow in the same order within a pipeline.",
    }),
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
      description:
        'The state this event set, for track events: the track as it was at this event. Draw a replayed or live event with this; track { state } is the state now, possibly several events later.',
      resolve: (e) => e.trackState as never,
    }),
    attempt: t.exposeInt('attempt', { nullable: true, description: 'The track attempt this event belongs to.' }),
    exitCode: t.exposeInt('exitCode', { nullable: true, description: 'The exit code, for finished scripts.' }),
    reason: t.exposeString('reason', { nullable: true, description: 'Why, for failures and cancellations.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'Commit time.' }),
    pipeline: t.relation('pipeline', { description: 'The pipeline, as it is now.' }),
    track: t.relation('track', {
      nullable: true,
      description:
        'The track as it is now, when this field is resolved, not as it was at the event: its state may be several transitions later (e.g. RUNNING for a track:input event that set PENDING). The state at the event is trackState.',
    }),
  }),
});

/**
 * How long a live event that arrived ahead of its predecessor (by seq) waits for it on the
 * feed before the gap is read from the event table (see replay).
 */
const REORDER_WAIT_MS = 50;

/** Events per database page when replaying or catching up. */
const PAGE = 1000;

/** Where a stream hands live items on directly, once its consumer gave it a sink (src/live-push.ts). */
export interface Outlet<T> {
  sink?: Sink<T>;
}

/**
 * Persisted events after `after` (when given), then live ones, without gap or duplicate,
 * for as long as the subscriber stays: a pipeline's streams have no end state (see
 * engine/stream-end.ts), unless the pipeline is deleted: then the last item is its
 * {@link PipelineDeleted} (see {@link deletedError}). Listening starts before
 * the first read, so nothing committed in between is missed; a subscriber that falls
 * behind the live feed, or misses an event on the way (Redis drops messages), catches up
 * from the event table.
 */
function replayThenLive(
  ctx: Context,
  pipelineId: number,
  after: number | null | undefined,
  keep: (event: EventRow) => boolean,
): AsyncIterableIterator<EventRow | PipelineDeleted> {
  const live = ctx.bus.subscribe('pipeline:event', pipelineId);
  const outlet: Outlet<EventRow | PipelineDeleted> = {};
  return stoppable(live.stop, replay(ctx, live.feed, pipelineId, after, keep, outlet), outlet);
}

/**
 * What a subscriber of a deleted pipeline gets last: an error in the payload (no stack, the
 * code of an unknown id), and then the stream completes.
 */
export function deletedError(pipelineId: number, field = 'pipelineId'): never {
  throw createGraphQLError(
    `Pipeline ${pipelineId} was deleted (by an admin with deletePipeline, or by retention: RETENTION_DAYS), with its tracks, events and output; nothing more will come on this subscription.`,
    { extensions: { code: 'NOT_FOUND', field } },
  );
}

async function pipelineExists(ctx: Context, pipelineId: number): Promise<boolean> {
  return (await ctx.db.pipeline.findUnique({ where: { id: pipelineId }, select: { id: true } })) !== null;
}

async function* replay(
  ctx: Context,
  feed: Feed<PipelineMessage>,
  pipelineId: number,
  after: number | null | undefined,
  keep: (event: EventRow) => boolean,
  outlet?: Outlet<EventRow | PipelineDeleted>,
): AsyncGenerator<EventRow | PipelineDeleted> {
  const deleted: PipelineDeleted = { pipelineId, deleted: true };
  /** The id and the seq of the last event handled (seq unknown until needed, when resuming after an id). */
  let last: number;
  let lastSeq: number | undefined;
  if (after != null) {
    last = after;
  } else {
    const newest = await ctx.db.event.findFirst({ where: { pipelineId }, orderBy: { id: 'desc' }, select: { id: true, seq: true } });
    // No event at all: deleted since the subscriber asked for it (its deletion may have been
    // published before listening began).
    if (newest === null && !(await pipelineExists(ctx, pipelineId))) {
      yield deleted;
      return;
    }
    last = newest?.id ?? 0;
    lastSeq = newest?.seq ?? 0;
  }
  // Listening started before `last` was fixed: every later event is in the feed or (dropped
  // from it) in the table.
  let catchUp = after != null;
  /** Live events that arrived before an event with a lower seq, in seq order; and since when. */
  let early: EventRow[] = [];
  let gapSince: number | undefined;
  // While caught up, the live event right after the last one handled goes to the consumer
  // straight from the bus (src/live-push.ts). Anything else (an early or a repeated event,
  // one the consumer declines) is left to the loop below.
  const passOn = (message: PipelineMessage): boolean => {
    if (isPipelineDeleted(message)) return false;
    const event = message;
    if (lastSeq === undefined || event.seq !== lastSeq + 1) return false;
    if (keep(event) && !outlet!.sink!(event)) return false;
    last = event.id;
    lastSeq = event.seq;
    return true;
  };
  for (;;) {
    while (catchUp) {
      const page = await ctx.db.event.findMany({ where: { pipelineId, id: { gt: last } }, orderBy: { id: 'asc' }, take: PAGE });
      for (const event of page) {
        last = event.id;
        lastSeq = event.seq;
        if (keep(event)) yield event;
      }
      catchUp = page.length === PAGE;
      // Nothing new may also mean nothing left: the deletion's message may have been lost.
      if (page.length === 0 && !(await pipelineExists(ctx, pipelineId))) {
        yield deleted;
        return;
      }
    }
    const waitMs = gapSince === undefined ? undefined : Math.max(0, gapSince + REORDER_WAIT_MS - Date.now());
    const { items: messages, dropped, closed } = await feed.take(waitMs, outlet?.sink && early.length === 0 ? passOn : undefined);
    if (closed) return;
    const items = messages.filter((message): message is EventRow => !isPipelineDeleted(message));
    if (items.length < messages.length) {
      // Deleted: the events that came before it in order, then the end.
      for (const event of [...early, ...items].filter((e) => e.id > last).sort((a, b) => a.seq - b.seq)) {
        if (lastSeq !== undefined && event.seq <= lastSeq) continue;
        lastSeq = event.seq;
        if (keep(event)) yield event;
      }
      yield deleted;
      return;
    }
    // Seqs run 1, 2, 3, ... in commit order. One that skips ahead is either early (two
    // transactions of the pipeline committed at once, and the later one was published
    // first: its predecessor follows within moments) or a missed event (dropped on the way,
    // or never published): wait REORDER_WAIT_MS for the missing ones on the feed, then read
    // the gap from the table. Reading at once would send every subscriber of a busy
    // pipeline to the database at every reordering, and each would then execute its own
    // rows instead of sharing the live event's result (shared-execution.ts).
    const arrived = [...early, ...items].filter((event) => event.id > last).sort((a, b) => a.seq - b.seq);
    early = [];
    for (const [index, event] of arrived.entries()) {
      lastSeq ??= await seqUpTo(ctx, pipelineId, last);
      if (event.seq <= lastSeq) continue; // a duplicate of one handled
      if (event.seq !== lastSeq + 1) {
        early = arrived.slice(index).filter((e, i, all) => i === 0 || e.seq !== all[i - 1]!.seq);
        break;
      }
      last = event.id;
      lastSeq = event.seq;
      if (keep(event)) yield event;
    }
    let gap = false;
    if (early.length === 0) {
      gapSince = undefined;
    } else {
      gapSince ??= Date.now();
      if (Date.now() - gapSince >= REORDER_WAIT_MS) gap = true;
    }
    // Missed live events are in the table: read them from there.
    catchUp = gap || dropped > 0;
    if (catchUp) {
      early = [];
      gapSince = undefined;
    }
  }
}

/** The seq of the pipeline's newest event with an id up to `id` (0: none). */
async function seqUpTo(ctx: Context, pipelineId: number, id: number): Promise<number> {
  const event = await ctx.db.event.findFirst({ where: { pipelineId, id: { lte: id } }, orderBy: { id: 'desc' }, select: { seq: true } });
  return event?.seq ?? 0;
}

/**
 * An iterator whose return() stops listening at once. A generator waiting for the next
 * item would only see return() after that item arrived, which may be never. A generator
 * that ends by itself (the stream is complete) or fails stops listening too: the consumer
 * calls return() only when it leaves early.
 */
export function stoppable<T>(stop: () => void, generator: AsyncGenerator<T>, outlet?: Outlet<T>): AsyncIterableIterator<T> {
  return {
    ...(outlet && {
      [pushThrough]: (sink: Sink<T>) => {
        outlet.sink = sink;
      },
    }),
    next: async () => {
      try {
        const step = await generator.next();
        if (step.done) stop();
        return step;
      } catch (error) {
        stop();
        throw error;
      }
    },
    return: (value?: unknown) => {
      stop();
      return generator.return(value as T);
    },
    throw: (error?: unknown) => {
      stop();
      return generator.throw(error);
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
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

/** A message of pipelineLive: the snapshot first (unless resuming), then one event each; `deleted` last, if it is deleted. */
interface LiveMessage {
  snapshot?: { pipelineId: number; read: (cursor: number) => void };
  event?: EventRow;
  deleted?: PipelineDeleted;
}

const PipelineLiveMessage = builder.objectRef<LiveMessage>('PipelineLiveMessage').implement({
  description: 'One message of pipelineLive: first the whole pipeline (snapshot), then one change (event) per message.',
  fields: (t) => ({
    snapshot: t.prismaField({
      type: 'Pipeline',
      nullable: true,
      description:
        'First message only: the whole pipeline with everything selected under it, read in one transaction; its `cursor` is the last event it reflects, and the events that follow are exactly the ones after it.',
      resolve: async (query, message, _args, ctx) => {
        if (!message.snapshot) return null;
        const { pipelineId, read } = message.snapshot;
        // One transaction: the pipeline, its tracks and the newest event id agree.
        // One snapshot for both reads: on PostgreSQL, READ COMMITTED gives each statement its
        // own, and the cursor could then count events the pipeline read did not show yet.
        const [pipeline, cursor] = await ctx.db.$transaction(
          async (tx) => [
            await tx.pipeline.findUnique({ ...query, where: { id: pipelineId } }),
            (await tx.event.findFirst({ where: { pipelineId }, orderBy: { id: 'desc' }, select: { id: true } }))?.id ?? 0,
          ],
          // The client's type is SQLite's, which knows Serializable only.
          ctx.store.fast.provider === 'postgres' ? { isolationLevel: 'RepeatableRead' as never } : {},
        );
        read(cursor);
        return pipeline;
      },
    }),
    event: t.field({
      type: Event,
      nullable: true,
      description: 'Every later message: one committed change (its id is the cursor to resume from).',
      resolve: (message) => message.event ?? null,
    }),
  }),
});

/**
 * One message object per event, whoever it goes to: subscribers of the same operation then
 * share its execution and its JSON (src/shared-execution.ts keys on the object).
 */
const eventMessages = new WeakMap<EventRow | PipelineDeleted, LiveMessage>();

function eventMessage(item: EventRow | PipelineDeleted): LiveMessage {
  let message = eventMessages.get(item);
  if (message === undefined) eventMessages.set(item, (message = isPipelineDeleted(item) ? { deleted: item } : { event: item }));
  return message;
}

/** The snapshot message, then every event after the state it showed. */
async function* liveMessages(
  ctx: Context,
  feed: Feed<PipelineMessage>,
  pipelineId: number,
  after: number | null | undefined,
  outlet: Outlet<LiveMessage>,
): AsyncGenerator<LiveMessage> {
  let cursor = after;
  if (cursor == null) {
    let read: number | undefined;
    yield { snapshot: { pipelineId, read: (id) => (read = id) } };
    // The snapshot was resolved before the next message is asked for; a client that did
    // not select it continues from the newest event now.
    cursor = read ?? (await ctx.db.event.findFirst({ where: { pipelineId }, orderBy: { id: 'desc' }, select: { id: true } }))?.id ?? 0;
  }
  const events: Outlet<EventRow | PipelineDeleted> = { sink: (event) => outlet.sink !== undefined && outlet.sink(eventMessage(event)) };
  for await (const event of replay(ctx, feed, pipelineId, cursor, () => true, events)) yield eventMessage(event);
}

builder.subscriptionFields((t) => ({
  pipelineLive: t.field({
    type: PipelineLiveMessage,
    description:
      'For UIs: first the whole pipeline (select anything under snapshot, e.g. its tracks), then every change as it commits, with no gap and no duplicate. With after, no snapshot: the events after that id, then live (to resume). Stays open while the client stays, also after the pipeline ended: retryPipeline may resume a FAILED or CANCELLED pipeline and re-run a FINISH one from a step, and those events arrive on the same subscription. To follow one run to its end, stop at the event whose pipelineState is FINISH, FAILED or CANCELLED. Deleted (deletePipeline, or retention after RETENTION_DAYS), the pipeline\'s streams end: the last payload is an error saying so (code NOT_FOUND), then the stream completes.',
    args: followArgs,
    subscribe: async (_root, args, ctx) => {
      await requirePipeline(ctx, args.pipelineId);
      // Listening starts before the snapshot is read, so nothing falls in between.
      const live = ctx.bus.subscribe('pipeline:event', args.pipelineId);
      const outlet: Outlet<LiveMessage> = {};
      return stoppable(live.stop, liveMessages(ctx, live.feed, args.pipelineId, args.after, outlet), outlet);
    },
    resolve: (message) => (message.deleted ? deletedError(message.deleted.pipelineId) : message),
  }),
  trackUpdated: t.field({
    type: Event,
    description:
      'Every track transition of a pipeline, as it commits, in order. Stays open while the client stays, also after the pipeline ended: a retry or a re-run from a step (retryPipeline) puts tracks back into play, and their transitions arrive on the same subscription. To follow one run to its end, watch pipelineUpdated (or pipelineLive) for FINISH, FAILED or CANCELLED. Deleted (deletePipeline, or retention after RETENTION_DAYS), the pipeline\'s streams end: the last payload is an error saying so (code NOT_FOUND), then the stream completes.',
    args: followArgs,
    subscribe: async (_root, args, ctx) => {
      await requirePipeline(ctx, args.pipelineId);
      return replayThenLive(ctx, args.pipelineId, args.after, (event) => event.trackId !== null);
    },
    resolve: (event) => (isPipelineDeleted(event) ? deletedError(event.pipelineId) : event),
  }),
  pipelineUpdated: t.field({
    type: Event,
    description:
      'Every change of the pipeline state (started, finished, failed, cancelled, retried), as it commits. Stays open while the client stays, also after finished, failed or cancelled: retryPipeline may resume the pipeline or re-run it from a step, and its retried event arrives on the same subscription. Deleted (deletePipeline, or retention after RETENTION_DAYS), the pipeline\'s streams end: the last payload is an error saying so (code NOT_FOUND), then the stream completes.',
    args: followArgs,
    subscribe: async (_root, args, ctx) => {
      await requirePipeline(ctx, args.pipelineId);
      return replayThenLive(ctx, args.pipelineId, args.after, (event) => event.pipelineState !== null);
    },
    resolve: (event) => (isPipelineDeleted(event) ? deletedError(event.pipelineId) : event),
  }),
}));
