/**
 * Track output, one model for live and history: every line has a byte offset in its
 * attempt's output; `Track.output(offset, limit)` pages through what is stored, and
 * `trackOutput(trackId, offset)` replays from an offset and then continues live, without
 * a gap or a duplicate. Secret parameter values arrive here already masked.
 */
import DataLoader from 'dataloader';
import { createGraphQLError } from 'graphql-yoga';
import type { Context } from '../context.ts';
import { assemblePage, chunkLines, itemsToText, lineBytes, type OutputItem, type PlacedLine } from '../engine/output-window.ts';
import { isTerminalTrackState } from '../engine/states.ts';
import { endsOutputStream } from '../engine/stream-end.ts';
import type { Event as EventRow } from '../generated/prisma/client.ts';
import { isPipelineDeleted, type Feed, type OutputChunk, type PipelineMessage } from '../pubsub.ts';
import { readOutput, type OutputRequest, type OutputSlice } from '../store/output.ts';
import { prismaRunner } from '../store/sql.ts';
import { builder } from './builder.ts';
import { deletedError, stoppable } from './event.ts';

/** Largest page of output one request returns. */
export const MAX_PAGE_BYTES = 4 * 1024 * 1024;
/**
 * Page size of a subscriber's catch-up from the stored output: the page's lines become
 * objects that wait until a slow client takes them, so a page is kept small.
 */
const CATCH_UP_PAGE_BYTES = 64 * 1024;
/**
 * Bytes of live output waiting for one subscriber before newer pieces are dropped (it then
 * catches up). Kept small: what waits lives long, and the lines a subscriber was sent keep
 * their shared results while the piece they came from is still held by any subscriber.
 */
const LIVE_FEED_BYTES = 256 * 1024;

/** A line as delivered: `offset` is null for notices written by the service. */
interface DeliveredLine extends Omit<PlacedLine, 'offset'> {
  trackId: number;
  attempt: number;
  offset: number | null;
}

/**
 * The lines of a live piece, made once for all its subscribers: shared execution
 * (src/shared-execution.ts) executes a line once for every subscriber handed that same object.
 */
const liveLines = new WeakMap<OutputChunk, LiveLine[]>();

/** The last item of a track's output stream when its pipeline was deleted (also how it ends: OutputEnd). */
interface TrackDeleted {
  deletedPipelineId: number;
}

function isTrackDeleted(item: DeliveredLine | TrackDeleted): item is TrackDeleted {
  return (item as Partial<TrackDeleted>).deletedPipelineId !== undefined;
}

/**
 * How a track's output stream ends: the attempt whose end ends it (see endsOutputStream),
 * its pipeline's deletion, or null when the subscriber went away first.
 */
type OutputEnd = number | TrackDeleted | null;

/** A line printed (not a notice): it has its offset. */
type LiveLine = DeliveredLine & { offset: number };

function linesOf(chunk: OutputChunk): LiveLine[] {
  let lines = liveLines.get(chunk);
  if (!lines) {
    lines = chunkLines(chunk).map((line) => ({ trackId: chunk.trackId, attempt: chunk.attempt, ...line }));
    liveLines.set(chunk, lines);
  }
  return lines;
}

const OutputStream = builder.enumType('OutputStream', {
  description: 'Which stream a line came from.',
  values: { STDOUT: { value: 'stdout', description: 'Standard output.' }, STDERR: { value: 'stderr', description: 'Standard error.' } } as const,
});

const OutputLine = builder.objectRef<DeliveredLine>('OutputLine').implement({
  description: 'One line a track printed (secret parameter values masked as ***), or a notice from the service.',
  fields: (t) => ({
    trackId: t.exposeInt('trackId', { description: 'The track.' }),
    attempt: t.exposeInt('attempt', { description: 'The attempt that printed it; offsets start at 0 in each attempt.' }),
    stream: t.field({ type: OutputStream, description: 'stdout or stderr (notices: stderr).', resolve: (l) => l.stream }),
    line: t.exposeString('line', { description: 'The text, without its newline.' }),
    offset: t.exposeInt('offset', {
      nullable: true,
      description:
        'Byte offset of the line in its attempt\'s output (lines count with their newline); resume with trackOutput(offset:) or Track.output(offset:). Null for a notice written by the service (output dropped over the limit, or lines a subscriber could not be sent live, named with their offsets).',
    }),
  }),
});

interface OutputPageShape extends OutputSlice {
  trackId: number;
  attempt: number;
  offset: number;
  limitBytes: number;
  ended: boolean;
}

