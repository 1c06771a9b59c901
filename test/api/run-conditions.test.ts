/**
 * SPEC rule 19 through the API: a vertex's runIf. A failure cancels what can no longer run,
 * except FAILURE and ALWAYS handlers, which run once their predecessors ended, in the FAILED
 * pipeline; a condition that can no longer hold ends its track SKIPPED; FINISH exactly when
 * nothing failed. Also: checkGraph, definition files and pictures show conditions; cancel
 * stops handlers; a retry decides them anew.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from '../../src/generated/gql/index.ts';
import { CancelPipeline, CheckGraph, RetryPipeline, StartPipeline } from '../helpers/operations.ts';
import { eventually, seedGraph } from '../helpers/seed.ts';
import { startTestApp, type TestApp } from '../helpers/test-app.ts';

const ConditionRun = graphql(`
  query ConditionRun($id: Int!) {
    pipeline(id: $id) {
      state mermaid dot
      tracks { id name state attempt reason blockedBy { kind message } vertex { runIf } }
      events(first: 1000) { type trackId trackState pipelineState reason }
    }
  }
`);

const GraphPictures = graphql(`
  query GraphPictures($id: Int!) {
    graph(id: $id) { definition mermaid dot vertices { name runIf } }
  }
`);

const ImportDefinition = graphql(`
  mutation ImportConditionDefinition($definition: String!, $name: String) {
    importGraph(definition: $definition, name: $name) {
      __typename
      ... on Graph { id vertices { name runIf } }
      ... on Error { message field }
    }
  }
`);

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t?.stop());

async function start(graphId: number) {
  const { startPipeline } = await t.request(StartPipeline, { graphId });
  if (startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(startPipeline));
  return startPipeline.id;
}

async function run(id: number) {
  const { pipeline } = await t.request(ConditionRun, { id });
  if (!pipeline) throw new Error(`no pipeline ${id}`);
  return pipeline;
}

const settled = (s: string) => ['SUCCEED', 'FAILED', 'CANCELLED', 'SKIPPED'].includes(s);

/** Waits until the pipeline has ended and none of its tracks waits or runs. */
async function ended(id: number) {
  return eventually(
    async () => {
      const p = await run(id);
      return p.state !== 'RUNNING' && p.tracks.every((tr) => settled(tr.state)) ? p : undefined;
    },
    20_000,
    `pipeline ${id} to end`,
  );
}

const states = (p: Awaited<ReturnType<typeof run>>) => Object.fromEntries(p.tracks.map((tr) => [tr.name, tr.state]));

/**
 * build -> test -> deploy (SUCCESS); test -> cleanup (FAILURE) -> report (SUCCESS);
 * test -> notify (ALWAYS). `test` exits with the code in its file.
 */
function releaseGraph(testExit: number) {
  const marks = path.join(t.dir, `marks-${Math.random().toString(36).slice(2)}`);
  return {
    marks,
    spec: {
      vertices: {
        build: { script: 'echo built' },
        test: { script: `echo testing; exit ${testExit}` },
        deploy: { script: 'echo deployed' },
        cleanup: { script: `echo cleanup >> ${marks}`, runIf: 'FAILURE' as const },
        report: { script: 'echo report' },
        notify: { script: `echo notify >> ${marks}`, runIf: 'ALWAYS' as const },
      },
      edges: [
        ['build', 'test'],
        ['test', 'deploy'],
        ['test', 'cleanup'],
        ['cleanup', 'report'],
        ['test', 'notify'],
      ] as Array<[string, string]>,
    },
  };
}

