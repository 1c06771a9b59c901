/** The README tour, as a test: load the example, start it, supply the input, watch it finish. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadWebServerCheck } from '../../examples/web-server-check.ts';
import { collect, startTestApp, type TestApp } from '../helpers/test-app.ts';
import { eventually } from '../helpers/seed.ts';
import { FinishInput, PipelineDetail, PipelineUpdated, StartPipeline } from '../helpers/operations.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t?.stop());

it('the web server check checks this very server and waits for the operator', async () => {
  const graphId = await loadWebServerCheck(t.url);
  const port = Number(new URL(t.url).port);
  const started = await t.request(StartPipeline, {
    graphId,
    inputs: [
      { vertex: 'port-open', params: { port } },
      { vertex: 'health', params: { port } },
    ],
  });
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
  expect(JSON.parse(output.health!)).toMatchObject({ status: 'ok' });
  expect(output.report).toBe('web server check passed; report signed by Ada\n');
});
