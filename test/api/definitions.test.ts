/** Graph definitions as files through the API: export, import, and bad files refused. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadWebServerCheck } from '../../examples/web-server-check.ts';
import { graphql } from '../../src/generated/gql/index.ts';
import { startTestApp, type TestApp } from '../helpers/test-app.ts';
import { CheckGraph } from '../helpers/operations.ts';

const ExportDefinition = graphql(`
  query ExportDefinition($id: Int!, $format: DefinitionFormat) {
    graph(id: $id) { definition(format: $format) }
  }
`);

const ImportGraph = graphql(`
  mutation ImportGraph($definition: String!, $format: DefinitionFormat, $name: String) {
    importGraph(definition: $definition, format: $format, name: $name) {
      __typename
      ... on Graph { id name definition }
      ... on CycleError { path }
      ... on Error { message field }
    }
  }
`);

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t?.stop());

it.each(['YAML', 'JSON'] as const)('a graph exported as %s imports as the same graph', async (format) => {
  const graphId = await loadWebServerCheck(t.url).catch(async () => (await t.app.store.db.graph.findFirstOrThrow({ where: { name: 'web server check' } })).id);
  const { graph } = await t.request(ExportDefinition, { id: graphId, format });
  const imported = await t.request(ImportGraph, { definition: graph!.definition, format, name: `copy as ${format}` });
  if (imported.importGraph.__typename !== 'Graph') throw new Error(JSON.stringify(imported));
  // The same definition, but for the name.
  const original = (await t.request(ExportDefinition, { id: graphId })).graph!.definition;
  expect(imported.importGraph.definition).toBe(original.replace('name: web server check', `name: copy as ${format}`));
  expect((await t.request(CheckGraph, { id: imported.importGraph.id })).checkGraph).toMatchObject({ checked: true });
});

it.each([
  ['broken YAML', 'name: [x\n', 'ValidationError', 'definition'],
  ['a vertex without a name', 'name: a\nvertices:\n  - script: "true"\n', 'ValidationError', 'definition.vertices.0.name'],
  ['an edge to an unknown vertex', 'name: b\nvertices:\n  - name: x\nedges:\n  - {tail: x, head: y}\n', 'ValidationError', 'definition.edges.0.head'],
  ['a bad input type', 'name: c\nvertices:\n  - name: x\n    inputs: {ip: {type: address}}\n', 'ValidationError', 'definition.vertices.0.inputs.ip.type'],
  ['a cycle', 'name: d\nvertices: [{name: x}, {name: y}]\nedges: [{tail: x, head: y}, {tail: y, head: x}]\n', 'CycleError', 'edges'],
  ['too many retries', 'name: e\nvertices:\n  - {name: x}\n  - {name: y, retries: 11}\n', 'ValidationError', 'definition.vertices.1.retries'],
  ['a backoff below 1', 'name: f\nvertices:\n  - {name: x, retries: 2, retryBackoff: 0.5}\n', 'ValidationError', 'definition.vertices.0.retryBackoff'],
])('importGraph refuses %s and creates nothing', async (_what, definition, typename, field) => {
  const before = await t.app.store.db.graph.count();
  const result = await t.request(ImportGraph, { definition });
  expect(result.importGraph).toMatchObject({ __typename: typename, field });
  expect(await t.app.store.db.graph.count()).toBe(before);
});

it("a vertex's retries travel with its definition; only the ones that are not the default are written", async () => {
  const definition = [
    'name: nightly with retries',
    'vertices:',
    '  - name: fetch',
    '    script: curl -fsS localhost',
    '    retries: 3',
    '    retryDelaySeconds: 30',
    '    retryBackoff: 1.5',
    '  - name: once',
    '    script: "true"',
    '    retries: 1',
    '  - name: plain',
    '    script: "true"',
    '',
  ].join('\n');
  const imported = await t.request(ImportGraph, { definition });
  if (imported.importGraph.__typename !== 'Graph') throw new Error(JSON.stringify(imported));
  const vertices = await t.app.store.db.vertex.findMany({ where: { graphId: imported.importGraph.id }, orderBy: { id: 'asc' } });
  expect(vertices.map((v) => [v.name, v.retries, v.retryDelaySeconds, v.retryBackoff])).toEqual([
    ['fetch', 3, 30, 1.5],
    ['once', 1, 10, 2],
    ['plain', 0, 10, 2],
  ]);
  const printed = imported.importGraph.definition;
  expect(printed).toContain('    timeoutSeconds: 3600\n    retries: 3\n    retryDelaySeconds: 30\n    retryBackoff: 1.5\n');
  expect(printed).toContain('  - name: once\n    script: "true"\n    timeoutSeconds: 3600\n    retries: 1\n    inputs: {}\n');
  expect(printed.match(/retries:/g)).toHaveLength(2);
  const again = await t.request(ImportGraph, { definition: printed, name: 'nightly with retries again' });
  if (again.importGraph.__typename !== 'Graph') throw new Error(JSON.stringify(again));
  expect(again.importGraph.definition).toBe(printed.replace('name: nightly with retries', 'name: nightly with retries again'));
});
