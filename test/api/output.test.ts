/** Output as one model for live and history: offsets, pages, replay then live, secrets masked. */
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from '../../src/generated/gql/index.ts';
import { eventually, seedGraph } from '../helpers/seed.ts';
import { PipelineDetail, StartPipeline, TrackOutput } from '../helpers/operations.ts';
import { collect, startTestApp, type TestApp } from '../helpers/test-app.ts';

const TrackOutputPage = graphql(`
  query TrackOutputPage($id: Int!, $offset: Int, $limit: Int, $attempt: Int) {
    track(id: $id) {
      state
      script
      input
      output(offset: $offset, limit: $limit, attempt: $attempt) {
        text offset nextOffset size truncated complete attempt
        lines { stream line offset }
      }
    }
  }
`);

const ReplayOutput = graphql(`
  subscription ReplayOutput($trackId: Int!, $offset: Int) {
    trackOutput(trackId: $trackId, offset: $offset) { attempt stream line offset }
  }
`);

const logLines: string[] = [];
let t: TestApp;
beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(chunk.toString());
      done();
    },
  });
  t = await startTestApp({ logger: pino({ level: 'debug' }, sink) });
});
afterAll(() => t?.stop());

async function start(graphId: number, inputs?: Array<{ vertex: string; params: Record<string, unknown> }>) {
  const started = await t.request(StartPipeline, { graphId, inputs });
  if (started.startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(started));
  return { pipelineId: started.startPipeline.id, trackId: started.startPipeline.tracks[0]!.id };
}

const finished = (pipelineId: number) =>
  eventually(async () => {
    const { pipeline } = await t.request(PipelineDetail, { id: pipelineId });
    return pipeline && pipeline.state !== 'RUNNING' ? pipeline : undefined;
  });

const numbered = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `line ${from + i}`);

