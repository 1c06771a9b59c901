/**
 * SPEC rule 14: a graph's maxConcurrentPipelines. A start beyond it creates the pipeline
 * QUEUED with every track WAITING; queued pipelines start in the order they were queued as
 * running ones end (finish, fail, are cancelled) or as the limit is raised; a queued pipeline
 * can be cancelled, and says why it waits and behind how many. On PostgreSQL the same holds
 * across processes: racing starts on two API processes never take more slots than there
 * are, and a slot freed on one worker process starts the next queued pipeline on another.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from '../../src/generated/gql/index.ts';
import { freshPostgresDatabase, TEST_PROVIDER, TEST_REDIS_URL } from '../helpers/databases.ts';
import { CancelPipeline, CloneGraph, CreateGraph, RetryPipeline, StartPipeline, UpdateGraph } from '../helpers/operations.ts';
import { eventually, seedGraph } from '../helpers/seed.ts';
import { killServerProcesses, startServerProcess, type ServerProcess } from '../helpers/server-process.ts';
import { httpClient, startTestApp, type GraphQLClient, type TestApp } from '../helpers/test-app.ts';

const QueueView = graphql(`
  query QueueView($id: Int!) {
    pipeline(id: $id) {
      id state finishedAt
      blockedBy { kind message limit running ahead }
      tracks { name state blockedBy { kind message } }
      events(first: 100) { type pipelineState reason }
    }
  }
`);

const GraphLimit = graphql(`
  query GraphLimit($id: Int!) {
    graph(id: $id) { maxConcurrentPipelines checked sealed definition }
  }
`);

const dir = mkdtempSync(path.join(tmpdir(), 'dagpipe-concurrency-'));
afterAll(() => {
  killServerProcesses();
  rmSync(dir, { recursive: true, force: true });
});

let gates = 0;
/**
 * A one-step graph whose step waits until its pipeline's gate file exists, then exits with
 * the code written in it: the test decides when each run ends, and how.
 */
function gatedGraph(maxConcurrentPipelines?: number) {
  const gateDir = path.join(dir, `gates-${++gates}`);
  mkdirSync(gateDir);
  return {
    gateDir,
    spec: {
      maxConcurrentPipelines,
      vertices: {
        gated: {
          script: `while [ ! -f ${gateDir}/$PIPELINE_ID ]; do sleep 0.02; done; exit $(cat ${gateDir}/$PIPELINE_ID)`,
        },
        after: { script: 'true' },
      },
      edges: [['gated', 'after']] as Array<[string, string]>,
    },
    open: (pipelineId: number, exitCode = 0) => writeFileSync(path.join(gateDir, String(pipelineId)), String(exitCode)),
  };
}

async function start(client: GraphQLClient, graphId: number) {
  const { startPipeline } = await client.request(StartPipeline, { graphId });
  if (startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(startPipeline));
  return startPipeline;
}

async function view(client: GraphQLClient, id: number) {
  const { pipeline } = await client.request(QueueView, { id });
  if (!pipeline) throw new Error(`no pipeline ${id}`);
  return pipeline;
}

const stateOf = async (client: GraphQLClient, id: number) => (await view(client, id)).state;

async function settlesTo(client: GraphQLClient, id: number, state: string, timeoutMs = 15_000) {
  return eventually(async () => ((await stateOf(client, id)) === state ? true : undefined), timeoutMs, `pipeline ${id} ${state}`);
}

