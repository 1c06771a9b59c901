/**
 * SPEC rule 10 with real processes: the server is SIGKILLed in the middle of a run and
 * started again on the same database. Nothing committed is lost, the track left RUNNING
 * fails with a clear reason, a PENDING track of another pipeline is dispatched, and
 * retryPipeline completes the interrupted run.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freshDatabase, httpClient } from '../helpers/test-app.ts';
import { alive } from '../helpers/processes.ts';
import { freePort, killServerProcesses, startServerProcess as startServer } from '../helpers/server-process.ts';
import { eventually, seedGraph } from '../helpers/seed.ts';
import { PipelineDetail, RetryPipeline, StartPipeline } from '../helpers/operations.ts';
import { graphql } from '../../src/generated/gql/index.ts';

const PipelineJournal = graphql(`
  query PipelineJournal($id: Int!) {
    pipeline(id: $id) { events(first: 10000) { id type trackState pipelineState reason } }
  }
`);

const dir = mkdtempSync(path.join(tmpdir(), 'dagpipe-restart-'));
afterAll(() => {
  killServerProcesses();
  rmSync(dir, { recursive: true, force: true });
});

describe('restart after SIGKILL', () => {
  it('loses nothing committed, reconciles RUNNING tracks, dispatches PENDING ones, and retry completes', async () => {
    const env = {
      DATABASE_URL: freshDatabase(dir),
      WORK_DIR: path.join(dir, 'work'),
      PORT: String(await freePort()),
      WORKERS: '1',
    };
    const flag = path.join(dir, 'fast-now');
    const pidFile = path.join(dir, 'long.pid');
    const first = await startServer(env);
    const api = httpClient(first.url);

    const interrupted = await seedGraph(api, {
      vertices: {
        long: { script: `echo $$ > ${pidFile}; echo working; if [ -e ${flag} ]; then exit 0; fi; sleep 60` },
        after: { script: 'echo after' },
      },
      edges: [['long', 'after']],
    });
    const queued = await seedGraph(api, { vertices: { queued: { script: 'echo queued' } } });
    const run = await api.request(StartPipeline, { graphId: interrupted.graphId });
    if (run.startPipeline.__typename !== 'Pipeline') throw new Error();
    const runId = run.startPipeline.id;
    await eventually(async () => (existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() ? true : undefined));
    const scriptPid = Number(readFileSync(pidFile, 'utf8'));
    // The only worker is busy, so this one stays PENDING.
    const waiting = await api.request(StartPipeline, { graphId: queued.graphId });
    if (waiting.startPipeline.__typename !== 'Pipeline') throw new Error();
    const waitingId = waiting.startPipeline.id;
    expect((await api.request(PipelineDetail, { id: waitingId })).pipeline!.tracks[0]!.state).toBe('PENDING');
    const journalBefore = (await api.request(PipelineJournal, { id: runId })).pipeline!.events;

    await first.stop('SIGKILL');
    // The launcher notices its parent is gone and kills the script's process group.
    await eventually(async () => (alive(scriptPid) ? undefined : true), 10_000, 'the orphaned script to be killed');

    const second = await startServer(env);
    const api2 = httpClient(second.url);
    const reconciled = await eventually(async () => {
      const { pipeline } = await api2.request(PipelineDetail, { id: runId });
      return pipeline!.state === 'FAILED' ? pipeline! : undefined;
    });
    const long = reconciled.tracks.find((x) => x.name === 'long')!;
    expect(long.state).toBe('FAILED');
    expect(long.reason).toMatch(/service stopped while this track was running.*Retry the pipeline/);
    expect(reconciled.tracks.find((x) => x.name === 'after')).toMatchObject({ state: 'CANCELLED', reason: 'upstream long failed' });
    const journalAfter = (await api2.request(PipelineJournal, { id: runId })).pipeline!.events;
    expect(journalAfter.slice(0, journalBefore.length)).toEqual(journalBefore);

    // The PENDING track of the other pipeline is dispatched by the new process.
    await eventually(async () => ((await api2.request(PipelineDetail, { id: waitingId })).pipeline!.state === 'FINISH' ? true : undefined));

    writeFileSync(flag, '');
    expect((await api2.request(RetryPipeline, { id: runId })).retryPipeline).toMatchObject({ __typename: 'Pipeline', state: 'RUNNING' });
    const done = await eventually(async () => {
      const { pipeline } = await api2.request(PipelineDetail, { id: runId });
      return pipeline!.state === 'FINISH' ? pipeline! : undefined;
    });
    expect(done.tracks.map((x) => [x.name, x.state, x.attempt])).toEqual([
      ['long', 'SUCCEED', 2],
      ['after', 'SUCCEED', 2],
    ]);
    await second.stop('SIGTERM');
  }, 90_000);
});
