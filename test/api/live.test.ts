/**
 * Gap-free subscriptions: a client that disconnects and resumes from its last cursor, and
 * pipelineLive's snapshot followed by changes, both equal the event table exactly, also
 * while events are being written during the switch-over.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { graphql } from '../../src/generated/gql/index.ts';
import { CheckGraph, CreateWholeGraph, StartPipeline } from '../helpers/operations.ts';
import { eventually } from '../helpers/seed.ts';
import { collect, startTestApp, type TestApp } from '../helpers/test-app.ts';

const Live = graphql(`
  subscription Live($pipelineId: Int!, $after: Int) {
    pipelineLive(pipelineId: $pipelineId, after: $after) {
      snapshot { id state cursor tracks { id name state attempt } }
      event { id type trackId trackState pipelineState }
    }
  }
`);

const PipelineState = graphql(`
  query LivePipelineState($id: Int!) {
    pipeline(id: $id) { state cursor tracks { id state } }
  }
`);

let t: TestApp;
let graphs = 0;
beforeAll(async () => {
  t = await startTestApp({ env: { WORKERS: '4' } });
});
afterAll(() => t?.stop());

/** A run that writes events steadily for a second or two: 12 chains of 8 short steps. */
async function busyPipeline(gate?: string) {
  const vertices: Array<{ name: string; script: string }> = [];
  const edges: Array<{ tail: string; head: string }> = [];
  for (let chain = 0; chain < 12; chain++) {
    for (let step = 0; step < 8; step++) {
      const wait = gate && step === 0 ? `while [ ! -e ${gate} ]; do sleep 0.02; done; ` : '';
      vertices.push({ name: `c${chain}s${step}`, script: `${wait}${step % 3 === 0 ? 'sleep 0.05' : 'true'}` });
      if (step > 0) edges.push({ tail: `c${chain}s${step - 1}`, head: `c${chain}s${step}` });
    }
  }
  const created = await t.request(CreateWholeGraph, { name: `busy-${++graphs}`, vertices, edges });
  if (created.createGraph.__typename !== 'Graph') throw new Error(JSON.stringify(created));
  const graphId = created.createGraph.id;
  expect((await t.request(CheckGraph, { id: graphId })).checkGraph).toMatchObject({ checked: true });
  const started = await t.request(StartPipeline, { graphId });
  if (started.startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(started));
  return started.startPipeline.id;
}

const journal = async (pipelineId: number) =>
  (await t.app.store.db.event.findMany({ where: { pipelineId }, orderBy: { id: 'asc' }, select: { id: true } })).map((e) => e.id);

const ended = (items: Array<{ pipelineLive: { event?: { pipelineState?: string | null } | null } }>) =>
  items.some((i) => ['FINISH', 'FAILED', 'CANCELLED'].includes(i.pipelineLive.event?.pipelineState ?? ''));

it('a client that disconnects mid-run and resumes from its last cursor has received exactly the event table, in order', async () => {
  const pipelineId = await busyPipeline();
  // From the start, then hang up after 40 events, while the run goes on writing.
  const first = await collect(t.wsClient(), Live, { pipelineId, after: 0 }, (items) => items.length === 40);
  expect(first.every((m) => m.pipelineLive.snapshot === null)).toBe(true);
  const cursor = first.at(-1)!.pipelineLive.event!.id;
  await new Promise((resolve) => setTimeout(resolve, 150));
  const second = await collect(t.wsClient(), Live, { pipelineId, after: cursor }, ended);
  const received = [...first, ...second].map((m) => m.pipelineLive.event!.id);
  expect(received).toEqual(await journal(pipelineId));
});

