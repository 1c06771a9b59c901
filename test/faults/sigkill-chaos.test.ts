/**
 * Issue 4, item 7: SIGKILL the server at random moments during 50 concurrent pipelines,
 * restart it on the same database, and check that nothing committed was lost, no track
 * ran twice in one attempt, no script outlived its server, and every pipeline reaches
 * FINISH (retrying what reconciliation failed, SPEC rule 10).
 *
 * Real processes throughout: the server runs as a child process, its launcher and the
 * bash scripts are real; the kill moments come from a seeded generator whose seed is
 * printed (rerun with FAULTS_SEED=<seed> to replay the same moments).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createClient, type Client } from 'graphql-ws';
import { print } from 'graphql';
import { afterAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { freshDatabase, httpClient, type GraphQLClient } from '../helpers/test-app.ts';
import { alive, groupAlive } from '../helpers/processes.ts';
import { eventually, seedGraph } from '../helpers/seed.ts';
import { Pipelines, RetryPipeline, StartPipeline } from '../helpers/operations.ts';
import { freePort, killServerProcesses, launcherPidOf, startServerProcess, type ServerProcess } from '../helpers/server-process.ts';
import { graphql } from '../../src/generated/gql/index.ts';

const FaultsTrackEvents = graphql(`
  subscription FaultsTrackEvents($pipelineId: Int!, $after: Int) {
    trackUpdated(pipelineId: $pipelineId, after: $after) { id type trackId trackState pipelineState attempt exitCode reason }
  }
`);

const FaultsPipelineEvents = graphql(`
  subscription FaultsPipelineEvents($pipelineId: Int!, $after: Int) {
    pipelineUpdated(pipelineId: $pipelineId, after: $after) { id type trackId trackState pipelineState attempt exitCode reason }
  }
`);

const FaultsJournal = graphql(`
  query FaultsJournal($id: Int!) {
    pipeline(id: $id) {
      id state
      tracks { id name state attempt reason }
      events(first: 500) { id type trackId trackState pipelineState attempt exitCode reason }
    }
  }
`);

type EventRow = { id: number; type: string; trackId: number | null; trackState: string | null; pipelineState: string | null; attempt: number | null; exitCode: number | null; reason: string | null };
type Kind = 'track' | 'pipeline';

const PIPELINES = 50;
const KILLS = 3;
const RECONCILED = /^The service stopped while this track was running, so its outcome is unknown\. Retry the pipeline to run it again\.$/;

/** mulberry32: a small seeded generator, so a failing run's kill moments can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const dir = mkdtempSync(path.join(tmpdir(), 'dagpipe-faults-chaos-'));
afterAll(() => {
  killServerProcesses();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Follows both subscriptions of every pipeline against one server incarnation, resuming
 * after the last event each one received (graphql-ws, `after`).
 */
class Recorder {
  /** Everything received, by kind and event id. */
  readonly received = new Map<string, EventRow>();
  private readonly last = new Map<string, number>();
  private clients: Client[] = [];

  follow(wsUrl: string, pipelineIds: number[]): void {
    for (const [index, pipelineId] of pipelineIds.entries()) {
      // 20 pipelines (40 subscriptions) per connection, well under SUBSCRIPTIONS_PER_CONNECTION.
      if (index % 20 === 0) this.clients.push(createClient({ url: wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true }));
      const client = this.clients.at(-1)!;
      for (const kind of ['track', 'pipeline'] as const) {
        const key = `${kind}:${pipelineId}`;
        const document = kind === 'track' ? FaultsTrackEvents : FaultsPipelineEvents;
        client.subscribe<Record<string, EventRow>>(
          { query: print(document), variables: { pipelineId, after: this.last.get(key) ?? 0 } },
          {
            next: (value) => {
              const event = value.data?.[kind === 'track' ? 'trackUpdated' : 'pipelineUpdated'];
              if (!event) return;
              this.received.set(`${kind}:${event.id}`, event);
              this.last.set(key, Math.max(this.last.get(key) ?? 0, event.id));
            },
            // The server is killed under it: expected; the next incarnation resumes.
            error: () => undefined,
            complete: () => undefined,
          },
        );
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((client) => client.dispose()));
    this.clients = [];
  }

  snapshot(): Map<string, EventRow> {
    return new Map(this.received);
  }
}

function logLines(log: string): Array<{ track: number; attempt: number; pid: number }> {
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [track, attempt, pid] = line.split(':').map(Number);
      return { track: track!, attempt: attempt!, pid: pid! };
    });
}

/**
 * Retries every FAILED or CANCELLED pipeline whose failures all come from reconciliation
 * (the server died under them); any other failure fails the test. Returns how many.
 */
async function retryReconciled(api: GraphQLClient): Promise<number> {
  const { pipelines } = await api.request(Pipelines, { first: 100 });
  let retried = 0;
  for (const { id, state } of pipelines) {
    if (state !== 'FAILED' && state !== 'CANCELLED') continue;
    const { pipeline } = await api.request(FaultsJournal, { id });
    const failed = pipeline!.tracks.filter((t) => t.state === 'FAILED');
    expect(state).toBe('FAILED'); // nobody cancelled anything
    expect(failed.length).toBeGreaterThan(0);
    for (const track of failed) expect(track.reason, `track ${track.id} of pipeline ${id}`).toMatch(RECONCILED);
    for (const track of pipeline!.tracks.filter((t) => t.state === 'CANCELLED')) expect(track.reason).toMatch(/^(upstream \w+ failed|not started: the pipeline failed because \w+ failed)$/);
    expect((await api.request(RetryPipeline, { id })).retryPipeline).toMatchObject({ __typename: 'Pipeline', state: 'RUNNING' });
    retried++;
  }
  return retried;
}

