/**
 * Bad input anywhere: a typed error naming the field, nothing changed, no stack trace.
 * Every rejected call is followed by a comparison of the whole database with before.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/test-app.ts';
import { seedGraph } from '../helpers/seed.ts';
import {
  CreateWholeGraph,
  AddEdge,
  AddVertex,
  CheckGraph,
  CloneGraph,
  CreateGraph,
  DeleteEdge,
  DeleteGraph,
  DeleteVertex,
  FinishInput,
  RetryPipeline,
  CancelPipeline,
  StartPipeline,
  UpdateGraph,
  UpdateVertex,
} from '../helpers/operations.ts';

let t: TestApp;
let sealed: { graphId: number; ids: Record<string, number> };
let open: { graphId: number; ids: Record<string, number> };
let pipelineId: number;
let waitingTrackId: number;

beforeAll(async () => {
  t = await startTestApp();
  sealed = await seedGraph(t, {
    name: 'sealed',
    vertices: {
      ask: {
        script: 'echo {host} {port} {ratio} {verbose} {ip} {mode}',
        inputs: [
          { name: 'host', type: 'STRING', required: true, pattern: '[a-z.]+' },
          { name: 'port', type: 'INTEGER', default: 80 },
          { name: 'ratio', type: 'NUMBER', default: 0.5 },
          { name: 'verbose', type: 'BOOLEAN', default: false },
          { name: 'ip', type: 'IP', default: '127.0.0.1' },
          { name: 'mode', type: 'STRING', default: 'fast', choices: ['fast', 'slow'] },
        ],
      },
      after: { script: 'true' },
    },
    edges: [['ask', 'after']],
  });
  const started = await t.request(StartPipeline, { graphId: sealed.graphId });
  if (started.startPipeline.__typename !== 'Pipeline') throw new Error('start failed');
  pipelineId = started.startPipeline.id;
  waitingTrackId = started.startPipeline.tracks.find((track) => track.name === 'ask')!.id;
  open = await seedGraph(t, { name: 'open', vertices: { A: { script: 'true' }, B: { script: 'true' }, C: { script: 'true' } }, edges: [['A', 'B'], ['B', 'C']] });
});
afterAll(() => t?.stop());

/** Every row of every table, to prove a rejected call changed nothing. */
async function snapshot() {
  const db = t.app.store.db;
  return {
    graphs: await db.graph.findMany({ orderBy: { id: 'asc' } }),
    vertices: await db.vertex.findMany({ orderBy: { id: 'asc' } }),
    edges: await db.edge.findMany({ orderBy: { id: 'asc' } }),
    pipelines: await db.pipeline.findMany({ orderBy: { id: 'asc' } }),
    tracks: await db.track.findMany({ orderBy: { id: 'asc' }, select: { id: true, state: true, input: true, script: true, attempt: true } }),
    events: await db.event.count(),
  };
}

type Rejection = { __typename: string; field?: string; message?: string };

/** Runs a call that must be refused; returns its typed error after checking nothing changed. */
async function rejected(call: () => Promise<Rejection>, typename: string, field: string) {
  const before = await snapshot();
  const result = await call();
  expect(result.__typename).toBe(typename);
  expect(result.field).toBe(field);
  expect(result.message).toMatch(/\w/);
  expect(result.message).not.toMatch(/\n\s+at |prisma|sqlite|Error:/i);
  expect(await snapshot()).toEqual(before);
  return result;
}

const long = (n: number) => 'x'.repeat(n);

