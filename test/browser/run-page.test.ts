/**
 * The run page in a real browser (Debian's Chromium) against the real service with
 * authentication on: the seed graph's tracks change state live (scripts held at gates, so
 * that RUNNING and WAITING are seen), a failed run says why D waits, Cancel and Retry work
 * through the page, a viewer sees no action, and a connection cut mid-run (a TCP proxy
 * between browser and service) loses nothing and doubles nothing when it comes back.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createToken } from '../../src/auth/tokens.ts';
import { graphql } from '../../src/generated/gql/index.ts';
import { seriousViolations } from '../helpers/axe.ts';
import { launchChromium, recordRequests, screenshot, staysOnThisMachine } from '../helpers/browser.ts';
import { StartPipeline } from '../helpers/operations.ts';
import { eventually, seedGraph, seedScenario } from '../helpers/seed.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { httpClient, startTestApp, type GraphQLClient, type TestApp } from '../helpers/test-app.ts';

const RunTracks = graphql(`
  query RunPageTracks($id: Int!) {
    pipeline(id: $id) {
      state
      tracks {
        id
        name
        state
        attempt
        blockedBy {
          message
        }
      }
    }
  }
`);

const WAIT_MS = 20_000;

let t: TestApp;
let browser: Browser | undefined;
let operatorToken = '';
let viewerToken = '';
let admin: GraphQLClient;
let operator: GraphQLClient;
let graphs = 0;
beforeAll(async () => {
  browser = await launchChromium('run page');
  t = await startTestApp({ env: { AUTH: 'on' } });
  const adminToken = (await createToken(t.app.store.db, { name: 'run-admin', role: 'admin' })).secret;
  operatorToken = (await createToken(t.app.store.db, { name: 'run-operator', role: 'operator' })).secret;
  viewerToken = (await createToken(t.app.store.db, { name: 'run-viewer', role: 'viewer' })).secret;
  admin = httpClient(t.url, { authorization: `Bearer ${adminToken}` });
  operator = httpClient(t.url, { authorization: `Bearer ${operatorToken}` });
});
afterAll(async () => {
  await browser?.close();
  await t?.stop();
});

const gate = (name: string) => path.join(t.dir, `gate-${name}-${process.pid}-${graphs}`);
/** A script that waits until the test opens its gate (creates the file). */
const held = (file: string, then = 'true') => `while [ ! -e ${file} ]; do sleep 0.05; done; ${then}`;

async function startSeed(scripts: Parameters<typeof seedScenario>[0]): Promise<{ id: number; name: string }> {
  const name = `seed-run-${++graphs}`;
  // Graphs are an admin's to define; the operator starts the run.
  const { graphId } = await seedGraph(admin, { name, ...seedScenario(scripts) });
  const started = await operator.request(StartPipeline, { graphId });
  if (started.startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(started));
  return { id: started.startPipeline.id, name };
}

async function tracksOf(id: number) {
  const data = await operator.request(RunTracks, { id });
  return data.pipeline!;
}

/** Until the service says the track `name` of run `id` is in `state`. */
const serviceSays = (id: number, name: string, state: string) =>
  eventually(async () => ((await tracksOf(id)).tracks.find((track) => track.name === name)?.state === state ? true : undefined), WAIT_MS, `${name} ${state}`);

interface Opened {
  context: BrowserContext;
  page: Page;
  problems: string[];
  /** The graphql-ws messages the page sent, parsed. */
  sent: Array<{ type: string; payload?: { variables?: Record<string, unknown> } }>;
  check(): Promise<void>;
}

/**
 * The run page in a fresh context signed in with `token` (kept in sessionStorage, as the
 * sign-in form keeps it). `ignore`: console errors the browser itself logs for a cut
 * connection (the test cuts it on purpose).
 */
async function openRun(token: string, id: number, base = t.url.replace(/\/graphql$/, ''), ignore?: RegExp): Promise<Opened> {
  const context = await browser!.newContext({ viewport: { width: 1280, height: 800 } });
  await context.addInitScript((secret) => sessionStorage.setItem('dagpipe.token', secret), token);
  const recorded = await recordRequests(context);
  const page = await context.newPage();
  const problems: string[] = [];
  const sent: Opened['sent'] = [];
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('console', (message) => message.type() === 'error' && !ignore?.test(message.text()) && problems.push(message.text()));
  page.on('websocket', (socket) => socket.on('framesent', (frame) => typeof frame.payload === 'string' && sent.push(JSON.parse(frame.payload))));
  await page.goto(`${base}/runs/${id}`);
  await page.getByTestId('pipeline-state').waitFor({ timeout: WAIT_MS });
  return {
    context,
    page,
    problems,
    sent,
    async check() {
      const seen = await Promise.all(recorded.seen);
      expect([...recorded.refused, ...seen.map((s) => s.url).filter((url) => !staysOnThisMachine(url))]).toEqual([]);
      expect(problems).toEqual([]);
      await context.close();
    },
  };
}