const OutputPage = builder.objectRef<OutputPageShape>('OutputPage').implement({
  description:
    'A page of a track attempt\'s output, from a byte offset. Over OUTPUT_LIMIT_BYTES the first and last halves are kept and a marker stands where the middle was dropped.',
  fields: (t) => ({
    text: t.string({
      description: 'The lines of this page with their newlines, a truncation marker in place of dropped output.',
      resolve: (page) => itemsToText(page.items, page.limitBytes),
    }),
    lines: t.field({
      type: [OutputLine],
      description: 'The same, line by line, with streams and offsets (the truncation marker as a notice).',
      resolve: (page) => page.items.flatMap((item) => deliver(item, page.trackId, page.attempt, page.limitBytes)),
    }),
    attempt: t.exposeInt('attempt', { description: 'The attempt this output belongs to.' }),
    offset: t.exposeInt('offset', { description: 'The offset asked for.' }),
    nextOffset: t.exposeInt('nextOffset', { description: 'Where the next page starts: pass it as offset.' }),
    size: t.exposeInt('size', { description: 'Bytes the attempt printed so far.' }),
    truncated: t.boolean({ description: 'Whether some of this attempt\'s output was dropped over the limit.', resolve: (p) => p.droppedBytes > 0 }),
    complete: t.boolean({
      description: 'True when the attempt has ended and this page reaches its end: no more output will come.',
      resolve: (page) => page.ended && page.nextOffset >= page.size,
    }),
  }),
});

/** An item of a page as lines: its lines, or the notice standing for dropped output. */
function deliver(item: OutputItem, trackId: number, attempt: number, limitBytes: number): DeliveredLine[] {
  if (item.gap === undefined) return chunkLines(item).map((line) => ({ trackId, attempt, ...line }));
  return [{ trackId, attempt, stream: 'stderr', offset: null, line: itemsToText([item], limitBytes).trimEnd() }];
}

const loaders = new WeakMap<Context, DataLoader<OutputRequest, OutputSlice, string>>();

/** Output pages of one request, read together: a list of tracks costs two queries. */
function outputLoader(ctx: Context): DataLoader<OutputRequest, OutputSlice, string> {
  let loader = loaders.get(ctx);
  if (!loader) {
    // Not cached: a subscription keeps its context for many payloads.
    loader = new DataLoader((requests) => readOutputNow(ctx, requests), { cache: false });
    loaders.set(ctx, loader);
  }
  return loader;
}

/**
 * Pages of output. An attempt this executor runs has all it keeps in memory (the stored
 * head too), so its pages come from there: no database read, and no copy of what is
 * stored to make, collect and, when a page is slow to send, promote to the old generation.
 */
async function readOutputNow(ctx: Context, requests: readonly OutputRequest[]): Promise<OutputSlice[]> {
  const inMemory = requests.map((r) => ctx.executor.keptOutput(r.trackId, r.attempt, r.offset));
  const stored = await readOutput(
    prismaRunner(ctx.db, ctx.store.fast.provider),
    requests.filter((_, i) => inMemory[i] === undefined),
    (r) => ctx.executor.unflushedOutput(r.trackId, r.attempt, r.offset) ?? [],
  );
  return requests.map((r, i) => {
    const kept = inMemory[i];
    if (kept === undefined) return stored.shift()!;
    return { ...assemblePage(kept.pieces, [], r.offset, r.limitBytes), size: kept.size, droppedBytes: kept.droppedBytes };
  });
}

function badArgument(field: string, message: string): never {
  throw createGraphQLError(message, { extensions: { code: 'BAD_USER_INPUT', field } });
}

function checkOffset(offset: number | null | undefined): number {
  if (offset != null && offset < 0) badArgument('offset', `offset must be 0 or more (a byte offset), got ${offset}.`);
  return offset ?? 0;
}

builder.prismaObjectField('Track', 'output', (t) =>
  t.field({
    type: OutputPage,
    description:
      'What the track printed (stdout and stderr in arrival order, secrets masked), from a byte offset; also while it runs. By default the latest attempt, from its start.',
    args: {
      offset: t.arg.int({ required: false, description: 'Start at this byte offset (default 0); use nextOffset of the previous page.' }),
      limit: t.arg.int({ required: false, description: `At most about this many bytes of lines (default and maximum ${MAX_PAGE_BYTES}; at least one line).` }),
      attempt: t.arg.int({ required: false, description: 'Another attempt than the latest (attempts start at 1).' }),
    },
    select: { id: true, attempt: true, state: true },
    resolve: async (track, args, ctx) => {
      const offset = checkOffset(args.offset);
      if (args.limit != null && (args.limit < 1 || args.limit > MAX_PAGE_BYTES)) {
        badArgument('limit', `limit must be between 1 and ${MAX_PAGE_BYTES} bytes, got ${args.limit}.`);
      }
      const attempt = args.attempt ?? track.attempt;
      if (attempt < 1 || attempt > track.attempt) {
        badArgument('attempt', `attempt must be between 1 and ${track.attempt}, the attempts this track has had; got ${attempt}.`);
      }
      const limitBytes = args.limit ?? MAX_PAGE_BYTES;
      const slice = await outputLoader(ctx).load({ trackId: track.id, attempt, offset, limitBytes });
      const ended =
        (attempt < track.attempt || isTerminalTrackState(track.state)) && ctx.executor.unflushedOutput(track.id, attempt) === undefined;
      return { ...slice, trackId: track.id, attempt, offset, limitBytes: ctx.outputLimitBytes, ended };
    },
  }),
);

