/**
 * Hostile input through the real HTTP API (issue 4, item 6), generated with fast-check:
 * wrong types (raw JSON variables), strings over the documented limits, unicode with lone
 * surrogates and bidi marks, negative, huge and unknown ids, cycles and self-loops,
 * duplicate names, shell-injection strings in every parameter type, malformed JSON and
 * invalid YAML definitions, for every mutation of schema.graphql.
 *
 * For every call: HTTP status < 500; a typed error (Error union member with its field) or
 * a GraphQL request error, never a masked "Unexpected error." and never a stack trace; the
 * server logs no error other than the client's request error; it still answers /health;
 * and when the call was rejected, every row of graph, vertex, edge, pipeline, track, event
 * and output_chunk is as it was. Accepted calls (some hostile values are fine) change the
 * fixtures; the unsealed graph is rebuilt when they removed parts of it.
 *
 * The fuzzed service's executor is stopped, so that only the calls change the database.
 * A second service runs the injection payloads for real: printed literally, nothing created.
 *
 * Reproduce a failure with FC_SEED=<seed printed below>; FUZZ_RUNS sets runs per mutation
 * (default 20). Shrinking is off (endOnFailure): the database moves on between runs.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import { stringify as toYaml } from 'yaml';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fcSeed, HOSTILE_STRINGS, hostileString, loneSurrogate } from '../helpers/hostile.ts';
import { CancelPipeline, PipelineDetail, StartPipeline } from '../helpers/operations.ts';
import { eventually, seedGraph } from '../helpers/seed.ts';
import { startTestApp, type TestApp } from '../helpers/test-app.ts';
import type { VertexInput } from '../../src/generated/gql/graphql.ts';

const seed = fcSeed('test/api/fuzz.test.ts');
const RUNS = Number(process.env.FUZZ_RUNS ?? 20);
const fcParams = (numRuns = RUNS): fc.Parameters<unknown> => ({ seed, numRuns, endOnFailure: true });

/** Authentication off (loopback only) and no rate limit: this file sends many mutations. */
const ENV = { AUTH: 'off', MUTATIONS_PER_MINUTE: '100000000' };

/** Error-level log lines of the fuzzed service: an unexpected error is logged there. */
const serverErrors: string[] = [];
let t: TestApp;

// ---------------------------------------------------------------------------------------
// Fixtures, named by reference so generated arguments can point at real objects
// ---------------------------------------------------------------------------------------

/** A reference to a fixture's id, resolved when the call is made. */
class Ref {
  constructor(readonly name: string) {}
  toString() {
    return `@${this.name}`;
  }
}

const refs = new Map<string, number>();
let openCount = 0;

const PARAMS_SCHEMA: NonNullable<VertexInput['inputs']> = [
  { name: 'host', type: 'STRING', required: true, pattern: '[a-z0-9.-]+' },
  { name: 'text', type: 'STRING', default: 'hello' },
  { name: 'port', type: 'INTEGER', default: 80 },
  { name: 'ratio', type: 'NUMBER', default: 0.5 },
  { name: 'verbose', type: 'BOOLEAN', default: false },
  { name: 'ip', type: 'IP', default: '127.0.0.1' },
  { name: 'mode', type: 'STRING', default: 'fast', choices: ['fast', 'slow'] },
  { name: 'token', type: 'STRING', default: 'x', secret: true },
];
const PARAM_NAMES = PARAMS_SCHEMA.map((p) => p.name);

/** An unsealed graph A -> B -> C with every parameter type on A; rebuilt when calls removed parts of it. */
async function openGraph(): Promise<void> {
  const graphId = refs.get('graph.open');
  if (graphId !== undefined) {
    const graph = await t.app.store.db.graph.findUnique({ where: { id: graphId }, include: { vertices: true, edges: true } });
    if (graph && !graph.sealed && graph.vertices.length >= 3 && graph.edges.length >= 1) return;
  }
  const open = await seedGraph(t, {
    name: `open ${++openCount}`,
    vertices: {
      A: { script: 'printf %s {host} {text} {port} {ratio} {verbose} {ip} {mode} {token}', inputs: PARAMS_SCHEMA.map((p) => ({ ...p })) },
      B: { script: 'true' },
      C: { script: 'true' },
    },
    edges: [
      ['A', 'B'],
      ['B', 'C'],
    ],
  });
  refs.set('graph.open', open.graphId);
  for (const name of ['A', 'B', 'C']) refs.set(`vertex.${name}`, open.ids[name]!);
  const edge = await t.app.store.db.edge.findFirstOrThrow({ where: { graphId: open.graphId } });
  refs.set('edge.open', edge.id);
  lastDump = undefined;
}

