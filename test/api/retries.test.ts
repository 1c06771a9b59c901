/**
 * SPEC rule 13 through the API: a vertex's automatic retries. A flaky step retried until it
 * succeeds keeps every attempt's exit code, reason, times and output; the last failure
 * fails the pipeline (rule 8); a retry waits out its delay (blockedBy RETRY_DELAY, until
 * when) without holding a worker; cancelling never retries.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from '../../src/generated/gql/index.ts';
import { AddVertex, CancelPipeline, CloneGraph, RetryPipeline, StartPipeline, UpdateVertex } from '../helpers/operations.ts';
import { eventually, seedGraph } from '../helpers/seed.ts';
import { startTestApp, type TestApp } from '../helpers/test-app.ts';

const RetryRun = graphql(`
  query RetryRun($id: Int!) {
    pipeline(id: $id) {
      state
      tracks {
        id name state attempt exitCode reason startedAt finishedAt
        vertex { retries retryDelaySeconds retryBackoff }
        attempts { attempt state exitCode reason startedAt finishedAt }
        blockedBy { kind message until }
      }
      events(first: 1000) { type trackId trackState attempt exitCode reason }
    }
  }
`);

const AttemptOutput = graphql(`
  query AttemptOutput($id: Int!, $attempt: Int) {
    track(id: $id) { output(attempt: $attempt) { attempt text complete } }
  }
`);

let t: TestApp;
beforeAll(async () => {
  // One worker: a retry waiting out its delay must leave it to other work.
  t = await startTestApp({ env: { WORKERS: '1' } });
});
afterAll(() => t?.stop());

let files = 0;
/** A script that fails (exit 3) until its `succeedOn`-th run, counting runs in a file. */
function flaky(succeedOn: number): string {
  const counter = path.join(t.dir, `runs-${++files}`);
  return [
    `n=$(( $(cat ${counter} 2>/dev/null || echo 0) + 1 ))`,
    `echo $n > ${counter}`,
    'echo "run $n, attempt $TRACK_ATTEMPT"',
    `if [ $n -lt ${succeedOn} ]; then echo "not yet" >&2; exit 3; fi`,
  ].join('\n');
}

async function start(graphId: number) {
  const { startPipeline } = await t.request(StartPipeline, { graphId });
  if (startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(startPipeline));
  return startPipeline;
}

async function run(id: number) {
  return (await t.request(RetryRun, { id })).pipeline!;
}

async function ended(id: number) {
  return eventually(async () => {
    const pipeline = await run(id);
    return pipeline.state === 'RUNNING' ? undefined : pipeline;
  }, 60_000, `pipeline ${id} to end`);
}

/** The pipeline's only track once its first attempt failed and its retry waits. */
async function waitingForRetry(id: number) {
  return eventually(async () => {
    const track = (await run(id)).tracks[0]!;
    return track.state === 'PENDING' && track.attempt === 2 ? track : undefined;
  }, 60_000, 'the first attempt to fail');
}

