/**
 * The SPEC seed scenario through the real API: HTTP mutations, a graphql-ws subscriber
 * over a real socket, real bash processes, a real SQLite file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, startTestApp, type TestApp } from '../helpers/test-app.ts';
import { eventually, seedGraph, seedScenario } from '../helpers/seed.ts';
import { FinishInput, PipelineDetail, PipelineUpdated, StartPipeline, TrackUpdated } from '../helpers/operations.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t?.stop());

async function start(graphId: number) {
  const started = await t.request(StartPipeline, { graphId });
  if (started.startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(started));
  return started.startPipeline;
}

async function finished(pipelineId: number) {
  return eventually(async () => {
    const { pipeline } = await t.request(PipelineDetail, { id: pipelineId });
    return pipeline && pipeline.state !== 'RUNNING' ? pipeline : undefined;
  }, 20_000, `pipeline ${pipelineId} to end`);
}

describe('seed scenario', () => {
  it('starts A and E, runs B and C after A, D after both, and finishes', async () => {
    // A waits for its input, so the start states can be observed before anything runs.
    const spec = seedScenario({ A: 'echo A says {word}' });
    spec.vertices.A!.inputs = [{ name: 'word', type: 'STRING', required: true }];
    spec.vertices.B!.script = 'sleep 0.2; echo B';
    const { graphId } = await seedGraph(t, spec);
    const pipeline = await start(graphId);
    // E has no inputs and may already run; its start state is in the journal (checked below).
    const states = Object.fromEntries(pipeline.tracks.filter((track) => track.name !== 'E').map((track) => [track.name, track.state]));
    expect(states).toEqual({ A: 'PENDING', B: 'WAITING', C: 'WAITING', D: 'WAITING' });
    expect(pipeline.tracks.find((track) => track.name === 'A')!.needsInput).toBe(true);

    const events = collect(
      t.wsClient(),
      TrackUpdated,
      { pipelineId: pipeline.id, after: 0 },
      (items) => items.filter((i) => i.trackUpdated.type === 'track:succeeded').length === 5,
    );
    const pipelineEvents = collect(
      t.wsClient(),
      PipelineUpdated,
      { pipelineId: pipeline.id, after: 0 },
      (items) => items.some((i) => i.pipelineUpdated.pipelineState === 'FINISH'),
    );
    const a = pipeline.tracks.find((track) => track.name === 'A')!;
    const supplied = await t.request(FinishInput, { trackId: a.id, params: { word: "it's; rm -rf /" } });
    expect(supplied.finishInput).toMatchObject({ __typename: 'Track', needsInput: false, script: `echo A says 'it'\\''s; rm -rf /'` });

    const received = (await events).map((e) => e.trackUpdated);
    const ids = received.map((e) => e.id);
    expect(ids).toEqual([...ids].sort((x, y) => x - y));
    const sequence = (name: string) => received.filter((e) => e.track?.name === name).map((e) => e.trackState);
    expect(sequence('A')).toEqual(['PENDING', 'PENDING', 'RUNNING', 'SUCCEED']); // created, input, claimed, done
    expect(sequence('B')).toEqual(['WAITING', 'PENDING', 'RUNNING', 'SUCCEED']);
    expect(sequence('C')).toEqual(['WAITING', 'PENDING', 'RUNNING', 'SUCCEED']);
    expect(sequence('D')).toEqual(['WAITING', 'PENDING', 'RUNNING', 'SUCCEED']);
    expect(sequence('E')).toEqual(['PENDING', 'RUNNING', 'SUCCEED']);
    const position = (name: string, type: string) => received.findIndex((e) => e.track?.name === name && e.type === type);
    // D becomes ready only after both B and C succeeded.
    expect(position('D', 'track:ready')).toBeGreaterThan(position('B', 'track:succeeded'));
    expect(position('D', 'track:ready')).toBeGreaterThan(position('C', 'track:succeeded'));
    expect(position('B', 'track:ready')).toBeGreaterThan(position('A', 'track:succeeded'));

    expect((await pipelineEvents).map((e) => e.pipelineUpdated.pipelineState)).toEqual(['RUNNING', 'FINISH']);
    const done = await finished(pipeline.id);
    expect(done.state).toBe('FINISH');
    expect(done.graph.sealed).toBe(true);
    expect(done.tracks.find((track) => track.name === 'A')!.output.text).toBe("A says it's; rm -rf /\n");
    expect(done.tracks.every((track) => track.state === 'SUCCEED' && track.exitCode === 0)).toBe(true);
  });

  it('when C fails: the pipeline fails, D never runs and is cancelled naming C', async () => {
    const { graphId } = await seedGraph(t, seedScenario({ C: 'echo broken >&2; exit 3' }));
    const pipeline = await start(graphId);
    const done = await finished(pipeline.id);
    expect(done.state).toBe('FAILED');
    const byName = Object.fromEntries(done.tracks.map((track) => [track.name, track]));
    expect(byName.C).toMatchObject({ state: 'FAILED', exitCode: 3, output: { text: 'broken\n' } });
    expect(byName.C!.reason).toContain('exited with code 3');
    expect(byName.D).toMatchObject({ state: 'CANCELLED', startedAt: null, output: { text: '' } });
    expect(byName.D!.reason).toBe('upstream C failed');
    expect(byName.A!.state).toBe('SUCCEED');
    expect(byName.E!.state).toBe('SUCCEED');

    // A subscriber replaying the run sees C fail, then D cancelled naming C, then the pipeline fail.
    const replay = await collect(t.wsClient(), TrackUpdated, { pipelineId: pipeline.id, after: 0 }, (items) =>
      items.some((i) => i.trackUpdated.type === 'track:cancelled'),
    );
    const types = replay.map((e) => `${e.trackUpdated.track?.name}:${e.trackUpdated.type}`);
    expect(types.indexOf('C:track:failed')).toBeLessThan(types.indexOf('D:track:cancelled'));
    expect(replay.find((e) => e.trackUpdated.type === 'track:cancelled')!.trackUpdated.reason).toBe('upstream C failed');
    expect(types).not.toContain('D:track:claimed');
    const ends = await collect(t.wsClient(), PipelineUpdated, { pipelineId: pipeline.id, after: 0 }, (items) => items.length === 2);
    expect(ends.map((e) => [e.pipelineUpdated.pipelineState, e.pipelineUpdated.reason])).toEqual([
      ['RUNNING', null],
      ['FAILED', 'C failed'],
    ]);
  });
});