async function seedFixtures(): Promise<void> {
  const sealed = await seedGraph(t, {
    name: 'sealed',
    vertices: { ask: { script: 'printf %s {host} {text} {port} {ratio} {verbose} {ip} {mode} {token}', inputs: PARAMS_SCHEMA.map((p) => ({ ...p })) }, after: { script: 'true' } },
    edges: [['ask', 'after']],
  });
  refs.set('graph.sealed', sealed.graphId);
  refs.set('vertex.ask', sealed.ids.ask!);
  refs.set('vertex.after', sealed.ids.after!);
  refs.set('edge.sealed', (await t.app.store.db.edge.findFirstOrThrow({ where: { graphId: sealed.graphId } })).id);
  // A running pipeline whose first track waits for its required host (nothing runs: the executor is stopped).
  const running = await t.request(StartPipeline, { graphId: sealed.graphId });
  if (running.startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(running));
  refs.set('pipeline.running', running.startPipeline.id);
  refs.set('track.waiting', running.startPipeline.tracks.find((tr) => tr.name === 'ask')!.id);
  refs.set('track.after', running.startPipeline.tracks.find((tr) => tr.name === 'after')!.id);
  const cancelled = await t.request(StartPipeline, { graphId: sealed.graphId, inputs: [{ vertex: 'ask', params: { host: 'example.org' } }] });
  if (cancelled.startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(cancelled));
  await t.request(CancelPipeline, { id: cancelled.startPipeline.id });
  refs.set('pipeline.cancelled', cancelled.startPipeline.id);
  refs.set('track.cancelled', cancelled.startPipeline.tracks[0]!.id);
  await openGraph();
}

function resolve(value: unknown): unknown {
  if (value instanceof Ref) {
    if (value.name === 'name.open') return `open ${openCount}`;
    if (value.name === 'name.sealed') return 'sealed';
    const id = refs.get(value.name);
    if (id === undefined) throw new Error(`unknown fixture ${value.name}`);
    return id;
  }
  if (Array.isArray(value)) return value.map(resolve);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v)]));
  return value;
}

// ---------------------------------------------------------------------------------------
// Calls and what every answer must satisfy
// ---------------------------------------------------------------------------------------

const TABLES = ['graph', 'vertex', 'edge', 'pipeline', 'track', 'event', 'output_chunk'] as const;
let lastDump: Record<string, unknown[]> | undefined;

/** Every row of every table the API writes, in id order. */
async function dump(): Promise<Record<string, unknown[]>> {
  const db = t.app.store.db;
  const entries = await Promise.all(TABLES.map(async (table) => [table, await db.$queryRawUnsafe<unknown[]>(`SELECT * FROM "${table}" ORDER BY "id"`)] as const));
  return Object.fromEntries(entries);
}