describe('track output', () => {
  it('is readable while the track runs, and a subscriber replaying from 0 then live misses nothing and repeats nothing', async () => {
    const go = path.join(t.dir, 'second-half');
    const { graphId } = await seedGraph(t, {
      vertices: {
        talk: { script: `for i in $(seq 1 50); do echo "line $i"; done; while [ ! -e ${go} ]; do sleep 0.05; done; for i in $(seq 51 100); do echo "line $i" >&2; done` },
      },
    });
    const { pipelineId, trackId } = await start(graphId);
    // Half printed, the script waiting: the page has exactly the first half.
    const firstHalf = await eventually(async () => {
      const { track } = await t.request(TrackOutputPage, { id: trackId });
      return track!.output.text.includes('line 50\n') ? track!.output : undefined;
    });
    expect(firstHalf).toMatchObject({ text: numbered(1, 50).map((l) => `${l}\n`).join(''), complete: false, truncated: false });
    expect(firstHalf.nextOffset).toBe(firstHalf.size);

    // Two subscribers: one from the start, one from the middle of line 30 onwards.
    const line30 = firstHalf.lines.find((l) => l.line === 'line 30')!.offset!;
    const untilLast = (items: Array<{ trackOutput: { line: string } }>) => items.some((i) => i.trackOutput.line === 'line 100');
    const fromStart = collect(t.wsClient(), ReplayOutput, { trackId, offset: 0 }, (items) => {
      if (items.length === 50 && !existsSync(go)) writeFileSync(go, ''); // the replay arrived: let the script go on
      return untilLast(items);
    });
    const fromMiddle = collect(t.wsClient(), ReplayOutput, { trackId, offset: line30 }, untilLast);
    const [all, middle] = await Promise.all([fromStart, fromMiddle]);
    expect(all.map((i) => i.trackOutput.line)).toEqual(numbered(1, 100));
    expect(middle.map((i) => i.trackOutput.line)).toEqual(numbered(30, 100));
    expect(all.map((i) => i.trackOutput.stream)).toEqual([...Array(50).fill('STDOUT'), ...Array(50).fill('STDERR')]);

    await finished(pipelineId);
    const { track } = await t.request(TrackOutputPage, { id: trackId });
    expect(track!.output).toMatchObject({ complete: true, truncated: false, attempt: 1 });
    // Live and stored agree line for line, offsets included.
    expect(track!.output.lines).toEqual(all.map(({ trackOutput: { stream, line, offset } }) => ({ stream, line, offset })));
    // Pages of any size put together give the same text.
    for (const limit of [1, 100, 333]) {
      let text = '';
      let offset = 0;
      for (;;) {
        const page = (await t.request(TrackOutputPage, { id: trackId, offset, limit })).track!.output;
        text += page.text;
        offset = page.nextOffset;
        if (page.complete) break;
      }
      expect(text).toBe(track!.output.text);
    }
  });

  it('refuses a negative offset, a limit out of range and an attempt that never was, naming the argument', async () => {
    const { graphId } = await seedGraph(t, { vertices: { quick: { script: 'echo hi' } } });
    const { pipelineId, trackId } = await start(graphId);
    await finished(pipelineId);
    for (const [variables, field] of [
      [{ offset: -1 }, 'offset'],
      [{ limit: 0 }, 'limit'],
      [{ limit: 10 * 1024 * 1024 }, 'limit'],
      [{ attempt: 2 }, 'attempt'],
    ] as const) {
      const result = await t.execute(TrackOutputPage, { id: trackId, ...variables });
      expect(result.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT', field } });
      expect(JSON.stringify(result.errors)).not.toMatch(/\bat .*\.ts:\d+/); // no stack trace
    }
  });
});

describe('secret parameters', () => {
  const SECRET = 'hunter2-TOP';

  it('are masked as *** in live and stored output, the shown script and inputs, events and logs, but reach the script', async () => {
    const { graphId } = await seedGraph(t, {
      vertices: {
        login: {
          script: 'echo as {user} with {token}; echo "env: $INPUT_TOKEN"; echo "length ${#INPUT_TOKEN}"',
          inputs: [
            { name: 'user', type: 'STRING' },
            { name: 'token', type: 'STRING', secret: true },
          ],
        },
      },
    });
    const { pipelineId, trackId } = await start(graphId, [{ vertex: 'login', params: { user: 'ada', token: SECRET } }]);
    const live = await collect(t.wsClient(), ReplayOutput, { trackId, offset: 0 }, (items) => items.length === 3);
    expect(live.map((i) => i.trackOutput.line)).toEqual(['as ada with ***', 'env: ***', `length ${SECRET.length}`]);
    await finished(pipelineId);
    const { track } = await t.request(TrackOutputPage, { id: trackId });
    expect(track!.output.text).toBe(`as ada with ***\nenv: ***\nlength ${SECRET.length}\n`);
    expect(track!.script).toBe(`echo as 'ada' with ***; echo "env: $INPUT_TOKEN"; echo "length \${#INPUT_TOKEN}"`);
    expect(track!.input).toEqual({ user: 'ada', token: '***' });
    const detail = await t.request(PipelineDetail, { id: pipelineId });
    expect(JSON.stringify(detail)).not.toContain(SECRET);
    const events = await t.app.store.db.event.findMany({ where: { pipelineId } });
    expect(JSON.stringify(events)).not.toContain(SECRET);
    expect(logLines.join('')).not.toContain(SECRET);
  });

  it('are not echoed back in errors about their value', async () => {
    const { graphId } = await seedGraph(t, {
      vertices: { pin: { script: 'echo {pin}', inputs: [{ name: 'pin', type: 'INTEGER', secret: true }] } },
    });
    const result = await t.request(StartPipeline, { graphId, inputs: [{ vertex: 'pin', params: { pin: 'not-a-number-5eCr3t' } }] });
    expect(result.startPipeline).toMatchObject({ __typename: 'ValidationError', field: 'inputs.0.params.pin' });
    expect(JSON.stringify(result)).not.toContain('5eCr3t');
  });
});