describe('graph mutations', () => {
  it.each([
    ['empty name', { name: '   ' }, 'name'],
    ['name over 48 characters', { name: long(49) }, 'name'],
    ['desc over 100 characters', { name: 'ok-name', desc: long(101) }, 'desc'],
    ['multi-line name', { name: 'a\nb' }, 'name'],
    ['duplicate name', { name: 'open' }, 'name'],
  ])('createGraph refuses %s', async (_what, variables, field) => {
    await rejected(async () => (await t.request(CreateGraph, variables)).createGraph, field === 'name' && variables.name === 'open' ? 'ConflictError' : 'ValidationError', field);
  });

  it.each([
    ['an edge to an unknown vertex', { vertices: [{ name: 'a' }], edges: [{ tail: 'a', head: 'zz' }] }, 'ValidationError', 'edges.0.head'],
    ['a self-loop', { vertices: [{ name: 'a' }], edges: [{ tail: 'a', head: 'a' }] }, 'ValidationError', 'edges.0.head'],
    ['a duplicate edge', { vertices: [{ name: 'a' }, { name: 'b' }], edges: [{ tail: 'a', head: 'b' }, { tail: 'a', head: 'b' }] }, 'ConflictError', 'edges.1.head'],
    ['a cycle', { vertices: [{ name: 'a' }, { name: 'b' }], edges: [{ tail: 'a', head: 'b' }, { tail: 'b', head: 'a' }] }, 'CycleError', 'edges'],
    ['a duplicate vertex name', { vertices: [{ name: 'a' }, { name: 'a' }] }, 'ConflictError', 'vertices.1.name'],
    ['a vertex without a name', { vertices: [{ script: 'true' }] }, 'ValidationError', 'vertices.0.name'],
    ['a parameter declared twice', { vertices: [{ name: 'a', inputs: [{ name: 'x', type: 'STRING' as const }, { name: 'x', type: 'STRING' as const }] }] }, 'ValidationError', 'vertices.0.inputs.1.name'],
    ['a quoted placeholder', { vertices: [{ name: 'a', script: "echo '{x}'", inputs: [{ name: 'x', type: 'STRING' as const }] }] }, 'ValidationError', 'vertices.0.script'],
  ])('createGraph with its definition refuses %s', async (_what, definition, typename, field) => {
    await rejected(async () => (await t.request(CreateWholeGraph, { name: 'whole', ...definition })).createGraph, typename, field);
  });

  it('updateGraph, deleteGraph, cloneGraph and checkGraph refuse unknown ids', async () => {
    const notFound = await rejected(async () => (await t.request(UpdateGraph, { id: 9999, input: { name: 'x' } })).updateGraph, 'NotFoundError', 'id');
    expect(notFound.message).toContain('9999');
    await rejected(async () => (await t.request(DeleteGraph, { id: 9999 })).deleteGraph, 'NotFoundError', 'id');
    await rejected(async () => (await t.request(CloneGraph, { id: 9999 })).cloneGraph, 'NotFoundError', 'id');
    await rejected(async () => (await t.request(CheckGraph, { id: 9999 })).checkGraph, 'NotFoundError', 'id');
  });

  it('refuses every edit of a sealed graph and points to cloneGraph', async () => {
    const error = await rejected(async () => (await t.request(UpdateGraph, { id: sealed.graphId, input: { desc: 'new' } })).updateGraph, 'ConflictError', 'id');
    expect(error.message).toContain('cloneGraph');
    await rejected(async () => (await t.request(AddVertex, { graphId: sealed.graphId, input: { name: 'new', script: 'true' } })).addVertex, 'ConflictError', 'graphId');
    await rejected(async () => (await t.request(UpdateVertex, { id: sealed.ids.after!, input: { script: 'false' } })).updateVertex, 'ConflictError', 'id');
    await rejected(async () => (await t.request(DeleteVertex, { id: sealed.ids.after! })).deleteVertex, 'ConflictError', 'id');
    await rejected(async () => (await t.request(AddEdge, { tailId: sealed.ids.after!, headId: sealed.ids.ask! })).addEdge, 'ConflictError', 'tailId');
    const edge = await t.app.store.db.edge.findFirstOrThrow({ where: { graphId: sealed.graphId } });
    await rejected(async () => (await t.request(DeleteEdge, { id: edge.id })).deleteEdge, 'ConflictError', 'id');
    await rejected(async () => (await t.request(DeleteGraph, { id: sealed.graphId })).deleteGraph, 'ConflictError', 'id');
  });
});

