/**
 * Following a pipeline until it ends: a snapshot, then the trackUpdated and
 * pipelineUpdated subscriptions from the first event (`after: 0`: the journal replayed,
 * then live, without gap or duplicate). When a pipeline event says it ended (the server's
 * streams stay open after that, since an ended pipeline may be retried or re-run from a
 * step), or the server completes a stream, the journal after the last track event seen closes any
 * gap between the two streams; only then does the watch end, so the display and the exit
 * code describe the same final state.
 *
 * On a terminal the frame is redrawn in place at most ten times a second; otherwise each
 * transition is one plain line (CI logs).
 */
import type { Api } from './client.ts';
import { InterruptedError, RefusedError } from './errors.ts';
import { CliPipelineJournal, CliPipelineSnapshot, CliPipelineUpdated, CliTrackUpdated } from './operations.ts';
import { outputTail } from './output.ts';
import { Progress, type PipelineState, type ProgressEvent, type TrackView, type Transition } from './progress.ts';
import { renderFrame, renderInputWait, renderSummary, renderTransition } from './render.ts';
import type { Io } from './io.ts';

/** Output lines shown for a failed track. */
export const TAIL_LINES = 20;
const REDRAW_MS = 100;
/** How long nothing may be runnable before the "waits for finishInput" note is printed. */
const STALL_MS = 500;
const JOURNAL_PAGE = 10_000;

/** The live frame on a terminal: redrawn in place, never more often than REDRAW_MS. */
class Screen {
  private height = 0;
  private last = '';
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly io: Io,
    private readonly frame: () => string[],
  ) {}

  start(): void {
    this.io.stdout.write('\x1b[?25l');
    this.draw();
    this.timer = setInterval(() => this.draw(), REDRAW_MS);
  }

  draw(): void {
    const text = this.frame().join('\n');
    if (text === this.last && this.height > 0) return;
    this.io.stdout.write(`${this.clear()}${text}\n`);
    this.last = text;
    this.height = text.split('\n').length;
  }

  /** Shows the cursor again; removes the frame (the summary takes its place) unless `keep`. */
  stop(keep: boolean): void {
    clearInterval(this.timer);
    if (keep) this.draw();
    this.io.stdout.write(`${keep ? '' : this.clear()}\x1b[?25h`);
    this.height = 0;
  }

  private clear(): string {
    return this.height > 0 ? `\x1b[${this.height}F\x1b[J` : '';
  }
}

export interface WatchOptions {
  /** Ends the watch early (Ctrl-C): the promise rejects with InterruptedError. */
  signal?: AbortSignal;
  /** Only events after this id (default 0: the whole journal, then live). */
  after?: number;
}