it('pipelineLive sends the whole pipeline, then exactly the changes after it; applying them gives the final state', async () => {
  const pipelineId = await busyPipeline();
  // Join while the run is busy writing.
  await eventually(async () => ((await journal(pipelineId)).length > 60 ? true : undefined));
  const messages = await collect(t.wsClient(), Live, { pipelineId }, ended);
  const [first, ...rest] = messages.map((m) => m.pipelineLive);
  const snapshot = first!.snapshot!;
  expect(snapshot.tracks).toHaveLength(96);
  expect(rest.every((m) => m.snapshot === null && m.event !== null)).toBe(true);
  const all = await journal(pipelineId);
  expect(rest.map((m) => m.event!.id)).toEqual(all.filter((id) => id > snapshot.cursor));
  // The snapshot is exactly the state at its cursor: replaying the later events on it gives the end state.
  const states = new Map(snapshot.tracks.map((track) => [track.id, track.state as string]));
  let pipelineState = snapshot.state as string;
  for (const { event } of rest) {
    if (event!.trackId != null && event!.trackState) states.set(event!.trackId, event!.trackState);
    if (event!.pipelineState) pipelineState = event!.pipelineState;
  }
  const { pipeline } = await t.request(PipelineState, { id: pipelineId });
  expect(pipelineState).toBe(pipeline!.state);
  expect(Object.fromEntries(states)).toEqual(Object.fromEntries(pipeline!.tracks.map((track) => [track.id, track.state])));
  expect(pipeline!.cursor).toBe(all.at(-1));
});

const Ids = graphql(`
  subscription LiveIds($pipelineId: Int!, $after: Int) {
    trackUpdated(pipelineId: $pipelineId, after: $after) { id }
  }
`);
const IdsAndTypes = graphql(`
  subscription LiveIdsAndTypes($pipelineId: Int!, $after: Int) {
    trackUpdated(pipelineId: $pipelineId, after: $after) { id type trackState }
  }
`);

it('many subscribers of one operation share each event\'s execution, and each still gets exactly the journal in its own shape', async () => {
  const metricsNow = async () => {
    const samples = await (await fetch(t.url.replace('/graphql', '/metrics'))).text();
    const count = (execution: string) => Number(new RegExp(`^dagpipe_subscription_events_total\\{execution="${execution}"\\} (\\d+)`, 'm').exec(samples)?.[1] ?? 0);
    return { executed: count('executed'), shared: count('shared') };
  };
  const before = await metricsNow();
  const gate = path.join(t.dir, `go-${Date.now()}`);
  const pipelineId = await busyPipeline(gate);
  const trackEvents = async () =>
    (await t.app.store.db.event.findMany({ where: { pipelineId, trackId: { not: null } }, orderBy: { id: 'asc' }, select: { id: true, type: true } }));
  const done = (items: unknown[]) => items.length >= 96 * 3 + 84; // created + claimed + succeeded each, ready for the 84 non-roots
  const same = Array.from({ length: 20 }, () => collect(t.wsClient(), Ids, { pipelineId, after: 0 }, done));
  const other = collect(t.wsClient(), IdsAndTypes, { pipelineId, after: 0 }, done);
  // Everyone listens before the run gets going: what follows is live.
  await eventually(async () => (t.app.store.bus.subscriptions >= 21 ? true : undefined));
  writeFileSync(gate, '');
  const journal = await eventually(async () => {
    const events = await trackEvents();
    return events.length >= 96 * 3 + 84 ? events : undefined;
  });
  for (const received of await Promise.all(same)) expect(received.map((i) => i.trackUpdated)).toEqual(journal.map(({ id }) => ({ id })));
  const shaped = (await other).map((i) => i.trackUpdated);
  expect(shaped.map(({ id, type }) => ({ id, type }))).toEqual(journal);
  expect(shaped.every((e) => typeof e.trackState === 'string')).toBe(true);
  // Live events were executed once per operation (2 here), not once per subscriber (21).
  const after = await metricsNow();
  const executed = after.executed - before.executed;
  const shared = after.shared - before.shared;
  expect(executed + shared).toBe(21 * journal.length);
  // A live event runs once for each of the 2 operations and is shared by the other 19
  // subscribers; a replayed one (before the gate opened) runs for each of the 21.
  const live = shared / 19;
  expect(Number.isInteger(live)).toBe(true);
  expect(executed).toBe(21 * (journal.length - live) + 2 * live);
  expect(live).toBeGreaterThan(journal.length / 2);
});
