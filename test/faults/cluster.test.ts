/**
 * Issue 8, item 7: a deployment of separate OS processes (SPEC rules 11 and 12): two API
 * processes (ROLE=api) and three workers (ROLE=worker, node dist/server.js each) on one
 * fresh PostgreSQL database and the real Redis, with a short heartbeat so that liveness
 * bounds are short.
 *
 * - The seed scenario, started on one API process and watched on the other over
 *   graphql-ws: every stream is exactly the journal and every line arrives once.
 * - 50 concurrent pipelines while a worker holding running tracks is SIGKILLed: no attempt
 *   runs twice, nothing committed is lost, its tracks are settled within the bound, none
 *   of its scripts survives it, and after retryPipeline every pipeline FINISHes.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TrackState } from '../../src/engine/states.ts';
import { graphql } from '../../src/generated/gql/index.ts';
import { WORKER_LOST_REASON } from '../../src/store/executions.ts';
import { freshPostgresDatabase, TEST_PROVIDER, TEST_REDIS_URL } from '../helpers/databases.ts';
import { FinishInput, Pipelines, RetryPipeline, StartPipeline } from '../helpers/operations.ts';
import { expectStreamsEqualJournal, lineTexts, watchPipeline } from '../helpers/pipeline-watch.ts';
import { alive, groupAlive, pidsWithEnvironment } from '../helpers/processes.ts';
import { eventually, seedGraph, seedScenario } from '../helpers/seed.ts';
import { killServerProcesses, launcherPidOf, startServerProcess, type ServerProcess } from '../helpers/server-process.ts';
import { httpClient, wsClient, type GraphQLClient } from '../helpers/test-app.ts';

const ClusterJournal = graphql(`
  query ClusterJournal($id: Int!) {
    pipeline(id: $id) {
      state
      tracks { id name state attempt reason output { text } }
      events(first: 1000) { id seq trackId }
    }
  }
`);

const HEARTBEAT_MS = 250;
// Eight heartbeats, not the default three: at a load average of 13 on 2 cores a live worker
// missed 750 ms of heartbeats and was (rightly, by that lease) taken for dead.
const LEASE_MS = 2000;
/** Room for a loaded 2-core machine: late timers, the sweep's own transactions, this test's poll. */
const SETTLE_SLACK_MS = 3000;
const PIPELINES = 50;

const dir = mkdtempSync(path.join(tmpdir(), 'dagpipe-cluster-'));

/** One line per script run: "<pipeline> <track> <attempt> <script pid (its process group)> <worker>". */
interface Run {
  pipeline: number;
  track: number;
  attempt: number;
  pgid: number;
  worker: string;
}

function ledgerRuns(file: string): Run[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [pipeline, track, attempt, pgid, worker] = line.split(' ');
      return { pipeline: Number(pipeline), track: Number(track), attempt: Number(attempt), pgid: Number(pgid), worker: worker! };
    });
}

/** Counts by key, as "key: n" sorted by key, for the figures printed. */
function tally(keys: string[]): string {
  const counts = new Map<string, number>();
  for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1);
  return [...counts.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, n]) => `${key}: ${n}`)
    .join(', ');
}