const ERROR_TYPES = new Set(['ValidationError', 'NotFoundError', 'ConflictError', 'CycleError']);
/** A stack frame, a source path, or internals of the database layer. */
const LEAK = /\n\s+at \S|\bat [^\s]+ \(|\.(ts|js|mjs):\d+:\d+|node_modules|PrismaClient|prisma\.|SQLITE_|better-sqlite3/;

interface Mutation {
  name: string;
  /** Argument names and input object fields (the first segment of every error field is one of them). */
  args: string[];
  success: string;
  document: string;
}

/** The mutations whose result union has CycleError. */
const CAN_CYCLE = new Set(['createGraph', 'importGraph', 'addEdge', 'checkGraph']);

/** Errors in an input object name its fields directly ("name", "inputs.0.type"), as bad-input.test.ts shows. */
const VERTEX_FIELDS = ['name', 'script', 'timeoutSeconds', 'inputs'];
const GRAPH_FIELDS = ['name', 'desc'];

function mutation(name: string, args: Record<string, string>, success: string, inputFields: string[] = []): Mutation {
  const variables = Object.entries(args).map(([arg, type]) => `$${arg}: ${type}`);
  const passed = Object.keys(args).map((arg) => `${arg}: $${arg}`);
  return {
    name,
    args: [...Object.keys(args), ...inputFields],
    success,
    document: `mutation Fuzz(${variables.join(', ')}) {
      ${name}(${passed.join(', ')}) {
        __typename
        ... on Error { field message }${CAN_CYCLE.has(name) ? '\n        ... on CycleError { path }' : ''}
      }
    }`,
  };
}

let calls = 0;
const outcomes = new Map<string, number>();

async function post(body: string | Uint8Array<ArrayBuffer>, headers: Record<string, string> = {}) {
  const response = await fetch(t.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', ...headers },
    body,
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, text, json: json as { data?: Record<string, any> | null; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> } | undefined };
}

async function expectHealthy(): Promise<void> {
  const response = await fetch(t.url.replace(/\/graphql$/, '/health'));
  expect(response.status).toBe(200);
  await response.text();
}

/** Client errors (GraphQL request errors with a 4xx status) that Yoga logs at error level. */
let clientErrorsLogged = 0;

/** The service logged no error but the request errors of bad clients (which it logs at error level, see the report). */
function expectNoServerErrors(context: string): void {
  const unexpected = serverErrors.splice(0).filter((line) => {
    const { err } = JSON.parse(line) as { err?: { type?: string; extensions?: { http?: { status?: number } } } };
    const clientError = err?.type === 'GraphQLError' && (err.extensions?.http?.status ?? 500) < 500;
    if (clientError) clientErrorsLogged++;
    return !clientError;
  });
  expect(unexpected, `the server logged errors after ${context}`).toEqual([]);
}

/** Sends one call and checks the answer; returns the mutation's result when accepted. */
async function call(m: Mutation, rawVariables: unknown, note = ''): Promise<Record<string, unknown> | undefined> {
  const variables = resolve(rawVariables);
  const context = `${m.name} ${note}${JSON.stringify(variables)?.slice(0, 600)}`;
  const before = lastDump ?? (await dump());
  const response = await post(JSON.stringify({ query: m.document, variables }));
  expect(response.status, context).toBeLessThan(500);
  expect(response.text, `leaks internals: ${context}`).not.toMatch(LEAK);
  expect(response.json, `not JSON: ${response.text.slice(0, 300)} for ${context}`).toBeTypeOf('object');
  const after = await dump();
  lastDump = after;
  calls++;
  let rejected: boolean;
  let accepted: Record<string, unknown> | undefined;
  if (response.json!.errors?.length) {
    // A request error (variable coercion, validation): never an unexpected one.
    for (const error of response.json!.errors) {
      expect(error.message, `masked unexpected error: ${context}`).not.toMatch(/Unexpected error/i);
      expect(error.extensions?.stack, context).toBeUndefined();
    }
    expect(response.json!.data ?? null, context).toBeNull();
    rejected = true;
    outcomes.set(`${m.name}: request error`, (outcomes.get(`${m.name}: request error`) ?? 0) + 1);
  } else {
    expect(response.status, context).toBe(200);
    const result = response.json!.data?.[m.name] as { __typename: string; field?: string; message?: string } | undefined;
    expect(result, context).toBeTypeOf('object');
    if (ERROR_TYPES.has(result!.__typename)) {
      expect(result!.field, context).toMatch(/\S/);
      expect(result!.message, context).toMatch(/\w/);
      const first = result!.field!.split('.')[0]!;
      expect(result!.__typename === 'CycleError' ? [...m.args, 'edges'] : m.args, `field ${result!.field} of ${result!.__typename} is no argument: ${context}`).toContain(first);
      rejected = true;
      outcomes.set(`${m.name}: ${result!.__typename}`, (outcomes.get(`${m.name}: ${result!.__typename}`) ?? 0) + 1);
    } else {
      expect(result!.__typename, context).toBe(m.success);
      rejected = false;
      accepted = result as Record<string, unknown>;
      outcomes.set(`${m.name}: accepted`, (outcomes.get(`${m.name}: accepted`) ?? 0) + 1);
    }
  }
  if (rejected) expect(after, `a rejected call changed the database: ${context}`).toEqual(before);
  expectNoServerErrors(context);
  if (calls % 10 === 0) await expectHealthy();
  return accepted;
}

// ---------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------

/** Values that are not of the declared GraphQL type (wrong types through raw JSON variables). */
const wrongType = fc.oneof(
  fc.constantFrom(2 ** 31, -(2 ** 31) - 1, 2 ** 53, 1e308, -0.5, 1.5, true, false, null, [], {}, '1', ' 1', '0x10', 'NaN', [1], { id: 1 }),
  fc.jsonValue({ maxDepth: 2 }),
  hostileString,
);

/** Strings just over the documented limits, and far over them. */
const hugeString = fc
  .tuple(fc.constantFrom(49, 101, 501, 64 * 1024 + 1, 100_000), fc.constantFrom('x', 'é', '🙂', "'", '\u202e', ' '))
  .map(([n, c]) => c.repeat(n));

/** Mostly `arbitrary`, sometimes a value of the wrong type: one wrong field per call is enough to be refused early. */
const orWrong = <T>(arbitrary: fc.Arbitrary<T>) => fc.oneof({ weight: 8, arbitrary }, { weight: 1, arbitrary: wrongType });

/** Text for fields nested in input objects (where a wrong type would refuse the whole call before any resolver). */
const someText = fc.oneof({ weight: 6, arbitrary: hostileString }, { weight: 1, arbitrary: hugeString });
/** Text for arguments: sometimes of the wrong type. */
const someString = fc.oneof({ weight: 7, arbitrary: someText }, { weight: 1, arbitrary: wrongType });

const ref = (...names: string[]) => fc.constantFrom(...names).map((n) => new Ref(n));

/** Mostly a fixture's id; else any Int, an extreme one, or not an Int at all. */
const id = (...names: string[]) =>
  fc.oneof(
    { weight: 6, arbitrary: ref(...names) },
    { weight: 2, arbitrary: fc.oneof(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.constantFrom(0, -1, 2 ** 31 - 1, -(2 ** 31), 424242)) },
    { weight: 1, arbitrary: wrongType },
  );

const ANY_ID = ['graph.open', 'graph.sealed', 'vertex.A', 'vertex.B', 'vertex.C', 'vertex.ask', 'vertex.after', 'edge.open', 'edge.sealed', 'pipeline.running', 'pipeline.cancelled', 'track.waiting', 'track.after', 'track.cancelled'];

/** Graph names: existing ones (duplicates), hostile ones, huge ones. */
const graphName = fc.oneof({ weight: 2, arbitrary: ref('name.open', 'name.sealed') }, { weight: 6, arbitrary: someString });

/** Parameter values: shell-injection strings in every type's slot, numbers, booleans, nulls, structures. */
const paramValue = fc.oneof(
  { weight: 4, arbitrary: hostileString },
  { weight: 1, arbitrary: hugeString },
  { weight: 2, arbitrary: fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constantFrom(2 ** 53, -0, 1e308, '1e3', '0x10', '::1', '127.0.0.1; id', 'true && id')) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
);
const paramName = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...PARAM_NAMES) }, { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'HOST', '1x', 'a b', '$(id)') }, { weight: 1, arbitrary: hostileString });
const params = fc.oneof({ weight: 6, arbitrary: fc.dictionary(paramName, paramValue, { maxKeys: 5 }) }, { weight: 1, arbitrary: wrongType });