describe('vertex and edge mutations', () => {
  it.each([
    ['a duplicate name', { name: 'A', script: 'true' }, 'ConflictError', 'name'],
    ['an empty name', { name: '', script: 'true' }, 'ValidationError', 'name'],
    ['a name over 48 characters', { name: long(49), script: 'true' }, 'ValidationError', 'name'],
    ['a script over 64 KiB', { name: 'big', script: long(64 * 1024 + 1) }, 'ValidationError', 'script'],
    ['a zero timeout', { name: 't0', script: 'true', timeoutSeconds: 0 }, 'ValidationError', 'timeoutSeconds'],
    ['a parameter declared twice', { name: 'p2', inputs: [{ name: 'a', type: 'STRING' as const }, { name: 'a', type: 'INTEGER' as const }] }, 'ValidationError', 'inputs.1.name'],
    ['a bad parameter name', { name: 'p3', inputs: [{ name: '1x; rm', type: 'STRING' as const }] }, 'ValidationError', 'inputs.1x; rm'],
    ['a default of the wrong type', { name: 'p4', inputs: [{ name: 'port', type: 'INTEGER' as const, default: 'eighty' }] }, 'ValidationError', 'inputs.port.default'],
    ['a default outside its choices', { name: 'p5', inputs: [{ name: 'm', type: 'STRING' as const, default: 'c', choices: ['a', 'b'] }] }, 'ValidationError', 'inputs.m.default'],
    ['an invalid pattern', { name: 'p6', inputs: [{ name: 'm', type: 'STRING' as const, pattern: '(' }] }, 'ValidationError', 'inputs.m.pattern'],
    ['a placeholder inside double quotes', { name: 'p8', script: 'echo "hi {who}"', inputs: [{ name: 'who', type: 'STRING' as const }] }, 'ValidationError', 'script'],
    ['a placeholder in a heredoc', { name: 'p9', script: 'cat <<EOF\n{who}\nEOF', inputs: [{ name: 'who', type: 'STRING' as const }] }, 'ValidationError', 'script'],
    ['an invalid ip default', { name: 'p7', inputs: [{ name: 'ip', type: 'IP' as const, default: '999.1.1.1' }] }, 'ValidationError', 'inputs.ip.default'],
  ])('addVertex refuses %s', async (_what, input, typename, field) => {
    await rejected(async () => (await t.request(AddVertex, { graphId: open.graphId, input })).addVertex, typename, field);
  });

  it('addVertex refuses an unknown graph', async () => {
    await rejected(async () => (await t.request(AddVertex, { graphId: 4242, input: { name: 'x' } })).addVertex, 'NotFoundError', 'graphId');
  });

  it('addEdge refuses self-loops, duplicates, unknown vertices, cross-graph edges and cycles (naming them)', async () => {
    const { A, B, C } = open.ids as { A: number; B: number; C: number };
    await rejected(async () => (await t.request(AddEdge, { tailId: A, headId: A })).addEdge, 'ValidationError', 'headId');
    await rejected(async () => (await t.request(AddEdge, { tailId: A, headId: B })).addEdge, 'ConflictError', 'headId');
    await rejected(async () => (await t.request(AddEdge, { tailId: 777777, headId: B })).addEdge, 'NotFoundError', 'tailId');
    await rejected(async () => (await t.request(AddEdge, { tailId: A, headId: 777777 })).addEdge, 'NotFoundError', 'headId');
    await rejected(async () => (await t.request(AddEdge, { tailId: A, headId: sealed.ids.ask! })).addEdge, 'ValidationError', 'headId');
    const cycle = await rejected(async () => (await t.request(AddEdge, { tailId: C, headId: A })).addEdge, 'CycleError', 'edges');
    expect((cycle as unknown as { path: string[] }).path).toEqual(['A', 'B', 'C', 'A']);
  });

  it('updateVertex refuses a script that would put an existing parameter inside quotes', async () => {
    const added = await t.request(AddVertex, { graphId: open.graphId, input: { name: 'greeter', script: 'echo {who}', inputs: [{ name: 'who', type: 'STRING' }] } });
    if (added.addVertex.__typename !== 'Vertex') throw new Error(JSON.stringify(added));
    const vertexId = added.addVertex.id;
    const error = await rejected(async () => (await t.request(UpdateVertex, { id: vertexId, input: { script: "echo '{who}'" } })).updateVertex, 'ValidationError', 'script');
    expect(error.message).toContain('single quotes');
    await t.request(DeleteVertex, { id: vertexId });
  });

  it('update, delete of unknown vertices and edges', async () => {
    await rejected(async () => (await t.request(UpdateVertex, { id: 31337, input: { script: 'x' } })).updateVertex, 'NotFoundError', 'id');
    await rejected(async () => (await t.request(DeleteVertex, { id: 31337 })).deleteVertex, 'NotFoundError', 'id');
    await rejected(async () => (await t.request(DeleteEdge, { id: 31337 })).deleteEdge, 'NotFoundError', 'id');
  });
});

