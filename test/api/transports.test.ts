/**
 * The same live stream over both transports, with the official clients on real sockets:
 * graphql-ws (WebSocket) and graphql-sse (Server-Sent Events), plus GraphiQL and /health.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, startTestApp, type TestApp } from '../helpers/test-app.ts';
import { seedGraph, seedScenario } from '../helpers/seed.ts';
import { FinishInput, StartPipeline, TrackUpdated } from '../helpers/operations.ts';
import type { TrackUpdatedSubscription } from '../../src/generated/gql/graphql.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t?.stop());

describe('transports', () => {
  it('graphql-ws and graphql-sse subscribers both see every transition of the seed scenario, in order', async () => {
    const spec = seedScenario();
    spec.vertices.A!.inputs = [{ name: 'go', type: 'BOOLEAN', required: true }];
    const { graphId } = await seedGraph(t, spec);
    const started = await t.request(StartPipeline, { graphId });
    if (started.startPipeline.__typename !== 'Pipeline') throw new Error();
    const pipelineId = started.startPipeline.id;
    const allDone = (items: TrackUpdatedSubscription[]) => items.filter((i) => i.trackUpdated.type === 'track:succeeded').length === 5;
    const overWs = collect(t.wsClient(), TrackUpdated, { pipelineId, after: 0 }, allDone);
    const overSse = collect(t.sseClient(), TrackUpdated, { pipelineId, after: 0 }, allDone);
    const a = started.startPipeline.tracks.find((x) => x.name === 'A')!;
    await t.request(FinishInput, { trackId: a.id, params: { go: true } });

    const ws = (await overWs).map((i) => i.trackUpdated.id);
    const sse = (await overSse).map((i) => i.trackUpdated.id);
    const journal = await t.app.store.db.event.findMany({ where: { pipelineId, trackId: { not: null } }, orderBy: { id: 'asc' } });
    const expected = journal.map((e) => e.id);
    expect(ws).toEqual(expected);
    expect(sse).toEqual(expected);
    // created x5; A: input, claimed, succeeded; B, C, D: ready, claimed, succeeded; E: claimed, succeeded
    expect(expected).toHaveLength(5 + 3 + 3 * 3 + 2);
  });

  it('serves GraphiQL at /graphql and health at /health', async () => {
    const page = await fetch(t.url, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('graphiql');
    const health = await fetch(t.url.replace('/graphql', '/health'));
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', executor: { workers: 4 } });
  });
});