const PARAM_TYPE_NAMES = ['STRING', 'INTEGER', 'NUMBER', 'BOOLEAN', 'IP'];
const inputParam = fc.record(
  {
    name: fc.oneof(fc.constantFrom('p', 'q', 'host', 'P', '__proto__', 'constructor', 'x'.repeat(49)), hostileString),
    type: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...PARAM_TYPE_NAMES) }, { weight: 1, arbitrary: fc.constantFrom('str', 'string', 'FLOAT', 5, null) }),
    default: paramValue,
    choices: orWrong(fc.array(paramValue.filter((v) => v !== null), { maxLength: 3 })),
    pattern: fc.oneof(fc.constantFrom('[a-z]+', '(', '\\', '.*', '(?<n>a)', '\\p{L}+', 'a{2,}'), hostileString),
    required: orWrong(fc.boolean()),
    secret: orWrong(fc.boolean()),
    description: someText,
  },
  { requiredKeys: ['name', 'type'] },
);

/** A script with placeholders inside and outside quotes, heredocs and comments. */
const script = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('true', 'echo {p}', "echo '{p}'", 'echo "{p}"', 'cat <<EOF\n{p}\nEOF', '# {p}', 'echo {q} ${HOME} $(id)', "awk '{print $1}'", 'printf %s {p}') },
  { weight: 3, arbitrary: someText },
);

const VERTEX_NAMES = ['A', 'B', 'C', 'a', 'b', 'ask'];
const vertexInput = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record(
      {
        name: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...VERTEX_NAMES) }, { weight: 2, arbitrary: someText }),
        script,
        timeoutSeconds: orWrong(fc.oneof(fc.integer({ min: -5, max: 8 * 24 * 3600 }), fc.constantFrom(0, 1, 604800, 604801, 2 ** 31 - 1))),
        inputs: orWrong(fc.array(inputParam, { maxLength: 3 })),
      },
      { requiredKeys: [] },
    ),
  },
  { weight: 1, arbitrary: wrongType },
);
const edgeByName = fc.oneof(
  { weight: 8, arbitrary: fc.record({ tail: fc.oneof(fc.constantFrom(...VERTEX_NAMES), hostileString), head: fc.oneof(fc.constantFrom(...VERTEX_NAMES), hostileString) }) },
  { weight: 1, arbitrary: wrongType },
);