it('SIGKILLed at random moments during 50 concurrent pipelines: nothing committed is lost, no attempt runs twice, no script survives, all FINISH', async () => {
  const seed = Number(process.env.FAULTS_SEED ?? Math.floor(Math.random() * 2 ** 31));
  console.log(`kill moments seeded with FAULTS_SEED=${seed}`);
  const next = random(seed);
  const log = path.join(dir, 'runs.log');
  const env = {
    DATABASE_URL: freshDatabase(dir),
    WORK_DIR: path.join(dir, 'work'),
    PORT: String(await freePort()),
    WORKERS: '4',
  };
  const step = (name: string) => ({ script: `echo "$TRACK_ID:$TRACK_ATTEMPT:$$" >> '${log}'; echo ${name}; sleep 0.1` });

  let server: ServerProcess = await startServerProcess(env);
  let api = httpClient(server.url);
  // Fan-out and fan-in: a -> b, a -> c, b -> d, c -> d.
  const { graphId } = await seedGraph(api, {
    vertices: { a: step('a'), b: step('b'), c: step('c'), d: step('d') },
    edges: [
      ['a', 'b'],
      ['a', 'c'],
      ['b', 'd'],
      ['c', 'd'],
    ],
  });
  const recorder = new Recorder();
  const started = await Promise.all(Array.from({ length: PIPELINES }, () => api.request(StartPipeline, { graphId })));
  const pipelineIds = started.map((s) => {
    if (s.startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(s));
    return s.startPipeline.id;
  });
  recorder.follow(server.url.replace(/^http/, 'ws'), pipelineIds);

  const beforeKills: Array<Map<string, EventRow>> = [];
  let retries = 0;
  for (let kill = 1; kill <= KILLS; kill++) {
    const launcherPid = await eventually(async () => launcherPidOf(server.pid), 10_000, 'the launcher process');
    const delayMs = Math.round(300 + next() * 1700);
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    const ranBefore = logLines(log).length;
    beforeKills.push(recorder.snapshot());
    await server.stop('SIGKILL');
    const killedAt = Date.now();
    await recorder.close();
    // The launcher sees its IPC channel close, kills every script's process group and exits.
    const groups = [...new Set(logLines(log).map((l) => l.pid))];
    await eventually(
      async () => (alive(launcherPid) || groups.some(groupAlive) ? undefined : true),
      10_000,
      'the launcher and every script to die with the server',
    );
    console.log(
      `kill ${kill}: SIGKILL ${delayMs} ms after the (re)start, ${ranBefore} script runs so far, ` +
        `${beforeKills.at(-1)!.size} events received; launcher and all ${groups.length} script groups gone ${Date.now() - killedAt} ms later`,
    );
    server = await startServerProcess(env);
    api = httpClient(server.url);
    recorder.follow(server.url.replace(/^http/, 'ws'), pipelineIds);
    // Reconciliation ran at start-up; put the interrupted runs back into play, so that the
    // next kill can hit retried attempts too.
    retries += await retryReconciled(api);
  }

  // Let everything finish, retrying what the last kill interrupted (bounded).
  const deadline = Date.now() + 45_000;
  for (;;) {
    const { pipelines } = await api.request(Pipelines, { first: 100 });
    expect(pipelines).toHaveLength(PIPELINES);
    if (pipelines.every((p) => p.state === 'FINISH')) break;
    if (Date.now() > deadline) throw new Error(`not all FINISH: ${JSON.stringify(pipelines.filter((p) => p.state !== 'FINISH'))}`);
    if (!pipelines.some((p) => p.state === 'RUNNING')) retries += await retryReconciled(api);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }

  const runs = logLines(log);
  const journals = await Promise.all(pipelineIds.map(async (id) => (await api.request(FaultsJournal, { id })).pipeline!));
  const journal = new Map<string, EventRow>();
  for (const { events } of journals) {
    expect(events.length).toBeLessThan(500); // the whole journal was read
    for (const event of events) {
      if (event.trackId !== null) journal.set(`track:${event.id}`, event);
      if (event.pipelineState !== null) journal.set(`pipeline:${event.id}`, event);
    }
  }
  console.log(
    `${PIPELINES} pipelines FINISH after ${KILLS} kills and ${retries} retries; ${runs.length} script runs, ${journal.size} events in the journal`,
  );

  // Nothing committed is lost: every event a subscriber saw before a kill is still there, identical.
  for (const before of beforeKills) {
    for (const [key, event] of before) expect(journal.get(key), key).toEqual(event);
  }
  // No track ran twice in one attempt.
  const attempts = runs.map((r) => `${r.track}:${r.attempt}`);
  const duplicates = attempts.filter((a, i) => attempts.indexOf(a) !== i);
  expect(duplicates).toEqual([]);
  // Every track succeeded, in an attempt that ran exactly once.
  const ran = new Set(attempts);
  for (const pipeline of journals) {
    expect(pipeline.state).toBe('FINISH');
    for (const track of pipeline.tracks) {
      expect(track.state).toBe('SUCCEED');
      expect(ran.has(`${track.id}:${track.attempt}`), `track ${track.id} attempt ${track.attempt} in the log`).toBe(true);
    }
  }
  // The subscribers, resuming with `after` across restarts, got every event once: no gap.
  await eventually(async () => (recorder.received.size >= journal.size ? true : undefined), 15_000, 'the subscribers to catch up');
  expect([...recorder.received.keys()].sort()).toEqual([...journal.keys()].sort());
  for (const [key, event] of recorder.received) expect(journal.get(key), key).toEqual(event);

  await recorder.close();
  await server.stop('SIGTERM');
}, 120_000);
