/** Cancel, retry, finishInput and graph versioning through the real API. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/test-app.ts';
import { eventually, seedGraph, seedScenario } from '../helpers/seed.ts';
import {
  CancelPipeline,
  CheckGraph,
  CloneGraph,
  DeleteGraph,
  DeleteVertex,
  FinishInput,
  GraphDetail,
  Graphs,
  PipelineDetail,
  Pipelines,
  RetryPipeline,
  StartPipeline,
  Tracks,
  UpdateGraph,
} from '../helpers/operations.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t?.stop());

async function start(graphId: number, inputs?: Array<{ vertex: string; params: Record<string, unknown> }>) {
  const started = await t.request(StartPipeline, { graphId, inputs });
  if (started.startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(started));
  return started.startPipeline;
}

function detail(id: number) {
  return t.request(PipelineDetail, { id }).then((r) => r.pipeline!);
}

function untilState(id: number, state: string) {
  return eventually(async () => {
    const pipeline = await detail(id);
    return pipeline.state === state ? pipeline : undefined;
  }, 20_000, `pipeline ${id} ${state}`);
}

describe('cancelPipeline', () => {
  it('kills the running script with its whole process group and cancels every unfinished track', async () => {
    const marker = path.join(t.dir, 'child-survived');
    const { graphId } = await seedGraph(t, {
      vertices: {
        // A child that ignores SIGTERM, in the background: only a group SIGKILL ends it.
        slow: { script: `(trap '' TERM; sleep 3; touch ${marker}) & echo started; sleep 30` },
        next: { script: 'echo never' },
      },
      edges: [['slow', 'next']],
    });
    const pipeline = await start(graphId);
    await eventually(async () => ((await detail(pipeline.id)).tracks.find((x) => x.name === 'slow')!.state === 'RUNNING' ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 300)); // let it print
    const cancelled = await t.request(CancelPipeline, { id: pipeline.id });
    expect(cancelled.cancelPipeline).toMatchObject({ __typename: 'Pipeline', state: 'CANCELLED' });
    const after = await detail(pipeline.id);
    const byName = Object.fromEntries(after.tracks.map((x) => [x.name, x]));
    expect(byName.slow).toMatchObject({ state: 'CANCELLED', reason: 'cancelled by an operator' });
    expect(byName.next).toMatchObject({ state: 'CANCELLED', reason: 'cancelled by an operator', startedAt: null });
    // The killed script's output is kept, its state is not changed by its late exit.
    await eventually(async () => ((await detail(pipeline.id)).tracks.find((x) => x.name === 'slow')!.output.text === 'started\n' ? true : undefined));
    expect((await detail(pipeline.id)).tracks.find((x) => x.name === 'slow')!.state).toBe('CANCELLED');
    await new Promise((resolve) => setTimeout(resolve, 3500));
    expect(existsSync(marker)).toBe(false);
    expect(t.app.executor!.runningCount).toBe(0);
  });

  it('refuses to cancel a finished pipeline', async () => {
    const { graphId } = await seedGraph(t, { vertices: { one: { script: 'true' } } });
    const pipeline = await start(graphId);
    await untilState(pipeline.id, 'FINISH');
    const result = await t.request(CancelPipeline, { id: pipeline.id });
    expect(result.cancelPipeline).toMatchObject({ __typename: 'ConflictError', field: 'id' });
  });
});

describe('retryPipeline', () => {
  it('re-runs failed and cancelled tracks with attempt + 1 and keeps succeeded ones', async () => {
    const flag = path.join(t.dir, 'c-may-pass');
    const { graphId } = await seedGraph(t, seedScenario({ C: `test -e ${flag}` }));
    const pipeline = await start(graphId);
    const failed = await untilState(pipeline.id, 'FAILED');
    const before = Object.fromEntries(failed.tracks.map((x) => [x.name, x]));
    expect(before.C!.state).toBe('FAILED');
    expect(before.D).toMatchObject({ state: 'CANCELLED', reason: 'upstream C failed' });

    await import('node:fs').then((fs) => fs.writeFileSync(flag, ''));
    const retried = await t.request(RetryPipeline, { id: pipeline.id });
    expect(retried.retryPipeline).toMatchObject({ __typename: 'Pipeline', state: 'RUNNING' });
    const done = await untilState(pipeline.id, 'FINISH');
    const after = Object.fromEntries(done.tracks.map((x) => [x.name, x]));
    expect(after.C).toMatchObject({ state: 'SUCCEED', attempt: 2, exitCode: 0 });
    expect(after.D).toMatchObject({ state: 'SUCCEED', attempt: 2 });
    // Succeeded tracks were kept, not re-run.
    expect(after.A).toMatchObject({ state: 'SUCCEED', attempt: 1, startedAt: before.A!.startedAt });
    expect(after.B!.attempt).toBe(1);
    // A separate working directory per attempt.
    expect(existsSync(path.join(t.dir, 'work', `pipeline-${pipeline.id}`, `track-${after.C!.id}-attempt-2`))).toBe(true);
  });
});

describe('inputs', () => {
  it('a track without resolvable inputs waits for finishInput, then runs when its predecessors succeeded', async () => {
    const { graphId } = await seedGraph(t, {
      vertices: {
        first: { script: 'echo first' },
        greet: {
          script: 'echo "hello $INPUT_WHO" {times}',
          inputs: [
            { name: 'who', type: 'STRING' },
            { name: 'times', type: 'INTEGER', default: 2 },
          ],
        },
      },
      edges: [['first', 'greet']],
    });
    const pipeline = await start(graphId);
    const greet = await eventually(async () => {
      const p = await detail(pipeline.id);
      const track = p.tracks.find((x) => x.name === 'greet')!;
      return track.state === 'PENDING' ? track : undefined;
    });
    expect(greet.needsInput).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await detail(pipeline.id)).tracks.find((x) => x.name === 'greet')!.state).toBe('PENDING');
    const supplied = await t.request(FinishInput, { trackId: greet.id, params: { who: 'world' } });
    expect(supplied.finishInput).toMatchObject({ input: { who: 'world', times: 2 }, script: `echo "hello $INPUT_WHO" '2'` });
    const done = await untilState(pipeline.id, 'FINISH');
    expect(done.tracks.find((x) => x.name === 'greet')!.output.text).toBe('hello world 2\n');
  });

  it('inputs given at start fill the tracks automatically', async () => {
    const { graphId } = await seedGraph(t, {
      vertices: { ping: { script: 'echo {ip}', inputs: [{ name: 'ip', type: 'IP', required: true }] } },
    });
    const pipeline = await start(graphId, [{ vertex: 'ping', params: { ip: '::1' } }]);
    const done = await untilState(pipeline.id, 'FINISH');
    expect(done.tracks[0]).toMatchObject({ input: { ip: '::1' }, output: { text: '::1\n' } });
  });
});

describe('graph versioning and queries', () => {
  it('a sealed graph is cloned into an editable copy; edits reset checked', async () => {
    const { graphId } = await seedGraph(t, { name: 'versioned', ...seedScenario() });
    const pipeline = await start(graphId);
    await untilState(pipeline.id, 'FINISH');
    const clone = await t.request(CloneGraph, { id: graphId });
    expect(clone.cloneGraph).toMatchObject({ __typename: 'Graph', name: 'versioned (copy 1)', sealed: false, checked: true });
    if (clone.cloneGraph.__typename !== 'Graph') throw new Error();
    expect(clone.cloneGraph.edges.map((e) => `${e.tail.name}->${e.head.name}`)).toEqual(['A->B', 'A->C', 'B->D', 'C->D']);
    const copy = (await t.request(GraphDetail, { id: clone.cloneGraph.id })).graph!;
    const e = copy.vertices.find((v) => v.name === 'E')!;
    expect(copy.vertices.find((v) => v.name === 'D')!.predecessors.map((v) => v.name)).toEqual(['B', 'C']);
    await t.request(DeleteVertex, { id: e.id });
    const edited = (await t.request(GraphDetail, { id: copy.id })).graph!;
    expect(edited.checked).toBe(false);
    expect(edited.vertices.map((v) => v.name)).toEqual(['A', 'B', 'C', 'D']);
    expect((await t.request(CheckGraph, { id: copy.id })).checkGraph).toMatchObject({ checked: true });
    // The original is untouched and still points at its run.
    const original = (await t.request(GraphDetail, { id: graphId })).graph!;
    expect(original.vertices).toHaveLength(5);
    expect((await detail(pipeline.id)).graph.id).toBe(graphId);
    expect((await t.request(UpdateGraph, { id: copy.id, input: { name: 'renamed', desc: 'v2' } })).updateGraph).toMatchObject({ name: 'renamed', desc: 'v2' });
    expect((await t.request(DeleteGraph, { id: copy.id })).deleteGraph).toMatchObject({ __typename: 'Deleted', id: copy.id });
    expect((await t.request(Graphs)).graphs.some((g) => g.id === copy.id)).toBe(false);
  });

  it('pipelines pages newest first; tracks filters by states and pipeline states', async () => {
    const { graphId } = await seedGraph(t, { vertices: { only: { script: 'true' } } });
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) ids.push((await start(graphId)).id);
    for (const id of ids) await untilState(id, 'FINISH');
    const page1 = await t.request(Pipelines, { graphId, first: 2 });
    expect(page1.pipelines.map((p) => p.id)).toEqual([ids[2], ids[1]]);
    const page2 = await t.request(Pipelines, { graphId, first: 2, after: ids[1] });
    expect(page2.pipelines.map((p) => p.id)).toEqual([ids[0]]);
    expect((await t.request(Pipelines, { graphId, state: 'FAILED' })).pipelines).toEqual([]);
    const succeeded = await t.request(Tracks, { pipelineId: ids[0], states: ['SUCCEED'] });
    expect(succeeded.tracks).toHaveLength(1);
    const excluded = await t.request(Tracks, { pipelineId: ids[0], excludePipelineStates: ['FINISH'] });
    expect(excluded.tracks).toEqual([]);
  });
});