// Each test waits for scripts and delays: room for a loaded machine.
describe('retries on a vertex', { timeout: 120_000 }, () => {
  it('are set and validated by addVertex and updateVertex, naming the field; nothing changes on bad input', async () => {
    const { graphId } = await seedGraph(t, { vertices: {}, check: false });
    const added = await t.request(AddVertex, { graphId, input: { name: 'r', script: 'true', retries: 3, retryDelaySeconds: 0, retryBackoff: 1.5 } });
    expect(added.addVertex).toMatchObject({ __typename: 'Vertex', retries: 3, retryDelaySeconds: 0, retryBackoff: 1.5 });
    const defaults = await t.request(AddVertex, { graphId, input: { name: 'd', script: 'true' } });
    expect(defaults.addVertex).toMatchObject({ retries: 0, retryDelaySeconds: 10, retryBackoff: 2 });
    for (const [input, field] of [
      [{ retries: 11 }, 'retries'],
      [{ retries: -1 }, 'retries'],
      [{ retryDelaySeconds: 3601 }, 'retryDelaySeconds'],
      [{ retryDelaySeconds: -5 }, 'retryDelaySeconds'],
      [{ retryBackoff: 0.5 }, 'retryBackoff'],
      [{ retryBackoff: 11 }, 'retryBackoff'],
    ] as const) {
      const bad = await t.request(AddVertex, { graphId, input: { name: `bad-${field}`, script: 'true', ...input } });
      expect(bad.addVertex).toMatchObject({ __typename: 'ValidationError', field });
      expect((bad.addVertex as { message: string }).message).toContain(field);
      if (added.addVertex.__typename !== 'Vertex') throw new Error();
      const update = await t.request(UpdateVertex, { id: added.addVertex.id, input });
      expect(update.updateVertex).toMatchObject({ __typename: 'ValidationError', field });
    }
    const created = await t.request(CreateWithRetries, { name: `bad-create-${process.pid}` });
    expect(created.createGraph).toMatchObject({ __typename: 'ValidationError', field: 'vertices.1.retries' });
    // A clone keeps them.
    const clone = await t.request(CloneGraph, { id: graphId });
    if (clone.cloneGraph.__typename !== 'Graph') throw new Error(JSON.stringify(clone));
    const copied = await t.app.store.db.vertex.findFirstOrThrow({ where: { graphId: clone.cloneGraph.id, name: 'r' } });
    expect(copied).toMatchObject({ retries: 3, retryDelaySeconds: 0, retryBackoff: 1.5 });
    if (added.addVertex.__typename !== 'Vertex') throw new Error();
    const updated = await t.request(UpdateVertex, { id: added.addVertex.id, input: { retries: 0 } });
    expect(updated.updateVertex).toMatchObject({ __typename: 'Vertex' });
    expect((await t.request(AddVertex, { graphId, input: { name: 'r', script: 'true' } })).addVertex).toMatchObject({ field: 'name' });
  });

  it('a step that fails twice, with retries 2, succeeds on its third attempt: every attempt kept with its output', async () => {
    const { graphId } = await seedGraph(t, {
      vertices: { flaky: { script: flaky(3), retries: 2, retryDelaySeconds: 0 }, after: { script: 'echo after' } },
      edges: [['flaky', 'after']],
    });
    const pipeline = await start(graphId);
    const done = await ended(pipeline.id);
    expect(done.state).toBe('FINISH');
    const track = done.tracks.find((x) => x.name === 'flaky')!;
    expect(track).toMatchObject({ state: 'SUCCEED', attempt: 3, exitCode: 0, reason: null });
    expect(track.attempts.map(({ attempt, state, exitCode }) => ({ attempt, state, exitCode }))).toEqual([
      { attempt: 1, state: 'FAILED', exitCode: 3 },
      { attempt: 2, state: 'FAILED', exitCode: 3 },
      { attempt: 3, state: 'SUCCEED', exitCode: 0 },
    ]);
    for (const attempt of track.attempts) {
      expect(attempt.startedAt).not.toBeNull();
      expect(Date.parse(attempt.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(attempt.startedAt!));
      if (attempt.state === 'FAILED') expect(attempt.reason).toBe('The script exited with code 3.');
    }
    // Attempts follow each other.
    expect(Date.parse(track.attempts[1]!.startedAt!)).toBeGreaterThanOrEqual(Date.parse(track.attempts[0]!.finishedAt!));
    for (const n of [1, 2, 3]) {
      const { track: withOutput } = await t.request(AttemptOutput, { id: track.id, attempt: n });
      expect(withOutput!.output).toMatchObject({ attempt: n, complete: true });
      expect(withOutput!.output.text).toContain(`run ${n}, attempt ${n}`);
      expect(withOutput!.output.text.includes('not yet')).toBe(n < 3);
    }
    // One event per retry; only success and no failure of the track or the pipeline.
    const events = done.events.filter((e) => e.trackId === track.id);
    expect(events.map((e) => e.type)).toEqual([
      'track:created',
      'track:claimed',
      'track:retrying',
      'track:claimed',
      'track:retrying',
      'track:claimed',
      'track:succeeded',
    ]);
    const retrying = events.filter((e) => e.type === 'track:retrying');
    expect(retrying.map((e) => ({ attempt: e.attempt, trackState: e.trackState, exitCode: e.exitCode }))).toEqual([
      { attempt: 2, trackState: 'PENDING', exitCode: 3 },
      { attempt: 3, trackState: 'PENDING', exitCode: 3 },
    ]);
    expect(retrying[0]!.reason).toMatch(/^Attempt 1 failed: The script exited with code 3\. Retry 1 of 2 starts at .*\(after 0 s\)\.$/);
    expect(done.events.some((e) => e.type === 'pipeline:failed' || e.type === 'track:failed')).toBe(false);
    const metrics = await (await fetch(new URL('/metrics', t.url))).text();
    expect(Number(/^dagpipe_track_retries_total (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(2);
  });

  it('once retries are used up, the last failure fails the track and the pipeline (rule 8)', async () => {
    const { graphId } = await seedGraph(t, {
      vertices: { doomed: { script: 'echo trying; exit 7', retries: 1, retryDelaySeconds: 0 }, after: { script: 'echo after' } },
      edges: [['doomed', 'after']],
    });
    const started = await start(graphId);
    const done = await ended(started.id);
    expect(done.state).toBe('FAILED');
    const doomed = done.tracks.find((x) => x.name === 'doomed')!;
    expect(doomed).toMatchObject({ state: 'FAILED', attempt: 2, exitCode: 7, reason: 'The script exited with code 7.' });
    expect(doomed.attempts.map((a) => [a.attempt, a.state, a.exitCode])).toEqual([
      [1, 'FAILED', 7],
      [2, 'FAILED', 7],
    ]);
    expect(done.tracks.find((x) => x.name === 'after')).toMatchObject({ state: 'CANCELLED', reason: 'upstream doomed failed' });
    expect(done.events.filter((e) => e.trackId === doomed.id).map((e) => e.type)).toEqual([
      'track:created',
      'track:claimed',
      'track:retrying',
      'track:claimed',
      'track:failed',
    ]);

    // retryPipeline gives the track a fresh budget: two more attempts, 3 and 4.
    expect((await t.request(RetryPipeline, { id: started.id })).retryPipeline).toMatchObject({ state: 'RUNNING' });
    const again = await ended(started.id);
    expect(again.tracks.find((x) => x.name === 'doomed')!.attempts.map((a) => [a.attempt, a.state])).toEqual([
      [1, 'FAILED'],
      [2, 'FAILED'],
      [3, 'FAILED'],
      [4, 'FAILED'],
    ]);
  });

  it("waits out the delay, saying so in blockedBy (RETRY_DELAY, until when), and runs the retry once it is over", async () => {
    const { graphId } = await seedGraph(t, { vertices: { flaky: { script: flaky(2), retries: 1, retryDelaySeconds: 2, retryBackoff: 3 } } });
    const pipeline = await start(graphId);
    const waiting = await waitingForRetry(pipeline.id);
    expect(waiting.blockedBy).toMatchObject({ kind: 'RETRY_DELAY' });
    const until = Date.parse(waiting.blockedBy!.until!);
    const failedAt = Date.parse(waiting.attempts[0]!.finishedAt!);
    // The first retry waits retryDelaySeconds (the backoff counts from the second).
    expect(until - failedAt).toBeGreaterThanOrEqual(1900);
    expect(until - failedAt).toBeLessThan(4000);
    expect(waiting.blockedBy!.message).toBe(
      `Attempt 1 failed (The script exited with code 3); retry 1 of 1 starts at ${new Date(until).toISOString()}.`,
    );
    const done = await ended(pipeline.id);
    expect(done.state).toBe('FINISH');
    const track = done.tracks[0]!;
    expect(track).toMatchObject({ state: 'SUCCEED', attempt: 2, blockedBy: null });
    // Not claimed before the delay was over, and soon after it (the executor's timer).
    expect(Date.parse(track.startedAt!)).toBeGreaterThanOrEqual(until);
    expect(Date.parse(track.startedAt!) - until).toBeLessThan(5000);
  });

  it('a retry waiting out its delay holds no worker: with WORKERS=1 another pipeline runs meanwhile; cancelling then never retries it', async () => {
    const { graphId } = await seedGraph(t, { vertices: { flaky: { script: flaky(2), retries: 3, retryDelaySeconds: 600 } } });
    const other = await seedGraph(t, { vertices: { meanwhile: { script: 'echo meanwhile' } } });
    const pipeline = await start(graphId);
    const waiting = await waitingForRetry(pipeline.id);
    expect((await run(pipeline.id)).state).toBe('RUNNING');
    // Not ready yet, so not in the queue of tracks waiting for a worker.
    const metrics = await (await fetch(new URL('/metrics', t.url))).text();
    expect(/^dagpipe_queue_depth (\d+)/m.exec(metrics)?.[1]).toBe('0');

    // The only worker is free for other work while the retry waits.
    const meanwhile = await ended((await start(other.graphId)).id);
    expect(meanwhile.state).toBe('FINISH');
    expect(Date.parse(meanwhile.tracks[0]!.finishedAt!)).toBeLessThan(Date.parse(waiting.blockedBy!.until!));
    expect((await run(pipeline.id)).tracks[0]).toMatchObject({ state: 'PENDING', attempt: 2, blockedBy: { kind: 'RETRY_DELAY' } });

    expect((await t.request(CancelPipeline, { id: pipeline.id })).cancelPipeline).toMatchObject({ state: 'CANCELLED' });
    // Even once the delay is over, nothing runs it again.
    await t.app.store.db.track.update({ where: { id: waiting.id }, data: { notBefore: new Date(0) } });
    t.app.executor!.wake();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const done = await run(pipeline.id);
    expect(done.state).toBe('CANCELLED');
    const track = done.tracks[0]!;
    expect(track).toMatchObject({ state: 'CANCELLED', attempt: 2, reason: 'cancelled by an operator', startedAt: null });
    expect(track.attempts.map((a) => [a.attempt, a.state])).toEqual([
      [1, 'FAILED'],
      [2, 'CANCELLED'],
    ]);
    expect(done.events.filter((e) => e.type === 'track:claimed')).toHaveLength(1);
    expect(track.blockedBy).toMatchObject({ kind: 'PIPELINE_CANCELLED' });
  });

  it('cancelling a running attempt never retries it', async () => {
    const marker = path.join(t.dir, 'cancel-running');
    const { graphId } = await seedGraph(t, { vertices: { long: { script: `touch ${marker}-$TRACK_ATTEMPT; sleep 30`, retries: 2, retryDelaySeconds: 0 } } });
    const pipeline = await start(graphId);
    await eventually(async () => ((await run(pipeline.id)).tracks[0]!.state === 'RUNNING' ? true : undefined), 60_000, 'the script to start');
    await t.request(CancelPipeline, { id: pipeline.id });
    await eventually(async () => (t.app.executor!.runningCount === 0 ? true : undefined), 60_000, 'the script to be killed');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const done = await run(pipeline.id);
    expect(done.state).toBe('CANCELLED');
    expect(done.tracks[0]).toMatchObject({ state: 'CANCELLED', attempt: 1 });
    expect(done.tracks[0]!.attempts).toHaveLength(1);
    expect(done.events.some((e) => e.type === 'track:retrying')).toBe(false);
  });

  it('a timeout is a failed attempt and is retried', async () => {
    const { graphId } = await seedGraph(t, {
      vertices: { slow: { script: 'if [ "$TRACK_ATTEMPT" = 1 ]; then sleep 30; fi; echo done', timeoutSeconds: 1, retries: 1, retryDelaySeconds: 0 } },
    });
    const done = await ended((await start(graphId)).id);
    expect(done.state).toBe('FINISH');
    expect(done.tracks[0]!.attempts.map((a) => [a.attempt, a.state, a.reason])).toEqual([
      [1, 'FAILED', 'Timed out after 1 s; the whole process group was killed.'],
      [2, 'SUCCEED', null],
    ]);
  });
});

const CreateWithRetries = graphql(`
  mutation CreateWithRetries($name: String!) {
    createGraph(name: $name, vertices: [{ name: "a", script: "true", retries: 1 }, { name: "b", script: "true", retries: 12 }]) {
      __typename
      ... on Error { message field }
    }
  }
`);
