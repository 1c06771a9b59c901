/**
 * The same live stream over both transports, with the official clients on real sockets:
 * graphql-ws (WebSocket) and graphql-sse (Server-Sent Events), plus GraphiQL and /health.
 */
import { print } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { collect, startTestApp, type TestApp } from '../helpers/test-app.ts';
import { eventually, seedGraph, seedScenario } from '../helpers/seed.ts';
import { FinishInput, StartPipeline, TrackUpdated } from '../helpers/operations.ts';
import type { TrackUpdatedSubscription } from '../../src/generated/gql/graphql.ts';
import { graphql } from '../../src/generated/gql/index.ts';

const OutputOf = graphql(`
  subscription TransportsOutputOf($trackId: Int!) {
    trackOutput(trackId: $trackId, offset: 0) { line }
  }
`);

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

  it('graphql-ws messages on the wire are text frames, each exactly the JSON graphql-ws makes of it, in order, however the id is spelt', async () => {
    const spec = seedScenario();
    spec.vertices.A!.inputs = [{ name: 'go', type: 'BOOLEAN', required: true }];
    const { graphId } = await seedGraph(t, spec);
    const started = await t.request(StartPipeline, { graphId });
    if (started.startPipeline.__typename !== 'Pipeline') throw new Error();
    const pipelineId = started.startPipeline.id;
    // Subscribed before the run goes on: the replayed events and the live ones (shared
    // among subscribers, sent without graphql-ws's own serialisation) both arrive.
    const id = 'a "quoted" id\\ with \u2028 and é';
    const socket = new WebSocket(t.url.replace(/^http/, 'ws'), 'graphql-transport-ws');
    const frames: Array<{ text: string; binary: boolean }> = [];
    socket.on('message', (data, binary) => frames.push({ text: String(data), binary }));
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => {
        socket.send(JSON.stringify({ type: 'connection_init' }));
        resolve();
      });
      socket.once('error', reject);
    });
    await eventually(async () => (frames.length > 0 ? true : undefined));
    socket.send(JSON.stringify({ id, type: 'subscribe', payload: { query: print(TrackUpdated), variables: { pipelineId, after: 0 } } }));
    const a = started.startPipeline.tracks.find((x) => x.name === 'A')!;
    await eventually(async () => (frames.length > 1 ? true : undefined)); // listening
    await t.request(FinishInput, { trackId: a.id, params: { go: true } });
    // The stream stays open after the run (a re-run from a step may follow): wait for its
    // last track event, the one before pipeline:finished.
    const finished = await eventually(async () => {
      const events = await t.app.store.db.event.findMany({ where: { pipelineId }, orderBy: { id: 'asc' } });
      return events.at(-1)?.type === 'pipeline:finished' ? events : undefined;
    }, 20_000, 'the run to finish');
    const lastTrackEvent = finished.filter((e) => e.trackId !== null).at(-1)!.id;
    await eventually(async () => (frames.at(-1)!.text.includes(`"id":${lastTrackEvent},`) ? true : undefined), 20_000, 'the last track event');
    // A stream the server completes: a succeeded track's output, replayed, then complete.
    const outputId = `${id} output`;
    socket.send(JSON.stringify({ id: outputId, type: 'subscribe', payload: { query: print(OutputOf), variables: { trackId: a.id } } }));
    await eventually(async () => (frames.at(-1)!.text.includes('"complete"') ? true : undefined), 20_000, 'the complete message');
    socket.close();

    expect(frames.every((frame) => !frame.binary)).toBe(true);
    const messages = frames.map((frame) => JSON.parse(frame.text) as { id?: string; type: string; payload?: { data: { trackUpdated: { id: number } } } });
    // Byte for byte what JSON.stringify gives for the message graphql-ws builds: its keys in its order.
    for (const [index, message] of messages.entries()) expect(frames[index]!.text).toBe(JSON.stringify(message));
    expect(messages[0]).toEqual({ type: 'connection_ack' });
    expect(messages.at(-1)).toEqual({ id: outputId, type: 'complete' });
    expect(messages.at(-2)).toEqual({ id: outputId, type: 'next', payload: { data: { trackOutput: { line: 'A' } } } });
    const nexts = messages.slice(1, -2);
    expect(nexts.every((message) => message.type === 'next' && message.id === id && Object.keys(message).join() === 'id,type,payload')).toBe(true);
    const journal = await t.app.store.db.event.findMany({ where: { pipelineId, trackId: { not: null } }, orderBy: { id: 'asc' } });
    expect(nexts.map((message) => message.payload!.data.trackUpdated.id)).toEqual(journal.map((e) => e.id));
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