/** Definitions: near-valid ones (cycles, self-loops, bad fields) as YAML or JSON, and broken text. */
const definitionObject = fc.record(
  {
    name: fc.oneof(fc.constantFrom('imported', 'sealed'), someString),
    desc: someString,
    vertices: fc.oneof(
      fc.array(
        fc.record(
          {
            name: fc.oneof(fc.constantFrom('a', 'b', 'c'), someString),
            script,
            timeoutSeconds: fc.oneof(fc.integer({ min: -2, max: 700_000 }), wrongType),
            inputs: fc.oneof(fc.dictionary(fc.oneof(fc.constantFrom('p', 'q'), hostileString), fc.oneof(fc.record({ type: fc.constantFrom('str', 'int', 'ip', 'bool', 'float', 'nope'), default: paramValue }, { requiredKeys: ['type'] }), wrongType), { maxKeys: 3 }), wrongType),
          },
          { requiredKeys: ['name'] },
        ),
        { maxLength: 4 },
      ),
      wrongType,
    ),
    edges: fc.oneof(fc.array(fc.record({ tail: fc.constantFrom('a', 'b', 'c', 'z'), head: fc.constantFrom('a', 'b', 'c', 'z') }), { maxLength: 5 }), wrongType),
  },
  { requiredKeys: [] },
);
const BROKEN_DEFINITIONS = [
  'name: [x\n',
  'name: a\n\tvertices: []\n',
  'a: &a [*a, *a]\nname: loop\n',
  'a: &a ["lol","lol"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nname: laughs\n',
  'name: *unknown\n',
  'name: !!js/function "function(){}"\n',
  'name: !!binary AAAA\n',
  '--- !<tag:yaml.org,2002:python/object/apply:os.system> ["id"]\n',
  `${'['.repeat(5000)}${']'.repeat(5000)}`,
  `${'- '.repeat(3000)}x\n`,
  '{"name": "x", "vertices": [',
  '{"name": "x", "name": "y"}',
  '{"__proto__": {"polluted": true}, "name": "proto"}',
  'null',
  '[]',
  '42',
  '"just a string"',
  '',
  '\u0000',
  '\ufeffname: bom\n',
  'name: x\nvertices:\n  - name: a\n    inputs: {p: {type: str, default: !!float .nan}}\n',
  'name: x\nvertices: [{name: a, timeoutSeconds: 1e400}]\n',
];
const definition = fc.oneof(
  { weight: 3, arbitrary: definitionObject.map((d) => toYaml(d)) },
  { weight: 2, arbitrary: definitionObject.map((d) => JSON.stringify(d)) },
  { weight: 2, arbitrary: fc.constantFrom(...BROKEN_DEFINITIONS) },
  { weight: 1, arbitrary: someString },
);
const format = fc.oneof(fc.constantFrom('YAML', 'JSON', null), fc.constantFrom('XML', 'yaml', 5));

/** The record of variables; keys may be missing (a required one missing is a request error). */
const vars = (model: Record<string, fc.Arbitrary<unknown>>, requiredKeys: string[] = Object.keys(model)): fc.Arbitrary<unknown> =>
  fc.oneof({ weight: 9, arbitrary: fc.record(model, { requiredKeys }) }, { weight: 1, arbitrary: fc.record(model, { requiredKeys: [] }) });

// ---------------------------------------------------------------------------------------
// The mutations of schema.graphql and their hostile arguments
// ---------------------------------------------------------------------------------------

