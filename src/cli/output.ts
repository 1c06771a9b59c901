/**
 * Reading a track's output: everything pipectl knows about the output API is here, so a
 * change of that API touches one file.
 *
 * The API: `Track.output(offset, limit, attempt)` pages through an attempt's output by
 * byte offset (also while it runs), and `trackOutput(trackId, offset)` replays the
 * current attempt from an offset, then continues live, without gap or duplicate. The
 * subscription completes when the track succeeded, but not when it failed or was
 * cancelled (a retry may continue it), so following watches the track's events too; when
 * the attempt ends, the stored output from the last offset printed supplies whatever was
 * still on its way.
 */
import type { Api } from './client.ts';
import { RefusedError } from './errors.ts';
import { CliOutputPage, CliTrackInfo, CliTrackOutput, CliTrackUpdated } from './operations.ts';
import { FINAL_TRACK_STATES, type TrackState } from './progress.ts';

export interface TrackInfo {
  id: number;
  name: string;
  state: TrackState;
  attempt: number;
  pipelineId: number;
}

/** A printed line and where the next one starts (null for a notice from the service). */
interface Line {
  line: string;
  offset: number | null;
}

/** Bytes a line takes in the output (with its newline): offsets count these. */
const lineBytes = (line: string) => Buffer.byteLength(line) + 1;

/** Bytes read from the end of the output for a tail. */
const TAIL_BYTES = 16 * 1024;
/** How long to wait for an ended attempt's output to be complete in the store. */
const COMPLETE_WAIT_MS = 5_000;

export async function trackInfo(api: Api, trackId: number): Promise<TrackInfo> {
  const { track } = await api.request(CliTrackInfo, { id: trackId });
  if (!track) throw new RefusedError(`No track with id ${trackId} exists. Track ids are shown by pipectl watch and start --watch.`);
  return { id: track.id, name: track.name, state: track.state, attempt: track.attempt, pipelineId: track.pipeline.id };
}

async function page(api: Api, trackId: number, offset: number, attempt?: number, limit?: number) {
  const { track } = await api.request(CliOutputPage, { id: trackId, offset, attempt: attempt ?? null, limit: limit ?? null });
  if (!track) throw new RefusedError(`No track with id ${trackId} exists.`);
  return track.output;
}

/**
 * Prints an attempt's stored output from `offset` to its current end. Returns where the
 * next line starts and whether the attempt's output is complete (it ended).
 */
export async function printStored(
  api: Api,
  trackId: number,
  print: (line: string) => void,
  from = 0,
  attempt?: number,
): Promise<{ offset: number; complete: boolean; attempt: number }> {
  let offset = from;
  for (;;) {
    const output = await page(api, trackId, offset, attempt);
    for (const l of output.lines) print(l.line);
    offset = Math.max(offset, output.nextOffset);
    if (output.complete || output.lines.length === 0 || offset >= output.size) return { offset, complete: output.complete, attempt: output.attempt };
  }
}

/** The last `count` lines of the latest attempt's output. */
export async function outputTail(api: Api, trackId: number, count: number): Promise<string[]> {
  const { size } = await page(api, trackId, 0, undefined, 1);
  const lines: string[] = [];
  await printStored(api, trackId, (line) => lines.push(line), Math.max(size - TAIL_BYTES, 0));
  return lines.slice(-count);
}

export interface FollowResult {
  track: TrackInfo;
}

/**
 * Prints a track's output from the start of its current attempt, live, until that
 * attempt (or a later one) ends; then the rest of it from the store. For a track that has
 * ended: its stored output.
 */
export async function followOutput(api: Api, trackId: number, print: (line: string) => void): Promise<FollowResult> {
  const track = await trackInfo(api, trackId);
  if (FINAL_TRACK_STATES.includes(track.state)) {
    await printStored(api, trackId, print);
    return { track };
  }
  let attempt = track.attempt;
  /** Where the next line of `attempt` starts: everything before it was printed. */
  let position = 0;
  let stopped = false;
  const take = (l: Line & { attempt: number }) => {
    if (stopped || l.attempt < attempt) return;
    if (l.attempt > attempt) {
      attempt = l.attempt;
      position = 0;
    }
    if (l.offset !== null) {
      if (l.offset < position) return;
      position = l.offset + lineBytes(l.line);
    }
    print(l.line);
  };
  const ended = await new Promise<{ state: TrackState; attempt: number }>((resolve, reject) => {
    const stopOutput = api.subscribe(CliTrackOutput, { trackId, offset: 0 }, {
      next: ({ trackOutput }) => take(trackOutput),
      error: (error) => {
        stopState();
        reject(error);
      },
    });
    // The journal from the beginning, then live: the end cannot be missed.
    const stopState = api.subscribe(CliTrackUpdated, { pipelineId: track.pipelineId, after: 0 }, {
      next: ({ trackUpdated: event }) => {
        if (event.trackId !== trackId || !event.trackState || (event.attempt ?? 0) < track.attempt) return;
        if (!FINAL_TRACK_STATES.includes(event.trackState)) return;
        stopped = true;
        stopState();
        stopOutput();
        resolve({ state: event.trackState, attempt: event.attempt ?? attempt });
      },
      error: (error) => {
        stopOutput();
        reject(error);
      },
    });
  });
  // What was still on its way when the attempt ended is in the store.
  if (ended.attempt !== attempt) {
    attempt = ended.attempt;
    position = 0;
  }
  const deadline = Date.now() + COMPLETE_WAIT_MS;
  for (;;) {
    const rest = await printStored(api, trackId, print, position, attempt);
    position = rest.offset;
    if (rest.complete || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { track: { ...track, state: ended.state, attempt } };
}
