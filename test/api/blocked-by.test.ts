/** Track.blockedBy: why a track is not running, in queries and in subscription payloads. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { graphql } from '../../src/generated/gql/index.ts';
import { eventually, seedGraph } from '../helpers/seed.ts';
import { CancelPipeline, StartPipeline } from '../helpers/operations.ts';
import { collect, startTestApp, type TestApp } from '../helpers/test-app.ts';

const Blocked = graphql(`
  query Blocked($id: Int!) {
    pipeline(id: $id) {
      state
      tracks { name state blockedBy { kind message missingParams tracks { name state } } }
    }
  }
`);

const BlockedUpdates = graphql(`
  subscription BlockedUpdates($pipelineId: Int!, $after: Int) {
    trackUpdated(pipelineId: $pipelineId, after: $after) {
      type
      track { name blockedBy { kind tracks { name } } }
    }
  }
`);

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: { WORKERS: '1' } });
});
afterAll(() => t?.stop());

async function blocked(id: number) {
  const { pipeline } = await t.request(Blocked, { id });
  return { state: pipeline!.state, byName: Object.fromEntries(pipeline!.tracks.map((x) => [x.name, x])) };
}

it('says what each track waits for: predecessors, input, a worker; then that the pipeline was cancelled', async () => {
  const go = path.join(t.dir, 'go');
  const { graphId } = await seedGraph(t, {
    vertices: {
      A: { script: `while [ ! -e ${go} ]; do sleep 0.05; done` },
      B: { script: 'true' },
      C: { script: 'echo {who}', inputs: [{ name: 'who', type: 'STRING', required: true }] },
      D: { script: 'true' },
    },
    edges: [['A', 'B']],
  });
  const started = await t.request(StartPipeline, { graphId });
  if (started.startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(started));
  const pipelineId = started.startPipeline.id;
  const { byName } = await eventually(async () => {
    const now = await blocked(pipelineId);
    return now.byName.A!.state === 'RUNNING' ? now : undefined;
  });
  expect(byName.A!.blockedBy).toBeNull();
  expect(byName.B!.blockedBy).toEqual({ kind: 'PREDECESSORS', message: 'Waiting for A to succeed.', missingParams: [], tracks: [{ name: 'A', state: 'RUNNING' }] });
  expect(byName.C!.blockedBy).toMatchObject({ kind: 'INPUT', missingParams: ['who'], tracks: [] });
  expect(byName.D!.blockedBy).toMatchObject({ kind: 'WORKER', message: 'Ready to run; waiting for a free worker.' });

  // The same reasons travel with subscription payloads.
  const events = collect(t.wsClient(), BlockedUpdates, { pipelineId, after: 0 }, (items) => items.some((i) => i.trackUpdated.type === 'track:cancelled'));
  expect((await t.request(CancelPipeline, { id: pipelineId })).cancelPipeline).toMatchObject({ state: 'CANCELLED' });
  const cancelled = (await events).filter((e) => e.trackUpdated.type === 'track:cancelled');
  expect(cancelled[0]!.trackUpdated.track!.blockedBy).toMatchObject({ kind: 'PIPELINE_CANCELLED' });
  const after = await blocked(pipelineId);
  for (const name of ['B', 'C', 'D']) expect(after.byName[name]!.blockedBy).toMatchObject({ kind: 'PIPELINE_CANCELLED' });
  writeFileSync(go, '');
});

it('a track that will never run because the pipeline failed names the failed track', async () => {
  const { graphId } = await seedGraph(t, { vertices: { A: { script: 'exit 3' }, B: { script: 'true' } }, edges: [['A', 'B']] });
  const started = await t.request(StartPipeline, { graphId });
  if (started.startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(started));
  const pipelineId = started.startPipeline.id;
  const { byName } = await eventually(async () => {
    const now = await blocked(pipelineId);
    return now.state === 'FAILED' ? now : undefined;
  });
  expect(byName.A!.blockedBy).toBeNull();
  expect(byName.B!.blockedBy).toEqual({
    kind: 'PIPELINE_FAILED',
    message: 'The pipeline failed (A failed), so this track will not run; retryPipeline runs it again.',
    missingParams: [],
    tracks: [{ name: 'A', state: 'FAILED' }],
  });
});
