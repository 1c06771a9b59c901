/** The scripts' environment: an allowlist of variables, and an unprivileged user when the service runs as root. */
import { chmodSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PipelineDetail, StartPipeline } from '../helpers/operations.ts';
import { eventually, seedGraph, type GraphSpec } from '../helpers/seed.ts';
import { startTestApp, type TestApp } from '../helpers/test-app.ts';

const asRoot = process.getuid?.() === 0;
let t: TestApp;
beforeAll(async () => {
  process.env.DAGPIPE_TEST_ALLOWED = 'allowed-value';
  process.env.DAGPIPE_TEST_HIDDEN = 'hidden-value';
  t = await startTestApp({ env: { SCRIPT_USER: 'nobody', SCRIPT_ENV: 'DAGPIPE_TEST_ALLOWED' } });
  // The test's directory is private to root; the scripts' user must reach its work directory.
  chmodSync(t.dir, 0o755);
});
afterAll(async () => {
  delete process.env.DAGPIPE_TEST_ALLOWED;
  delete process.env.DAGPIPE_TEST_HIDDEN;
  await t?.stop();
});

/** Seeds and starts a graph; returns the pipeline once it ended. */
async function ran(spec: GraphSpec) {
  const { graphId } = await seedGraph(t, spec);
  const started = await t.request(StartPipeline, { graphId });
  if (started.startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(started));
  const id = started.startPipeline.id;
  return eventually(async () => {
    const { pipeline } = await t.request(PipelineDetail, { id });
    return pipeline && pipeline.state !== 'RUNNING' ? pipeline : undefined;
  });
}

async function outputOf(script: string): Promise<string> {
  return (await ran({ vertices: { probe: { script } } })).tracks[0]!.output.text;
}

it('scripts see the allowlist and SCRIPT_ENV names, never DATABASE_URL or anything else', async () => {
  const output = await outputOf('echo "allowed=${DAGPIPE_TEST_ALLOWED:-} hidden=${DAGPIPE_TEST_HIDDEN:-} db=${DATABASE_URL:-}"');
  expect(output).toBe('allowed=allowed-value hidden= db=\n');
});

it.runIf(asRoot)('a service running as root runs scripts as SCRIPT_USER, in a working directory it owns', async () => {
  const output = await outputOf('id -un; touch written-here && echo wrote; echo "home=$HOME user=$USER"; touch /root/dagpipe-probe 2>/dev/null && echo root-writable || echo root-denied');
  const [user, wrote, home, root] = output.trim().split('\n');
  expect(user).toBe('nobody');
  expect(wrote).toBe('wrote');
  expect(home).toMatch(/^home=\/.*track-\d+-attempt-1 user=nobody$/);
  expect(root).toBe('root-denied');
});

it.runIf(asRoot)("a script run as SCRIPT_USER owns its $DAGPIPE_OUTPUT, and what it writes there reaches the next step", async () => {
  const done = await ran({
    vertices: {
      produce: { script: 'stat -c "%U %a" "$DAGPIPE_OUTPUT"\necho "who=$(id -un)" >> "$DAGPIPE_OUTPUT"' },
      consume: { script: 'echo read {who}', inputs: [{ name: 'who', type: 'STRING', from: 'produce.who' }] },
    },
    edges: [['produce', 'consume']],
  });
  expect(done.state).toBe('FINISH');
  expect(done.tracks.map((x) => x.output.text)).toEqual(['nobody 600\n', 'read nobody\n']);
});
