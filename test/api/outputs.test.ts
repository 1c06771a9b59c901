/**
 * Step outputs (SPEC rule 18) through the API, with real scripts: what a script writes to
 * $DAGPIPE_OUTPUT is kept with its success (Track.outputs, per attempt), at most 64 KiB;
 * an input with `from` reads it, converted to its type and quoted (rule 6), or takes its
 * default, or fails its track with a reason naming the step and the output; checkGraph and
 * the definition mutations refuse a `from` that cannot hold; outputs read by a secret input
 * are masked everywhere; retries (rule 13), re-runs (rule 17) and queued pipelines (rule 14)
 * read the outputs of the attempt that succeeded.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from '../../src/generated/gql/index.ts';
import type { InputParamInput } from '../../src/generated/gql/graphql.ts';
import { AddVertex, CheckGraph, CreateGraph, CreateWholeGraph, FinishInput, RetryPipeline, StartPipeline, UpdateVertex } from '../helpers/operations.ts';
import { eventually, seedGraph, type GraphSpec } from '../helpers/seed.ts';
import { startTestApp, type TestApp } from '../helpers/test-app.ts';

const Run = graphql(`
  query OutputsRun($id: Int!) {
    pipeline(id: $id) {
      id state
      tracks {
        id name state attempt exitCode reason needsInput input script startedAt
        output { text }
        outputs { name value }
        attempts { attempt state outputs { name value } }
        blockedBy { kind missingParams }
      }
      events(first: 1000) { type reason trackState track { name } }
    }
  }
`);

const RerunFrom = graphql(`
  mutation OutputsRerunFrom($id: Int!, $from: [String!]) {
    retryPipeline(id: $id, from: $from) {
      __typename
      ... on Pipeline { id state }
      ... on Error { message field }
    }
  }
`);

const Import = graphql(`
  mutation OutputsImport($definition: String!) {
    importGraph(definition: $definition) {
      __typename
      ... on Graph { id }
      ... on Error { message field }
    }
  }
`);

const Inputs = graphql(`
  query OutputsVertexInputs($id: Int!) {
    graph(id: $id) { checked vertices { name inputs { name from } } }
  }
`);

/** Every log line of the service, to look for secrets in. */
let logs = '';
let t: TestApp;
beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs += chunk.toString();
      done();
    },
  });
  t = await startTestApp({ logger: pino({ level: 'debug' }, sink) });
});
afterAll(() => t?.stop());

type RunView = NonNullable<Awaited<ReturnType<typeof view>>>;
type TrackView = RunView['tracks'][number];

async function view(id: number) {
  return (await t.request(Run, { id })).pipeline!;
}

async function start(graphId: number, inputs?: Array<{ vertex: string; params: Record<string, unknown> }>) {
  const { startPipeline } = await t.request(StartPipeline, { graphId, ...(inputs && { inputs }) });
  if (startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(startPipeline));
  return startPipeline;
}

/** The pipeline once it is in `state` with nothing running, and its tracks by name. */
async function settled(id: number, state: string) {
  const pipeline = await eventually(async () => {
    const p = await view(id);
    return p.state === state && !p.tracks.some((x) => x.state === 'RUNNING' || x.state === 'PENDING') ? p : undefined;
  }, 30_000, `pipeline ${id} ${state}`);
  return { pipeline, track: Object.fromEntries(pipeline.tracks.map((x) => [x.name, x])) as Record<string, TrackView> };
}

/** Seeds, checks and starts a graph; returns the ended run. */
async function run(spec: GraphSpec, state = 'FINISH', inputs?: Array<{ vertex: string; params: Record<string, unknown> }>) {
  const { graphId } = await seedGraph(t, spec);
  return settled((await start(graphId, inputs)).id, state);
}

const param = (name: string, type: InputParamInput['type'], extra: Partial<InputParamInput> = {}): InputParamInput => ({ name, type, ...extra });
const outputsOf = (track: TrackView) => track.outputs.map((o) => [o.name, o.value]);
let files = 0;
const file = (what: string) => path.join(t.dir, `${what}-${++files}`);

