/**
 * pipectl end to end: the real executable (dist/pipectl.js, package.json's "bin", built
 * from src/cli/ by the global setup when stale) against a real server on a free port, with
 * real scripts. Nothing is mocked. Each run is a separate process, so exit codes and output are exactly what a shell or
 * a CI job sees.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { graphql } from '../../src/generated/gql/index.ts';
import { CheckGraph, FinishInput, PipelineDetail, StartPipeline } from '../helpers/operations.ts';
import { eventually, seedGraph } from '../helpers/seed.ts';
import { startTestApp, type TestApp } from '../helpers/test-app.ts';

const PIPECTL = path.resolve('dist/pipectl.js');
const FIXTURES = path.resolve('test/cli/fixtures');
const hasPython = spawnSync('python3', ['-c', 'import pty'], { stdio: 'ignore' }).status === 0;

const ImportFixture = graphql(`
  mutation CliTestImport($definition: String!, $format: DefinitionFormat, $name: String) {
    importGraph(definition: $definition, format: $format, name: $name) {
      __typename
      ... on Graph { id }
      ... on Error { message field }
    }
  }
`);

const CliTestRuns = graphql(`
  query CliTestRuns($graphId: Int!) {
    pipelines(graphId: $graphId) { id }
  }
`);

const TrackOutputText = graphql(`
  query CliTestTrackOutput($id: Int!) {
    track(id: $id) { state output { text } }
  }
`);

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface Running {
  done: Promise<Result>;
  /** Resolves once stdout matches. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** stdout so far. */
  output(): string;
}

let t: TestApp;

/** Runs pipectl against the test server (PIPECTL_URL), without a terminal. */
function pipectl(args: string[], options: { env?: Record<string, string>; command?: string[] } = {}): Running {
  const argv = options.command ?? [process.execPath, PIPECTL, ...args];
  const child = spawn(argv[0]!, argv.slice(1), {
    env: { ...process.env, PIPECTL_URL: t.url, NO_COLOR: '1', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters: Array<() => void> = [];
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    for (const check of [...waiters]) check();
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<Result>((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
  return {
    done,
    output: () => stdout,
    waitFor(pattern, timeoutMs = 15_000) {
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`pipectl ${args.join(' ')} did not print ${pattern} within ${timeoutMs} ms:\n${stdout}\n${stderr}`)), timeoutMs);
        const check = () => {
          if (!pattern.test(stdout)) return;
          clearTimeout(timer);
          waiters.splice(waiters.indexOf(check), 1);
          resolve();
        };
        waiters.push(check);
        check();
        void done.then(() => check());
      });
    },
  };
}

const run = (args: string[], env?: Record<string, string>) => pipectl(args, { env }).done;

/** Imports and checks a fixture through the API (apply itself is tested once). */
async function importFixture(file: string, name?: string): Promise<number> {
  const definition = readFileSync(path.join(FIXTURES, file), 'utf8');
  const { importGraph } = await t.request(ImportFixture, { definition, format: file.endsWith('.json') ? 'JSON' : 'YAML', name: name ?? null });
  if (importGraph.__typename !== 'Graph') throw new Error(JSON.stringify(importGraph));
  const { checkGraph } = await t.request(CheckGraph, { id: importGraph.id });
  if (checkGraph.__typename !== 'Graph') throw new Error(JSON.stringify(checkGraph));
  return importGraph.id;
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function startedId(result: Result): Promise<number> {
  const match = /Started pipeline (\d+)/.exec(result.stdout);
  if (!match) throw new Error(`no pipeline id in: ${result.stdout}${result.stderr}`);
  return Number(match[1]);
}

beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t?.stop());

