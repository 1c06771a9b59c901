/** For operators: Prometheus metrics at /metrics and structured logs carrying pipeline and track ids. */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { scrapeMetrics } from '../helpers/metrics.ts';
import { PipelineDetail, StartPipeline } from '../helpers/operations.ts';
import { eventually, seedGraph } from '../helpers/seed.ts';
import { startTestApp, type TestApp } from '../helpers/test-app.ts';

const logs: Array<Record<string, unknown>> = [];
let t: TestApp;
beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  t = await startTestApp({ env: { WORKERS: '2' }, logger: pino({ level: 'debug' }, sink) });
});
afterAll(() => t?.stop());

const scrape = () => scrapeMetrics(t.url);

it('counts tracks and pipelines by state, the queue, subscribers, and times dispatch and scripts', async () => {
  const { graphId } = await seedGraph(t, { vertices: { A: { script: 'true' }, B: { script: 'exit 0' }, C: { script: 'exit 4' } }, edges: [['A', 'B']] });
  const started = await t.request(StartPipeline, { graphId });
  if (started.startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(started));
  const pipelineId = started.startPipeline.id;
  await eventually(async () => ((await t.request(PipelineDetail, { id: pipelineId })).pipeline!.state === 'FAILED' ? true : undefined));
  // One subscriber on an open WebSocket: the failed track's output stays open (a retry may continue it).
  const client = t.wsClient();
  const failed = started.startPipeline.tracks.find((track) => track.name === 'C')!;
  const stop = client.subscribe({ query: `subscription { trackOutput(trackId: ${failed.id}) { line } }` }, { next() {}, error() {}, complete() {} });
  await eventually(async () => ((await scrape()).get('dagpipe_subscriptions') === 1 ? true : undefined));

  const metrics = await scrape();
  expect(metrics.get('dagpipe_websocket_connections')).toBe(1);
  expect(metrics.get('dagpipe_pipelines{state="FAILED"}')).toBe(1);
  expect(metrics.get('dagpipe_tracks{state="FAILED"}')).toBe(1);
  // A ran; B was cancelled or ran depending on timing; C failed. Every track is counted once.
  const tracks = [...metrics].filter(([name]) => name.startsWith('dagpipe_tracks{')).reduce((sum, [, value]) => sum + value, 0);
  expect(tracks).toBe(3);
  expect(metrics.get('dagpipe_queue_depth')).toBe(0);
  // Nothing deleted (SPEC rule 17), both series there from the start.
  expect(metrics.get('dagpipe_pipelines_deleted_total{by="retention"}')).toBe(0);
  expect(metrics.get('dagpipe_pipelines_deleted_total{by="admin"}')).toBe(0);
  expect(metrics.get('dagpipe_running_tracks')).toBe(0);
  expect(metrics.get('dagpipe_track_duration_seconds_count{outcome="failed"}')).toBe(1);
  expect(metrics.get('dagpipe_track_duration_seconds_count{outcome="succeeded"}')).toBeGreaterThanOrEqual(1);
  expect(metrics.get('dagpipe_dispatch_latency_seconds_count')).toBeGreaterThanOrEqual(2);
  expect(metrics.get('dagpipe_process_resident_memory_bytes')).toBeGreaterThan(0);
  stop();
  await eventually(async () => ((await scrape()).get('dagpipe_subscriptions') === 0 ? true : undefined));

  // Logs: the track's end and the pipeline's failure, each with the ids to grep for.
  const trackIds = started.startPipeline.tracks.map((track) => track.id);
  expect(logs).toContainEqual(expect.objectContaining({ msg: 'track failed', pipelineId, trackId: expect.any(Number), exitCode: 4, vertex: 'C' }));
  expect(logs).toContainEqual(expect.objectContaining({ msg: 'pipeline:failed', pipelineId }));
  expect(logs).toContainEqual(expect.objectContaining({ msg: 'track:claimed', pipelineId, trackId: trackIds[0] }));
});

