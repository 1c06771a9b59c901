/**
 * The executor's transitions against a real database: claims are exclusive, results are
 * fenced by the attempt, and every transition commits with its event.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimTracks, completeTrack } from '../../src/store/executions.ts';
import { startPipeline } from '../../src/store/pipelines.ts';
import { startTestApp, type TestApp } from '../helpers/test-app.ts';
import { seedGraph } from '../helpers/seed.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
  await t.app.executor.stop(); // these tests claim by hand
});
afterAll(() => t?.stop());

async function pendingPipeline(vertices: number) {
  const { graphId } = await seedGraph(t, {
    vertices: Object.fromEntries(Array.from({ length: vertices }, (_, i) => [`v${i}`, { script: 'true' }])),
  });
  return startPipeline(t.app.store, { graphId });
}

describe('claims and fencing', () => {
  it('concurrent claims never hand out the same track twice', async () => {
    const pipeline = await pendingPipeline(10);
    const batches = await Promise.all(
      Array.from({ length: 8 }, (_, i) => claimTracks(t.app.store, { executorId: `executor-${i}`, limit: 3 })),
    );
    const ids = batches.flat().filter((c) => c.pipelineId === pipeline.id).map((c) => c.id);
    expect(ids).toHaveLength(10);
    expect(new Set(ids).size).toBe(10);
    const claimedEvents = await t.app.store.db.event.count({ where: { pipelineId: pipeline.id, type: 'track:claimed' } });
    expect(claimedEvents).toBe(10);
  });

  it('a result from another attempt changes nothing and appends no event', async () => {
    const pipeline = await pendingPipeline(1);
    const [claimed] = await claimTracks(t.app.store, { executorId: 'fenced', limit: 1 });
    expect(claimed!.pipelineId).toBe(pipeline.id);
    const eventsBefore = await t.app.store.db.event.count({ where: { pipelineId: pipeline.id } });
    const late = await completeTrack(t.app.store, { ...claimed!, attempt: claimed!.attempt + 1 }, {
      succeeded: true,
      exitCode: 0,
      reason: null,
      output: 'from a superseded attempt',
    });
    expect(late.outcome).toBe('stale');
    const track = await t.app.store.db.track.findUniqueOrThrow({ where: { id: claimed!.id } });
    expect(track).toMatchObject({ state: 2, output: '', exitCode: null });
    expect(await t.app.store.db.event.count({ where: { pipelineId: pipeline.id } })).toBe(eventsBefore);

    const real = await completeTrack(t.app.store, claimed!, { succeeded: true, exitCode: 0, reason: null, output: 'ok\n' });
    expect(real.outcome).toBe('recorded');
    const events = await t.app.store.db.event.findMany({ where: { pipelineId: pipeline.id }, orderBy: { id: 'asc' } });
    expect(events.slice(-2).map((e) => e.type)).toEqual(['track:succeeded', 'pipeline:finished']);
    // A second delivery of the same result is fenced too.
    expect((await completeTrack(t.app.store, claimed!, { succeeded: false, exitCode: 1, reason: 'x', output: '' })).outcome).toBe('stale');
    expect((await t.app.store.db.pipeline.findUniqueOrThrow({ where: { id: pipeline.id } })).state).toBe(5);
  });
});