describe('maxConcurrentPipelines on one process', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.stop());

  it('queues starts beyond the limit with every track WAITING, and starts them in order as runs end', async () => {
    const gate = gatedGraph(2);
    const { graphId } = await seedGraph(t, gate.spec);
    const [p1, p2, p3, p4] = [await start(t, graphId), await start(t, graphId), await start(t, graphId), await start(t, graphId)];
    expect([p1!.state, p2!.state, p3!.state, p4!.state]).toEqual(['RUNNING', 'RUNNING', 'QUEUED', 'QUEUED']);
    expect(p3!.tracks.map((tr) => tr.state)).toEqual(['WAITING', 'WAITING']);

    const queued3 = await view(t, p3!.id);
    expect(queued3.blockedBy).toMatchObject({ kind: 'CONCURRENCY_LIMIT', limit: 2, running: 2, ahead: 0 });
    expect(queued3.blockedBy!.message).toMatch(/at most 2 pipelines at once \(maxConcurrentPipelines\) and 2 are running\. It is next in the queue\./);
    expect((await view(t, p4!.id)).blockedBy).toMatchObject({ ahead: 1 });
    expect((await view(t, p4!.id)).blockedBy!.message).toMatch(/1 queued pipeline of the graph starts before it/);
    expect(queued3.tracks.map((tr) => tr.blockedBy?.kind)).toEqual(['PIPELINE_QUEUED', 'PIPELINE_QUEUED']);
    expect(queued3.events.map((e) => [e.type, e.pipelineState])).toContainEqual(['pipeline:queued', 'QUEUED']);
    expect(queued3.events.some((e) => e.type === 'pipeline:started')).toBe(false);
    // Running pipelines have no blockedBy.
    expect((await view(t, p1!.id)).blockedBy).toBeNull();

    // p1 finishes: p3 (queued first) takes its slot, p4 moves up.
    gate.open(p1!.id);
    await settlesTo(t, p1!.id, 'FINISH');
    await settlesTo(t, p3!.id, 'RUNNING');
    expect(await stateOf(t, p4!.id)).toBe('QUEUED');
    expect((await view(t, p4!.id)).blockedBy).toMatchObject({ running: 2, ahead: 0 });
    const started3 = (await view(t, p3!.id)).events.find((e) => e.type === 'pipeline:started');
    expect(started3?.reason).toMatch(/started from the queue: 2 of the graph's at most 2 pipelines/);

    // A failure frees a slot as well.
    gate.open(p2!.id, 3);
    await settlesTo(t, p2!.id, 'FAILED');
    await settlesTo(t, p4!.id, 'RUNNING');
    gate.open(p3!.id);
    gate.open(p4!.id);
    await settlesTo(t, p3!.id, 'FINISH');
    await settlesTo(t, p4!.id, 'FINISH');
  });

  it('cancels a queued pipeline without running anything, and cancelling a running one frees its slot', async () => {
    const gate = gatedGraph(1);
    const { graphId } = await seedGraph(t, gate.spec);
    const p1 = await start(t, graphId);
    const p2 = await start(t, graphId);
    const p3 = await start(t, graphId);
    expect([p1.state, p2.state, p3.state]).toEqual(['RUNNING', 'QUEUED', 'QUEUED']);
    expect((await view(t, p3.id)).blockedBy).toMatchObject({ ahead: 1 });

    const { cancelPipeline } = await t.request(CancelPipeline, { id: p2.id });
    expect(cancelPipeline).toMatchObject({ __typename: 'Pipeline', state: 'CANCELLED' });
    const cancelled = await view(t, p2.id);
    expect(cancelled.tracks.map((tr) => tr.state)).toEqual(['CANCELLED', 'CANCELLED']);
    expect(cancelled.finishedAt).not.toBeNull();
    expect(cancelled.blockedBy).toBeNull();
    // It held no slot: p1 still runs, p3 is next now.
    expect(await stateOf(t, p1.id)).toBe('RUNNING');
    expect((await view(t, p3.id)).blockedBy).toMatchObject({ running: 1, ahead: 0 });

    // Cancelling the running one starts p3 in the same transaction.
    await t.request(CancelPipeline, { id: p1.id });
    expect(await stateOf(t, p3.id)).toBe('RUNNING');
    gate.open(p3.id);
    await settlesTo(t, p3.id, 'FINISH');
    expect(existsSync(path.join(gate.gateDir, String(p2.id)))).toBe(false);
  });

  it('raising or removing the limit on a sealed graph starts queued pipelines at once, and keeps it checked', async () => {
    const gate = gatedGraph(1);
    const { graphId } = await seedGraph(t, gate.spec);
    const runs = [await start(t, graphId), await start(t, graphId), await start(t, graphId), await start(t, graphId)];
    expect(runs.map((p) => p.state)).toEqual(['RUNNING', 'QUEUED', 'QUEUED', 'QUEUED']);

    const { updateGraph } = await t.request(UpdateGraph, { id: graphId, input: { maxConcurrentPipelines: 2 } });
    expect(updateGraph).toMatchObject({ __typename: 'Graph', maxConcurrentPipelines: 2, sealed: true, checked: true });
    expect(await Promise.all(runs.map((p) => stateOf(t, p.id)))).toEqual(['RUNNING', 'RUNNING', 'QUEUED', 'QUEUED']);

    // Lowering it stops nothing that runs; it only holds back further starts.
    await t.request(UpdateGraph, { id: graphId, input: { maxConcurrentPipelines: 1 } });
    expect(await Promise.all(runs.map((p) => stateOf(t, p.id)))).toEqual(['RUNNING', 'RUNNING', 'QUEUED', 'QUEUED']);
    expect((await view(t, runs[2]!.id)).blockedBy).toMatchObject({ limit: 1, running: 2, ahead: 0 });

    await t.request(UpdateGraph, { id: graphId, input: { maxConcurrentPipelines: null } });
    expect(await Promise.all(runs.map((p) => stateOf(t, p.id)))).toEqual(['RUNNING', 'RUNNING', 'RUNNING', 'RUNNING']);
    // Without a limit nothing queues.
    const unlimited = await start(t, graphId);
    expect(unlimited.state).toBe('RUNNING');
    for (const p of [...runs, unlimited]) gate.open(p.id);
    for (const p of [...runs, unlimited]) await settlesTo(t, p.id, 'FINISH');
    expect((await t.request(GraphLimit, { id: graphId })).graph).toMatchObject({ maxConcurrentPipelines: null, checked: true, sealed: true });
  });

  it('a retry counts against the limit: beyond it the retried pipeline queues at the back', async () => {
    const gate = gatedGraph(1);
    const { graphId } = await seedGraph(t, gate.spec);
    const failing = await start(t, graphId);
    gate.open(failing.id, 1);
    await settlesTo(t, failing.id, 'FAILED');
    const holder = await start(t, graphId);
    const waiting = await start(t, graphId);
    expect([holder.state, waiting.state]).toEqual(['RUNNING', 'QUEUED']);

    rmSync(path.join(gate.gateDir, String(failing.id)));
    const { retryPipeline } = await t.request(RetryPipeline, { id: failing.id });
    expect(retryPipeline).toMatchObject({ __typename: 'Pipeline', state: 'QUEUED' });
    const retried = await view(t, failing.id);
    // Nothing of it is ready while it is queued; it is behind the one queued before it.
    expect(retried.tracks.map((tr) => tr.state)).toEqual(['WAITING', 'WAITING']);
    expect(retried.blockedBy).toMatchObject({ ahead: 1 });
    expect(retried.events.at(-1)).toMatchObject({ type: 'pipeline:retried', pipelineState: 'QUEUED' });

    gate.open(holder.id);
    await settlesTo(t, waiting.id, 'RUNNING');
    expect(await stateOf(t, failing.id)).toBe('QUEUED');
    gate.open(waiting.id);
    await settlesTo(t, failing.id, 'RUNNING');
    gate.open(failing.id);
    await settlesTo(t, failing.id, 'FINISH');
  });

  it('validates maxConcurrentPipelines with a typed error naming the field, and changes nothing', async () => {
    for (const bad of [0, -1, 10_001]) {
      const { createGraph } = await t.request(CreateGraph, { name: `limit-${bad}`, maxConcurrentPipelines: bad });
      expect(createGraph).toMatchObject({ __typename: 'ValidationError', field: 'maxConcurrentPipelines' });
      expect((createGraph as { message: string }).message).toMatch(/from 1 to 10000 .* or null for no limit/);
    }
    const gate = gatedGraph(3);
    const { graphId } = await seedGraph(t, gate.spec);
    const { updateGraph } = await t.request(UpdateGraph, { id: graphId, input: { maxConcurrentPipelines: 0 } });
    expect(updateGraph).toMatchObject({ __typename: 'ValidationError', field: 'input.maxConcurrentPipelines' });
    // A rename of a sealed graph is refused whole: the limit given with it is not set either.
    const p = await start(t, graphId);
    const { updateGraph: renamed } = await t.request(UpdateGraph, { id: graphId, input: { name: 'renamed', maxConcurrentPipelines: 5 } });
    expect(renamed).toMatchObject({ __typename: 'ConflictError', field: 'id' });
    expect((await t.request(GraphLimit, { id: graphId })).graph).toMatchObject({ maxConcurrentPipelines: 3 });
    const { updateGraph: missing } = await t.request(UpdateGraph, { id: 999_999, input: { maxConcurrentPipelines: 2 } });
    expect(missing).toMatchObject({ __typename: 'NotFoundError', field: 'id' });
    gate.open(p.id);
    await settlesTo(t, p.id, 'FINISH');
  });

  it('is part of the definition file, and of a clone', async () => {
    const gate = gatedGraph(4);
    const { graphId } = await seedGraph(t, gate.spec);
    const { graph } = await t.request(GraphLimit, { id: graphId });
    expect(graph!.definition).toMatch(/^maxConcurrentPipelines: 4$/m);
    const { cloneGraph } = await t.request(CloneGraph, { id: graphId });
    if (cloneGraph.__typename !== 'Graph') throw new Error(JSON.stringify(cloneGraph));
    expect((await t.request(GraphLimit, { id: cloneGraph.id })).graph).toMatchObject({ maxConcurrentPipelines: 4 });
    // Without a limit the definition does not mention it.
    const { graphId: unlimited } = await seedGraph(t, gatedGraph().spec);
    expect((await t.request(GraphLimit, { id: unlimited })).graph!.definition).not.toMatch(/maxConcurrentPipelines/);
  });
});

