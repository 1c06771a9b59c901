/**
 * SPEC rule 15: startPipeline(idempotencyKey). A second start of the same graph with the
 * same key returns the first pipeline and starts nothing, however many callers race: the
 * database's unique index on (graph, key) decides, so it holds across API processes too.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from '../../src/generated/gql/index.ts';
import { freshPostgresDatabase, TEST_PROVIDER, TEST_REDIS_URL } from '../helpers/databases.ts';
import { seedGraph } from '../helpers/seed.ts';
import { killServerProcesses, startServerProcess, type ServerProcess } from '../helpers/server-process.ts';
import { httpClient, startTestApp, type GraphQLClient, type TestApp } from '../helpers/test-app.ts';

const StartWithKey = graphql(`
  mutation StartWithKey($graphId: Int!, $idempotencyKey: String, $name: String) {
    startPipeline(graphId: $graphId, idempotencyKey: $idempotencyKey, name: $name) {
      __typename
      ... on Pipeline { id name state idempotencyKey tracks { id } }
      ... on Error { message field }
    }
  }
`);

const Counts = graphql(`
  query IdempotentCounts($graphId: Int!) {
    pipelines(graphId: $graphId, first: 20) { id idempotencyKey events(first: 50) { type } tracks { id } }
  }
`);

/** A graph whose one step waits (no worker needs to finish anything for these checks). */
const slowGraph = { vertices: { wait: { script: 'sleep 30' }, after: { script: 'true' } }, edges: [['wait', 'after']] as Array<[string, string]> };

async function pipelineId(client: GraphQLClient, graphId: number, idempotencyKey: string | null) {
  const { startPipeline } = await client.request(StartWithKey, { graphId, idempotencyKey });
  if (startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(startPipeline));
  return startPipeline;
}

/**
 * The graph's pipelines, and how many tracks and start events (pipeline:started,
 * track:created) they have in all; the executor's claims of the tracks are not counted.
 */
async function written(client: GraphQLClient, graphId: number) {
  const { pipelines } = await client.request(Counts, { graphId });
  return {
    pipelines: pipelines.map((p) => ({ id: p.id, idempotencyKey: p.idempotencyKey })),
    events: pipelines.reduce((n, p) => n + p.events.filter((e) => e.type === 'pipeline:started' || e.type === 'track:created').length, 0),
    tracks: pipelines.reduce((n, p) => n + p.tracks.length, 0),
  };
}

describe('startPipeline with an idempotency key, on one process', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.stop());

  it('returns the first pipeline for the same graph and key, and writes nothing more', async () => {
    const { graphId } = await seedGraph(t, slowGraph);
    const first = await pipelineId(t, graphId, 'nightly-2026-12-02');
    expect(first).toMatchObject({ state: 'RUNNING', idempotencyKey: 'nightly-2026-12-02' });
    const before = await written(t, graphId);
    const again = await t.request(StartWithKey, { graphId, idempotencyKey: 'nightly-2026-12-02', name: 'another name' });
    // Its other arguments are not compared: the answer is the pipeline the key started.
    expect(again.startPipeline).toMatchObject({ __typename: 'Pipeline', id: first.id, name: first.name, idempotencyKey: 'nightly-2026-12-02' });
    expect(await written(t, graphId)).toEqual(before);
    // The key names a start of this graph: another key, no key, or another graph start anew.
    const other = await pipelineId(t, graphId, 'nightly-2026-12-03');
    const none1 = await pipelineId(t, graphId, null);
    const none2 = await pipelineId(t, graphId, null);
    expect(new Set([first.id, other.id, none1.id, none2.id]).size).toBe(4);
    expect(none1.idempotencyKey).toBeNull();
    const { graphId: otherGraph } = await seedGraph(t, slowGraph);
    expect((await pipelineId(t, otherGraph, 'nightly-2026-12-02')).id).not.toBe(first.id);
    // Keys are compared exactly, not trimmed or folded.
    const spaced = await pipelineId(t, graphId, ' nightly-2026-12-02');
    const upper = await pipelineId(t, graphId, 'NIGHTLY-2026-12-02');
    expect(new Set([first.id, spaced.id, upper.id]).size).toBe(3);
  });

  it('20 concurrent starts with one key get one pipeline', async () => {
    const { graphId } = await seedGraph(t, slowGraph);
    const results = await Promise.all(Array.from({ length: 20 }, () => pipelineId(t, graphId, 'race')));
    expect(new Set(results.map((p) => p.id)).size).toBe(1);
    const after = await written(t, graphId);
    expect(after.pipelines).toEqual([{ id: results[0]!.id, idempotencyKey: 'race' }]);
    expect(after.tracks).toBe(2);
  });

  it('refuses a bad key with a typed error naming idempotencyKey, and starts nothing', async () => {
    const { graphId } = await seedGraph(t, slowGraph);
    for (const [key, message] of [
      ['', /must not be empty/],
      ['   ', /must not be empty/],
      ['k'.repeat(201), /201 characters long; at most 200/],
      ['two\nlines', /single line/],
      ['\ud800', /not valid Unicode/],
    ] as const) {
      const { startPipeline } = await t.request(StartWithKey, { graphId, idempotencyKey: key });
      expect(startPipeline).toMatchObject({ __typename: 'ValidationError', field: 'idempotencyKey' });
      expect((startPipeline as { message: string }).message).toMatch(message);
    }
    expect(await written(t, graphId)).toEqual({ pipelines: [], events: 0, tracks: 0 });
    // 200 characters are fine.
    expect((await pipelineId(t, graphId, 'k'.repeat(200))).idempotencyKey).toBe('k'.repeat(200));
  });
});

describe.runIf(TEST_PROVIDER === 'postgresql')('startPipeline with an idempotency key, on 2 API processes (PostgreSQL)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dagpipe-idempotent-'));
  const apis: ServerProcess[] = [];
  let clients: GraphQLClient[];

  beforeAll(async () => {
    const common = { DATABASE_URL: freshPostgresDatabase(), REDIS_URL: TEST_REDIS_URL, MUTATIONS_PER_MINUTE: '100000000', PORT: '0', DATABASE_POOL_SIZE: '6' };
    apis.push(
      ...(await Promise.all([1, 2].map((n) => startServerProcess({ ...common, ROLE: 'api', WORK_DIR: path.join(dir, `api-${n}`) })))),
    );
    clients = apis.map((api) => httpClient(api.url));
  });

  afterAll(async () => {
    await Promise.all(apis.map((p) => p.stop()));
    killServerProcesses();
    rmSync(dir, { recursive: true, force: true });
  });

  it('20 racing callers, 10 on each process, get one pipeline', async () => {
    const { graphId } = await seedGraph(clients[0]!, slowGraph);
    for (const round of [1, 2, 3]) {
      const key = `race-${round}`;
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => pipelineId(clients[i % 2]!, graphId, key)));
      expect(new Set(results.map((p) => p.id)).size, `round ${round}`).toBe(1);
      expect(results[0]!.tracks).toHaveLength(2);
    }
    const after = await written(clients[1]!, graphId);
    expect(after.pipelines.map((p) => p.idempotencyKey).sort()).toEqual(['race-1', 'race-2', 'race-3']);
    // Each pipeline started once: its tracks and its start's events, nothing twice.
    expect(after.tracks).toBe(6);
    expect(after.events).toBe(3 * 3);
  });
});