const MUTATIONS: Array<[Mutation, fc.Arbitrary<unknown>]> = [
  [
    mutation('createGraph', { name: 'String!', desc: 'String', vertices: '[VertexInput!]', edges: '[EdgeByName!]' }, 'Graph'),
    vars({ name: graphName, desc: someString, vertices: orWrong(fc.array(vertexInput, { maxLength: 4 })), edges: orWrong(fc.array(edgeByName, { maxLength: 5 })) }, ['name']),
  ],
  [mutation('importGraph', { definition: 'String!', format: 'DefinitionFormat', name: 'String' }, 'Graph'), vars({ definition, format, name: graphName }, ['definition'])],
  [mutation('updateGraph', { id: 'Int!', input: 'GraphInput!' }, 'Graph', GRAPH_FIELDS), vars({ id: id('graph.open', 'graph.sealed'), input: orWrong(fc.record({ name: fc.oneof({ weight: 1, arbitrary: ref('name.open', 'name.sealed') }, { weight: 3, arbitrary: someText }), desc: someText }, { requiredKeys: [] })) })],
  [mutation('deleteGraph', { id: 'Int!' }, 'Deleted'), vars({ id: id('graph.sealed', 'graph.open', 'vertex.A') })],
  [mutation('cloneGraph', { id: 'Int!', name: 'String' }, 'Graph'), vars({ id: id('graph.sealed', 'graph.open'), name: graphName }, ['id'])],
  [mutation('addVertex', { graphId: 'Int!', input: 'VertexInput!' }, 'Vertex', VERTEX_FIELDS), vars({ graphId: id('graph.open', 'graph.sealed'), input: vertexInput })],
  [mutation('updateVertex', { id: 'Int!', input: 'VertexInput!' }, 'Vertex', VERTEX_FIELDS), vars({ id: id('vertex.A', 'vertex.B', 'vertex.ask'), input: vertexInput })],
  [mutation('deleteVertex', { id: 'Int!' }, 'Deleted'), vars({ id: id('vertex.C', 'vertex.ask', 'vertex.after', 'graph.open') })],
  [
    mutation('addEdge', { tailId: 'Int!', headId: 'Int!' }, 'Edge'),
    // Cycles (C -> A, B -> A), self-loops, duplicates (A -> B), cross-graph and sealed edges.
    vars({ tailId: id('vertex.A', 'vertex.B', 'vertex.C', 'vertex.after'), headId: id('vertex.A', 'vertex.B', 'vertex.C', 'vertex.ask') }),
  ],
  [mutation('deleteEdge', { id: 'Int!' }, 'Deleted'), vars({ id: id('edge.sealed', 'edge.open', 'vertex.A') })],
  [mutation('checkGraph', { id: 'Int!' }, 'Graph'), vars({ id: id('graph.open', 'graph.sealed') })],
  [
    mutation('startPipeline', { graphId: 'Int!', name: 'String', desc: 'String', inputs: '[VertexParams!]' }, 'Pipeline'),
    vars(
      {
        graphId: id('graph.sealed', 'graph.open'),
        name: someString,
        desc: someString,
        inputs: orWrong(fc.array(orWrong(fc.record({ vertex: fc.oneof(fc.constantFrom('ask', 'after', 'A'), hostileString), params }, { requiredKeys: [] })), { maxLength: 3 })),
      },
      ['graphId'],
    ),
  ],
  [mutation('finishInput', { trackId: 'Int!', params: 'JSON!' }, 'Track'), vars({ trackId: id('track.waiting', 'track.after', 'track.cancelled', 'pipeline.running'), params })],
  [mutation('cancelPipeline', { id: 'Int!' }, 'Pipeline'), vars({ id: id('pipeline.cancelled', 'pipeline.running', 'track.waiting') })],
  [mutation('retryPipeline', { id: 'Int!' }, 'Pipeline'), vars({ id: id('pipeline.running', 'pipeline.cancelled', 'track.cancelled') })],
  // Last: once it deleted the cancelled pipeline, that fixture is gone.
  [mutation('deletePipeline', { id: 'Int!' }, 'Deleted'), vars({ id: id('pipeline.running', 'pipeline.cancelled', 'track.waiting') })],
];

// ---------------------------------------------------------------------------------------
// The fuzzed service
// ---------------------------------------------------------------------------------------

