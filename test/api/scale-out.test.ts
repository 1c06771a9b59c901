/**
 * Two processes of one deployment (SPEC rules 11-12): two apps on one PostgreSQL database
 * and one Redis, each reaching Redis through its own TCP proxy. The worker runs every track;
 * the API process runs none (its executor is stopped, as with ROLE=api) and serves
 * subscribers, who see every event and every line exactly once, also when Redis drops
 * messages: its connection cut on the API side, or on the worker's side.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from '../../src/generated/gql/index.ts';
import { FinishInput, StartPipeline } from '../helpers/operations.ts';
import { freshPostgresDatabase, TEST_PROVIDER, TEST_REDIS_URL } from '../helpers/databases.ts';
import { eventually, seedGraph, type GraphSpec } from '../helpers/seed.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { expectStreamsEqualJournal, lineTexts, watchPipeline, type PipelineWatch } from '../helpers/pipeline-watch.ts';
import { startTestApp, type TestApp } from '../helpers/test-app.ts';

const Output = graphql(`
  query ScaleOutOutput($id: Int!) {
    pipeline(id: $id) { state tracks { name state output { text size } } }
  }
`);

describe.runIf(TEST_PROVIDER === 'postgresql')('an API process and a worker on one database and one Redis', () => {
  let api: TestApp;
  let worker: TestApp;
  let apiRedis: TcpProxy;
  let workerRedis: TcpProxy;
  const workerLogs: Array<{ level: number; msg: string; component?: string }> = [];
  let graphs = 0;

  beforeAll(async () => {
    [apiRedis, workerRedis] = await Promise.all([startTcpProxy(TEST_REDIS_URL), startTcpProxy(TEST_REDIS_URL)]);
    const databaseUrl = freshPostgresDatabase();
    // 64 KiB kept per attempt: the first 32 KiB stored as printed, the rest with the result.
    const env = { OUTPUT_LIMIT_BYTES: String(64 * 1024) };
    // An API process runs no script: only the worker's executor claims.
    api = await startTestApp({ databaseUrl, env: { ...env, REDIS_URL: apiRedis.url, ROLE: 'api' } });
    const logger = pino({ level: 'info' }, { write: (line: string) => void workerLogs.push(JSON.parse(line)) });
    worker = await startTestApp({ databaseUrl, env: { ...env, REDIS_URL: workerRedis.url }, logger });
  });
  afterAll(async () => {
    await Promise.all([api?.stop(), worker?.stop()]);
    await Promise.all([apiRedis?.close(), workerRedis?.close()]);
  });

  /** Starts a pipeline through the API process; its tracks by name. */
  async function start(spec: GraphSpec) {
    const { graphId } = await seedGraph(api, { ...spec, name: `scale-out-${++graphs}` });
    const started = await api.request(StartPipeline, { graphId });
    if (started.startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(started));
    const tracks = Object.fromEntries(started.startPipeline.tracks.map((t) => [t.name, t.id]));
    return { pipelineId: started.startPipeline.id, tracks };
  }

  /** Every stream a UI opens on `app`, each collected until the server completes it (the test's own timeout bounds them). */
  const watch = (app: TestApp, pipelineId: number, trackIds: number[]) => watchPipeline(app.wsClient(), pipelineId, trackIds, 60_000);

  const journal = (pipelineId: number) =>
    worker.app.store.db.event.findMany({ where: { pipelineId }, orderBy: { id: 'asc' }, select: { id: true, seq: true, trackId: true, type: true } });

  /** What each stream received equals the event table, with no gap and no duplicate. */
  const expectJournal = (pipelineId: number, watched: PipelineWatch) => expectStreamsEqualJournal(watched, () => journal(pipelineId));

  const numbered = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix} ${i + 1}`);

  const state = async (pipelineId: number) => (await worker.request(Output, { id: pipelineId })).pipeline!;

  it('a pipeline started on the API process and run by the worker: both processes stream exactly the journal and every line once; Track.output on the API process is about a second behind at most', async () => {
    const gate = path.join(worker.dir, 'gate-1');
    const run = await start({
      vertices: {
        talk: { script: `for i in $(seq 1 10); do echo "talk $i"; done; while [ ! -e ${gate} ]; do sleep 0.02; done; for i in $(seq 11 150); do echo "talk $i"; sleep 0.02; done` },
        side: { script: 'echo side; echo "side err" >&2' },
        last: { script: 'echo last' },
      },
      edges: [
        ['talk', 'last'],
        ['side', 'last'],
      ],
    });
    const trackIds = Object.values(run.tracks);
    const onApi = watch(api, run.pipelineId, trackIds);
    const onWorker = watch(worker, run.pipelineId, trackIds);
    const talk = run.tracks.talk!;
    // Lines reach the API process while the track waits at the gate: they are live, not read at the end.
    await eventually(async () => ((onApi.lines.get(talk)?.length ?? 0) >= 10 && (onWorker.lines.get(talk)?.length ?? 0) >= 10 ? true : undefined));
    writeFileSync(gate, '');

    // While it runs: what the API process stores catches up with what the worker has printed.
    const lags: number[] = [];
    let liveOnApi = 0;
    for (let sample = 0; sample < 3; sample++) {
      const printed = (await worker.request(Output, { id: run.pipelineId })).pipeline!.tracks.find((t) => t.name === 'talk')!;
      if (printed.state !== 'RUNNING') break;
      const since = Date.now();
      await eventually(async () => {
        const stored = (await api.request(Output, { id: run.pipelineId })).pipeline!.tracks.find((t) => t.name === 'talk')!;
        if (stored.output.size < printed.output.size) return undefined;
        expect(stored.output.text.startsWith(printed.output.text)).toBe(true);
        return true;
      });
      lags.push(Date.now() - since);
      if ((await state(run.pipelineId)).tracks.find((t) => t.name === 'talk')!.state === 'RUNNING') liveOnApi = onApi.lines.get(talk)!.length;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    console.log(`Track.output on the API process behind the worker's: ${lags.join(', ')} ms`);
    expect(lags.length).toBeGreaterThan(0);
    // It stores them every 250 ms: about a second, with room for a loaded machine.
    expect(Math.max(...lags)).toBeLessThan(3000);
    // Redis carried lines while the track ran (not only the catch-up at its end).
    expect(liveOnApi).toBeGreaterThan(10);

    const expected = { [talk]: numbered('talk', 150), [run.tracks.side!]: ['side', 'side err'], [run.tracks.last!]: ['last'] };
    for (const watched of [onApi, onWorker]) {
      await expectJournal(run.pipelineId, watched);
      const output = await watched.output;
      trackIds.forEach((trackId, i) => expect(lineTexts(output[i]!)).toEqual(expected[trackId]));
    }
    const runBy = await worker.app.store.db.track.findMany({ where: { pipelineId: run.pipelineId }, select: { executorId: true } });
    expect(runBy.map((t) => t.executorId)).toEqual(trackIds.map(() => worker.app.executor!.id));
    // Read on the process that did not run it, the output is the one stored with the results.
    const final = await api.request(Output, { id: run.pipelineId });
    expect(final.pipeline!.tracks.find((t) => t.name === 'talk')!.output.text).toBe(`${numbered('talk', 150).join('\n')}\n`);
  });

  it('the API process loses Redis mid-run: its subscribers miss what is published meanwhile, then catch up from the database (lines not stored yet included) and complete, each event and line once', async () => {
    const gate = path.join(worker.dir, 'gate-2');
    const stop = path.join(worker.dir, 'stop-2');
    const run = await start({
      vertices: {
        // Prints all along, before, during and after the outage: the lines printed just
        // before Redis is back are neither received nor stored yet when the subscriber
        // catches up, and are read once they are.
        talk: { script: `echo start; i=0; while [ ! -e ${stop} ]; do i=$((i+1)); echo "tick $i"; sleep 0.03; done; echo end` },
        side: { script: `while [ ! -e ${gate} ]; do sleep 0.02; done; echo side` },
        last: { script: 'echo last' },
      },
      edges: [
        ['talk', 'last'],
        ['side', 'last'],
      ],
    });
    const trackIds = [run.tracks.talk!, run.tracks.side!, run.tracks.last!];
    const watched = watch(api, run.pipelineId, trackIds);
    const talkLines = () => watched.lines.get(run.tracks.talk!)?.length ?? 0;
    await eventually(async () => (talkLines() >= 3 ? true : undefined));

    apiRedis.cut();
    writeFileSync(gate, '');
    await eventually(async () => ((await state(run.pipelineId)).tracks.find((t) => t.name === 'side')!.state === 'SUCCEED' ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 500));
    // Without Redis nothing told the API process that side ended.
    expect(watched.received.updates.length).toBeLessThan((await journal(run.pipelineId)).filter((e) => e.trackId !== null).length);

    apiRedis.restore();
    const restoredWith = talkLines();
    await eventually(async () => (talkLines() >= restoredWith + 20 ? true : undefined), 10_000, 'live lines after the outage');
    writeFileSync(stop, '');
    await expectJournal(run.pipelineId, watched);
    const output = await watched.output;
    const ticks = output[0]!.length - 2;
    expect(lineTexts(output[0]!)).toEqual(['start', ...numbered('tick', ticks), 'end']);
    const stored = (await api.request(Output, { id: run.pipelineId })).pipeline!.tracks.find((t) => t.name === 'talk')!.output.text;
    expect(stored).toBe(`${lineTexts(output[0]!).join('\n')}\n`);
    expect(output.slice(1).map(lineTexts)).toEqual([['side'], ['last']]);
    expect(output.flat().every((l) => l.trackOutput.offset !== null)).toBe(true);
  });

  it('a run that ends while the API process is without Redis: its subscribers, who missed pipeline:finished, complete once it is back', async () => {
    const gate = path.join(worker.dir, 'gate-2b');
    const run = await start({
      vertices: { talk: { script: `echo start; while [ ! -e ${gate} ]; do sleep 0.02; done; seq 1 100` }, next: { script: 'echo next' } },
      edges: [['talk', 'next']],
    });
    const watched = watch(api, run.pipelineId, [run.tracks.talk!, run.tracks.next!]);
    await eventually(async () => (watched.lines.get(run.tracks.talk!)?.length === 1 ? true : undefined));
    apiRedis.cut();
    writeFileSync(gate, '');
    await eventually(async () => ((await state(run.pipelineId)).state === 'FINISH' ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(watched.completed.size).toBe(0);
    apiRedis.restore();
    await expectJournal(run.pipelineId, watched);
    expect((await watched.output).map(lineTexts)).toEqual([['start', ...Array.from({ length: 100 }, (_, i) => String(i + 1))], ['next']]);
  });

  it('lines lost past the part stored while running (the first half of OUTPUT_LIMIT_BYTES) are named in a notice at once, and the stream goes on live', async () => {
    const stop = path.join(worker.dir, 'stop-2c');
    const gate = path.join(worker.dir, 'gate-2c');
    const run = await start({
      vertices: {
        // Once the subscriber is live: 40 KiB at once (past the 32 KiB stored as printed),
        // then a line now and then.
        talk: {
          script: `echo ready; while [ ! -e ${gate} ]; do sleep 0.02; done; seq -f 'head %05g ${'x'.repeat(50)}' 1 700; i=0; while [ ! -e ${stop} ]; do i=$((i+1)); echo "tick $i"; sleep 0.02; done`,
        },
      },
    });
    const talk = run.tracks.talk!;
    const watched = watch(api, run.pipelineId, [talk]);
    const lines = () => watched.lines.get(talk) ?? [];
    // A subscriber that joined after the burst would rightly get a notice for its part past
    // the 32 KiB too: this test is about the lines lost while Redis is away.
    await eventually(async () => (lines().some((l) => l.trackOutput.line === 'ready') ? true : undefined));
    writeFileSync(gate, '');
    await eventually(async () => (lines().some((l) => l.trackOutput.line === 'tick 5') ? true : undefined));
    apiRedis.cut();
    await new Promise((resolve) => setTimeout(resolve, 500));
    apiRedis.restore();
    const restoredAt = Date.now();
    const restoredWith = lines().length;
    await eventually(async () => (lines().length >= restoredWith + 10 ? true : undefined), 10_000, 'live lines after the outage');
    // Nothing waited for lines that are stored only when the track ends.
    expect(Date.now() - restoredAt).toBeLessThan(5000);
    writeFileSync(stop, '');
    const [received] = await watched.output;
    const notices = received!.filter((l) => l.trackOutput.offset === null);
    expect(notices).toHaveLength(1);
    const at = received!.indexOf(notices[0]!);
    const [, bytes, from] = /^\[(\d+) bytes of output \(from offset (\d+)\) could not be delivered live here/.exec(notices[0]!.trackOutput.line)!.map(Number);
    // Every other line once, in order, each where the one before ended; the notice spans the hole exactly.
    const printed = received!.filter((l) => l.trackOutput.offset !== null).map((l) => l.trackOutput);
    let expected = 0;
    for (const [i, line] of printed.entries()) {
      if (i === at) {
        expect(line.offset).toBe(expected + bytes!);
        expected = line.offset!;
      }
      expect(line.offset).toBe(expected);
      expected += Buffer.byteLength(line.line) + 1;
    }
    expect(from).toBe(printed[at - 1]!.offset! + Buffer.byteLength(printed[at - 1]!.line) + 1);
    expect(lineTexts(received!.slice(0, 701))).toEqual(['ready', ...Array.from({ length: 700 }, (_, i) => `head ${String(i + 1).padStart(5, '0')} ${'x'.repeat(50)}`)]);
    const ticks = printed.slice(701).map((l) => Number(l.line.split(' ')[1]));
    expect(ticks).toEqual([...ticks].sort((x, y) => x - y));
    expect(ticks.at(-1)! - ticks[0]! + 1).toBeGreaterThan(ticks.length);
  });

  it('the worker loses Redis mid-run: it runs the pipeline to FINISH without blocking, counts and logs the failures once; a later event from elsewhere shows the gap, and once Redis is back every subscriber catches up and completes', async () => {
    const gate = path.join(worker.dir, 'gate-3');
    const run = await start({
      vertices: {
        talk: { script: `echo start; while [ ! -e ${gate} ]; do sleep 0.02; done; for i in $(seq 1 2000); do echo "line $i"; done` },
        next: { script: 'echo next' },
        ask: { script: 'echo hello {who}', inputs: [{ name: 'who', type: 'STRING', required: true }] },
      },
      edges: [['talk', 'next']],
    });
    const trackIds = [run.tracks.talk!, run.tracks.next!, run.tracks.ask!];
    const onApi = watch(api, run.pipelineId, trackIds);
    await eventually(async () => (onApi.lines.get(run.tracks.talk!)?.length === 1 ? true : undefined));
    const failuresBefore = worker.app.store.bus.publishFailures;
    const logsBefore = workerLogs.length;

    workerRedis.cut();
    const cutAt = Date.now();
    writeFileSync(gate, '');
    const trackState = async (name: string) => (await state(run.pipelineId)).tracks.find((t) => t.name === name)!.state;
    await eventually(async () => ((await trackState('next')) === 'SUCCEED' ? true : undefined));
    // What the worker committed meanwhile did not reach the API process; the next event
    // that does (this input, committed there) has a later seq, and the gap is read at once.
    expect(onApi.received.updates.length).toBeLessThan((await journal(run.pipelineId)).filter((e) => e.trackId !== null).length);
    expect((await api.request(FinishInput, { trackId: run.tracks.ask!, params: { who: 'you' } })).finishInput.__typename).toBe('Track');
    // Up to the input event: what the worker commits after it (claiming and running ask) it
    // cannot publish either, and the API process learns of it only at the next event that
    // reaches it.
    const all = (await journal(run.pipelineId)).filter((e) => e.trackId !== null);
    const input = all.slice(0, all.findIndex((e) => e.type === 'track:input' && e.trackId === run.tracks.ask) + 1);
    expect(input.at(-1)?.type).toBe('track:input');
    await eventually(async () => (onApi.received.updates.length >= input.length ? true : undefined), 5000, 'the gap to be filled');
    expect(onApi.received.updates.slice(0, input.length).map((u) => u.trackUpdated.id)).toEqual(input.map((e) => e.id));

    await eventually(async () => ((await state(run.pipelineId)).state === 'FINISH' ? true : undefined));
    const ranFor = Date.now() - cutAt;
    await new Promise((resolve) => setTimeout(resolve, 500));
    // Whether a stream has completed by now depends on when its catch-up read the table (the
    // gap read after the input event may already find pipeline:finished): what they received
    // is checked below, once they all completed.
    const failed = worker.app.store.bus.publishFailures - failuresBefore;
    // What it published meanwhile (its events, its lines) failed at once, with no queue,
    // and one warning per connection said so, not one per message.
    expect(failed).toBeGreaterThan(3);
    const warnings = workerLogs.slice(logsBefore).filter((l) => l.level === 40 && l.component === 'bus').map((l) => l.msg);
    expect(warnings.sort()).toEqual([
      'live updates cannot be published to Redis: subscribers on other processes will catch up from the database once it is back',
      'lost the Redis subscription connection: live updates from other processes wait until it is back',
    ]);
    const metrics = await (await fetch(worker.url.replace('/graphql', '/metrics'))).text();
    expect(Number(/^dagpipe_bus_publish_failures_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(failed);
    console.log(`with its Redis cut, the worker ran the pipeline to FINISH in ${ranFor} ms; ${failed} messages failed`);

    workerRedis.restore();
    await expectJournal(run.pipelineId, onApi);
    const output = await onApi.output;
    expect(output.map(lineTexts)).toEqual([['start', ...numbered('line', 2000)], ['next'], ['hello you']]);
    await eventually(async () => (workerLogs.slice(logsBefore).some((l) => l.msg.startsWith('live updates are published to Redis again')) ? true : undefined));
  });

  it('a subscription that Redis confirms late still gets what was published before: it reads the database again once confirmed', async () => {
    const gate = path.join(worker.dir, 'gate-4');
    const run = await start({
      vertices: { talk: { script: `echo start; while [ ! -e ${gate} ]; do sleep 0.02; done; echo done` }, next: { script: 'echo next' } },
      edges: [['talk', 'next']],
    });
    await eventually(async () => ((await state(run.pipelineId)).tracks.find((t) => t.name === 'talk')!.state === 'RUNNING' ? true : undefined));
    // The subscriptions below reach Redis 5 s late; the run ends well before that.
    apiRedis.delay(5000);
    const delayedAt = Date.now();
    const watched = watch(api, run.pipelineId, [run.tracks.talk!, run.tracks.next!]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    writeFileSync(gate, '');
    await eventually(async () => ((await state(run.pipelineId)).state === 'FINISH' ? true : undefined));
    expect(Date.now() - delayedAt).toBeLessThan(4000);
    expect(watched.completed.size).toBe(0);
    await expectJournal(run.pipelineId, watched);
    expect(Date.now() - delayedAt).toBeGreaterThan(5000);
    expect((await watched.output).map(lineTexts)).toEqual([['start', 'done'], ['next']]);
    apiRedis.restore();
  });
});