describe("the README's example", () => {
  it('imports, checks and runs as written, and does what the README says', async () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('### Step outputs'));
    const definition = /```yaml\n([\s\S]*?)```/.exec(section)![1]!;
    const imported = (await t.request(Import, { definition })).importGraph;
    if (imported.__typename !== 'Graph') throw new Error(JSON.stringify(imported));
    expect((await t.request(CheckGraph, { id: imported.id })).checkGraph).toMatchObject({ __typename: 'Graph', checked: true });
    const id = (await start(imported.id)).id;
    const { track } = await settled(id, 'FINISH');
    expect(outputsOf(track.build!)).toEqual([
      ['tag', `v1.${id}`],
      ['notes', `built v1.${id}\nby step build`],
    ]);
    expect(track.deploy!.input).toEqual({ tag: `v1.${id}`, notes: `built v1.${id}\nby step build`, replicas: 2 });
    expect(section).toContain('(`{"tag": "v1.<id>", "notes": "built v1.<id>\\nby step build", "replicas": 2}`');
    expect(track.deploy!.output.text).toBe(`deploying v1.${id} on 2 replicas\nbuilt v1.${id}\nby step build\n`);
  });
});

describe('outputs of a step', () => {
  it('are kept with its success in the order first written, the last value of a name winning, and read by the next step', async () => {
    const { track, pipeline } = await run({
      vertices: {
        produce: {
          script: [
            'echo "port=8080" >> "$DAGPIPE_OUTPUT"',
            "printf 'notes<<EOF\\nfirst line\\nsecond = line\\nEOF\\n' >> \"$DAGPIPE_OUTPUT\"",
            "printf 'crlf=value\\r\\n' >> \"$DAGPIPE_OUTPUT\"",
            'echo "empty=" >> "$DAGPIPE_OUTPUT"',
            'echo "port=8081" >> "$DAGPIPE_OUTPUT"',
            'echo "file: $DAGPIPE_OUTPUT"',
          ].join('\n'),
        },
        consume: {
          script: `printf '%s|%s|%s|\\n' {port} "$INPUT_NOTES" {empty}`,
          inputs: [param('port', 'INTEGER', { from: 'produce.port' }), param('notes', 'STRING', { from: 'produce.notes' }), param('empty', 'STRING', { from: 'produce.empty' })],
        },
        silent: { script: 'true' },
      },
      edges: [['produce', 'consume']],
    });
    expect(outputsOf(track.produce!)).toEqual([
      ['port', '8081'],
      ['notes', 'first line\nsecond = line'],
      ['crlf', 'value'],
      ['empty', ''],
    ]);
    expect(track.produce!.output.text).toMatch(new RegExp(`^file: /.*/pipeline-${pipeline.id}/track-${track.produce!.id}-attempt-1/\\.dagpipe-output\\n$`));
    expect(track.produce!.attempts).toEqual([{ attempt: 1, state: 'SUCCEED', outputs: track.produce!.outputs }]);
    expect(track.consume!.input).toEqual({ port: 8081, notes: 'first line\nsecond = line', empty: '' });
    expect(track.consume!.script).toBe(`printf '%s|%s|%s|\\n' '8081' "$INPUT_NOTES" ''`);
    expect(track.consume!.output.text).toBe('8081|first line\nsecond = line||\n');
    expect(track.consume!.outputs).toEqual([]);
    expect(track.silent!.outputs).toEqual([]);
  });

  it('convert to int, bool and choice inputs, and reach the script as quoted data', async () => {
    const { track } = await run({
      vertices: {
        produce: {
          script: [
            `cat >> "$DAGPIPE_OUTPUT" <<'OUT'`,
            'n= 42',
            'flag=yes',
            'mode=safe',
            'evil<<END',
            "$(touch pwned) `touch pwned2` '; touch pwned3; '",
            '"; touch pwned4; " && touch pwned5',
            'END',
            'OUT',
          ].join('\n'),
        },
        consume: {
          script: "printf '%s|%s|%s\\n' {n} {flag} {mode}\nprintf '%s\\n' {evil}\nls -A",
          inputs: [
            param('n', 'INTEGER', { from: 'produce.n' }),
            param('flag', 'BOOLEAN', { from: 'produce.flag' }),
            param('mode', 'STRING', { from: 'produce.mode', choices: ['fast', 'safe'] }),
            param('evil', 'STRING', { from: 'produce.evil' }),
          ],
        },
      },
      edges: [['produce', 'consume']],
    });
    const evil = "$(touch pwned) `touch pwned2` '; touch pwned3; '\n\"; touch pwned4; \" && touch pwned5";
    expect(track.consume!.input).toEqual({ n: 42, flag: true, mode: 'safe', evil });
    // Only the output file is in the working directory: nothing ran.
    expect(track.consume!.output.text).toBe(`42|true|safe\n${evil}\n.dagpipe-output\n`);
  });

  it.each([
    ['int', 'n=eighty', param('v', 'INTEGER', { from: 'produce.n' }), 'the output "n" of step "produce" does not fit its input "v" (from produce.n): Parameter "v" must be a whole number, got "eighty".'],
    ['bool', 'b=maybe', param('v', 'BOOLEAN', { from: 'produce.b' }), 'the output "b" of step "produce" does not fit its input "v" (from produce.b): Parameter "v" must be true or false, got "maybe".'],
    ['choice', 'm=reckless', param('v', 'STRING', { from: 'produce.m', choices: ['fast', 'safe'] }), 'the output "m" of step "produce" does not fit its input "v" (from produce.m): Parameter "v" must be one of "fast", "safe".'],
  ])('that does not convert to a %s input fails the reading track before it starts, and the pipeline', async (_type, written, input, reason) => {
    const { track, pipeline } = await run(
      {
        vertices: {
          produce: { script: `echo '${written}' >> "$DAGPIPE_OUTPUT"` },
          consume: { script: 'echo ran', inputs: [input] },
          after: { script: 'echo ran' },
        },
        edges: [
          ['produce', 'consume'],
          ['consume', 'after'],
        ],
      },
      'FAILED',
    );
    expect(track.consume).toMatchObject({ state: 'FAILED', exitCode: null, startedAt: null, script: null, reason: `Step "consume" cannot start: ${reason}` });
    expect(track.consume!.output.text).toBe('');
    expect(track.after).toMatchObject({ state: 'CANCELLED', reason: 'upstream consume failed' });
    const events = pipeline.events.map((e) => [e.type, e.track?.name ?? null, e.reason]);
    expect(events).toContainEqual(['track:failed', 'consume', `Step "consume" cannot start: ${reason}`]);
    expect(events.at(-1)).toEqual(['pipeline:failed', null, 'consume failed']);
  });

  it('that is missing takes the input default, and without one fails the track, naming the step and the output', async () => {
    const spec = (withDefault: boolean): GraphSpec => ({
      vertices: {
        produce: { script: 'echo "other=1" >> "$DAGPIPE_OUTPUT"' },
        consume: { script: 'echo port {port}', inputs: [param('port', 'INTEGER', { from: 'produce.port', ...(withDefault && { default: 4000 }) })] },
      },
      edges: [['produce', 'consume']],
    });
    const defaulted = await run(spec(true));
    expect(defaulted.track.consume!.output.text).toBe('port 4000\n');
    const missing = await run(spec(false), 'FAILED');
    expect(missing.track.consume!.reason).toBe(
      'Step "consume" cannot start: its input "port" reads the output "port" of step "produce" (from produce.port), which that step did not write, and the input has no default. Have "produce" write port=<value> to $DAGPIPE_OUTPUT, or give the input a default.',
    );
  });

  it('are read from an ancestor further up, through a join', async () => {
    const { track } = await run({
      vertices: {
        root: { script: 'echo "tag=v1.2" >> "$DAGPIPE_OUTPUT"' },
        left: { script: 'echo "side=left" >> "$DAGPIPE_OUTPUT"' },
        right: { script: 'true' },
        join: { script: 'echo {tag} {side}', inputs: [param('tag', 'STRING', { from: 'root.tag' }), param('side', 'STRING', { from: 'left.side' })] },
      },
      edges: [
        ['root', 'left'],
        ['root', 'right'],
        ['left', 'join'],
        ['right', 'join'],
      ],
    });
    expect(track.join!.output.text).toBe('v1.2 left\n');
  });
});

