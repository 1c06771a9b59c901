/** Relation fields cause no N+1: the statement count does not grow with the number of tracks. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/test-app.ts';
import { eventually, seedGraph } from '../helpers/seed.ts';
import { GraphDetail, PipelineDetail, PipelineTrackNames, StartPipeline } from '../helpers/operations.ts';
import { graphql } from '../../src/generated/gql/index.ts';

const Pictures = graphql(`
  query Pictures($id: Int!) {
    pipeline(id: $id) { mermaid dot graph { mermaid dot vertices { id } } }
  }
`);

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ countQueries: true });
});
afterAll(() => t?.stop());

async function finishedPipelineOf(size: number) {
  const vertices = Object.fromEntries(Array.from({ length: size }, (_, i) => [`v${i}`, { script: 'true' }]));
  const edges = Array.from({ length: size - 1 }, (_, i) => [`v${i}`, `v${i + 1}`] as [string, string]);
  const { graphId } = await seedGraph(t, { vertices, edges });
  const started = await t.request(StartPipeline, { graphId });
  if (started.startPipeline.__typename !== 'Pipeline') throw new Error();
  const id = started.startPipeline.id;
  await eventually(async () => ((await t.request(PipelineDetail, { id })).pipeline!.state === 'FINISH' ? true : undefined), 30_000);
  return { id, graphId };
}

async function statementsFor(run: () => Promise<unknown>) {
  const before = t.queries.length;
  await run();
  return t.queries.slice(before).filter((sql) => !/^(BEGIN|COMMIT|ROLLBACK)/i.test(sql.trim())).length;
}

describe('query count', () => {
  it('pipeline { tracks { vertex { name } } } costs the same at 3 and 40 tracks', async () => {
    const small = await finishedPipelineOf(3);
    const large = await finishedPipelineOf(40);
    // No background polling while counting.
    await t.app.executor!.stop();
    await t.app.scheduler!.stop();
    await t.app.deliverer!.stop();
    const smallCount = await statementsFor(() => t.request(PipelineTrackNames, { id: small.id }));
    const largeCount = await statementsFor(() => t.request(PipelineTrackNames, { id: large.id }));
    expect(smallCount).toBeGreaterThan(0);
    expect(largeCount).toBe(smallCount);
    const smallGraph = await statementsFor(() => t.request(GraphDetail, { id: small.graphId }));
    const largeGraph = await statementsFor(() => t.request(GraphDetail, { id: large.graphId }));
    expect(largeGraph).toBe(smallGraph);
    const smallPicture = await statementsFor(() => t.request(Pictures, { id: small.id }));
    const largePicture = await statementsFor(() => t.request(Pictures, { id: large.id }));
    expect(largePicture).toBe(smallPicture);
    const { pipeline } = await t.request(Pictures, { id: small.id });
    expect(pipeline!.mermaid.startsWith(`flowchart LR\n  v${pipeline!.graph.vertices[0]!.id}["v0<br/>SUCCEED"]`)).toBe(true);
    expect(pipeline!.mermaid).toContain('<br/>SUCCEED"]');
    expect(pipeline!.mermaid).toContain(`  v${pipeline!.graph.vertices[0]!.id} --> v${pipeline!.graph.vertices[1]!.id}`);
    expect(pipeline!.graph.mermaid).not.toContain('SUCCEED');
    expect(pipeline!.dot).toContain('fillcolor="#e8f5e9"');
    expect(pipeline!.graph.dot).toContain('digraph');
  });
});