describe('fuzzed mutations through the HTTP API', () => {
  beforeAll(async () => {
    const logger = pino({ level: 'error' }, { write: (line: string) => void serverErrors.push(line) });
    t = await startTestApp({ env: ENV, logger });
    // Only the calls may change the database: nothing is dispatched.
    await t.app.executor!.stop();
    await seedFixtures();
    lastDump = undefined;
  });
  // A test that failed leaves its call's log lines: they must not fail the next one too.
  beforeEach(() => {
    serverErrors.splice(0);
  });
  afterAll(async () => {
    console.log(`fuzz: ${calls} calls, ${clientErrorsLogged} client errors logged at error level; outcomes:\n  ${[...outcomes].sort().map(([k, n]) => `${k} ${n}`).join('\n  ')}`);
    await t?.stop();
  });

  it.each(MUTATIONS.map(([m, arbitrary]) => [m.name, m, arbitrary] as const))('%s: never a 5xx, a leak or an unexpected error; a rejection changes nothing', async (_name, m, arbitrary) => {
    await fc.assert(
      fc.asyncProperty(arbitrary, async (variables) => {
        await openGraph();
        await call(m, variables);
      }),
      fcParams(),
    );
    await expectHealthy();
  });

  it('a graph definition over 4 MiB, a 1 MB name and a 1 MB parameter value are refused, naming the field', async () => {
    const importGraph = MUTATIONS.find(([m]) => m.name === 'importGraph')![0];
    const big = await call(importGraph, { definition: `name: big\ndesc: ${'x'.repeat(4 * 1024 * 1024)}\n` });
    expect(big).toBeUndefined();
    const createGraph = MUTATIONS.find(([m]) => m.name === 'createGraph')![0];
    expect(await call(createGraph, { name: 'n'.repeat(1_000_000) })).toBeUndefined();
    const finishInput = MUTATIONS.find(([m]) => m.name === 'finishInput')![0];
    expect(await call(finishInput, { trackId: new Ref('track.waiting'), params: { host: 'a'.repeat(1_000_000) } })).toBeUndefined();
  });

  // KNOWN BUG, reported: a value literal nested about 2,000 deep (a list: 4,000 tokens, under
  // MAX_TOKENS) overflows the stack of graphql-js's recursive parser before the token limit
  // is reached; the RangeError is masked as "Unexpected error." and logged. It should be a
  // request error (e.g. a nesting limit checked before parsing). Once fixed, this test
  // fails: make it a plain it().
  it('a value literal nested 2,000 deep is a request error, not an unexpected one', async () => {
    for (const literal of [`${'['.repeat(2000)}1${']'.repeat(2000)}`, `${'{a:'.repeat(3000)}1${'}'.repeat(3000)}`]) {
      const response = await post(JSON.stringify({ query: `mutation { finishInput(trackId: ${refs.get('track.waiting')}, params: ${literal}) { __typename } }` }));
      expect(response.status).toBeLessThan(500);
      expect(response.text).not.toMatch(/Unexpected error/i);
      expect(response.text).toContain('NESTED_TOO_DEEPLY');
    }
  });

  it('malformed requests: broken JSON, wrong variable shapes, deep nesting, batches, wrong methods', async () => {
    const deepObject = `${'{a:'.repeat(300)}1${'}'.repeat(300)}`;
    const finishDoc = (literal: string) => JSON.stringify({ query: `mutation { finishInput(trackId: ${refs.get('track.waiting')}, params: ${literal}) { __typename } }` });
    const deepVariables = `{"query":"mutation($p: JSON!) { finishInput(trackId: ${refs.get('track.waiting')}, params: $p) { __typename } }","variables":{"p":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}}`;
    const bodies: Array<string | Uint8Array<ArrayBuffer>> = [
      '{"query":',
      '{"query": "mutation { checkGraph(id: 1) { __typename } }", "variables": "not an object"}',
      '{"query": "mutation ($id: Int!) { checkGraph(id: $id) { __typename } }", "variables": [1]}',
      '{"query": 5}',
      '{"variables": {}}',
      '{"query": "mutation { checkGraph(id: 1) { __typename } }", "operationName": "nope"}',
      '{"query": "mutation { checkGraph(id: 1) { __typename } } mutation { checkGraph(id: 2) { __typename } }"}',
      '[{"query": "mutation { checkGraph(id: 1) { __typename } }"}, {"query": "mutation { deleteGraph(id: 1) { __typename } }"}]',
      '{"query": "mutation { checkGraph(id: 1) { __typename ...F } } fragment F on Graph { ...F }"}',
      '{"query": "mutation { createGraph(name: \\"\\\\ud800 \\\\u202e\\") { __typename ... on Error { field } } }"}',
      finishDoc(`${'['.repeat(500)}1${']'.repeat(500)}`),
      finishDoc(deepObject),
      finishDoc('{a: }'),
      finishDoc('"\\u0000"'),
      finishDoc('{host: "$(id)", host: "`id`"}'),
      deepVariables,
      new Uint8Array([0x7b, 0x22, 0x71, 0x75, 0x65, 0x72, 0x79, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc3, 0x28, 0x22, 0x7d]),
      `{"query": "${'mutation { checkGraph(id: 1) { __typename } }'.padEnd(200_000, ' ')}"}`,
      `{"query": "mutation { ${Array.from({ length: 500 }, (_, i) => `a${i}: checkGraph(id: ${i}) { __typename }`).join(' ')} }"}`,
    ];
    for (const body of bodies) {
      const before = await dump();
      const response = await post(body);
      const what = String(body).slice(0, 200);
      expect(response.status, what).toBeLessThan(500);
      expect(response.text, what).not.toMatch(LEAK);
      expect(response.text, what).not.toMatch(/Unexpected error/i);
      // Refused as a whole (no data): nothing changed.
      if (!response.json?.data || Object.values(response.json.data).every((v) => v === null)) expect(await dump(), what).toEqual(before);
    }
    const before = await dump();
    for (const [method, body] of [
      ['GET', undefined],
      ['PUT', '{"query": "mutation { deleteGraph(id: 1) { __typename } }"}'],
      ['DELETE', undefined],
    ] as const) {
      const response = await fetch(`${t.url}?query=${encodeURIComponent('mutation { deleteGraph(id: 1) { __typename } }')}`, { method, body, headers: { 'content-type': 'application/json' } });
      expect(response.status).toBeLessThan(500);
      expect(await response.text()).not.toMatch(LEAK);
    }
    for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16']) {
      const response = await post('{"query": "mutation { deleteGraph(id: 1) { __typename } }"}', { 'content-type': contentType });
      expect(response.status, contentType).toBeLessThan(500);
      expect(response.text).not.toMatch(LEAK);
    }
    expect(await dump()).toEqual(before);
    lastDump = undefined;
    expectNoServerErrors('malformed requests');
    await expectHealthy();
  });
});