describe('the output file', () => {
  it.each([
    ['exactly 65536 bytes', `printf 'big=%s\\n' "$(head -c 65531 /dev/zero | tr '\\0' a)" >> "$DAGPIPE_OUTPUT"`, 'SUCCEED', null],
    ['65537 bytes', `printf 'big=%s\\n' "$(head -c 65532 /dev/zero | tr '\\0' a)" >> "$DAGPIPE_OUTPUT"`, 'FAILED', 65537],
    ['a sparse file of 1 GiB (never read whole)', 'truncate -s 1G "$DAGPIPE_OUTPUT"', 'FAILED', 1024 ** 3],
  ])('of %s is kept or fails the track with the bytes written', async (_what, script, state, bytes) => {
    const { track } = await run({ vertices: { produce: { script } } }, state === 'SUCCEED' ? 'FINISH' : 'FAILED');
    expect(track.produce).toMatchObject({ state, exitCode: 0 });
    if (bytes === null) {
      expect(track.produce!.outputs).toEqual([{ name: 'big', value: 'a'.repeat(65531) }]);
    } else {
      expect(track.produce!.reason).toBe(
        `The script wrote ${bytes} bytes of outputs; at most 65536 are kept; write large data to a file and pass its path as an output instead.`,
      );
      expect(track.produce!.outputs).toEqual([]);
    }
  });

  it.each([
    ['a line that is not an output', `printf 'a=1\\nnot an output\\n' >> "$DAGPIPE_OUTPUT"`, 'line 2 is neither name=value nor name<<DELIMITER.'],
    ['a bad name', `echo 'my-port=1' >> "$DAGPIPE_OUTPUT"`, 'line 1: "my-port" is not an output name'],
    ['a heredoc that never ends', `printf 'notes<<EOF\\nx\\n' >> "$DAGPIPE_OUTPUT"`, 'the multi-line value of "notes" that starts on line 1 never ends'],
    ['a symbolic link in its place', 'ln -sf /etc/hostname "$DAGPIPE_OUTPUT"', 'the script put a symbolic link in its place, which is not followed.'],
    ['a FIFO in its place', 'rm "$DAGPIPE_OUTPUT"; mkfifo "$DAGPIPE_OUTPUT"', 'the script put something other than a plain file in its place.'],
    ['bytes that are not UTF-8', `printf 'a=\\xff\\xfe\\n' >> "$DAGPIPE_OUTPUT"`, 'it is not UTF-8 text.'],
  ])('with %s fails the track although the script exited 0, naming what is wrong', async (_what, script, reason) => {
    const { track } = await run({ vertices: { produce: { script } } }, 'FAILED');
    expect(track.produce).toMatchObject({ state: 'FAILED', exitCode: 0 });
    expect(track.produce!.reason).toContain('The script exited 0, but its outputs ($DAGPIPE_OUTPUT) could not be read: ');
    expect(track.produce!.reason).toContain(reason);
  });

  it('removed by the script holds no outputs; a failed attempt keeps none', async () => {
    const removed = await run({ vertices: { produce: { script: 'echo "a=1" >> "$DAGPIPE_OUTPUT"; rm "$DAGPIPE_OUTPUT"' } } });
    expect(removed.track.produce!.outputs).toEqual([]);
    const failed = await run({ vertices: { produce: { script: 'echo "a=1" >> "$DAGPIPE_OUTPUT"; exit 3' } } }, 'FAILED');
    expect(failed.track.produce).toMatchObject({ state: 'FAILED', exitCode: 3, outputs: [] });
  });
});

