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
])('importGraph refuses %s and creates nothing', async (_what, definition, typename, field) => {
  const before = await t.app.store.db.graph.count();
  const result = await t.request(ImportGraph, { definition });
  expect(result.importGraph).toMatchObject({ __typename: typename, field });
  expect(await t.app.store.db.graph.count()).toBe(before);
});