const row = (page: Page, name: string, state: string) => page.locator(`[data-testid="track-${name}"][data-state="${state}"]`);
const vertex = (page: Page, run: string, name: string, state: string) =>
  page.getByRole('img', { name: `The DAG of run ${run}` }).locator(`[data-testid="vertex-${name}"].state-${state}`);

async function expectStates(page: Page, run: string, states: Record<string, string>) {
  for (const [name, state] of Object.entries(states)) {
    await row(page, name, state).waitFor({ timeout: WAIT_MS });
    await vertex(page, run, name, state).waitFor({ timeout: WAIT_MS });
  }
}

async function axe(page: Page) {
  expect(await seriousViolations(page)).toEqual([]);
}

it('shows the tracks change state live, to FINISH, and the selected track', { timeout: 90_000 }, async () => {
  const gates = { A: gate('A'), D: gate('D') };
  const run = await startSeed({ A: held(gates.A), D: held(gates.D) });
  const opened = await openRun(operatorToken, run.id);
  const { page } = opened;
  await expectStates(page, run.name, { A: 'RUNNING', B: 'WAITING', C: 'WAITING', D: 'WAITING', E: 'SUCCEED' });
  expect(await page.getByTestId('pipeline-state').innerText()).toBe('RUNNING');
  // Why B waits, in words, from the service.
  const b = (await tracksOf(run.id)).tracks.find((track) => track.name === 'B')!;
  expect(await page.getByTestId('track-B').innerText()).toContain(b.blockedBy!.message);
  await expect.poll(() => page.getByTestId('bar-A-1').count()).toBe(1);

  writeFileSync(gates.A, '');
  await expectStates(page, run.name, { A: 'SUCCEED', B: 'SUCCEED', C: 'SUCCEED', D: 'RUNNING' });

  // Selecting a track from the keyboard: its link, Enter; the address names it.
  const d = (await tracksOf(run.id)).tracks.find((track) => track.name === 'D')!;
  await page.getByRole('link', { name: 'D', exact: true }).focus();
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: /^Track D/ }).waitFor();
  expect(new URL(page.url()).pathname).toBe(`/runs/${run.id}/tracks/${d.id}`);
  expect(await page.getByRole('link', { name: 'D', exact: true }).getAttribute('aria-current')).toBe('page');
  await page.getByRole('table', { name: 'Attempts of D' }).waitFor();
  await screenshot(page, 'run');
  await axe(page);

  writeFileSync(gates.D, '');
  await expectStates(page, run.name, { A: 'SUCCEED', B: 'SUCCEED', C: 'SUCCEED', D: 'SUCCEED', E: 'SUCCEED' });
  await page.locator('[data-testid="pipeline-state"]', { hasText: 'FINISH' }).waitFor({ timeout: WAIT_MS });
  // Ended: Cancel and Retry say why they cannot be used; re-running from D can.
  expect(await page.locator('#cancel-run').isDisabled()).toBe(true);
  expect(await page.locator('#cancel-run-why').innerText()).toContain('The run has ended');
  expect(await page.locator('#retry-run').isDisabled()).toBe(true);
  expect(await page.locator('#retry-run').getAttribute('aria-describedby')).toBe('retry-run-why');
  expect(await page.getByRole('button', { name: 'Re-run from D' }).isEnabled()).toBe(true);

  await page.getByRole('button', { name: 'Re-run from D' }).click();
  await expect.poll(async () => (await tracksOf(run.id)).tracks.find((track) => track.name === 'D')?.attempt, { timeout: WAIT_MS }).toBe(2);
  await page.locator('[data-testid="pipeline-state"]', { hasText: 'FINISH' }).waitFor({ timeout: WAIT_MS });
  await page.locator('[data-testid="track-D"]', { hasText: 'attempt 2' }).waitFor({ timeout: WAIT_MS });
  await expect.poll(() => page.locator('[data-testid^="bar-D-"]').count(), { timeout: WAIT_MS }).toBe(2);
  await opened.check();
});