describe('from in definitions', () => {
  it('checkGraph refuses an unknown step, one that is not an ancestor, or mixed secrecy, naming the field, and checks nothing', async () => {
    const cases: Array<[GraphSpec, string, RegExp]> = [
      [
        { vertices: { a: { script: 'true' }, b: { script: 'true', inputs: [param('port', 'INTEGER', { from: 'nope.port' })] } }, edges: [['a', 'b']] },
        'vertices.b.inputs.port.from',
        /No step named "nope" is in this graph/,
      ],
      [
        { vertices: { a: { script: 'true' }, b: { script: 'true', inputs: [param('port', 'INTEGER', { from: 'c.port' })] }, c: { script: 'true' } }, edges: [['a', 'b']] },
        'vertices.b.inputs.port.from',
        /Step "c" is not an ancestor of "b"/,
      ],
      [
        { vertices: { a: { script: 'true', inputs: [param('port', 'INTEGER', { from: 'b.port' })] }, b: { script: 'true' } }, edges: [['a', 'b']] },
        'vertices.a.inputs.port.from',
        /Step "b" is not an ancestor of "a"/,
      ],
      [
        {
          vertices: {
            a: { script: 'true' },
            b: { script: 'true', inputs: [param('t', 'STRING', { from: 'a.token', secret: true })] },
            c: { script: 'true', inputs: [param('t', 'STRING', { from: 'a.token' })] },
          },
          edges: [
            ['a', 'b'],
            ['a', 'c'],
          ],
        },
        'vertices.c.inputs.t.secret',
        /The output a.token is read by the secret input vertices.b.inputs.t too/,
      ],
    ];
    for (const [spec, field, message] of cases) {
      const { graphId } = await seedGraph(t, { ...spec, check: false });
      const { checkGraph } = await t.request(CheckGraph, { id: graphId });
      expect(checkGraph).toMatchObject({ __typename: 'ValidationError', field });
      expect((checkGraph as { message: string }).message).toMatch(message);
      expect((await t.request(Inputs, { id: graphId })).graph!.checked).toBe(false);
    }
  });

  it('addVertex and updateVertex refuse a malformed from, from with required, and a step reading its own outputs', async () => {
    const created = await t.request(CreateGraph, { name: `from-refusals-${Date.now()}` });
    if (created.createGraph.__typename !== 'Graph') throw new Error();
    const graphId = created.createGraph.id;
    for (const [input, field, message] of [
      [param('port', 'INTEGER', { from: 'port' }), 'inputs.port.from', /as "<vertex>\.<output>"/],
      [param('port', 'INTEGER', { from: 'a.my-port' }), 'inputs.port.from', /as "<vertex>\.<output>"/],
      [param('port', 'INTEGER', { from: 'a.port', required: true }), 'inputs.port.required', /cannot be required/],
      [param('port', 'INTEGER', { from: 'self.port' }), 'inputs.port.from', /Step "self" cannot read its own outputs/],
    ] as const) {
      const { addVertex } = await t.request(AddVertex, { graphId, input: { name: 'self', script: 'true', inputs: [input] } });
      expect(addVertex).toMatchObject({ __typename: 'ValidationError', field });
      expect((addVertex as { message: string }).message).toMatch(message);
    }
    const { addVertex } = await t.request(AddVertex, { graphId, input: { name: 'self', script: 'true', inputs: [param('port', 'INTEGER', { from: 'later.port' })] } });
    expect(addVertex).toMatchObject({ __typename: 'Vertex', inputs: [{ name: 'port' }] });
    const vertexId = (addVertex as { id: number }).id;
    const { updateVertex } = await t.request(UpdateVertex, { id: vertexId, input: { name: 'later' } });
    expect(updateVertex).toMatchObject({ __typename: 'ValidationError', field: 'inputs.port.from' });
    expect((await t.request(Inputs, { id: graphId })).graph!.vertices).toEqual([{ name: 'self', inputs: [{ name: 'port', from: 'later.port' }] }]);
  });

  it('createGraph and importGraph check from against their whole graph, naming the field', async () => {
    const { createGraph } = await t.request(CreateWholeGraph, {
      name: `from-whole-${Date.now()}`,
      vertices: [
        { name: 'a', script: 'true' },
        { name: 'b', script: 'true', inputs: [param('port', 'INTEGER', { from: 'a.port' })] },
      ],
      edges: [],
    });
    expect(createGraph).toMatchObject({ __typename: 'ValidationError', field: 'vertices.1.inputs.port.from' });
    expect((createGraph as { message: string }).message).toMatch(/Step "a" is not an ancestor of "b"/);
    const definition = [
      `name: from-import-${Date.now()}`,
      'vertices:',
      '  - name: a',
      '    script: echo "port=1" >> "$DAGPIPE_OUTPUT"',
      '  - name: b',
      '    script: echo {port}',
      '    inputs: { port: { type: int, from: a.port } }',
      'edges: []',
    ].join('\n');
    const refused = (await t.request(Import, { definition })).importGraph;
    expect(refused).toMatchObject({ __typename: 'ValidationError', field: 'definition.vertices.1.inputs.port.from' });
    const imported = (await t.request(Import, { definition: definition.replace('edges: []', 'edges: [{ tail: a, head: b }]') })).importGraph;
    if (imported.__typename !== 'Graph') throw new Error(JSON.stringify(imported));
    expect((await t.request(Inputs, { id: imported.id })).graph!.vertices[1]).toEqual({ name: 'b', inputs: [{ name: 'port', from: 'a.port' }] });
    expect((await t.request(CheckGraph, { id: imported.id })).checkGraph).toMatchObject({ __typename: 'Graph', checked: true });
    const { track } = await settled((await start(imported.id)).id, 'FINISH');
    expect(track.b!.output.text).toBe('1\n');
  });
});