describe.runIf(TEST_PROVIDER === 'postgresql')('2 API processes and 3 worker processes on one PostgreSQL database and one Redis', () => {
  let databaseUrl: string;
  let db: pg.Client;
  const apis: ServerProcess[] = [];
  const workers: Array<ServerProcess & { name: string }> = [];
  let api1: GraphQLClient;
  let api2: GraphQLClient;

  beforeAll(async () => {
    databaseUrl = freshPostgresDatabase();
    // PORT=0: each listens on a port the kernel picks, and prints it. (A port found free
    // beforehand can be taken meanwhile, e.g. as the source port of these very processes'
    // connections to PostgreSQL and Redis while they start together.)
    // A pool of 6 each: five processes at the default 10 (plus their LISTEN connections),
    // beside the other test file running meanwhile, went over the server's max_connections (100).
    const common = { DATABASE_URL: databaseUrl, REDIS_URL: TEST_REDIS_URL, MUTATIONS_PER_MINUTE: '100000000', PORT: '0', DATABASE_POOL_SIZE: '6' };
    const startApi = () => startServerProcess({ ...common, ROLE: 'api', WORK_DIR: path.join(dir, 'api-work') });
    const startWorker = async (name: string) => {
      const worker = await startServerProcess({
        ...common,
        ROLE: 'worker',
        WORK_DIR: path.join(dir, name),
        WORKERS: '4',
        HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS),
        LEASE_MS: String(LEASE_MS),
        // Scripts say which worker ran them.
        CLUSTER_WORKER: name,
        SCRIPT_ENV: 'CLUSTER_WORKER',
      });
      return { ...worker, name };
    };
    const started = await Promise.all([startApi(), startApi(), startWorker('worker-1'), startWorker('worker-2'), startWorker('worker-3')]);
    apis.push(...(started.slice(0, 2) as ServerProcess[]));
    workers.push(...(started.slice(2) as typeof workers));
    api1 = httpClient(apis[0]!.url);
    api2 = httpClient(apis[1]!.url);
    db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
  });

  afterAll(async () => {
    await db?.end();
    await Promise.all([...apis, ...workers].map((p) => p.stop()));
    killServerProcesses();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Which worker process holds (or last held) each track, by the pid in its executor row. */
  async function workerOfTracks(trackIds: number[]): Promise<Map<number, string>> {
    const { rows } = await db.query<{ id: number; pid: number | null }>(
      `SELECT t."id", e."pid" FROM "track" t LEFT JOIN "executor" e ON e."id" = t."executorId" WHERE t."id" = ANY($1)`,
      [trackIds],
    );
    return new Map(rows.map((r) => [r.id, workers.find((w) => w.pid === r.pid)?.name ?? 'a worker gone']));
  }

  /** A worker's current executor id and how many scripts it runs now, from its /health. */
  async function health(worker: ServerProcess): Promise<{ id: string; running: number }> {
    return (await (await fetch(worker.url)).json()).executor;
  }

  async function start(client: GraphQLClient, graphId: number) {
    const { startPipeline } = await client.request(StartPipeline, { graphId });
    if (startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(startPipeline));
    return startPipeline;
  }

  it('the seed scenario started on API 1 and watched on API 2: every stream is the journal, no gap, no duplicate, and completes; every line arrives once', async () => {
    const spec = seedScenario({
      A: 'echo A says {word}; echo "A err" >&2; echo "A done"',
      B: 'for i in 1 2 3 4 5; do echo "B $i"; sleep 0.05; done',
      C: 'for i in 1 2 3; do echo "C $i"; echo "C err $i" >&2; sleep 0.05; done',
      D: 'echo "D after B and C"',
      E: 'echo E',
    });
    // A waits for its input: the streams are open on API 2 before the rest runs.
    spec.vertices.A!.inputs = [{ name: 'word', type: 'STRING', required: true }];
    const { graphId } = await seedGraph(api1, spec);
    const pipeline = await start(api1, graphId);
    const trackIds = pipeline.tracks.map((t) => t.id);
    const watched = watchPipeline(wsClient(apis[1]!.url.replace(/^http/, 'ws')), pipeline.id, trackIds);
    // The replay reached API 2's subscriber (the track:created events at least).
    await eventually(async () => (watched.received.updates.length >= 5 ? true : undefined), 15_000, 'the replay on API 2');
    const a = pipeline.tracks.find((t) => t.name === 'A')!;
    expect((await api1.request(FinishInput, { trackId: a.id, params: { word: 'hello' } })).finishInput.__typename).toBe('Track');

    const readJournal = async () => (await api1.request(ClusterJournal, { id: pipeline.id })).pipeline!.events;
    await expectStreamsEqualJournal(watched, readJournal);
    const output = await watched.output;
    expect(watched.completed.size).toBe(2 + trackIds.length);
    const expected: Record<string, string[]> = {
      A: ['A says hello', 'A err', 'A done'],
      B: ['B 1', 'B 2', 'B 3', 'B 4', 'B 5'],
      C: ['C 1', 'C err 1', 'C 2', 'C err 2', 'C 3', 'C err 3'],
      D: ['D after B and C'],
      E: ['E'],
    };
    const final = (await api1.request(ClusterJournal, { id: pipeline.id })).pipeline!;
    expect(final.state).toBe('FINISH');
    for (const [i, track] of pipeline.tracks.entries()) {
      const lines = output[i]!;
      const texts = lineTexts(lines);
      // The stored output is the order lines arrived in (stdout and stderr are separate
      // pipes: a line to each may come either way); the stream is exactly that, each line once.
      const stored = final.tracks.find((t) => t.id === track.id)!.output.text;
      expect(`${texts.join('\n')}\n`, track.name).toBe(stored);
      expect([...texts].sort(), track.name).toEqual([...expected[track.name]!].sort());
      expect(texts.filter((l) => !l.includes('err')), track.name).toEqual(expected[track.name]!.filter((l) => !l.includes('err')));
      expect(lines.every((l) => l.trackOutput.attempt === 1)).toBe(true);
      // Offsets are each line's byte position in the stored output: none twice, none skipped.
      expect(lines.map((l) => l.trackOutput.offset)).toEqual(texts.map((_, j) => texts.slice(0, j).reduce((sum, line) => sum + line.length + 1, 0)));
    }
    const ranOn = await workerOfTracks(trackIds);
    console.log(`seed scenario watched on API 2: ${final.events.length} events, run by ${pipeline.tracks.map((t) => `${t.name} on ${ranOn.get(t.id)}`).join(', ')}`);
  });

  it('50 concurrent pipelines while a worker holding running tracks is SIGKILLed: no attempt twice, nothing committed lost, its tracks settled within the bound, no script of it survives, all FINISH after retry', async () => {
    const ledger = path.join(dir, 'ledger');
    const step = (name: string) => ({
      script: `echo "$PIPELINE_ID $TRACK_ID $TRACK_ATTEMPT $$ $CLUSTER_WORKER" >> '${ledger}'; echo ${name}; sleep 0.2`,
    });
    // Fan-out and fan-in: a -> b, a -> c, b -> d, c -> d.
    const { graphId } = await seedGraph(api1, {
      vertices: { a: step('a'), b: step('b'), c: step('c'), d: step('d') },
      edges: [
        ['a', 'b'],
        ['a', 'c'],
        ['b', 'd'],
        ['c', 'd'],
      ],
    });
    // Started on both API processes.
    const startedAt = Date.now();
    const started = await Promise.all(Array.from({ length: PIPELINES }, (_, i) => start(i % 2 === 0 ? api1 : api2, graphId)));
    const pipelineIds = started.map((p) => p.id);

    // The victim: a worker with running tracks once a good part of the work has run.
    const { victim, executorId, launcherPid } = await eventually(
      async () => {
        if (ledgerRuns(ledger).length < PIPELINES) return undefined;
        const now = await Promise.all(workers.map(health));
        const busiest = now.reduce((best, h, i) => (h.running > now[best]!.running ? i : best), 0);
        const launcher = launcherPidOf(workers[busiest]!.pid);
        if (now[busiest]!.running < 2 || launcher === undefined) return undefined;
        return { victim: workers[busiest]!, executorId: now[busiest]!.id, launcherPid: launcher };
      },
      30_000,
      'a worker with running tracks',
    );
    // What the check after the kill looks for is found while it lives.
    expect(pidsWithEnvironment('CLUSTER_WORKER', victim.name)).toEqual(expect.arrayContaining([victim.pid, launcherPid]));
    process.kill(victim.pid, 'SIGKILL');
    const killedAt = Date.now();
    await victim.exited;
    const heldBy = (state: TrackState) =>
      db.query<{ id: number; attempt: number }>(`SELECT "id", "attempt" FROM "track" WHERE "executorId" = $1 AND "state" = $2 ORDER BY "id"`, [executorId, state]);
    const victimGroups = () => [...new Set(ledgerRuns(ledger).filter((r) => r.worker === victim.name).map((r) => r.pgid))];
    const msSinceKill = async (wait: Promise<unknown>) => (await wait, Date.now() - killedAt);
    const [settledAfter, goneAfter] = await Promise.all([
      msSinceKill(
        eventually(
          async () => ((await heldBy(TrackState.RUNNING)).rows.length === 0 ? true : undefined),
          15_000,
          "the dead worker's tracks to be settled",
        ),
      ),
      // Its launcher saw its IPC channel close and killed every script's process group:
      // nothing that inherited its environment is left.
      msSinceKill(
        eventually(
          async () => (alive(launcherPid) || victimGroups().some(groupAlive) || pidsWithEnvironment('CLUSTER_WORKER', victim.name).length > 0 ? undefined : true),
          10_000,
          "the dead worker's launcher and scripts to die",
        ),
      ),
    ]);
    // What it held when it died (a claim it committed at its last moment included), settled.
    const { rows: held } = await heldBy(TrackState.FAILED);
    expect(held.length).toBeGreaterThan(0);
    const heldIds = held.map((t) => t.id);

    // Everything else runs to its end; then the pipelines the kill failed are retried.
    const allEnded = async () => {
      const { pipelines } = await api2.request(Pipelines, { first: 100 });
      return pipelineIds.every((id) => pipelines.some((p) => p.id === id && p.state !== 'RUNNING')) ? true : undefined;
    };
    const journals = async () => Promise.all(pipelineIds.map(async (id) => (await api2.request(ClusterJournal, { id })).pipeline!));
    await eventually(allEnded, 30_000, 'every pipeline to end');
    const ended = await journals();
    const firstRunFor = Date.now() - startedAt;
    // Only the killed worker was taken for dead: the live ones kept their heartbeats within
    // the lease throughout, under this load, from their start-up on.
    for (const worker of workers.filter((w) => w !== victim)) {
      expect(worker.output(), worker.name).not.toMatch(/this worker was taken for dead/);
      const dead = [...worker.output().matchAll(/"workers":\[([^\]]*)\].*"msg":"workers taken for dead/g)].map((m) => m[1]!);
      for (const list of dead) expect(list, worker.name).toMatch(new RegExp(`^\\{"id":"${executorId}","host":"[^"]+","pid":${victim.pid}\\}$`));
    }
    const failedPipelines = pipelineIds.filter((_, i) => ended[i]!.state === 'FAILED');
    expect(ended.filter((p) => p.state !== 'FAILED').every((p) => p.state === 'FINISH')).toBe(true);
    const failedTracks = ended.flatMap((p) => p.tracks.filter((t) => t.state === 'FAILED'));
    // Exactly the dead worker's tracks failed, each with the heartbeat reason, in its first attempt.
    expect(failedTracks.map((t) => [t.id, t.attempt, t.reason]).sort(([x], [y]) => Number(x) - Number(y))).toEqual(held.map((t) => [t.id, 1, WORKER_LOST_REASON]));
    for (const track of ended.flatMap((p) => p.tracks.filter((t) => t.state === 'CANCELLED'))) {
      expect(track.reason).toMatch(/^(upstream \w+ failed|not started: the pipeline failed because \w+ failed)$/);
    }
    // A held attempt that got as far as its script ran it on the dead worker.
    const runsBeforeRetry = ledgerRuns(ledger);
    for (const { id, attempt } of held) {
      expect(runsBeforeRetry.filter((r) => r.track === id && r.attempt === attempt).every((r) => r.worker === victim.name)).toBe(true);
    }

    for (const id of failedPipelines) {
      expect((await api1.request(RetryPipeline, { id })).retryPipeline).toMatchObject({ __typename: 'Pipeline', state: 'RUNNING' });
    }
    await eventually(allEnded, 30_000, 'the retried pipelines to end');
    const finished = await journals();
    const totalFor = Date.now() - startedAt;
    expect(finished.map((p) => p.state)).toEqual(pipelineIds.map(() => 'FINISH'));

    const runs = ledgerRuns(ledger);
    // No attempt ran twice.
    const attempts = runs.map((r) => `${r.track}:${r.attempt}`);
    expect(attempts.filter((a, i) => attempts.indexOf(a) !== i)).toEqual([]);
    for (const [i, pipeline] of finished.entries()) {
      // Nothing committed is lost: each pipeline's journal is 1..n without a gap.
      expect(pipeline.events.map((e) => e.seq)).toEqual(pipeline.events.map((_, j) => j + 1));
      for (const track of pipeline.tracks) {
        expect(track.state).toBe('SUCCEED');
        // Its succeeding attempt ran, once, in this pipeline (the retried ones too).
        expect(runs.filter((r) => r.track === track.id && r.attempt === track.attempt && r.pipeline === pipelineIds[i])).toHaveLength(1);
      }
    }
    const retried = finished.flatMap((p) => p.tracks.filter((t) => t.attempt === 2));
    expect(retried.length).toBeGreaterThanOrEqual(heldIds.length);
    // The dead worker ran nothing after its kill; the others ran every retry.
    expect(runs.filter((r) => r.attempt > 1).every((r) => r.worker !== victim.name)).toBe(true);
    for (const server of [...apis, ...workers.filter((w) => w !== victim)]) expect(server.output()).not.toMatch(/"level":50/);

    console.log(
      `SIGKILLed ${victim.name} holding ${heldIds.length} running tracks: settled ${settledAfter} ms after the kill ` +
        `(bound LEASE_MS + HEARTBEAT_INTERVAL_MS = ${LEASE_MS + HEARTBEAT_MS} ms after its last heartbeat); ` +
        `its launcher and ${victimGroups().length} script groups gone ${goneAfter} ms after the kill`,
    );
    console.log(
      `${PIPELINES} pipelines: ${failedPipelines.length} failed by the kill and retried (${retried.length} tracks in attempt 2); ` +
        `first run ended ${firstRunFor} ms, all FINISH ${totalFor} ms after the start; ${runs.length} script runs, by worker: ${tally(runs.map((r) => r.worker))}`,
    );
    // The bound, with room for a loaded machine.
    expect(settledAfter).toBeLessThan(LEASE_MS + HEARTBEAT_MS + SETTLE_SLACK_MS);
  }, 60_000);
});
