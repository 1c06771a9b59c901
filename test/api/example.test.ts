/** The README tour, as a test: load the example, start it, supply the input, watch it finish. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadWebServerCheck } from '../../examples/web-server-check.ts';
import { collect, startTestApp, type TestApp } from '../helpers/test-app.ts';
import { eventually } from '../helpers/seed.ts';
import { FinishInput, PipelineDetail, PipelineUpdated, StartPipeline } from '../helpers/operations.ts';
import { graphql } from '../../src/generated/gql/index.ts';

const ExampleOutputs = graphql(`
  query ExampleOutputs($id: Int!) {
    track(id: $id) { outputs { name value } }
  }
`);

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t?.stop());

it('the web server check checks this very server and waits for the operator', async () => {
  const graphId = await loadWebServerCheck(t.url);
  const port = Number(new URL(t.url).port);
  // Only port-open is told the port: health reads it from port-open's outputs.
  const started = await t.request(StartPipeline, { graphId, inputs: [{ vertex: 'port-open', params: { port } }] });
  if (started.startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(started));
  const pipelineId = started.startPipeline.id;
  const finished = collect(t.wsClient(), PipelineUpdated, { pipelineId, after: 0 }, (items) =>
    items.some((i) => i.pipelineUpdated.pipelineState !== 'RUNNING'),
  );
  const report = await eventually(async () => {
    const { pipeline } = await t.request(PipelineDetail, { id: pipelineId });
    const track = pipeline!.tracks.find((x) => x.name === 'report')!;
    return track.state === 'PENDING' ? track : undefined;
  });
  expect(report.needsInput).toBe(true);
  await t.request(FinishInput, { trackId: report.id, params: { operator: 'Ada' } });
  expect((await finished).at(-1)!.pipelineUpdated.pipelineState).toBe('FINISH');
  const { pipeline } = await t.request(PipelineDetail, { id: pipelineId });
  const output = Object.fromEntries(pipeline!.tracks.map((x) => [x.name, x.output.text]));
  expect(output['port-open']).toBe(`port ${port} on 127.0.0.1 accepts connections\n`);
  const { track } = await t.request(ExampleOutputs, { id: pipeline!.tracks.find((x) => x.name === 'port-open')!.id });
  expect(track!.outputs).toEqual([
    { name: 'ip', value: '127.0.0.1' },
    { name: 'port', value: String(port) },
  ]);
  expect(pipeline!.tracks.find((x) => x.name === 'health')!.input).toEqual({ ip: '127.0.0.1', port });
  expect(JSON.parse(output.health!)).toMatchObject({ status: 'ok' });
  expect(output.report).toBe('web server check passed; report signed by Ada\n');
});