describe('inputs that read outputs, and the operator', () => {
  const gated = (gate: string): GraphSpec => ({
    vertices: {
      produce: { script: `while [ ! -e ${gate} ]; do sleep 0.05; done\necho "port=9000" >> "$DAGPIPE_OUTPUT"` },
      consume: {
        script: 'echo {who} {port}',
        inputs: [param('who', 'STRING', { required: true }), param('port', 'INTEGER', { from: 'produce.port' })],
      },
    },
    edges: [['produce', 'consume']],
  });

  it('a from input is never given at startPipeline or finishInput, and never missing', async () => {
    const gate = file('gate');
    const { graphId } = await seedGraph(t, gated(gate));
    const refused = await t.request(StartPipeline, { graphId, inputs: [{ vertex: 'consume', params: { who: 'Ada', port: 1 } }] });
    expect(refused.startPipeline).toMatchObject({ __typename: 'ValidationError', field: 'inputs.0.params.port' });
    expect((refused.startPipeline as { message: string }).message).toBe(
      'Parameter "port" takes its value from the step output produce.port (from), so it cannot be given; leave it out.',
    );
    const started = await start(graphId);
    const consume = (await view(started.id)).tracks.find((x) => x.name === 'consume')!;
    expect(consume).toMatchObject({ state: 'WAITING', needsInput: true, input: null, script: null, blockedBy: { kind: 'PREDECESSORS', missingParams: ['who'] } });
    const given = await t.request(FinishInput, { trackId: consume.id, params: { who: 'Ada', port: 2 } });
    expect(given.finishInput).toMatchObject({ __typename: 'ValidationError', field: 'params.port' });
    // While it waits, finishInput keeps the given values; the script comes when it is ready.
    const supplied = await t.request(FinishInput, { trackId: consume.id, params: { who: 'Ada' } });
    expect(supplied.finishInput).toMatchObject({ __typename: 'Track', state: 'WAITING', needsInput: false, input: { who: 'Ada' }, script: null });
    expect((await view(started.id)).tracks.find((x) => x.name === 'consume')!.blockedBy).toMatchObject({ kind: 'PREDECESSORS', missingParams: [] });
    writeFileSync(gate, '');
    const { track } = await settled(started.id, 'FINISH');
    expect(track.consume).toMatchObject({ input: { who: 'Ada', port: 9000 }, script: "echo 'Ada' '9000'" });
    expect(track.consume!.output.text).toBe('Ada 9000\n');
  });

  it('finishInput on a ready track renders it from the outputs at once', async () => {
    const gate = file('gate');
    writeFileSync(gate, '');
    const { graphId } = await seedGraph(t, gated(gate));
    const started = await start(graphId);
    const consume = await eventually(async () => {
      const x = (await view(started.id)).tracks.find((tr) => tr.name === 'consume')!;
      return x.state === 'PENDING' ? x : undefined;
    });
    expect(consume).toMatchObject({ needsInput: true, blockedBy: { kind: 'INPUT', missingParams: ['who'] } });
    const supplied = await t.request(FinishInput, { trackId: consume.id, params: { who: 'Grace' } });
    expect(supplied.finishInput).toMatchObject({ __typename: 'Track', needsInput: false, input: { who: 'Grace', port: 9000 }, script: "echo 'Grace' '9000'" });
    const { track } = await settled(started.id, 'FINISH');
    expect(track.consume!.output.text).toBe('Grace 9000\n');
  });
});

