/**
 * The executor's transitions against a real database: claims are exclusive and only a
 * registered executor claims, results are fenced by the attempt and the owner, and every
 * transition commits with its event.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimTracks, completeTrack } from '../../src/store/executions.ts';
import { startPipeline } from '../../src/store/pipelines.ts';
import { registerExecutor, unregisterExecutor } from '../../src/store/worker-registry.ts';
import { startTestApp, type TestApp } from '../helpers/test-app.ts';
import { seedGraph } from '../helpers/seed.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
  await t.app.executor!.stop(); // these tests claim by hand
  for (const id of [...Array.from({ length: 8 }, (_, i) => `executor-${i}`), 'fenced', 'owner', 'other']) await registerExecutor(t.app.store, id);
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

  it('a result from another executor than the one that claimed the attempt changes nothing', async () => {
    const pipeline = await pendingPipeline(1);
    const [claimed] = await claimTracks(t.app.store, { executorId: 'owner', limit: 1 });
    expect(claimed).toMatchObject({ pipelineId: pipeline.id, executorId: 'owner' });
    const eventsBefore = await t.app.store.db.event.count({ where: { pipelineId: pipeline.id } });
    const foreign = await completeTrack(t.app.store, { ...claimed!, executorId: 'other' }, { succeeded: true, exitCode: 0, reason: null, output: 'not mine' });
    expect(foreign).toMatchObject({ outcome: 'stale', discarded: 'superseded' });
    expect(await t.app.store.db.track.findUniqueOrThrow({ where: { id: claimed!.id } })).toMatchObject({ state: 2, output: '', executorId: 'owner' });
    expect(await t.app.store.db.event.count({ where: { pipelineId: pipeline.id } })).toBe(eventsBefore);
    expect((await completeTrack(t.app.store, claimed!, { succeeded: true, exitCode: 0, reason: null, output: 'ok\n' })).outcome).toBe('recorded');
  });

  it('an executor without a row (taken for dead, or never registered) claims nothing', async () => {
    const pipeline = await pendingPipeline(1);
    await registerExecutor(t.app.store, 'doomed');
    await unregisterExecutor(t.app.store, 'doomed');
    expect(await claimTracks(t.app.store, { executorId: 'doomed', limit: 5 })).toEqual([]);
    expect(await claimTracks(t.app.store, { executorId: 'never-registered', limit: 5 })).toEqual([]);
    expect((await t.app.store.db.track.findFirstOrThrow({ where: { pipelineId: pipeline.id } })).state).toBe(1);
    const [claimed] = await claimTracks(t.app.store, { executorId: 'owner', limit: 5 });
    expect(claimed?.pipelineId).toBe(pipeline.id);
  });
});
