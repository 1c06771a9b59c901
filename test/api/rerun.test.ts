/**
 * Re-run from a step (SPEC rule 17) through the API: retryPipeline(id, from) on an ended
 * pipeline puts the named steps and all their descendants back into play (attempt + 1),
 * even if they had succeeded, keeps the others, and announces each with its events. Bad
 * input changes nothing.
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from '../../src/generated/gql/index.ts';
import { PipelineDetail, RetryPipeline, StartPipeline } from '../helpers/operations.ts';
import { eventually, seedGraph, seedScenario } from '../helpers/seed.ts';
import { startTestApp, type TestApp } from '../helpers/test-app.ts';

const RetryFrom = graphql(`
  mutation RerunFrom($id: Int!, $from: [String!]) {
    retryPipeline(id: $id, from: $from) {
      __typename
      ... on Pipeline { id state finishedAt tracks { name state attempt } }
      ... on Error { message field }
    }
  }
`);

const Journal = graphql(`
  query RerunJournal($id: Int!) {
    pipeline(id: $id) { state events(first: 200) { id type reason attempt trackState pipelineState track { name } } }
  }
`);

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t?.stop());

/** The seed scenario, each step appending its name and attempt to a ledger file. */
async function startLedgered(extra: Partial<Record<'A' | 'B' | 'C' | 'D' | 'E', string>> = {}) {
  const ledger = path.join(t.dir, `ledger-${Date.now()}-${Math.random()}`);
  writeFileSync(ledger, '');
  const step = (name: string) => `echo "${name} $TRACK_ATTEMPT" >> ${ledger}`;
  const { graphId } = await seedGraph(
    t,
    seedScenario({ A: step('A'), B: step('B'), C: extra.C ?? step('C'), D: step('D'), E: step('E') }),
  );
  const { startPipeline } = await t.request(StartPipeline, { graphId });
  if (startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(startPipeline));
  return { pipelineId: startPipeline.id, ledger: () => readFileSync(ledger, 'utf8').trim().split('\n').filter(Boolean) };
}

const ended = (id: number, state: string) =>
  eventually(async () => {
    const { pipeline } = await t.request(PipelineDetail, { id });
    return pipeline?.state === state && !pipeline.tracks.some((x) => x.state === 'RUNNING') ? pipeline : undefined;
  }, 20_000, `pipeline ${id} ${state}`);

const byName = (tracks: Array<{ name: string; state: string; attempt: number }>) =>
  Object.fromEntries([...tracks].sort((a, b) => a.name.localeCompare(b.name)).map((x) => [x.name, `${x.state}@${x.attempt}`]));