// ---------------------------------------------------------------------------------------
// Injection payloads that actually run
// ---------------------------------------------------------------------------------------

describe('injection payloads run as data', () => {
  let r: TestApp;
  let graphId: number;
  beforeAll(async () => {
    r = await startTestApp({ env: ENV });
    ({ graphId } = await seedGraph(r, {
      name: 'echo',
      vertices: { echo: { script: "printf '%s\\n' {p}\nprintf '%s\\n' \"$INPUT_P\"", inputs: [{ name: 'p', type: 'STRING', required: true }] } },
    }));
  });
  afterAll(() => r?.stop());

  /** Every file under `dir`, recursively. */
  function files(dir: string): string[] {
    if (!existsSync(dir)) return [];
    return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : [path.join(dir, e.name)]));
  }

  it('prints each payload literally, twice (placeholder and INPUT_P), and creates no file', async () => {
    const marker = (dir: string) => path.join(dir, 'pwned');
    const payloads = [
      ...HOSTILE_STRINGS.filter((s) => !s.includes('\u0000') && !/[\ud800-\udfff]/.test(s.replace(/\ud83d\ude42/g, ''))),
      `$(touch ${marker(r.dir)})`,
      `\`touch ${marker(r.dir)}\``,
      `'; touch ${marker(r.dir)}; '`,
      `"; touch ${marker(r.dir)}; "`,
      `\ntouch ${marker(r.dir)}\n`,
      `x && touch ${marker(r.dir)} || touch ${marker(r.dir)}`,
      `$IFS;touch$IFS${marker(r.dir)}`,
      '\u202etxt.exe\u202c مرحبا שלום',
      ...fc.sample(fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }), { seed, numRuns: 4 }).filter((s) => !s.includes('\u0000')),
    ];
    // All started at once, then awaited: four workers run them.
    const started = await Promise.all(
      payloads.map(async (payload) => {
        const result = await r.request(StartPipeline, { graphId, inputs: [{ vertex: 'echo', params: { p: payload } }] });
        if (result.startPipeline.__typename !== 'Pipeline') throw new Error(`${JSON.stringify(payload)}: ${JSON.stringify(result)}`);
        return { payload, pipelineId: result.startPipeline.id };
      }),
    );
    for (const { payload, pipelineId } of started) {
      const pipeline = await eventually(
        async () => {
          const { pipeline } = await r.request(PipelineDetail, { id: pipelineId });
          return pipeline && pipeline.state !== 'RUNNING' ? pipeline : undefined;
        },
        20_000,
        `pipeline of ${JSON.stringify(payload)}`,
      );
      expect(pipeline.state, JSON.stringify(payload)).toBe('FINISH');
      // Exactly as printed, but that stored output ends lines with \n (a \r before it is dropped).
      const printed = `${payload}\n${payload}\n`.replace(/\r\n/g, '\n');
      expect(pipeline.tracks[0]!.output.text, JSON.stringify(payload)).toBe(printed);
    }
    expect(files(r.dir).filter((f) => f.includes('pwned'))).toEqual([]);
    expect(existsSync(marker(r.dir))).toBe(false);
    expect(existsSync(path.resolve('pwned'))).toBe(false);
  });

  it('refuses values a script cannot receive: NUL, and lone surrogates (not Unicode text)', async () => {
    const surrogate = fc.sample(loneSurrogate, { seed, numRuns: 1 })[0]!;
    for (const payload of ['\u0000', 'x\u0000y', surrogate, `a${surrogate}b`, '\ud83d', '\ude42🙂']) {
      const result = await r.request(StartPipeline, { graphId, inputs: [{ vertex: 'echo', params: { p: payload } }] });
      expect(result.startPipeline, JSON.stringify(payload)).toMatchObject({ __typename: 'ValidationError', field: 'inputs.0.params.p' });
    }
  });
});
