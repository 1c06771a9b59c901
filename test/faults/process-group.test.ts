/**
 * Issue 4, item 7: a script that forks children which ignore SIGTERM dies with its whole
 * process group, on timeout and on cancel, end to end through the API (the executor, the
 * launcher and real bash processes; run-script.test.ts covers the timeout one level down).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/test-app.ts';
import { alive } from '../helpers/processes.ts';
import { eventually, seedGraph } from '../helpers/seed.ts';
import { CancelPipeline, PipelineDetail, StartPipeline } from '../helpers/operations.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: { WORKERS: '2', AUTH: 'off' } });
});
afterAll(() => t?.stop());

const CHILDREN = 3;

/**
 * Three background children that ignore SIGTERM (the ignored disposition survives exec,
 * so `sleep` itself ignores it), each writing its pid; the script itself ignores SIGTERM
 * too and waits for them. Only SIGKILL to the whole group ends it.
 */
function stubbornScript(pidFile: string): string {
  return [
    `trap '' TERM`,
    `for i in $(seq 1 ${CHILDREN}); do ( trap '' TERM; echo $BASHPID >> '${pidFile}'; exec sleep 60 ) & done`,
    `echo $$ >> '${pidFile}'`,
    `echo started`,
    `wait`,
  ].join('\n');
}

async function pidsWritten(pidFile: string): Promise<number[]> {
  return eventually(
    async () => {
      if (!existsSync(pidFile)) return undefined;
      const pids = readFileSync(pidFile, 'utf8').split('\n').filter(Boolean).map(Number);
      return pids.length === CHILDREN + 1 ? pids : undefined;
    },
    15_000,
    'every process to write its pid',
  );
}

async function startStubborn(name: string, timeoutSeconds?: number) {
  const pidFile = path.join(t.dir, `${name}.pids`);
  const { graphId } = await seedGraph(t, {
    vertices: { stubborn: { script: stubbornScript(pidFile), ...(timeoutSeconds !== undefined && { timeoutSeconds }) } },
  });
  const started = await t.request(StartPipeline, { graphId });
  if (started.startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(started));
  return { pipelineId: started.startPipeline.id, pidFile };
}

async function settled(pipelineId: number, state: 'FAILED' | 'CANCELLED') {
  return eventually(
    async () => {
      const { pipeline } = await t.request(PipelineDetail, { id: pipelineId });
      return pipeline!.state === state ? pipeline! : undefined;
    },
    15_000,
    `the pipeline to be ${state}`,
  );
}

async function allDead(pids: number[], since: number): Promise<void> {
  await eventually(async () => (pids.some(alive) ? undefined : true), 10_000, `pids ${pids.join(', ')} to die`);
  console.log(`all ${pids.length} processes (script and ${CHILDREN} SIGTERM-ignoring children) dead ${Date.now() - since} ms after the stop`);
}

it('on timeout: the track fails saying so, and every process of its group is dead within seconds', async () => {
  const { pipelineId, pidFile } = await startStubborn('timeout', 1);
  const pids = await pidsWritten(pidFile);
  expect(pids.every(alive)).toBe(true);
  const failed = await settled(pipelineId, 'FAILED');
  const stoppedAt = Date.now();
  const track = failed.tracks[0]!;
  expect(track.state).toBe('FAILED');
  expect(track.reason).toBe('Timed out after 1 s; the whole process group was killed.');
  expect(track.output.text).toContain('started');
  await allDead(pids, stoppedAt);
}, 30_000);

it('on cancelPipeline: the track is cancelled, and every process of its group is dead within seconds', async () => {
  const { pipelineId, pidFile } = await startStubborn('cancel');
  const pids = await pidsWritten(pidFile);
  expect(pids.every(alive)).toBe(true);
  expect((await t.request(PipelineDetail, { id: pipelineId })).pipeline!.tracks[0]!.state).toBe('RUNNING');
  const stoppedAt = Date.now();
  expect((await t.request(CancelPipeline, { id: pipelineId })).cancelPipeline).toMatchObject({ __typename: 'Pipeline', state: 'CANCELLED' });
  const cancelled = await settled(pipelineId, 'CANCELLED');
  expect(cancelled.tracks[0]!.state).toBe('CANCELLED');
  await allDead(pids, stoppedAt);
}, 30_000);