/**
 * How long a gap in the live lines may wait for the store: the process that runs the
 * attempt stores its lines a moment after they are printed (OutputRecorder: 250 ms and a
 * write), and a subscriber elsewhere reads them from there. Only the first half of
 * OUTPUT_LIMIT_BYTES is stored while the attempt runs (the rest with its result), so a
 * gap beyond it does not wait.
 */
const GAP_WAIT_MS = 10_000;
const GAP_RETRY_MS = 100;
/** After a miss of unknown extent, when to read the store once more for lines not stored yet at the first read. */
const RECHECK_MS = 1500;

/**
 * Lines of the track from `offset` (when given) of its current attempt, then live ones. A
 * gap in what arrives live (this subscriber fell behind, or Redis lost lines on the way) is
 * filled from the stored output, waiting briefly for lines that are not stored yet.
 * When `end` settles (the track succeeded: nothing more can come) the line feed is closed:
 * the lines queued in it were published before the result committed, and the store has
 * the rest, the tail stored with the result included.
 */
async function* followOutput(
  ctx: Context,
  feed: Feed<OutputChunk>,
  track: { id: number; attempt: number },
  offset: number | null,
  end: Promise<OutputEnd>,
): AsyncGenerator<DeliveredLine | TrackDeleted> {
  let attempt = track.attempt;
  /** Everything of `attempt` before this was delivered; null: following live only. */
  let position: number | null = null;
  /** Set after a miss whose extent is unknown: read the store again then, unless live lines show nothing is missing. */
  let recheckAt: number | undefined;

  async function* catchUp(from: number): AsyncGenerator<DeliveredLine> {
    for (;;) {
      const [slice] = await readOutputNow(ctx, [{ trackId: track.id, attempt, offset: from, limitBytes: CATCH_UP_PAGE_BYTES }]);
      for (const item of slice!.items) yield* deliver(item, track.id, attempt, ctx.outputLimitBytes);
      position = Math.max(from, slice!.nextOffset);
      if (slice!.items.length === 0 || position >= slice!.size) return;
      from = position;
    }
  }

  /** Delivers the lines before offset `to` from the store, or says they cannot be delivered. */
  async function* fillGap(to: number): AsyncGenerator<DeliveredLine> {
    const storedWhileRunning = Math.floor(ctx.outputLimitBytes / 2);
    const deadline = Date.now() + (position! < storedWhileRunning ? GAP_WAIT_MS : 0);
    for (;;) {
      yield* catchUp(position!);
      if (position! >= to) return;
      if (Date.now() >= deadline) break;
      await new Promise((resolve) => setTimeout(resolve, GAP_RETRY_MS));
    }
    // Not stored (yet): past the first half of OUTPUT_LIMIT_BYTES a running attempt's lines
    // are stored only when it ends (or dropped, if more follow), or its process is away.
    const from = position!;
    position = to;
    yield {
      trackId: track.id,
      attempt,
      stream: 'stderr',
      offset: null,
      line: `[${to - from} bytes of output (from offset ${from}) could not be delivered live here; once stored, Track.output(offset: ${from}, attempt: ${attempt}) has them]`,
    };
  }

  if (offset !== null) yield* catchUp(offset);
  for (;;) {
    const { items, dropped, closed } = await feed.take(recheckAt === undefined ? undefined : Math.max(0, recheckAt - Date.now()));
    for (let i = 0; i < items.length; i++) {
      const chunk = items[i]!;
      // Let go of each piece once sent: its lines (and their shared results) can then die young.
      items[i] = undefined as never;
      if (chunk.attempt < attempt) continue; // a superseded attempt still dying
      if (chunk.attempt > attempt) {
        // A retry: follow the new attempt from its start.
        attempt = chunk.attempt;
        if (position !== null) position = 0;
      }
      if (position !== null && chunk.offset + chunk.bytes <= position) continue; // delivered already
      if (position !== null && chunk.offset > position) yield* fillGap(chunk.offset);
      recheckAt = undefined; // this piece follows what was delivered: nothing before it is missing
      for (const line of linesOf(chunk)) {
        if (position !== null && line.offset < position) continue; // delivered already
        position = line.offset + lineBytes(line.line);
        yield line;
      }
    }
    if (dropped > 0 && position !== null) {
      yield* catchUp(position);
      // Lines printed just before the miss may not be stored yet where another process runs the attempt.
      recheckAt = Date.now() + RECHECK_MS;
    } else if (recheckAt !== undefined && Date.now() >= recheckAt) {
      recheckAt = undefined;
      if (position !== null) yield* catchUp(position);
    }
    if (closed) {
      const ended = await end; // null: the subscriber went away
      if (ended === null) return;
      if (typeof ended === 'object') {
        yield ended;
        return;
      }
      if (ended > attempt) {
        // A retry whose attempt printed nothing live here: its lines are all in the store.
        attempt = ended;
        if (position !== null) position = 0;
      }
      if (position !== null) yield* catchUp(position);
      return;
    }
  }
}