describe('outputs read by a secret input', () => {
  it('are masked on the step that wrote them and everywhere the reading step shows them', async () => {
    // The step fetches it (here from a file): neither the definition nor the start holds it.
    const secret = 's3cr3t-tok-5f1e';
    const vault = file('vault');
    writeFileSync(vault, secret);
    const { track, pipeline } = await run({
      vertices: {
        login: { script: `echo "token=$(cat ${vault})" >> "$DAGPIPE_OUTPUT"\necho "url=https://ada:$(cat ${vault})@example.com" >> "$DAGPIPE_OUTPUT"\necho "user=ada" >> "$DAGPIPE_OUTPUT"` },
        use: {
          script: 'echo using {token} as {user}\necho "env $INPUT_TOKEN"',
          inputs: [param('token', 'STRING', { from: 'login.token', secret: true }), param('user', 'STRING', { from: 'login.user' })],
        },
      },
      edges: [['login', 'use']],
    });
    expect(outputsOf(track.login!)).toEqual([
      ['token', '***'],
      ['url', 'https://ada:***@example.com'],
      ['user', 'ada'],
    ]);
    expect(track.login!.attempts[0]!.outputs).toEqual(track.login!.outputs);
    expect(track.use).toMatchObject({ input: { token: '***', user: 'ada' }, script: 'echo using *** as \'ada\'\necho "env $INPUT_TOKEN"' });
    expect(track.use!.output.text).toBe('using *** as ada\nenv ***\n');
    expect(JSON.stringify(pipeline)).not.toContain(secret);
    expect(logs).not.toContain(secret);
    expect(logs).toContain(`"pipelineId":${pipeline.id}`);
  });

  it('that does not fit fails the track without showing the value', async () => {
    const pin = file('pin');
    writeFileSync(pin, 'hunter2-9c1');
    const { track, pipeline } = await run(
      {
        vertices: {
          vault: { script: `echo "pin=$(cat ${pin})" >> "$DAGPIPE_OUTPUT"` },
          use: { script: 'echo {pin}', inputs: [param('pin', 'INTEGER', { from: 'vault.pin', secret: true })] },
        },
        edges: [['vault', 'use']],
      },
      'FAILED',
    );
    expect(track.use!.reason).toContain('Parameter "pin" must be a whole number (the value given is secret, so it is not shown).');
    expect(JSON.stringify(pipeline)).not.toContain('hunter2-9c1');
    expect(logs).not.toContain('hunter2-9c1');
  });
});