describe('retryPipeline with from', () => {
  it('re-runs a FINISH pipeline from B: B and D run again (attempt 2) in order, A, C and E are kept', async () => {
    const { pipelineId, ledger } = await startLedgered();
    await ended(pipelineId, 'FINISH');
    const before = (await t.request(Journal, { id: pipelineId })).pipeline!.events.at(-1)!.id;
    const { retryPipeline } = await t.request(RetryFrom, { id: pipelineId, from: ['B'] });
    expect(retryPipeline).toMatchObject({ __typename: 'Pipeline', state: 'RUNNING', finishedAt: null });
    // As committed: B ready (A kept SUCCEED), D waiting for B; the others untouched.
    const states = byName((retryPipeline as { tracks: Array<{ name: string; state: string; attempt: number }> }).tracks);
    expect(states).toMatchObject({ A: 'SUCCEED@1', C: 'SUCCEED@1', E: 'SUCCEED@1' });
    expect(['PENDING@2', 'RUNNING@2', 'SUCCEED@2']).toContain(states.B);
    expect(['WAITING@2', 'PENDING@2', 'RUNNING@2', 'SUCCEED@2']).toContain(states.D);
    const finished = await ended(pipelineId, 'FINISH');
    expect(byName(finished.tracks)).toEqual({ A: 'SUCCEED@1', B: 'SUCCEED@2', C: 'SUCCEED@1', D: 'SUCCEED@2', E: 'SUCCEED@1' });
    expect(finished.finishedAt).not.toBeNull();
    const runs = ledger();
    expect(runs.slice(5)).toEqual(['B 2', 'D 2']);
    expect([...runs.slice(0, 5)].sort()).toEqual(['A 1', 'B 1', 'C 1', 'D 1', 'E 1']);
    // The re-run's events: each reset track, the pipeline (naming the steps), then the run.
    const events = (await t.request(Journal, { id: pipelineId })).pipeline!.events.filter((e) => e.id > before);
    expect(events.slice(0, 3).map((e) => [e.type, e.track?.name ?? null, e.attempt, e.trackState ?? e.pipelineState])).toEqual([
      ['track:retried', 'B', 2, 'PENDING'],
      ['track:retried', 'D', 2, 'WAITING'],
      ['pipeline:retried', null, null, 'RUNNING'],
    ]);
    expect(events[2]!.reason).toBe('re-run from B');
    expect(events.at(-1)!.type).toBe('pipeline:finished');
  });

  it('re-runs a FAILED pipeline from E: its failed and cancelled tracks go back too, so nothing waits forever', async () => {
    const flag = path.join(t.dir, `c-fixed-${Date.now()}-${Math.random()}`);
    const { pipelineId, ledger } = await startLedgered({ C: `test -e ${flag} || exit 4` });
    const failed = await ended(pipelineId, 'FAILED');
    expect(byName(failed.tracks)).toMatchObject({ C: 'FAILED@1', D: 'CANCELLED@1' });
    appendFileSync(flag, '');
    const { retryPipeline } = await t.request(RetryFrom, { id: pipelineId, from: ['E'] });
    expect(retryPipeline).toMatchObject({ __typename: 'Pipeline', state: 'RUNNING' });
    const finished = await ended(pipelineId, 'FINISH');
    // B ran beside C, or was cancelled before it started when C failed: then it goes back too.
    const b = failed.tracks.find((x) => x.name === 'B')!.state === 'SUCCEED' ? 1 : 2;
    expect(byName(finished.tracks)).toEqual({ A: 'SUCCEED@1', B: `SUCCEED@${b}`, C: 'SUCCEED@2', D: 'SUCCEED@2', E: 'SUCCEED@2' });
    expect(ledger().filter((l) => l.endsWith(' 2')).sort()).toEqual([...(b === 2 ? ['B 2'] : []), 'D 2', 'E 2']);
  });

  it('refuses bad input with a typed error and changes nothing', async () => {
    const { pipelineId } = await startLedgered();
    await ended(pipelineId, 'FINISH');
    const journal = async () => (await t.request(Journal, { id: pipelineId })).pipeline!;
    const before = await journal();
    for (const [from, field, message] of [
      [['B', 'nope'], 'from', /no vertex named "nope"\. Its vertices: "A", "B", "C", "D", "E"\./],
      [[], 'from', /from lists no vertex/],
    ] as const) {
      const { retryPipeline } = await t.request(RetryFrom, { id: pipelineId, from: [...from] });
      expect(retryPipeline).toMatchObject({ __typename: 'ValidationError', field });
      expect((retryPipeline as { message: string }).message).toMatch(message);
    }
    // Without from, a FINISH pipeline has nothing to retry, as before.
    const plain = await t.request(RetryPipeline, { id: pipelineId });
    expect(plain.retryPipeline).toMatchObject({ __typename: 'ConflictError', field: 'id' });
    expect((plain.retryPipeline as { message: string }).message).toMatch(/only a FAILED or CANCELLED pipeline can be retried \(a FINISH one can be re-run from a step with from\)/);
    const unknown = await t.request(RetryFrom, { id: 999_999, from: ['B'] });
    expect(unknown.retryPipeline).toMatchObject({ __typename: 'NotFoundError', field: 'id' });
    expect(await journal()).toEqual(before);
  });

  it('refuses a running pipeline, and a step still running in a failed one', async () => {
    const gate = path.join(t.dir, `gate-${Date.now()}-${Math.random()}`);
    const { graphId } = await seedGraph(t, {
      vertices: { slow: { script: `while [ ! -e ${gate} ]; do sleep 0.02; done` }, bad: { script: 'exit 1' }, after: { script: 'true' } },
      edges: [['slow', 'after']],
    });
    const { startPipeline } = await t.request(StartPipeline, { graphId });
    if (startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(startPipeline));
    const id = startPipeline.id;
    // bad fails at once; slow keeps running in the FAILED pipeline.
    const failed = await eventually(async () => {
      const { pipeline } = await t.request(PipelineDetail, { id });
      return pipeline?.state === 'FAILED' && pipeline.tracks.some((x) => x.name === 'slow' && x.state === 'RUNNING') ? pipeline : undefined;
    });
    const { retryPipeline } = await t.request(RetryFrom, { id, from: ['slow'] });
    expect(retryPipeline).toMatchObject({ __typename: 'ConflictError', field: 'from' });
    expect((retryPipeline as { message: string }).message).toMatch(/Track "slow" is still RUNNING; it cannot be re-run before it ends/);
    expect((await t.request(PipelineDetail, { id })).pipeline!.tracks).toEqual(failed.tracks);
    writeFileSync(gate, '');
    await ended(id, 'FAILED');
    // Once it ended, the re-run goes ahead.
    expect((await t.request(RetryFrom, { id, from: ['slow'] })).retryPipeline).toMatchObject({ __typename: 'Pipeline', state: 'RUNNING' });
    await eventually(async () => {
      const { pipeline } = await t.request(PipelineDetail, { id });
      return pipeline?.state === 'FAILED' && pipeline.tracks.every((x) => x.state !== 'RUNNING') ? true : undefined;
    });
    // A running pipeline cannot be re-run.
    const { graphId: other } = await seedGraph(t, { vertices: { wait: { script: `sleep 30` } } });
    const running = await t.request(StartPipeline, { graphId: other });
    if (running.startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(running));
    const refused = await t.request(RetryFrom, { id: running.startPipeline.id, from: ['wait'] });
    expect(refused.retryPipeline).toMatchObject({ __typename: 'ConflictError', field: 'id' });
    expect((refused.retryPipeline as { message: string }).message).toMatch(/is RUNNING; only an ended pipeline \(FINISH, FAILED or CANCELLED\) can be re-run from a step/);
  });
});
