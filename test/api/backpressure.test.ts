/** Floods of output and events never crash the service, and event streams stay complete. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { collect, startTestApp, type TestApp } from '../helpers/test-app.ts';
import { eventually, seedGraph } from '../helpers/seed.ts';
import { CancelPipeline, PipelineDetail, StartPipeline, TrackOutput, TrackUpdated } from '../helpers/operations.ts';
import { startPipeline } from '../../src/store/pipelines.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t?.stop());

it('a flood of output lines reaches a live subscriber, every line in order, without taking the server down', async () => {
  // The script floods only once the subscriber is provably listening.
  const go = path.join(t.dir, 'flood-now');
  const { graphId } = await seedGraph(t, {
    vertices: { loud: { script: `while [ ! -e ${go} ]; do echo waiting; sleep 0.05; done; seq 1 20000` } },
  });
  const started = await t.request(StartPipeline, { graphId });
  if (started.startPipeline.__typename !== 'Pipeline') throw new Error();
  const { id: pipelineId } = started.startPipeline;
  const trackId = started.startPipeline.tracks[0]!.id;
  // A subscriber that falls behind catches up from the stored output: nothing is lost.
  let numbered = 0;
  const lines = await collect(
    t.wsClient(),
    TrackOutput,
    { trackId },
    (items) => {
      if (items.length === 1) writeFileSync(go, ''); // the first "waiting" line: we are listening
      if (/^\d+$/.test(items.at(-1)!.trackOutput.line)) numbered++;
      return numbered >= 20_000;
    },
    50_000,
  );
  const numbers = lines.map((l) => l.trackOutput.line).filter((line) => /^\d+$/.test(line)).map(Number);
  expect(numbers).toEqual(Array.from({ length: 20_000 }, (_, i) => i + 1));
  await eventually(async () => ((await t.request(PipelineDetail, { id: pipelineId })).pipeline!.state === 'FINISH' ? true : undefined));
  expect((await fetch(t.url.replace('/graphql', '/health'))).status).toBe(200);
}, 60_000);

it('a subscriber to a 1,500-track pipeline gets every event of a mass cancel, in order', async () => {
  const vertices = Object.fromEntries(Array.from({ length: 1500 }, (_, i) => [`v${i}`, { script: 'true' }]));
  // Built with the store for speed: 1,500 addVertex calls are not what this test is about.
  const graph = await t.app.store.db.graph.create({
    data: { name: 'wide', checked: true, vertices: { create: Object.keys(vertices).map((name) => ({ name, script: 'sleep 5' })) } },
  });
  await t.app.executor!.stop(); // keep every track PENDING
  const pipeline = await startPipeline(t.app.store, { graphId: graph.id });
  const events = collect(t.wsClient(), TrackUpdated, { pipelineId: pipeline.id, after: 0 }, (items) =>
    items.filter((i) => i.trackUpdated.type === 'track:cancelled').length === 1500,
  30_000);
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect((await t.request(CancelPipeline, { id: pipeline.id })).cancelPipeline).toMatchObject({ state: 'CANCELLED' });
  const ids = (await events).map((e) => e.trackUpdated.id);
  const journal = await t.app.store.db.event.findMany({ where: { pipelineId: pipeline.id, trackId: { not: null } }, orderBy: { id: 'asc' } });
  expect(ids).toEqual(journal.map((e) => e.id));
  expect((await fetch(t.url.replace('/graphql', '/health'))).status).toBe(200);
});
