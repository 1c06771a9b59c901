/** Execution through the API: concurrency bound, timeouts, output cap, live output, environment. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, startTestApp, type TestApp } from '../helpers/test-app.ts';
import { eventually, seedGraph } from '../helpers/seed.ts';
import { PipelineDetail, StartPipeline, TrackOutput, TrackUpdated } from '../helpers/operations.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: { WORKERS: '2', OUTPUT_LIMIT_BYTES: '2048' } });
});
afterAll(() => t?.stop());

async function run(graphId: number) {
  const started = await t.request(StartPipeline, { graphId });
  if (started.startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(started));
  const id = started.startPipeline.id;
  return eventually(async () => {
    const { pipeline } = await t.request(PipelineDetail, { id });
    return pipeline && pipeline.state !== 'RUNNING' ? pipeline : undefined;
  }, 20_000, 'pipeline end');
}

describe('executor through the API', () => {
  it('never runs more than WORKERS scripts at once', async () => {
    const vertices = Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`v${i}`, { script: 'sleep 0.2' }]));
    const { graphId } = await seedGraph(t, { vertices });
    const done = await run(graphId);
    expect(done.state).toBe('FINISH');
    const events = await t.app.store.db.event.findMany({ where: { pipelineId: done.id }, orderBy: { id: 'asc' } });
    let running = 0;
    let peak = 0;
    for (const event of events) {
      if (event.type === 'track:claimed') peak = Math.max(peak, ++running);
      if (event.type === 'track:succeeded') running--;
    }
    expect(peak).toBe(2);
  });

  it('fails a track that exceeds its timeout and says so', async () => {
    const { graphId } = await seedGraph(t, { vertices: { slow: { script: 'echo begin; sleep 20', timeoutSeconds: 1 } } });
    const done = await run(graphId);
    expect(done.state).toBe('FAILED');
    expect(done.tracks[0]).toMatchObject({ state: 'FAILED', output: { text: 'begin\n' } });
    expect(done.tracks[0]!.reason).toContain('Timed out after 1 s');
  });

  it('keeps the head and the tail of output over the limit, with a visible marker between', async () => {
    const { graphId } = await seedGraph(t, { vertices: { loud: { script: 'for i in $(seq 1 2000); do echo "line $i"; done' } } });
    const done = await run(graphId);
    const { text, truncated, complete, size } = done.tracks[0]!.output;
    const printed = Array.from({ length: 2000 }, (_, i) => `line ${i + 1}\n`).join('');
    expect(size).toBe(Buffer.byteLength(printed));
    expect(truncated).toBe(true);
    expect(complete).toBe(true);
    const [head, tail] = text.split(/\[output truncated: \d+ bytes were not stored here; only the first and last 1024 bytes are kept \(OUTPUT_LIMIT_BYTES=2048\)\]\n/);
    expect(tail).toBeDefined();
    expect(head!.startsWith('line 1\nline 2\n')).toBe(true);
    expect(tail!.endsWith('line 1999\nline 2000\n')).toBe(true);
    expect(printed.startsWith(head!) && printed.endsWith(tail!)).toBe(true);
    // Stored: about the limit, whatever was printed (one chunk of slack at most).
    expect(Buffer.byteLength(head! + tail!)).toBeLessThanOrEqual(2048);
    const stored = await t.app.store.db.outputChunk.aggregate({ where: { trackId: done.tracks[0]!.id }, _sum: { bytes: true } });
    expect(stored._sum.bytes).toBe(Buffer.byteLength(head! + tail!));
  });

  it('a missing command fails the track with exit code 127 and bash\'s message', async () => {
    const { graphId } = await seedGraph(t, { vertices: { bad: { script: 'no-such-command-anywhere' } } });
    const done = await run(graphId);
    expect(done.tracks[0]).toMatchObject({ state: 'FAILED', exitCode: 127 });
    expect(done.tracks[0]!.output.text).toContain('no-such-command-anywhere');
  });

  it('passes only allowlisted variables, never the service secrets', async () => {
    const { graphId } = await seedGraph(t, {
      vertices: { env: { script: 'echo "db=${DATABASE_URL:-none} path=${PATH:+set} pipeline=$PIPELINE_ID vertex=$VERTEX_NAME"' } },
    });
    const done = await run(graphId);
    expect(done.tracks[0]!.output.text).toBe(`db=none path=set pipeline=${done.id} vertex=env\n`);
  });

  it('streams output lines live over graphql-ws while the track runs', async () => {
    // Output is live-only: the script talks once the subscriber is provably listening.
    const go = path.join(t.dir, 'talk-now');
    const { graphId } = await seedGraph(t, {
      vertices: { talk: { script: `while [ ! -e ${go} ]; do echo waiting; sleep 0.05; done; echo one; echo two >&2; sleep 0.3; echo three` } },
    });
    const started = await t.request(StartPipeline, { graphId });
    if (started.startPipeline.__typename !== 'Pipeline') throw new Error();
    const trackId = started.startPipeline.tracks[0]!.id;
    const lines = await collect(t.wsClient(), TrackOutput, { trackId }, (items) => {
      if (items.length === 1) writeFileSync(go, '');
      return items.at(-1)?.trackOutput.line === 'three';
    });
    expect(lines.filter((l) => l.trackOutput.line !== 'waiting').map((l) => [l.trackOutput.stream, l.trackOutput.line])).toEqual([
      ['STDOUT', 'one'],
      ['STDERR', 'two'],
      ['STDOUT', 'three'],
    ]);
  });

  it('rejects a subscription to an unknown pipeline with a clear error', async () => {
    await expect(collect(t.wsClient(), TrackUpdated, { pipelineId: 424242 }, () => true)).rejects.toThrow(/No pipeline with id 424242/);
  });
});