it('says why D waits when the run failed; Retry runs it again; Cancel cancels', { timeout: 90_000 }, async () => {
  const fixed = gate('fixed');
  const run = await startSeed({ B: `[ -e ${fixed} ] || { echo 'B broke' >&2; exit 3; }` });
  const opened = await openRun(operatorToken, run.id);
  const { page } = opened;
  await page.locator('[data-testid="pipeline-state"]', { hasText: 'FAILED' }).waitFor({ timeout: WAIT_MS });
  await expectStates(page, run.name, { A: 'SUCCEED', B: 'FAILED' });
  const d = (await tracksOf(run.id)).tracks.find((track) => track.name === 'D')!;
  expect(d.blockedBy?.message).toMatch(/failed/);
  await page.locator('[data-testid="track-D"]', { hasText: d.blockedBy!.message }).waitFor({ timeout: WAIT_MS });
  expect(await page.locator('#cancel-run').isDisabled()).toBe(true);
  expect(await page.locator('#retry-run').isEnabled()).toBe(true);
  await screenshot(page, 'run-failed');

  writeFileSync(fixed, '');
  await page.getByRole('button', { name: 'Retry' }).click();
  await page.locator('[data-testid="pipeline-state"]', { hasText: 'FINISH' }).waitFor({ timeout: WAIT_MS });
  await expectStates(page, run.name, { A: 'SUCCEED', B: 'SUCCEED', C: 'SUCCEED', D: 'SUCCEED', E: 'SUCCEED' });
  await page.locator('[data-testid="track-B"]', { hasText: 'attempt 2' }).waitFor();
  expect(await page.locator('[data-testid^="bar-B-"]').count()).toBe(2);
  // D's row no longer says it will not run.
  expect(await page.getByTestId('track-D').innerText()).not.toContain(d.blockedBy!.message);
  await opened.check();

  const held2 = gate('cancel');
  const second = await startSeed({ A: held(held2) });
  const again = await openRun(operatorToken, second.id);
  await expectStates(again.page, second.name, { A: 'RUNNING' });
  expect(await again.page.locator('#retry-run-why').innerText()).toContain('Only a failed or cancelled run can be retried');
  await again.page.getByRole('button', { name: 'Cancel' }).click();
  await again.page.locator('[data-testid="pipeline-state"]', { hasText: 'CANCELLED' }).waitFor({ timeout: WAIT_MS });
  await expectStates(again.page, second.name, { A: 'CANCELLED', B: 'CANCELLED' });
  expect(await again.page.locator('#cancel-run').isDisabled()).toBe(true);
  expect((await tracksOf(second.id)).state).toBe('CANCELLED');
  writeFileSync(held2, '');
  await again.check();
});

it('shows a viewer the run without any action', { timeout: 60_000 }, async () => {
  const run = await startSeed({});
  await serviceSays(run.id, 'D', 'SUCCEED');
  const opened = await openRun(viewerToken, run.id);
  await expectStates(opened.page, run.name, { A: 'SUCCEED', D: 'SUCCEED' });
  await opened.page.locator('[data-testid="pipeline-state"]', { hasText: 'FINISH' }).waitFor({ timeout: WAIT_MS });
  for (const name of ['Cancel', 'Retry', /^Re-run/]) expect(await opened.page.getByRole('button', { name }).count()).toBe(0);
  await opened.check();
});

it('loses nothing and doubles nothing over a connection cut mid-run', { timeout: 120_000 }, async () => {
  let proxy: TcpProxy | undefined;
  try {
    proxy = await startTcpProxy(t.url);
    const gates = { A: gate('A'), D: gate('D') };
    const run = await startSeed({ A: held(gates.A), D: held(gates.D) });
    // The browser logs the refused reconnects (and a read refused while cut) itself.
    const opened = await openRun(operatorToken, run.id, proxy.url, /WebSocket connection to|ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|ERR_EMPTY_RESPONSE|Failed to load resource/);
    const { page } = opened;
    await expectStates(page, run.name, { A: 'RUNNING', B: 'WAITING', D: 'WAITING', E: 'SUCCEED' });
    const subscribes = () => opened.sent.filter((message) => message.type === 'subscribe');
    expect(subscribes()).toHaveLength(1);
    expect(subscribes()[0]!.payload?.variables).toEqual({ pipelineId: run.id });

    proxy.cut();
    await page.getByRole('status').filter({ hasText: 'Connection lost, reconnecting' }).waitFor({ timeout: WAIT_MS });
    // While cut, the run goes on: A, B and C succeed, D runs.
    writeFileSync(gates.A, '');
    await serviceSays(run.id, 'D', 'RUNNING');
    expect(await row(page, 'A', 'RUNNING').count()).toBe(1);
    proxy.restore();

    await page.getByRole('status').filter({ hasText: 'Connection lost' }).waitFor({ state: 'detached', timeout: 30_000 });
    await expectStates(page, run.name, { A: 'SUCCEED', B: 'SUCCEED', C: 'SUCCEED', D: 'RUNNING', E: 'SUCCEED' });
    // It resumed after the last event it had, and got no snapshot again.
    const resumed = subscribes().at(-1)!;
    expect(subscribes().length).toBeGreaterThan(1);
    expect(resumed.payload?.variables).toMatchObject({ pipelineId: run.id, after: expect.any(Number) });

    writeFileSync(gates.D, '');
    await page.locator('[data-testid="pipeline-state"]', { hasText: 'FINISH' }).waitFor({ timeout: WAIT_MS });
    await expectStates(page, run.name, { A: 'SUCCEED', B: 'SUCCEED', C: 'SUCCEED', D: 'SUCCEED', E: 'SUCCEED' });
    // Exactly one row and one timeline bar per track, as the service has them.
    const tracks = (await tracksOf(run.id)).tracks;
    expect(await page.locator('[data-testid^="track-"]').count()).toBe(tracks.length);
    expect(await page.locator('[data-testid^="timeline-"]').count()).toBe(tracks.length);
    expect(await page.locator('[data-testid^="bar-"]').count()).toBe(tracks.length);
    for (const track of tracks) expect(await row(page, track.name, track.state).count()).toBe(1);
    await opened.check();
  } finally {
    await proxy?.close();
  }
});
