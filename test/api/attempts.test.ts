/** Attempts of one track never get mixed up, and no script outlives its launcher. */
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/test-app.ts';
import { alive } from '../helpers/processes.ts';
import { eventually, seedGraph } from '../helpers/seed.ts';
import { CancelPipeline, PipelineDetail, RetryPipeline, StartPipeline } from '../helpers/operations.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: { WORKERS: '2' } });
});
afterAll(() => t?.stop());

async function trackOf(pipelineId: number) {
  return (await t.request(PipelineDetail, { id: pipelineId })).pipeline!.tracks[0]!;
}

it('a retry that starts while the cancelled attempt is still dying keeps its own slot and can be cancelled', async () => {
  const pids = path.join(t.dir, 'attempt');
  // Ignores SIGTERM, so a cancelled attempt lingers for the kill grace period.
  const { graphId } = await seedGraph(t, { vertices: { stubborn: { script: `trap '' TERM; echo $$ > ${pids}-$TRACK_ATTEMPT; sleep 30` } } });
  const started = await t.request(StartPipeline, { graphId });
  if (started.startPipeline.__typename !== 'Pipeline') throw new Error();
  const id = started.startPipeline.id;
  const written = (file: string) => async () => (existsSync(file) && readFileSync(file, 'utf8').trim() ? true : undefined);
  await eventually(written(`${pids}-1`));
  await t.request(CancelPipeline, { id });
  await t.request(RetryPipeline, { id });
  await eventually(written(`${pids}-2`));
  const second = Number(readFileSync(`${pids}-2`, 'utf8'));
  const first = Number(readFileSync(`${pids}-1`, 'utf8'));
  await eventually(async () => (alive(first) ? undefined : true), 10_000, 'attempt 1 to die');
  expect(alive(second)).toBe(true);
  // Once attempt 1's end is processed, attempt 2 still holds its slot.
  const count = await eventually(async () => (t.app.executor!.runningCount < 2 ? t.app.executor!.runningCount : undefined));
  expect(count).toBe(1);
  expect(await trackOf(id)).toMatchObject({ state: 'RUNNING', attempt: 2 });
  await t.request(CancelPipeline, { id });
  await eventually(async () => (alive(second) ? undefined : true), 10_000, 'attempt 2 to die');
});

it('when the launcher dies, its scripts die too and their tracks fail saying why', async () => {
  const pidFile = path.join(t.dir, 'orphan.pid');
  const { graphId } = await seedGraph(t, { vertices: { long: { script: `echo $$ > ${pidFile}; sleep 30` } } });
  const started = await t.request(StartPipeline, { graphId });
  if (started.startPipeline.__typename !== 'Pipeline') throw new Error();
  await eventually(async () => (existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() ? true : undefined));
  const scriptPid = Number(readFileSync(pidFile, 'utf8'));
  process.kill(t.app.executor!.launcherPid!, 'SIGKILL');
  const track = await eventually(async () => {
    const current = await trackOf(started.startPipeline.__typename === 'Pipeline' ? started.startPipeline.id : 0);
    return current.state === 'FAILED' ? current : undefined;
  });
  expect(track.reason).toContain('launcher process died');
  await eventually(async () => (alive(scriptPid) ? undefined : true), 5_000, 'the script to be killed');
  // The next script gets a new launcher.
  const again = await t.request(StartPipeline, { graphId: (await seedGraph(t, { vertices: { ok: { script: 'echo fine' } } })).graphId });
  if (again.startPipeline.__typename !== 'Pipeline') throw new Error();
  const againId = again.startPipeline.id;
  await eventually(async () => ((await trackOf(againId)).state === 'SUCCEED' ? true : undefined));
});
