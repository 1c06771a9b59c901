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

const ImportWithSchedules = graphql(`
  mutation ImportWithSchedules($definition: String!, $name: String, $updateSchedules: Boolean) {
    importGraph(definition: $definition, name: $name, updateSchedules: $updateSchedules) {
      __typename
      ... on Graph { id definition vertices { id } schedules { id name cron timeZone overlap misfireGraceSeconds paused inputs } }
      ... on Error { message field }
    }
  }
`);

const scheduled = (schedules: string) =>
  [
    'name: scheduled export',
    'vertices:',
    '  - name: dump',
    '    script: echo {db} {password}',
    '    inputs:',
    '      db: {type: str, required: true}',
    '      password: {type: str, secret: true, default: none}',
    schedules,
  ].join('\n');

const twoSchedules = `schedules:
  - name: nightly
    cron: 30 2 * * *
    timeZone: Europe/Berlin
    inputs: [{vertex: dump, params: {db: main, password: hunter2}}]
  - name: hourly
    cron: "@hourly"
    inputs: [{vertex: dump, params: {db: replica}}]
    overlap: ALLOW
    misfireGraceSeconds: 60
    paused: true
`;

it("a graph's schedules travel with its definition (secret values as ***) and import back as they were", async () => {
  const imported = await t.request(ImportWithSchedules, { definition: scheduled(twoSchedules) });
  if (imported.importGraph.__typename !== 'Graph') throw new Error(JSON.stringify(imported));
  const printed = imported.importGraph.definition;
  expect(printed).toContain(
    [
      'schedules:',
      '  - name: hourly',
      '    cron: "@hourly"',
      '    timeZone: UTC',
      '    inputs:',
      '      - vertex: dump',
      '        params:',
      '          db: replica',
      '    overlap: ALLOW',
      '    misfireGraceSeconds: 60',
      '    paused: true',
      '  - name: nightly',
      '    cron: 30 2 * * *',
      '    timeZone: Europe/Berlin',
      '    inputs:',
      '      - vertex: dump',
      '        params:',
      '          db: main',
      '          password: "***"',
      '',
    ].join('\n'),
  );
  expect(printed).not.toContain('hunter2');
  // The masked secret cannot be imported as a new schedule's value...
  const copy = await t.request(ImportWithSchedules, { definition: printed, name: 'scheduled export copy' });
  expect(copy.importGraph).toMatchObject({ __typename: 'ValidationError', field: 'definition.schedules.1.inputs.0.params.password' });
  expect(await t.app.store.db.graph.count({ where: { name: 'scheduled export copy' } })).toBe(0);
  // ...but with the real value it round-trips.
  const again = await t.request(ImportWithSchedules, { definition: printed.replace('"***"', 'hunter2'), name: 'scheduled export copy' });
  if (again.importGraph.__typename !== 'Graph') throw new Error(JSON.stringify(again));
  expect(again.importGraph.definition).toBe(printed.replace('name: scheduled export', 'name: scheduled export copy'));
});

it('importGraph(updateSchedules) makes an existing graph\'s schedules match its definition and changes nothing else', async () => {
  const definition = scheduled(twoSchedules).replace('name: scheduled export', 'name: kept graph');
  const first = await t.request(ImportWithSchedules, { definition });
  if (first.importGraph.__typename !== 'Graph') throw new Error(JSON.stringify(first));
  const nightly = first.importGraph.schedules.find((s) => s.name === 'nightly')!;
  // nightly changes time (its secret kept as ***), hourly goes, weekly comes.
  const next = scheduled(`schedules:
  - name: nightly
    cron: 0 3 * * *
    timeZone: Europe/Berlin
    inputs: [{vertex: dump, params: {db: main, password: "***"}}]
  - name: weekly
    cron: "@weekly"
    inputs: [{vertex: dump, params: {db: archive}}]
`).replace('name: scheduled export', 'name: kept graph');
  const updated = await t.request(ImportWithSchedules, { definition: next, updateSchedules: true });
  if (updated.importGraph.__typename !== 'Graph') throw new Error(JSON.stringify(updated));
  expect(updated.importGraph.id).toBe(first.importGraph.id);
  expect(updated.importGraph.vertices).toEqual(first.importGraph.vertices);
  expect(updated.importGraph.schedules.map((s) => [s.name, s.cron])).toEqual([
    ['nightly', '0 3 * * *'],
    ['weekly', '@weekly'],
  ]);
  expect(updated.importGraph.schedules[0]!.id).toBe(nightly.id);
  const stored = await t.app.store.db.schedule.findUniqueOrThrow({ where: { id: nightly.id } });
  expect(JSON.parse(stored.inputs)).toEqual([{ vertex: 'dump', params: { db: 'main', password: 'hunter2' } }]);
  // Applied once more: nothing to change.
  const same = await t.request(ImportWithSchedules, { definition: next, updateSchedules: true });
  expect(same.importGraph).toMatchObject({ __typename: 'Graph', id: first.importGraph.id });

  // Another graph under the same name, or no schedules key: refused as ever, nothing changed.
  for (const refused of [next.replace('echo {db}', 'echo db={db}'), next.slice(0, next.indexOf('schedules:'))]) {
    const result = await t.request(ImportWithSchedules, { definition: refused, updateSchedules: true });
    expect(result.importGraph).toMatchObject({ __typename: 'ConflictError', field: 'name' });
  }
  const different = await t.request(ImportWithSchedules, { definition: next.replace('echo {db}', 'echo db={db}'), updateSchedules: true });
  if (different.importGraph.__typename === 'ConflictError') expect(different.importGraph.message).toMatch(/not the same graph: vertex "dump" has another script/);
  expect((await t.app.store.db.schedule.findMany({ where: { graphId: first.importGraph.id } })).map((s) => s.name)).toEqual(['nightly', 'weekly']);
});

it.each([
  ['a bad cron expression', 'schedules:\n  - {name: s, cron: "61 * * * *", inputs: [{vertex: dump, params: {db: x}}]}\n', 'definition.schedules.0.cron'],
  ['an unknown time zone', 'schedules:\n  - {name: s, cron: "@daily", timeZone: Mars, inputs: [{vertex: dump, params: {db: x}}]}\n', 'definition.schedules.0.timeZone'],
  ['a required input left out', 'schedules:\n  - {name: s, cron: "@daily"}\n', 'definition.schedules.0.inputs'],
  ['a name given twice', 'schedules:\n  - {name: s, cron: "@daily", inputs: [{vertex: dump, params: {db: x}}]}\n  - {name: s, cron: "@hourly", inputs: [{vertex: dump, params: {db: x}}]}\n', 'schedules.1.name'],
  ['a schedule without cron', 'schedules:\n  - {name: s}\n', 'definition.schedules.0.cron'],
])('importGraph refuses a definition with %s and creates nothing', async (_what, schedules, field) => {
  const before = await t.app.store.db.graph.count();
  const result = await t.request(ImportWithSchedules, { definition: scheduled(schedules).replace('name: scheduled export', 'name: refused schedules') });
  expect(result.importGraph).toMatchObject({ field });
  expect(await t.app.store.db.graph.count()).toBe(before);
  expect(await t.app.store.db.schedule.count({ where: { graph: { name: 'refused schedules' } } })).toBe(0);
});