// Independent runs (each its own graph), so they overlap: most of the time is process start-up.
describe.concurrent('pipectl', { timeout: 60_000 }, () => {
  it('apply imports and checks a definition file and prints its id; the same name again is refused with a way out', async ({ expect }) => {
    const applied = await run(['apply', path.join(FIXTURES, 'greet.yaml')]);
    expect(applied).toMatchObject({ code: 0, stderr: '' });
    const id = Number(/as graph (\d+)/.exec(applied.stdout)![1]);
    expect(applied.stdout).toContain(`Imported "cli greet" as graph ${id} (3 vertices, 2 edges), checked.`);

    const again = await run(['apply', path.join(FIXTURES, 'greet.yaml')]);
    expect(again.code).toBe(3);
    expect(again.stderr).toContain(`A graph named "cli greet" (graph ${id}) already exists`);
    expect(again.stderr).toContain('--name "cli greet v2"');

    const listed = await run(['graphs']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`^${id} +cli greet +3 +checked +-$`, 'm'));
  });

  it('start --input --watch runs to FINISH, logs every track, and exits 0', async ({ expect }) => {
    await importFixture('greet.yaml', 'cli greet watched');
    const result = await run(['start', 'cli greet watched', '--input', 'report.operator=Ada', '--input', 'who=pipectl', '--watch']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const id = await startedId(result);
    for (const name of ['hello', 'count', 'report']) expect(result.stdout).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d  ${name} +SUCCEED after`, 'm'));
    // Commit order: the last track before the pipeline.
    expect(result.stdout.indexOf('report SUCCEED')).toBeLessThan(result.stdout.indexOf(`pipeline ${id} FINISH`));
    expect(result.stdout).toMatch(new RegExp(`^pipeline ${id} FINISH after [\\d.]+s: 3/3 succeeded$`, 'm'));
    const { pipeline } = await t.request(PipelineDetail, { id });
    expect(pipeline!.state).toBe('FINISH');
    const report = pipeline!.tracks.find((x) => x.name === 'report')!;
    const logs = await run(['logs', String(report.id)]);
    expect(logs).toEqual({ code: 0, stdout: 'report by Ada\n', stderr: '' });
    const hello = pipeline!.tracks.find((x) => x.name === 'hello')!;
    expect((await t.request(TrackOutputText, { id: hello.id })).track!.output.text).toBe('hello from pipectl\n');
  });

  it('a failing run exits 1 and prints the failing track\'s output tail and how to resume', async ({ expect }) => {
    await importFixture('fails.json');
    const result = await run(['start', 'cli fails', '--watch']);
    expect(result.code).toBe(1);
    const id = await startedId(result);
    expect(result.stdout).toMatch(/broken +FAILED after [\d.]+s: The script exited with code 3\./);
    expect(result.stdout).toMatch(/after +CANCELLED: upstream broken failed/);
    const tail = result.stdout.slice(result.stdout.indexOf('── broken'));
    expect(tail).toMatch(/^── broken \(track \d+\) failed; the last 20 line\(s\) of its output:\n {2}│ line 12\n/);
    expect(tail).toContain('  │ line 30\n  │ disk full\n');
    expect(tail).not.toContain('line 11\n');
    expect(result.stdout).toContain(`pipectl retry ${id} --watch`);
  });

  it('cancel from another call ends the watching process with exit 2', async ({ expect }) => {
    const { graphId } = await seedGraph(t, { name: 'cli sleeper', vertices: { sleeper: { script: 'echo sleeping; sleep 30' } } });
    const started = await t.request(StartPipeline, { graphId });
    if (started.startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(started));
    const id = started.startPipeline.id;
    const watcher = pipectl(['watch', String(id)]);
    await watcher.waitFor(/sleeper +RUNNING/);
    const cancelled = await run(['cancel', String(id)]);
    expect(cancelled).toMatchObject({ code: 0, stdout: `Cancelled pipeline ${id} "cli sleeper". Resume it with: pipectl retry ${id}\n` });
    const watched = await watcher.done;
    expect(watched.code).toBe(2);
    expect(watched.stdout).toMatch(/sleeper +CANCELLED/);
    expect(watched.stdout).toMatch(new RegExp(`^pipeline ${id} CANCELLED after`, 'm'));
    // Cancelling it again is refused in the user's terms.
    const twice = await run(['cancel', String(id)]);
    expect(twice.code).toBe(3);
    expect(twice.stderr).toMatch(new RegExp(`^pipectl: Pipeline ${id} was not cancelled: .+`));
  });

  it('retry --watch resumes a failed pipeline and exits 0 when it finishes', async ({ expect }) => {
    const flag = path.join(t.dir, 'retry-flag');
    const { graphId } = await seedGraph(t, { name: 'cli flaky', vertices: { flaky: { script: `test -e ${flag} || { echo not yet; exit 1; }` } } });
    const first = await run(['start', String(graphId), '--watch']);
    expect(first.code).toBe(1);
    const id = await startedId(first);
    writeFileSync(flag, '');
    const retried = await run(['retry', String(id), '--watch']);
    expect(retried.code).toBe(0);
    expect(retried.stdout).toContain(`Retrying pipeline ${id} "cli flaky": 1 track(s) back in play: flaky (attempt 2).`);
    // This attempt only, not the history.
    expect(retried.stdout).not.toContain('FAILED');
    expect(retried.stdout).toMatch(/flaky +SUCCEED/);
    expect(retried.stdout).toMatch(new RegExp(`^pipeline ${id} FINISH`, 'm'));
  });

  it('retry --from re-runs a finished pipeline from a step and what follows it; an unknown step is refused naming it', async ({ expect }) => {
    const { graphId } = await seedGraph(t, {
      name: 'cli rerun',
      vertices: { fetch: { script: 'echo fetch $TRACK_ATTEMPT' }, build: { script: 'echo build $TRACK_ATTEMPT' }, ship: { script: 'echo ship $TRACK_ATTEMPT' } },
      edges: [['fetch', 'build'], ['build', 'ship']],
    });
    const first = await run(['start', String(graphId), '--watch']);
    expect(first.code).toBe(0);
    const id = await startedId(first);
    const unknown = await run(['retry', String(id), '--from', 'biuld']);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toMatch(/^pipectl: Pipeline \d+ was not re-run: .*no vertex named "biuld"\. Its vertices: "fetch", "build", "ship"\./m);
    const rerun = await run(['retry', String(id), '--from', 'build', '--watch']);
    expect(rerun).toMatchObject({ code: 0, stderr: '' });
    expect(rerun.stdout).toContain(`Re-running pipeline ${id} "cli rerun" from build: 2 track(s) back in play: build (attempt 2), ship (attempt 2).`);
    expect(rerun.stdout).toMatch(/build +SUCCEED/);
    expect(rerun.stdout).not.toMatch(/fetch +(PENDING|RUNNING|SUCCEED)/);
    expect(rerun.stdout).toMatch(new RegExp(`^pipeline ${id} FINISH`, 'm'));
    const { pipeline } = await t.request(PipelineDetail, { id });
    expect(pipeline!.tracks.map((x) => `${x.name}@${x.attempt} ${x.output.text.trim()}`)).toEqual(['fetch@1 fetch 1', 'build@2 build 2', 'ship@2 ship 2']);
  });

  it('start --idempotency-key starts a graph once: a repeat shows (and watches) the same pipeline', async ({ expect }) => {
    const { graphId } = await seedGraph(t, { name: 'cli once', vertices: { once: { script: 'echo once' } } });
    const args = ['start', 'cli once', '--idempotency-key', 'ci-build-81', '--watch'];
    const first = await run(args);
    expect(first).toMatchObject({ code: 0, stderr: '' });
    const id = Number(/^Pipeline (\d+) "cli once" of graph \d+ "cli once" is the start with idempotency key "ci-build-81" \(RUNNING, 1 track\(s\)\)/m.exec(first.stdout)![1]);
    expect(first.stdout).toMatch(new RegExp(`^pipeline ${id} FINISH`, 'm'));
    const again = await run(args);
    expect(again).toMatchObject({ code: 0, stderr: '' });
    expect(again.stdout).toContain(`Pipeline ${id} "cli once" of graph ${graphId} "cli once" is the start with idempotency key "ci-build-81" (FINISH, 1 track(s)); starting it with this key again returns the same pipeline.`);
    expect(again.stdout).toMatch(new RegExp(`^pipeline ${id} FINISH`, 'm'));
    const { pipelines } = await t.request(CliTestRuns, { graphId });
    expect(pipelines.map((p) => p.id)).toEqual([id]);
    const bad = await run(['start', 'cli once', '--idempotency-key', 'x'.repeat(201)]);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/idempotencyKey is 201 characters long; at most 200 are allowed/);
  });

  it('without a terminal, start does not prompt: the watch says which track waits for which input, and ends when it is given', async ({ expect }) => {
    await importFixture('greet.yaml', 'cli greet no input');
    const watcher = pipectl(['start', 'cli greet no input', '--watch']);
    await watcher.waitFor(/The run waits for finishInput on 1 track\(s\):\n {2}report \(track \d+\) needs operator: /);
    const id = Number(/Started pipeline (\d+)/.exec(watcher.output())![1]);
    const report = (await t.request(PipelineDetail, { id })).pipeline!.tracks.find((x) => x.name === 'report')!;
    expect(report.needsInput).toBe(true);
    expect(watcher.output()).toContain(`report (track ${report.id}) needs operator: mutation { finishInput(trackId: ${report.id}, params: {operator: "…"})`);
    expect((await t.request(FinishInput, { trackId: report.id, params: { operator: 'Grace' } })).finishInput.__typename).toBe('Track');
    const result = await watcher.done;
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/report +PENDING waits for input: operator \(finishInput trackId \d+\)/);
  });

  it('logs --follow prints a running track\'s output as it comes, to its end', async ({ expect }) => {
    const gate = path.join(t.dir, 'logs-gate');
    const { graphId } = await seedGraph(t, {
      name: 'cli chatty',
      vertices: { chatty: { script: `echo one; echo two >&2; while [ ! -e ${gate} ]; do sleep 0.05; done; echo three; echo four` } },
    });
    const started = await t.request(StartPipeline, { graphId });
    if (started.startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(started));
    const trackId = started.startPipeline.tracks[0]!.id;
    await eventually(async () => ((await t.request(TrackOutputText, { id: trackId })).track!.output.text.includes('two') ? true : undefined));
    const follower = pipectl(['logs', String(trackId), '--follow']);
    await follower.waitFor(/one\ntwo\n/);
    writeFileSync(gate, '');
    expect(await follower.done).toEqual({ code: 0, stdout: 'one\ntwo\nthree\nfour\n', stderr: '' });
  });

  it('apply creates a definition\'s schedules and, applied again, updates only them; schedules lists them; schedule pause and resume', async ({ expect }) => {
    const file = path.join(FIXTURES, 'nightly.yaml');
    const applied = await run(['apply', file]);
    expect(applied).toMatchObject({ code: 0, stderr: '' });
    expect(applied.stdout).toMatch(/^Schedules: cli nightly backup \(30 2 \* \* \* Europe\/Berlin, next run \d{4}-\d\d-\d\d 02:30:00\)\.$/m);
    const graphId = Number(/as graph (\d+)/.exec(applied.stdout)![1]);

    // The same graph with another schedule time: only the schedule changes.
    const changed = path.join(t.dir, 'nightly-0300.yaml');
    writeFileSync(changed, readFileSync(file, 'utf8').replace('cron: 30 2 * * *', 'cron: 0 3 * * *'));
    const reapplied = await run(['apply', changed]);
    expect(reapplied).toMatchObject({ code: 0, stderr: '' });
    expect(reapplied.stdout).toContain(`Graph "cli nightly" (${graphId}) is unchanged; its schedules now match ${changed}: cli nightly backup (0 3 * * * Europe/Berlin, next run `);
    // Another script is another graph: refused as before.
    const other = path.join(t.dir, 'nightly-other.yaml');
    writeFileSync(other, readFileSync(changed, 'utf8').replace('echo "backup of "{target}', 'echo "copy of "{target}'));
    const refused = await run(['apply', other]);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain(`A graph named "cli nightly" (graph ${graphId}) already exists`);

    const listed = await run(['schedules', 'cli nightly']);
    expect(listed.code).toBe(0);
    const [header, row] = listed.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^ID +NAME +GRAPH +CRON +TIME ZONE +NEXT RUN +PAUSED +LAST TICK$/);
    expect(row).toMatch(new RegExp(`^\\d+ +cli nightly backup +cli nightly \\(${graphId}\\) +0 3 \\* \\* \\* +Europe/Berlin +\\d{4}-\\d\\d-\\d\\d 03:00:00 +no +-$`));

    const paused = await run(['schedule', 'pause', 'cli nightly backup']);
    expect(paused).toMatchObject({ code: 0, stderr: '' });
    expect(paused.stdout).toMatch(/^Paused schedule (\d+) "cli nightly backup" of graph \d+ "cli nightly": it starts nothing until resumed \(pipectl schedule resume \1\)\.$/m);
    expect((await run(['schedules'])).stdout).toMatch(/cli nightly backup .* +- +yes +-/);
    const resumed = await run(['schedule', 'resume', /schedule (\d+)/.exec(paused.stdout)![1]!]);
    expect(resumed.stdout).toMatch(/^Resumed schedule \d+ "cli nightly backup" of graph \d+ "cli nightly": next run \d{4}-\d\d-\d\d 03:00:00 Europe\/Berlin \(the ticks of the pause are not run\)\.$/m);
    const unknown = await run(['schedule', 'pause', 'no such schedule']);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toContain('No schedule has the name "no such schedule". pipectl schedules lists them.');
  });

  it('says what went wrong, in the user\'s terms, with a distinct exit code', async ({ expect }) => {
    const [unknownGraph, unknownPipeline, unknownTrack, usage, unreachable, notGraphql] = await Promise.all([
      run(['start', 'no such graph']),
      run(['watch', '999999']),
      run(['logs', '999999']),
      run(['start']),
      run(['graphs'], { PIPECTL_URL: `http://127.0.0.1:${await closedPort()}/graphql` }),
      run(['graphs', '--url', t.url.replace('/graphql', '/health')]),
    ]);
    expect(unknownGraph.code).toBe(3);
    expect(unknownGraph.stderr).toMatch(/^pipectl: No graph has the name "no such graph"\./);
    expect(unknownPipeline.code).toBe(3);
    expect(unknownPipeline.stderr).toContain('No pipeline with id 999999 exists.');
    expect(unknownTrack.code).toBe(3);
    expect(unknownTrack.stderr).toContain('No track with id 999999 exists.');
    expect(usage.code).toBe(64);
    expect(usage.stderr).toContain('start needs <graph>');
    expect(unreachable.code).toBe(69);
    expect(unreachable.stderr).toMatch(/^pipectl: Cannot reach the dagpipe server at http:\/\/127\.0\.0\.1:\d+\/graphql \(ECONNREFUSED\)\. Is the server running/);
    expect(unreachable.stderr).toContain('--url <url> or PIPECTL_URL');
    expect(notGraphql.code).toBe(69);
    expect(notGraphql.stderr).toMatch(/without a GraphQL result: is it a dagpipe server\?/);
    for (const result of [unknownGraph, unknownPipeline, usage, unreachable]) expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it.skipIf(!hasPython)('in a terminal, start asks for missing values (a secret one without echo) and draws the live display', async ({ expect }) => {
    await importFixture('prompt.yaml');
    const result = await pipectl([], {
      command: [
        'python3', path.join(FIXTURES, 'run-in-pty.py'),
        JSON.stringify([['report.operator (string, required; who runs it)', 'Ada\r'], ['deploy.token (string, secret, not echoed)', 's3cret\r']]),
        '--', process.execPath, PIPECTL, 'start', 'cli prompt', '--watch',
      ],
      env: { NO_COLOR: '' },
    }).done;
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Values needed to start');
    expect(result.stdout).not.toContain('s3cret');
    expect(result.stdout).toMatch(/\x1b\[\d+F\x1b\[J/); // redrawn in place
    expect(result.stdout).toMatch(/\x1b\[32mFINISH\x1b\[39m/); // coloured on a terminal
    const id = Number(/Started pipeline (\d+)/.exec(result.stdout)![1]);
    const { pipeline } = await t.request(PipelineDetail, { id });
    expect(pipeline!.state).toBe('FINISH');
    const report = pipeline!.tracks.find((x) => x.name === 'report')!;
    expect((await t.request(TrackOutputText, { id: report.id })).track!.output.text).toBe('report by Ada\n');
  });
});

describe('pipectl with authentication on', { timeout: 60_000 }, () => {
  let secured: TestApp;
  const tokens = { admin: '', viewer: '' };
  const as = (token: string | undefined, args: string[]) => run(args, { PIPECTL_URL: secured.url, ...(token ? { PIPECTL_TOKEN: token } : {}) });
  beforeAll(async () => {
    secured = await startTestApp({ env: { AUTH: 'on' } });
    const { createToken } = await import('../../src/auth/tokens.ts');
    tokens.admin = (await createToken(secured.app.store.db, { name: 'cli-admin', role: 'admin' })).secret;
    tokens.viewer = (await createToken(secured.app.store.db, { name: 'cli-viewer', role: 'viewer' })).secret;
  });
  afterAll(() => secured?.stop());

  it('sends PIPECTL_TOKEN; without one it says how to get one; a viewer may watch but not start', async ({ expect }) => {
    const anonymous = await as(undefined, ['graphs']);
    expect(anonymous.code).toBe(3);
    expect(anonymous.stderr).toContain('PIPECTL_TOKEN is not set');
    const applied = await as(tokens.admin, ['apply', path.join(FIXTURES, 'greet.yaml')]);
    expect(applied.code).toBe(0);
    expect((await as(tokens.viewer, ['graphs'])).code).toBe(0);
    const refused = await as(tokens.viewer, ['start', 'cli greet', '--input', 'report.operator=Ada', '--no-prompt']);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('needs the operator role');
    const started = await as(tokens.admin, ['start', 'cli greet', '--input', 'report.operator=Ada', '--watch']);
    expect(started.code).toBe(0);
  });

  it('names the role the command needs when the token is missing or refused', async ({ expect }) => {
    const graphs = await as(undefined, ['graphs']);
    expect(graphs.stderr).toContain('pipectl graphs needs a token of the viewer role or higher');
    expect(graphs.stderr).toContain('npm run token -- create --role viewer');
    const apply = await as(undefined, ['apply', path.join(FIXTURES, 'greet.yaml')]);
    expect(apply.code).toBe(3);
    expect(apply.stderr).toContain('pipectl apply needs a token of the admin role');
    expect(apply.stderr).toContain('--role admin');
    expect(apply.stderr).not.toContain('--role operator');
    const cut = await as(tokens.admin.slice(0, 20), ['start', '1', '--no-prompt']);
    expect(cut.code).toBe(3);
    expect(cut.stderr).toContain('PIPECTL_TOKEN was refused: This token is 20 characters long');
    expect(cut.stderr).toContain('pipectl start needs a token of the operator role or higher');
    expect(cut.stderr).toContain('--role operator');
  });
});
