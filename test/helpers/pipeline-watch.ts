/**
 * What a UI opens on a pipeline, over graphql-ws: trackUpdated (from the start),
 * pipelineLive (a snapshot, then every later event) and trackOutput of each track (from
 * offset 0), each collected to the run's end: the event streams up to FINISH (they stay
 * open after it, since a finished pipeline may be re-run from a step), the output until
 * the server completes it; and the check that each stream is exactly the journal, with no
 * gap and no duplicate. For tests with several processes, where the streams are watched on
 * a process that did not run the tracks.
 */
import type { Client } from 'graphql-ws';
import { expect } from 'vitest';
import { graphql } from '../../src/generated/gql/index.ts';
import { collect, collectAll } from './test-app.ts';

const WatchedUpdates = graphql(`
  subscription WatchedUpdates($pipelineId: Int!) {
    trackUpdated(pipelineId: $pipelineId, after: 0) { id seq trackId trackState }
  }
`);

const WatchedLive = graphql(`
  subscription WatchedLive($pipelineId: Int!) {
    pipelineLive(pipelineId: $pipelineId) {
      snapshot { cursor }
      event { id seq pipelineState }
    }
  }
`);

const WatchedLines = graphql(`
  subscription WatchedLines($trackId: Int!) {
    trackOutput(trackId: $trackId, offset: 0) { attempt offset line }
  }
`);

export type WatchedLine = { trackOutput: { attempt: number; offset: number | null; line: string } };

/** A journal entry as the comparison needs it (the event table, or Pipeline.events). */
export interface JournalEvent {
  id: number;
  seq: number;
  trackId: number | null;
}

export type PipelineWatch = ReturnType<typeof watchPipeline>;

/**
 * Every stream a UI opens on a pipeline, on `client`, each collected to the run's end (see
 * above); `completed` names those collected to their end so far.
 */
export function watchPipeline(client: Client, pipelineId: number, trackIds: number[], timeoutMs = 20_000) {
  const completed = new Set<string>();
  const lines = new Map<number, WatchedLine[]>();
  const received: { updates: Array<{ trackUpdated: { id: number } }> } = { updates: [] };
  const done = <T>(name: string, items: Promise<T[]>) => items.then((all) => (completed.add(name), all));
  /** Every track's latest transition is to SUCCEED: the run reached FINISH. */
  const allSucceeded = (items: Array<{ trackUpdated: { trackId: number | null; trackState: string | null } }>) => {
    const latest = new Map(items.map((i) => [i.trackUpdated.trackId, i.trackUpdated.trackState]));
    return trackIds.every((id) => latest.get(id) === 'SUCCEED');
  };
  return {
    completed,
    lines,
    received,
    updates: done('updates', collect(client, WatchedUpdates, { pipelineId }, (items) => ((received.updates = items), allSucceeded(items)), timeoutMs)),
    live: done('live', collect(client, WatchedLive, { pipelineId }, (items) => items.at(-1)!.pipelineLive.event?.pipelineState === 'FINISH', timeoutMs)),
    output: Promise.all(
      trackIds.map((trackId) =>
        done(`lines ${trackId}`, collectAll(client, WatchedLines, { trackId }, (items) => lines.set(trackId, items), timeoutMs)),
      ),
    ),
  };
}

/**
 * Once the streams reached the run's end, what each received equals the journal (read then, by
 * `readJournal`, in id order), with no gap and no duplicate, and ends at FINISH.
 */
export async function expectStreamsEqualJournal(watched: PipelineWatch, readJournal: () => Promise<JournalEvent[]>): Promise<void> {
  const [updates, live] = await Promise.all([watched.updates, watched.live]);
  const events = await readJournal();
  expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
  expect(updates.map((u) => u.trackUpdated.id)).toEqual(events.filter((e) => e.trackId !== null).map((e) => e.id));
  const [first, ...rest] = live.map((m) => m.pipelineLive);
  const cursor = first!.snapshot!.cursor;
  expect(rest.map((m) => m.event!.id)).toEqual(events.filter((e) => e.id > cursor).map((e) => e.id));
  expect(rest.at(-1)!.event!.pipelineState).toBe('FINISH');
}

/** The texts of collected output lines. */
export const lineTexts = (items: WatchedLine[]) => items.map((i) => i.trackOutput.line);