describe.runIf(TEST_PROVIDER === 'postgresql')('maxConcurrentPipelines across processes (PostgreSQL)', () => {
  const apis: ServerProcess[] = [];
  const workers: ServerProcess[] = [];
  let clients: GraphQLClient[];

  beforeAll(async () => {
    const common = { DATABASE_URL: freshPostgresDatabase(), REDIS_URL: TEST_REDIS_URL, MUTATIONS_PER_MINUTE: '100000000', PORT: '0', DATABASE_POOL_SIZE: '6' };
    const [a1, a2, ...ws] = await Promise.all([
      ...[1, 2].map((n) => startServerProcess({ ...common, ROLE: 'api', WORK_DIR: path.join(dir, `api-${n}`) })),
      ...[1, 2, 3].map((n) => startServerProcess({ ...common, ROLE: 'worker', WORKERS: '2', WORK_DIR: path.join(dir, `worker-${n}`) })),
    ]);
    apis.push(a1!, a2!);
    workers.push(...ws);
    clients = apis.map((api) => httpClient(api.url));
  });

  afterAll(async () => {
    await Promise.all([...apis, ...workers].map((p) => p.stop()));
  });

  it('20 racing starts on 2 API processes take exactly the 3 slots there are; the rest queue', async () => {
    const gate = gatedGraph(3);
    const { graphId } = await seedGraph(clients[0]!, gate.spec);
    const started = await Promise.all(Array.from({ length: 20 }, (_, i) => start(clients[i % 2]!, graphId)));
    expect(started.filter((p) => p.state === 'RUNNING')).toHaveLength(3);
    expect(started.filter((p) => p.state === 'QUEUED')).toHaveLength(17);
    for (const p of started) gate.open(p.id);
    for (const p of started) await settlesTo(clients[1]!, p.id, 'FINISH', 60_000);
  });

  it('with a limit of 1 and 3 workers, runs go one at a time in the order they were queued', async () => {
    const ledger = path.join(dir, 'ledger-serial');
    const { graphId } = await seedGraph(clients[0]!, {
      maxConcurrentPipelines: 1,
      vertices: { step: { script: `echo "start $PIPELINE_ID" >> ${ledger}; sleep 0.2; echo "end $PIPELINE_ID" >> ${ledger}` } },
    });
    const runs: number[] = [];
    for (let i = 0; i < 8; i++) runs.push((await start(clients[i % 2]!, graphId)).id);
    for (const id of runs) await settlesTo(clients[1]!, id, 'FINISH', 60_000);
    // Never two at once, and in queue order, whichever worker freed the slot.
    expect(readFileSync(ledger, 'utf8').trim().split('\n')).toEqual(runs.flatMap((id) => [`start ${id}`, `end ${id}`]));
  });
});