/**
 * How the track's output stream ends (see OutputEnd), from its pipeline's events; null once
 * `feed` is closed first (the subscriber went away).
 */
async function watchEnd(ctx: Context, feed: Feed<PipelineMessage>, trackId: number, pipelineId: number): Promise<OutputEnd> {
  for (;;) {
    const { items, dropped, closed } = await feed.take();
    if (closed) return null;
    const events = items.filter((item): item is EventRow => !isPipelineDeleted(item));
    if (events.length < items.length) return { deletedPipelineId: pipelineId };
    const ending = events.find((event) => event.trackId === trackId && endsOutputStream(event.trackState));
    if (ending?.attempt != null) return ending.attempt;
    if (ending || dropped > 0) {
      // Missed events (or one without its attempt): the committed state says.
      const now = await ctx.db.track.findUnique({ where: { id: trackId }, select: { state: true, attempt: true } });
      if (now === null) return { deletedPipelineId: pipelineId };
      if (endsOutputStream(now.state)) return now.attempt;
    }
  }
}

builder.subscriptionFields((t) => ({
  trackOutput: t.field({
    type: OutputLine,
    description:
      'The lines a track prints, live, secrets masked. With offset, first the stored lines of its current attempt from that byte offset (0: from the start), then live ones, with no gap and no duplicate; a subscriber that falls behind catches up from the stored output. A retry\'s new attempt continues the same subscription (its offsets start at 0 again). Completes once the track SUCCEEDed and its last lines (the tail stored with the result too) were sent; subscribed to a track that succeeded already: its stored lines from offset, then complete (without offset: complete at once). A FAILED or CANCELLED track\'s stream stays open, because retryPipeline may give it another attempt. A succeeded track re-run from a step (retryPipeline with from) gets its new attempt after its stream completed: subscribe again on its track:retried event. Deleted with its pipeline (deletePipeline, or retention after RETENTION_DAYS), the stream ends: the last payload is an error saying so (code NOT_FOUND), then the stream completes.',
    args: {
      trackId: t.arg.int({ description: 'The track to follow.' }),
      offset: t.arg.int({ required: false, description: 'Replay the current attempt\'s stored output from this byte offset first.' }),
    },
    subscribe: async (_root, args, ctx) => {
      const offset = args.offset == null ? null : checkOffset(args.offset);
      // Listen before reading, so that no line falls between the replay and the live feed.
      const lines = ctx.bus.subscribe('track:output', args.trackId, LIVE_FEED_BYTES, { weigh: (chunk) => chunk.bytes });
      let events: { feed: Feed<PipelineMessage>; stop(): void } | undefined;
      const stop = () => {
        lines.stop();
        events?.stop();
      };
      try {
        const found = await ctx.db.track.findUnique({ where: { id: args.trackId }, select: { pipelineId: true } });
        if (!found) {
          throw createGraphQLError(`No track with id ${args.trackId} exists. Check the id, for example with the tracks query.`, {
            extensions: { code: 'NOT_FOUND', field: 'trackId' },
          });
        }
        // The end of the output shows in the pipeline's events (still one subscription: not
        // counted again); the state read after listening to them says whether it came already.
        events = ctx.bus.subscribe('pipeline:event', found.pipelineId, undefined, { counted: false });
        const track = await ctx.db.track.findUnique({ where: { id: args.trackId }, select: { id: true, attempt: true, state: true } });
        // Gone since the first look: deleted with its pipeline, perhaps before listening began.
        if (track === null) deletedError(found.pipelineId, 'trackId');
        const end = endsOutputStream(track.state) ? Promise.resolve<OutputEnd>(track.attempt) : watchEnd(ctx, events.feed, track.id, found.pipelineId);
        void end.then(() => lines.feed.close(), () => lines.feed.close());
        return stoppable(stop, followOutput(ctx, lines.feed, track, offset, end));
      } catch (error) {
        stop();
        throw error;
      }
    },
    resolve: (line) => (isTrackDeleted(line) ? deletedError(line.deletedPipelineId, 'trackId') : line),
  }),
}));