/** Watches a pipeline until FINISH, FAILED or CANCELLED; returns that state. */
export async function watchPipeline(api: Api, pipelineId: number, io: Io, options: WatchOptions = {}): Promise<PipelineState> {
  const { pipeline } = await api.request(CliPipelineSnapshot, { id: pipelineId });
  if (!pipeline) throw new RefusedError(`No pipeline with id ${pipelineId} exists. pipectl start prints the id of the pipeline it starts.`);
  const progress = new Progress(pipeline);
  const after = options.after ?? 0;
  progress.lastTrackEvent = progress.lastPipelineEvent = after;
  const tty = io.stdout.isTTY === true;
  const screen = tty
    ? new Screen(io, () => renderFrame(progress, { now: Date.now(), width: io.stdout.columns || 80, height: io.stdout.rows || 24, color: io.color }))
    : undefined;
  const tailFetches: Array<Promise<void>> = [];
  const fetchedTails = new Set<string>();
  let stallTimer: NodeJS.Timeout | undefined;
  let stallNoted = '';

  const fetchTail = (track: TrackView) => {
    const key = `${track.id}:${track.attempt}`;
    if (fetchedTails.has(key)) return;
    fetchedTails.add(key);
    tailFetches.push(
      outputTail(api, track.id, TAIL_LINES).then(
        (lines) => void progress.tails.set(track.id, lines),
        () => void progress.tails.set(track.id, ['(the output could not be read)']),
      ),
    );
  };

  /** Nothing can run until someone calls finishInput: say so once, with what is needed. */
  const checkStall = () => {
    clearTimeout(stallTimer);
    if (tty || progress.ended) return;
    stallTimer = setTimeout(() => {
      const busy = progress.tracks.some((t) => t.state === 'RUNNING' || (t.state === 'PENDING' && !t.needsInput));
      const waiting = progress.tracks.filter((t) => t.needsInput && (t.state === 'PENDING' || t.state === 'WAITING'));
      const key = waiting.map((t) => t.id).join(',');
      if (busy || waiting.length === 0 || key === stallNoted || progress.ended) return;
      stallNoted = key;
      for (const line of renderInputWait(progress, waiting, io.color)) io.stdout.write(`${line}\n`);
    }, STALL_MS);
  };

  /**
   * Pipeline transitions wait for the track stream to pass them, so the plain log reads in
   * commit order ("broken FAILED" before "pipeline FAILED") although two streams carry it.
   */
  const held: Array<{ id: number; transition: Transition }> = [];
  const print = (transition: Transition) => {
    if (!tty) io.stdout.write(`${renderTransition(progress, transition, io.color)}\n`);
  };
  const release = (before: number) => {
    while (held.length > 0 && held[0]!.id < before) print(held.shift()!.transition);
  };

  const apply = (event: ProgressEvent) => {
    const transition = progress.apply(event);
    if (!transition) return;
    if (transition.kind === 'pipeline') {
      held.push({ id: event.id, transition });
    } else {
      release(event.id);
      if (transition.track.state === 'FAILED') fetchTail(transition.track);
      print(transition);
    }
    checkStall();
  };

  /** Reads the journal after the last track event seen; true if the pipeline has ended. */
  const catchUp = async (): Promise<boolean> => {
    for (;;) {
      const after = Math.min(progress.lastTrackEvent, progress.lastPipelineEvent);
      const { pipeline: page } = await api.request(CliPipelineJournal, { id: pipelineId, after, first: JOURNAL_PAGE });
      if (!page) throw new RefusedError(`Pipeline ${pipelineId} no longer exists.`);
      for (const event of page.events) apply(event);
      if (page.events.length < JOURNAL_PAGE) {
        // The journal has everything up to now: nothing can come before what is held.
        release(Infinity);
        return progress.ended;
      }
    }
  };

  screen?.start();
  const stops: Array<() => void> = [];
  let finished = false;
  try {
    const ended = await new Promise<void>((resolve, reject) => {
      let settling = false;
      const fail = (error: unknown) => reject(error);
      const onAbort = () =>
        reject(
          new InterruptedError(
            `Stopped watching. Pipeline ${pipelineId} is still ${progress.state}: pipectl watch ${pipelineId} follows it again, pipectl cancel ${pipelineId} stops it.`,
          ),
        );
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      stops.push(() => options.signal?.removeEventListener('abort', onAbort));
      /** The server completed a stream: it does not while the pipeline exists, so a completion before the end is an error. */
      let completed = false;
      let over = false;
      const settle = () => {
        if (settling || over) return;
        settling = true;
        const afterCompletion = completed;
        catchUp().then(
          (done) => {
            settling = false;
            over = done;
            if (done) resolve();
            else if (afterCompletion) fail(new RefusedError(`The server ended the event stream of pipeline ${pipelineId} although the pipeline is still ${progress.state}; pipectl watch ${pipelineId} follows it again.`));
            else if (completed) settle();
          },
          fail,
        );
      };
      const sink = {
        error: fail,
        complete: () => {
          completed = true;
          settle();
        },
      };
      stops.push(
        api.subscribe(CliTrackUpdated, { pipelineId, after }, {
          ...sink,
          next: ({ trackUpdated }) => {
            apply(trackUpdated);
            // A failed pipeline's last handler (SPEC rule 19) ends the run with a track event.
            if (progress.ended) settle();
          },
        }),
        api.subscribe(CliPipelineUpdated, { pipelineId, after }, {
          ...sink,
          next: ({ pipelineUpdated }) => {
            apply(pipelineUpdated);
            if (progress.ended) settle();
          },
        }),
      );
    });
    void ended;
    finished = true;
  } finally {
    clearTimeout(stallTimer);
    for (const stop of stops) stop();
    // Interrupted or cut off: the last frame stays on screen.
    screen?.stop(!finished);
  }
  // The failed tracks' tails, read now that their output is stored.
  for (const track of progress.tracks) if (track.state === 'FAILED') fetchTail(track);
  await Promise.all(tailFetches);
  for (const line of renderSummary(progress, { now: Date.now(), color: io.color })) io.stdout.write(`${line}\n`);
  return progress.state;
}