describe('outputs across attempts', () => {
  it('an automatic retry (rule 13): the next step reads the attempt that succeeded', async () => {
    const counter = file('runs');
    const { track } = await run({
      vertices: {
        produce: {
          script: `n=$(( $(cat ${counter} 2>/dev/null || echo 0) + 1 )); echo $n > ${counter}\necho "port=$n" >> "$DAGPIPE_OUTPUT"\n[ $n -ge 2 ] || exit 3`,
          retries: 1,
          retryDelaySeconds: 0,
        },
        consume: { script: 'echo port {port}', inputs: [param('port', 'INTEGER', { from: 'produce.port' })] },
      },
      edges: [['produce', 'consume']],
    });
    expect(track.produce!.attempts).toEqual([
      { attempt: 1, state: 'FAILED', outputs: [] },
      { attempt: 2, state: 'SUCCEED', outputs: [{ name: 'port', value: '2' }] },
    ]);
    expect(track.consume!.output.text).toBe('port 2\n');
  });

  it('a re-run from a step (rule 17) reads the outputs anew; one from below reads the kept ones; earlier ones stay readable', async () => {
    const { graphId } = await seedGraph(t, {
      vertices: {
        produce: { script: 'echo "n=$TRACK_ATTEMPT" >> "$DAGPIPE_OUTPUT"' },
        consume: { script: 'echo n {n}', inputs: [param('n', 'INTEGER', { from: 'produce.n' })] },
      },
      edges: [['produce', 'consume']],
    });
    const id = (await start(graphId)).id;
    expect((await settled(id, 'FINISH')).track.consume!.output.text).toBe('n 1\n');

    expect((await t.request(RerunFrom, { id, from: ['produce'] })).retryPipeline).toMatchObject({ state: 'RUNNING' });
    const again = await settled(id, 'FINISH');
    expect(again.track.produce!.attempts).toEqual([
      { attempt: 1, state: 'SUCCEED', outputs: [{ name: 'n', value: '1' }] },
      { attempt: 2, state: 'SUCCEED', outputs: [{ name: 'n', value: '2' }] },
    ]);
    expect(again.track.consume).toMatchObject({ attempt: 2, input: { n: 2 }, script: "echo n '2'" });
    expect(again.track.consume!.output.text).toBe('n 2\n');

    expect((await t.request(RerunFrom, { id, from: ['consume'] })).retryPipeline).toMatchObject({ state: 'RUNNING' });
    const below = await settled(id, 'FINISH');
    expect(below.track.produce!.attempt).toBe(2);
    expect(below.track.consume).toMatchObject({ attempt: 3 });
    expect(below.track.consume!.output.text).toBe('n 2\n');
  });

  it('a retry of a failed pipeline (rule 9) renders the failed step again from the outputs', async () => {
    const fixed = file('fixed');
    const { graphId } = await seedGraph(t, {
      vertices: {
        produce: { script: 'echo "n=7" >> "$DAGPIPE_OUTPUT"' },
        consume: { script: `test -e ${fixed} || exit 4\necho n {n}`, inputs: [param('n', 'INTEGER', { from: 'produce.n' })] },
      },
      edges: [['produce', 'consume']],
    });
    const id = (await start(graphId)).id;
    expect((await settled(id, 'FAILED')).track.consume).toMatchObject({ exitCode: 4, input: { n: 7 } });
    writeFileSync(fixed, '');
    expect((await t.request(RetryPipeline, { id })).retryPipeline).toMatchObject({ state: 'RUNNING' });
    const { track } = await settled(id, 'FINISH');
    expect(track.consume).toMatchObject({ attempt: 2, input: { n: 7 } });
    expect(track.consume!.output.text).toBe('n 7\n');
  });

  it('a queued pipeline (rule 14) released later resolves its inputs, also a retried one whose reader is ready when it starts', async () => {
    const gates = file('gates');
    const ok = file('ok');
    const { graphId } = await seedGraph(t, {
      maxConcurrentPipelines: 1,
      vertices: {
        produce: { script: `while [ ! -e ${gates}-$PIPELINE_ID ]; do sleep 0.05; done\necho "n=$PIPELINE_ID" >> "$DAGPIPE_OUTPUT"` },
        consume: { script: `test -e ${ok} || exit 4\necho n {n}`, inputs: [param('n', 'INTEGER', { from: 'produce.n' })] },
      },
      edges: [['produce', 'consume']],
    });
    const open = (id: number) => writeFileSync(`${gates}-${id}`, '');
    // p1 fails at consume; p2 runs while p1 is retried, so p1 queues with consume WAITING.
    const p1 = await start(graphId);
    open(p1.id);
    await settled(p1.id, 'FAILED');
    const p2 = await start(graphId);
    expect(p2.state).toBe('RUNNING');
    const p3 = await start(graphId);
    expect(p3.state).toBe('QUEUED');
    writeFileSync(ok, '');
    expect((await t.request(RetryPipeline, { id: p1.id })).retryPipeline).toMatchObject({ state: 'QUEUED' });
    const waiting = (await view(p1.id)).tracks.find((x) => x.name === 'consume')!;
    expect(waiting).toMatchObject({ state: 'WAITING', attempt: 2, script: null, input: {}, needsInput: false, blockedBy: { kind: 'PIPELINE_QUEUED' } });
    // p2 ends: p3 (queued first) starts and runs to its end, then p1, whose consume is ready at once.
    open(p2.id);
    open(p3.id);
    expect((await settled(p2.id, 'FINISH')).track.consume!.output.text).toBe(`n ${p2.id}\n`);
    expect((await settled(p3.id, 'FINISH')).track.consume!.output.text).toBe(`n ${p3.id}\n`);
    const { track } = await settled(p1.id, 'FINISH');
    expect(track.consume).toMatchObject({ attempt: 2, input: { n: p1.id } });
    expect(track.consume!.output.text).toBe(`n ${p1.id}\n`);
    expect(existsSync(ok)).toBe(true);
  });
});
