/**
 * What a UI opens on a pipeline, over graphql-ws: trackUpdated (from the start),
 * pipelineLive (a snapshot, then every later event) and trackOutput of each track (from
 * offset 0), each collected until the server completes it; and the check that each stream
 * is exactly the journal, with no gap and no duplicate. For tests with several processes,
 * where the streams are watched on a process that did not run the tracks.
 */
import type { Client } from 'graphql-ws';
import { expect } from 'vitest';
import { graphql } from '../../src/generated/gql/index.ts';
import { collectAll } from './test-app.ts';

const WatchedUpdates = graphql(`
  subscription WatchedUpdates($pipelineId: Int!) {
    trackUpdated(pipelineId: $pipelineId, after: 0) { id seq }
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

/** Every stream a UI opens on a pipeline, on `client`, each collected until the server completes it. */
export function watchPipeline(client: Client, pipelineId: number, trackIds: number[], timeoutMs?: number) {
  const completed = new Set<string>();
  const lines = new Map<number, WatchedLine[]>();
  const received: { updates: Array<{ trackUpdated: { id: number } }> } = { updates: [] };
  const done = <T>(name: string, items: Promise<T[]>) => items.then((all) => (completed.add(name), all));
  return {
    completed,
    lines,
    received,
    updates: done('updates', collectAll(client, WatchedUpdates, { pipelineId }, (items) => (received.updates = items), timeoutMs)),
    live: done('live', collectAll(client, WatchedLive, { pipelineId }, undefined, timeoutMs)),
    output: Promise.all(
      trackIds.map((trackId) =>
        done(`lines ${trackId}`, collectAll(client, WatchedLines, { trackId }, (items) => lines.set(trackId, items), timeoutMs)),
      ),
    ),
  };
}

/**
 * Once the streams completed, what each received equals the journal (read then, by
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
