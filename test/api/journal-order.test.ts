/**
 * SPEC rule 12: a pipeline's events get positions that grow in commit order, so a reader
 * replaying "after N" never skips an event that committed late. The test the research names
 * (Marten #4953): one writer's transaction stays open after its insert while a later writer
 * tries to commit; a reader polling the table by id, and a live subscriber resuming with
 * `after`, must see neither a skip nor a duplicate. On PostgreSQL the later writer waits for
 * the journal lock; on SQLite for the one connection. Without the lock the later event would
 * commit first with the higher id and the polling reader would skip the held one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TrackState } from '../../src/engine/states.ts';
import { appendEvents, transition, type EventDraft } from '../../src/store/transaction.ts';
import { StartPipeline, TrackUpdated } from '../helpers/operations.ts';
import { eventually, seedGraph } from '../helpers/seed.ts';
import { collect, startTestApp, type TestApp } from '../helpers/test-app.ts';
import { TEST_PROVIDER } from '../helpers/databases.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.stop());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe(`the journal on ${TEST_PROVIDER}`, () => {
  it('an event held uncommitted after its insert is neither skipped nor duplicated by a replaying reader', async () => {
    // A track that waits for input: nothing runs, so only this test writes the pipeline's events.
    const { graphId } = await seedGraph(t, { vertices: { ask: { script: 'echo {who}', inputs: [{ name: 'who', type: 'STRING', required: true }] } } });
    const started = await t.request(StartPipeline, { graphId });
    if (started.startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(started));
    const pipelineId = started.startPipeline.id;
    const trackId = started.startPipeline.tracks[0]!.id;
    const store = t.app.store;
    const before = await store.db.event.findMany({ where: { pipelineId }, orderBy: { id: 'asc' } });
    const startCursor = before.at(-1)!.id;
    const draft = (reason: string): EventDraft => ({ pipelineId, trackId, type: 'track:input', trackState: TrackState.WAITING, attempt: 1, reason });

    // A live subscriber resuming after the start, over graphql-ws.
    const live = collect(t.wsClient(), TrackUpdated, { pipelineId, after: startCursor }, (items) => items.length >= 2);
    // graphql-ws does not acknowledge a subscription: wait until it listens.
    await eventually(async () => (store.bus.subscriptions > 0 ? true : undefined), 10_000, 'the subscriber to listen');

    // A reader that replays "after N" from the table every few milliseconds, as a catch-up does.
    const seen: number[] = [];
    let polling = true;
    const reader = (async () => {
      let cursor = startCursor;
      while (polling) {
        const page = await store.db.event.findMany({ where: { pipelineId, id: { gt: cursor } }, orderBy: { id: 'asc' } });
        for (const event of page) {
          seen.push(event.id);
          cursor = event.id;
        }
        await sleep(5);
      }
    })();

    // Writer 1 inserts its event and holds its transaction open.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let inserted!: () => void;
    const insertedNow = new Promise<void>((resolve) => (inserted = resolve));
    const first = store.fast.transaction(async (runner) => {
      const events = await appendEvents(runner, [draft('held open')]);
      inserted();
      await held;
      return events;
    });
    await insertedNow;

    // Writer 2 records a later event and tries to commit.
    let secondDone = false;
    const second = transition(store, async (_tx, journal) => journal.record(draft('committed later'))).then((r) => {
      secondDone = true;
      return r;
    });
    await sleep(500);
    // The later writer cannot get ahead of the held one, and nothing is visible yet.
    expect(secondDone).toBe(false);
    expect(seen).toEqual([]);

    release();
    const [firstEvents, secondResult] = await Promise.all([first, second]);
    await sleep(100);
    polling = false;
    await reader;

    const after = await store.db.event.findMany({ where: { pipelineId, id: { gt: startCursor } }, orderBy: { id: 'asc' } });
    expect(after.map((e) => e.reason)).toEqual(['held open', 'committed later']);
    expect(after.map((e) => e.id)).toEqual([firstEvents[0]!.id, secondResult.events[0]!.id]);
    expect(after.map((e) => e.seq)).toEqual([before.at(-1)!.seq + 1, before.at(-1)!.seq + 2]);
    // The polling reader saw each exactly once, in order: no skip, no duplicate.
    expect(seen).toEqual(after.map((e) => e.id));
    // The live subscriber got the second writer's event (published after its commit) and the
    // held one (published by nobody: written below the bus, found by position), in order.
    // Publish only the second: the subscriber must still deliver the first, from the table.
    const delivered = await live;
    expect(delivered.map((d) => d.trackUpdated.id)).toEqual(after.map((e) => e.id));
  });
});