describe('pipeline mutations', () => {
  it('startPipeline refuses unknown and unchecked graphs', async () => {
    await rejected(async () => (await t.request(StartPipeline, { graphId: 5555 })).startPipeline, 'NotFoundError', 'graphId');
    const unchecked = await seedGraph(t, { vertices: { X: { script: 'true' } }, check: false });
    const error = await rejected(async () => (await t.request(StartPipeline, { graphId: unchecked.graphId })).startPipeline, 'ConflictError', 'graphId');
    expect(error.message).toContain('checkGraph');
  });

  it.each([
    ['an unknown vertex', [{ vertex: 'nope', params: {} }], 'inputs.0.vertex'],
    ['the same vertex twice', [{ vertex: 'ask', params: { host: 'a' } }, { vertex: 'ask', params: { host: 'b' } }], 'inputs.1.vertex'],
    ['params that are not an object', [{ vertex: 'ask', params: [1, 2] }], 'inputs.0.params'],
    ['an unknown parameter', [{ vertex: 'ask', params: { host: 'a', colour: 'red' } }], 'inputs.0.params.colour'],
    ['an integer that is not one', [{ vertex: 'ask', params: { host: 'a', port: '80; rm -rf /' } }], 'inputs.0.params.port'],
    ['a float that is not one', [{ vertex: 'ask', params: { host: 'a', ratio: '$(reboot)' } }], 'inputs.0.params.ratio'],
    ['a boolean that is not one', [{ vertex: 'ask', params: { host: 'a', verbose: 'true && reboot' } }], 'inputs.0.params.verbose'],
    ['an ip that is not one', [{ vertex: 'ask', params: { host: 'a', ip: '127.0.0.1; reboot' } }], 'inputs.0.params.ip'],
    ['a value outside the choices', [{ vertex: 'ask', params: { host: 'a', mode: 'turbo' } }], 'inputs.0.params.mode'],
    ['a string not matching the pattern', [{ vertex: 'ask', params: { host: 'a`id`' } }], 'inputs.0.params.host'],
    ['an oversized string', [{ vertex: 'ask', params: { host: 'a'.repeat(70_000) } }], 'inputs.0.params.host'],
  ])('startPipeline refuses %s', async (_what, inputs, field) => {
    const fresh = await t.app.store.db.graph.findUniqueOrThrow({ where: { id: sealed.graphId } });
    expect(fresh.sealed).toBe(true); // starting again from a sealed graph is allowed: runs are repeatable
    await rejected(async () => (await t.request(StartPipeline, { graphId: sealed.graphId, inputs })).startPipeline, 'ValidationError', field);
  });

  it('finishInput validates and names the parameter', async () => {
    await rejected(async () => (await t.request(FinishInput, { trackId: 99999, params: {} })).finishInput, 'NotFoundError', 'trackId');
    const missing = await rejected(async () => (await t.request(FinishInput, { trackId: waitingTrackId, params: {} })).finishInput, 'ValidationError', 'params.host');
    expect(missing.message).toContain('required');
    await rejected(async () => (await t.request(FinishInput, { trackId: waitingTrackId, params: { host: 'ok', port: 'x' } })).finishInput, 'ValidationError', 'params.port');
    await rejected(async () => (await t.request(FinishInput, { trackId: waitingTrackId, params: 'host=x' })).finishInput, 'ValidationError', 'params');
    await rejected(async () => (await t.request(FinishInput, { trackId: waitingTrackId, params: { host: 'ok', extra: 1 } })).finishInput, 'ValidationError', 'params.extra');
  });

  it('cancel and retry refuse unknown ids and wrong states', async () => {
    await rejected(async () => (await t.request(CancelPipeline, { id: 8888 })).cancelPipeline, 'NotFoundError', 'id');
    await rejected(async () => (await t.request(RetryPipeline, { id: 8888 })).retryPipeline, 'NotFoundError', 'id');
    const error = await rejected(async () => (await t.request(RetryPipeline, { id: pipelineId })).retryPipeline, 'ConflictError', 'id');
    expect(error.message).toContain('RUNNING');
  });
});

describe('malformed requests', () => {
  it('answers type errors and garbage with GraphQL errors, never a stack trace or a 5xx', async () => {
    const bodies = [
      '{"query":"mutation { createGraph(name: 5) { __typename } }"}',
      '{"query":"{ graph(id: \\"abc\\") { id } }"}',
      '{"query":"{ nope }"}',
      '{"query":',
      '[]',
    ];
    for (const body of bodies) {
      const response = await fetch(t.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect(response.status).toBeLessThan(500);
      const text = await response.text();
      expect(text).toContain('errors');
      expect(text).not.toMatch(/\bat .*\.(ts|js):\d+/);
    }
    const scalarParams = await fetch(t.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: `mutation { startPipeline(graphId: ${sealed.graphId}, inputs: [{vertex: "ask", params: 5}]) { __typename ... on Error { field } } }` }),
    });
    expect(await scalarParams.json()).toEqual({ data: { startPipeline: { __typename: 'ValidationError', field: 'inputs.0.params' } } });
  });
});