describe('runIf', () => {
  it('after a failure runs the FAILURE and ALWAYS handlers in the FAILED pipeline, cancels the rest', async () => {
    const g = releaseGraph(3);
    const { graphId } = await seedGraph(t, g.spec);
    const p = await ended(await start(graphId));
    expect(p.state).toBe('FAILED');
    expect(states(p)).toEqual({ build: 'SUCCEED', test: 'FAILED', deploy: 'CANCELLED', cleanup: 'SUCCEED', report: 'CANCELLED', notify: 'SUCCEED' });
    expect(p.tracks.find((tr) => tr.name === 'deploy')!.reason).toBe('upstream test failed');
    // The handlers became ready after the failure, in the failed pipeline.
    const failedAt = p.events.findIndex((e) => e.type === 'pipeline:failed');
    const cleanup = p.tracks.find((tr) => tr.name === 'cleanup')!;
    const readyAt = p.events.findIndex((e) => e.type === 'track:ready' && e.trackId === cleanup.id);
    expect(failedAt).toBeGreaterThan(-1);
    expect(readyAt).toBeGreaterThan(failedAt);
    // Each handler ran once.
    expect(marksOf(g.marks)).toEqual(['cleanup', 'notify']);
  });

  it('when nothing fails skips the FAILURE handler and what needs it, runs ALWAYS, and finishes', async () => {
    const g = releaseGraph(0);
    const { graphId } = await seedGraph(t, g.spec);
    const p = await ended(await start(graphId));
    expect(p.state).toBe('FINISH');
    expect(states(p)).toEqual({ build: 'SUCCEED', test: 'SUCCEED', deploy: 'SUCCEED', cleanup: 'SKIPPED', report: 'SKIPPED', notify: 'SUCCEED' });
    const cleanup = p.tracks.find((tr) => tr.name === 'cleanup')!;
    expect(cleanup.reason).toMatch(/no track of the pipeline failed \(runIf FAILURE\)/);
    expect(p.tracks.find((tr) => tr.name === 'report')!.reason).toMatch(/predecessor cleanup was skipped/);
    expect(cleanup.blockedBy).toBeNull();
    expect(p.events.filter((e) => e.type === 'track:skipped').map((e) => e.trackState)).toEqual(['SKIPPED', 'SKIPPED']);
    // The pictures show conditions and states.
    expect(p.mermaid).toMatch(/\{\{"cleanup<br\/>if FAILURE<br\/>SKIPPED"\}\}/);
    expect(p.mermaid).toMatch(/-\.->/);
    expect(p.dot).toMatch(/label="notify\\nif ALWAYS\\nSUCCEED", shape=hexagon/);
    expect(marksOf(g.marks)).toEqual(['notify']);
  });

  it('says a waiting handler waits for its predecessors to end', async () => {
    const gate = path.join(t.dir, `gate-${Date.now()}`);
    const { graphId } = await seedGraph(t, {
      vertices: {
        slow: { script: `while [ ! -f ${gate} ]; do sleep 0.02; done; exit 1` },
        alert: { script: 'echo alert', runIf: 'FAILURE' },
      },
      edges: [['slow', 'alert']],
    });
    const id = await start(graphId);
    const waiting = await eventually(async () => {
      const p = await run(id);
      return p.tracks.find((tr) => tr.name === 'slow')!.state === 'RUNNING' ? p : undefined;
    });
    expect(waiting.tracks.find((tr) => tr.name === 'alert')!.blockedBy).toMatchObject({
      kind: 'PREDECESSORS',
      message: 'Waiting for slow to end (runIf FAILURE).',
    });
    writeFileSync(gate, '');
    expect(states(await ended(id))).toEqual({ slow: 'FAILED', alert: 'SUCCEED' });
  });

  it('cancelPipeline stops a failed pipeline\'s handlers too; the pipeline stays FAILED', async () => {
    const { graphId } = await seedGraph(t, {
      vertices: { fails: { script: 'exit 1' }, cleanup: { script: 'sleep 30', runIf: 'ALWAYS' } },
      edges: [['fails', 'cleanup']],
    });
    const id = await start(graphId);
    await eventually(async () => ((await run(id)).tracks.find((tr) => tr.name === 'cleanup')!.state === 'RUNNING' ? true : undefined));
    const { cancelPipeline } = await t.request(CancelPipeline, { id });
    expect(cancelPipeline).toMatchObject({ __typename: 'Pipeline', state: 'FAILED' });
    const p = await ended(id);
    expect(p.state).toBe('FAILED');
    expect(states(p)).toEqual({ fails: 'FAILED', cleanup: 'CANCELLED' });
    // Nothing left to cancel now.
    expect((await t.request(CancelPipeline, { id })).cancelPipeline).toMatchObject({ __typename: 'ConflictError', field: 'id' });
  });

  it('a retry decides the handlers anew: after a good second attempt the FAILURE handler is skipped', async () => {
    const flag = path.join(t.dir, `fixed-${Date.now()}`);
    const { graphId } = await seedGraph(t, {
      vertices: {
        step: { script: `[ -f ${flag} ]` },
        cleanup: { script: 'echo cleaning', runIf: 'FAILURE' },
        after: { script: 'echo after' },
      },
      edges: [
        ['step', 'cleanup'],
        ['step', 'after'],
      ],
    });
    const id = await start(graphId);
    expect(states(await ended(id))).toEqual({ step: 'FAILED', cleanup: 'SUCCEED', after: 'CANCELLED' });
    writeFileSync(flag, '');
    const { retryPipeline } = await t.request(RetryPipeline, { id });
    expect(retryPipeline).toMatchObject({ __typename: 'Pipeline', state: 'RUNNING' });
    const p = await ended(id);
    expect(p.state).toBe('FINISH');
    expect(states(p)).toEqual({ step: 'SUCCEED', cleanup: 'SKIPPED', after: 'SUCCEED' });
    expect(p.tracks.find((tr) => tr.name === 'cleanup')!.attempt).toBe(2);
  });

  it('checkGraph refuses a handler without predecessors, naming the field; definitions keep runIf', async () => {
    const { graphId } = await seedGraph(t, { vertices: { lonely: { script: 'true', runIf: 'ALWAYS' } }, check: false });
    const { checkGraph } = await t.request(CheckGraph, { id: graphId });
    expect(checkGraph).toMatchObject({ __typename: 'ValidationError', field: 'vertices.lonely.runIf' });
    expect((checkGraph as { message: string }).message).toMatch(/has runIf ALWAYS but no predecessors/);

    const g = releaseGraph(0);
    const { graphId: release } = await seedGraph(t, g.spec);
    const { graph } = await t.request(GraphPictures, { id: release });
    expect(graph!.definition).toMatch(/name: cleanup\n(.*\n)*?\s+runIf: FAILURE/);
    expect(graph!.definition.match(/runIf/g)).toHaveLength(2);
    const { importGraph } = await t.request(ImportDefinition, { definition: graph!.definition, name: `conditions copy ${Date.now()}` });
    if (importGraph.__typename !== 'Graph') throw new Error(JSON.stringify(importGraph));
    expect(Object.fromEntries(importGraph.vertices.map((v) => [v.name, v.runIf]))).toEqual(
      Object.fromEntries(graph!.vertices.map((v) => [v.name, v.runIf])),
    );
    const bad = graph!.definition.replace('runIf: FAILURE', 'runIf: sometimes');
    const { importGraph: refused } = await t.request(ImportDefinition, { definition: bad, name: `bad conditions ${Date.now()}` });
    expect(refused).toMatchObject({ __typename: 'ValidationError', field: 'definition.vertices.3.runIf' });
  });
});

/** What the handlers wrote to their marks file, sorted. */
function marksOf(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').sort() : [];
}
