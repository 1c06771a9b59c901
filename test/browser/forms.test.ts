/**
 * The graph page, the generated input forms and the waiting-for-input list in a real
 * browser (Debian's Chromium) against the service with authentication on: an operator
 * starts the README tour's example from its graph page, a wrong value is refused by the
 * server at its field, a right one takes the step off the waiting list and the run
 * finishes; choices are a select and a secret a password field that is never shown back;
 * a viewer sees neither Start nor a submit button; the runs list pages and filters by
 * state; an unchecked graph's Start says why it is disabled. Nothing leaves loopback.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadWebServerCheck } from '../../examples/web-server-check.ts';
import { createToken } from '../../src/auth/tokens.ts';
import { graphql } from '../../src/generated/gql/index.ts';
import { violations } from '../helpers/axe.ts';
import { launchChromium, recordRequests, screenshot, staysOnThisMachine } from '../helpers/browser.ts';
import { PipelineDetail, Pipelines, StartPipeline } from '../helpers/operations.ts';
import { eventually } from '../helpers/seed.ts';
import { httpClient, startTestApp, type GraphQLClient, type TestApp } from '../helpers/test-app.ts';

const ImportDefinition = graphql(`
  mutation ImportDefinition($definition: String!) {
    importGraph(definition: $definition) {
      __typename
      ... on Graph { id }
      ... on Error { field message }
    }
  }
`);

const CheckDefinition = graphql(`
  mutation CheckDefinition($id: Int!) {
    checkGraph(id: $id) {
      __typename
      ... on Error { field message }
    }
  }
`);

/** A step that waits for an approval: a choice, a secret, a pattern, a boolean and a number. */
const RELEASE = `
name: release
desc: Ships a build once someone approves it.
vertices:
  - name: build
    script: echo built
  - name: approve
    inputs:
      env: { type: str, choices: [staging, production], required: true, description: Where to ship. }
      key: { type: str, secret: true, required: true, description: The deploy key. }
      ticket: { type: str, pattern: "[A-Z]+-[0-9]+", required: true, description: The change ticket. }
      notify: { type: bool, default: true, description: Tell the team. }
      replicas: { type: int, default: 2 }
    script: echo "shipping to" {env} {ticket} x{replicas} notify={notify} key={key}
edges:
  - { tail: build, head: approve }
schedules:
  - name: nightly
    cron: "0 3 * * *"
    timeZone: UTC
    paused: true
    inputs: [{ vertex: approve, params: { env: staging, key: nightly-key, ticket: REL-1 } }]
`;

/** One step that exits with the code it is given: runs that finish or fail at once. */
const TINY = `
name: tiny
desc: One step that exits with the code it is given.
schedules:
  - { name: new-year, cron: "0 0 1 1 *", timeZone: Europe/Berlin, overlap: QUEUE }
vertices:
  - name: step
    inputs:
      code: { type: int, default: 0 }
    script: exit {code}
`;

const DRAFT = `
name: draft
vertices:
  - name: only
    script: echo draft
`;

let t: TestApp;
let browser: Browser | undefined;
let api: GraphQLClient;
let operator = '';
let viewer = '';
let base = '';

async function importGraph(definition: string, check = true): Promise<number> {
  const { importGraph: graph } = await api.request(ImportDefinition, { definition });
  if (graph.__typename !== 'Graph') throw new Error(JSON.stringify(graph));
  if (check) expect((await api.request(CheckDefinition, { id: graph.id })).checkGraph.__typename).toBe('Graph');
  return graph.id;
}

beforeAll(async () => {
  browser = await launchChromium('forms');
  t = await startTestApp({ env: { AUTH: 'on' } });
  const admin = (await createToken(t.app.store.db, { name: 'forms-admin', role: 'admin' })).secret;
  operator = (await createToken(t.app.store.db, { name: 'forms-operator', role: 'operator' })).secret;
  viewer = (await createToken(t.app.store.db, { name: 'forms-viewer', role: 'viewer' })).secret;
  api = httpClient(t.url, { authorization: `Bearer ${admin}` });
  base = t.url.replace(/\/graphql$/, '');
});
afterAll(async () => {
  await browser?.close();
  await t?.stop();
});

interface Session {
  context: BrowserContext;
  page: Page;
  recorded: Awaited<ReturnType<typeof recordRequests>>;
  problems: string[];
}

async function signIn(token: string): Promise<Session> {
  const context = await browser!.newContext({ viewport: { width: 1280, height: 800 } });
  const recorded = await recordRequests(context);
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('console', (message) => message.type() === 'error' && problems.push(message.text()));
  await page.goto(`${base}/`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Graphs', exact: true }).waitFor();
  return { context, page, recorded, problems };
}

/** Opens a dashboard page by its address (the tab keeps its token). */
async function open(page: Page, path: string, heading: string) {
  await page.goto(`${base}${path}`);
  await page.getByRole('heading', { name: heading, exact: true, level: 1 }).waitFor();
}

async function finish(session: Session) {
  // Leaving the dashboard stops the waiting list's polling, so no request starts while closing.
  await session.page.goto('about:blank');
  const seen = await Promise.all(session.recorded.seen);
  expect([...session.recorded.refused, ...seen.map((s) => s.url).filter((url) => !staysOnThisMachine(url))]).toEqual([]);
  expect(session.problems).toEqual([]);
  await session.context.close();
}

/** This page holds itself to no violation at all, not only none serious. */
async function expectAccessible(page: Page) {
  expect(await violations(page, 'minor')).toEqual([]);
}

const trackOf = async (pipelineId: number, name: string) => {
  const { pipeline } = await api.request(PipelineDetail, { id: pipelineId });
  return pipeline!.tracks.find((x) => x.name === name)!;
};

it('an operator starts the README example from its graph page and supplies its input on the waiting list', { timeout: 240_000 }, async () => {
  process.env.PIPECTL_TOKEN = (await createToken(t.app.store.db, { name: 'forms-example', role: 'admin' })).secret;
  const exampleId = await loadWebServerCheck(t.url);
  const port = Number(new URL(t.url).port);
  const session = await signIn(operator);
  const { page } = session;

  await open(page, `/graphs/${exampleId}`, 'web server check');
  expect(await page.getByLabel('Definition (YAML)').inputValue()).toContain('name: web server check');
  const dag = page.getByRole('img', { name: 'The DAG of web server check' });
  for (const name of ['port-open', 'health', 'report']) expect(await dag.getByTestId(`vertex-${name}`).textContent()).toBe(name);
  await page.getByLabel('Format').selectOption('JSON');
  await expect.poll(() => page.getByLabel('Definition (JSON)').inputValue()).toContain('"name": "web server check"');

  await page.getByRole('button', { name: 'Start', exact: true }).click();
  const portOpen = page.getByTestId('start-vertex-port-open');
  expect(await portOpen.getByLabel('ip').inputValue()).toBe('127.0.0.1');
  expect(await portOpen.getByLabel('port').inputValue()).toBe('4000');
  expect(await portOpen.getByLabel('port').getAttribute('type')).toBe('number');
  // health's inputs come from port-open's outputs: shown, not asked for.
  const health = page.getByTestId('start-vertex-health');
  expect(await health.locator('input, select').count()).toBe(0);
  expect(await health.getByText('comes from step port-open', { exact: true }).count()).toBe(2);
  // Nothing is needed up front: report's operator, left empty, is asked for when report waits.
  const operatorAtStart = page.getByTestId('start-vertex-report').getByLabel('operator');
  expect(await operatorAtStart.evaluate((input: HTMLInputElement) => input.required)).toBe(false);

  // The server judges the address, and says what is wrong at that field.
  await portOpen.getByLabel('ip').fill('not-an-address');
  await portOpen.getByLabel('port').fill(String(port));
  await page.getByRole('button', { name: 'Start the run' }).click();
  const ip = portOpen.getByLabel('ip');
  await expect.poll(() => ip.getAttribute('aria-invalid')).toBe('true');
  const ipError = page.locator(`#${(await ip.getAttribute('aria-describedby'))!.split(' ').at(-1)}`);
  expect(await ipError.innerText()).toMatch(/IPv4 or IPv6 address/);
  await ip.fill('127.0.0.1');
  await page.getByRole('button', { name: 'Start the run' }).click();
  await page.waitForURL(/\/runs\/\d+$/);
  const runId = Number(/\/runs\/(\d+)$/.exec(page.url())![1]);

  const report = await trackOf(runId, 'report');
  await page.getByRole('link', { name: 'Waiting for input' }).click();
  await page.getByRole('heading', { name: 'Waiting for input', level: 1 }).waitFor();
  const item = page.getByTestId(`waiting-${report.id}`);
  await item.waitFor();
  expect(await item.getByRole('link', { name: `run #${runId} web server check` }).getAttribute('href')).toBe(`/runs/${runId}/tracks/${report.id}`);
  const field = item.getByLabel('operator');
  await field.waitFor();
  expect(await field.evaluate((input: HTMLInputElement) => input.required)).toBe(true);

  // A wrong value (none, for a required parameter): the browser does not stop it, the server refuses it.
  await field.fill('');
  await item.getByRole('button', { name: 'Supply inputs' }).click();
  await expect.poll(() => field.getAttribute('aria-invalid')).toBe('true');
  const errorId = (await field.getAttribute('aria-describedby'))!.split(' ').at(-1)!;
  expect(await page.locator(`#${errorId}`).innerText()).toBe('Parameter "operator" needs a value (it is required).');
  expect((await trackOf(runId, 'report')).needsInput).toBe(true);

  await field.fill('Ada');
  await item.getByRole('button', { name: 'Supply inputs' }).click();
  await item.waitFor({ state: 'detached' });
  await page.getByRole('status').filter({ hasText: `Inputs of report in run #${runId} supplied.` }).waitFor();
  await eventually(async () => ((await api.request(PipelineDetail, { id: runId })).pipeline!.state === 'FINISH' ? true : undefined), 30_000, 'the run to finish');
  expect((await trackOf(runId, 'report')).output.text).toBe('web server check passed; report signed by Ada\n');
  await finish(session);
});

it('choices are a select and a secret a password field never shown back; a viewer may look, not act', { timeout: 240_000 }, async () => {
  const releaseId = await importGraph(RELEASE);
  const session = await signIn(operator);
  const { page } = session;

  await open(page, `/graphs/${releaseId}`, 'release');
  const nightly = page.getByTestId('schedule-nightly');
  expect(await nightly.innerText()).toMatch(/0 3 \* \* \*\s+UTC\s+paused/);
  await page.getByRole('button', { name: 'Start', exact: true }).click();
  const approveAtStart = page.getByTestId('start-vertex-approve');
  expect(await approveAtStart.getByLabel('env').evaluate((e) => e.tagName)).toBe('SELECT');
  expect(await approveAtStart.getByLabel('key').getAttribute('type')).toBe('password');
  expect(await approveAtStart.getByLabel('replicas').inputValue()).toBe('2');
  expect(await approveAtStart.getByLabel('notify').isChecked()).toBe(true);
  await page.getByLabel('Name').fill('release 1.0');
  await expectAccessible(page);
  await screenshot(page, 'graph-start');
  await page.getByRole('button', { name: 'Start the run' }).click();
  await page.waitForURL(/\/runs\/\d+$/);
  const runId = Number(/\/runs\/(\d+)$/.exec(page.url())![1]);
  const approve = await eventually(async () => {
    const track = await trackOf(runId, 'approve');
    return track.state === 'PENDING' ? track : undefined;
  });

  // A viewer sees the run's waiting step and its form, read-only, and no Start.
  const watcher = await signIn(viewer);
  await open(watcher.page, `/graphs/${releaseId}`, 'release');
  await watcher.page.getByRole('heading', { name: 'Runs' }).waitFor();
  expect(await watcher.page.getByRole('button', { name: 'Start', exact: true }).count()).toBe(0);
  await open(watcher.page, '/waiting', 'Waiting for input');
  const seen = watcher.page.getByTestId(`waiting-${approve.id}`);
  await seen.getByLabel('ticket').waitFor();
  expect(await seen.getByLabel('ticket').isDisabled()).toBe(true);
  expect(await seen.getByRole('button').count()).toBe(0);
  expect(await seen.innerText()).toContain('Your role (viewer) may look, not supply inputs');
  await finish(watcher);

  await page.getByRole('link', { name: 'Waiting for input' }).click();
  const item = page.getByTestId(`waiting-${approve.id}`);
  const env = item.getByLabel('env');
  await env.waitFor();
  expect(await env.evaluate((e) => e.tagName)).toBe('SELECT');
  expect(await env.locator('option').allInnerTexts()).toEqual(['Choose…', 'staging', 'production']);
  const key = item.getByLabel('key');
  expect(await key.getAttribute('type')).toBe('password');
  expect(await item.getByLabel('ticket').getAttribute('pattern')).toBe('[A-Z]+-[0-9]+');

  await env.selectOption({ label: 'production' });
  await key.fill('s3cret-deploy-key');
  const ticket = item.getByLabel('ticket');
  await ticket.fill('rel-42');
  await item.getByRole('button', { name: 'Supply inputs' }).click();
  await expect.poll(() => ticket.getAttribute('aria-invalid')).toBe('true');
  expect(await item.getByText('Parameter "ticket" must match the pattern [A-Z]+-[0-9]+.').count()).toBe(1);
  expect(await env.getAttribute('aria-invalid')).toBeNull();
  await expectAccessible(page);
  await screenshot(page, 'waiting');

  await ticket.fill('REL-42');
  await item.getByRole('button', { name: 'Supply inputs' }).click();
  await item.waitFor({ state: 'detached' });
  await eventually(async () => ((await api.request(PipelineDetail, { id: runId })).pipeline!.state === 'FINISH' ? true : undefined), 30_000, 'the release to finish');
  const done = await trackOf(runId, 'approve');
  expect(done.input).toEqual({ env: 'production', key: '***', ticket: 'REL-42', notify: true, replicas: 2 });
  expect(done.output.text).toBe('shipping to production REL-42 x2 notify=true key=***\n');
  expect(await page.content()).not.toContain('s3cret-deploy-key');
  await page.getByText('No step waits for input.').waitFor();
  await finish(session);
});

it('the runs list pages with "Older runs" and filters by state; an unchecked graph says why it cannot start', { timeout: 240_000 }, async () => {
  const tinyId = await importGraph(TINY);
  const draftId = await importGraph(DRAFT, false);
  const started: number[] = [];
  for (let i = 0; i < 12; i++) {
    const { startPipeline } = await api.request(StartPipeline, { graphId: tinyId, inputs: [{ vertex: 'step', params: { code: i % 3 === 0 ? 1 : 0 } }] });
    if (startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(startPipeline));
    started.push(startPipeline.id);
  }
  await eventually(async () => {
    const { pipelines } = await api.request(Pipelines, { graphId: tinyId, first: 100 });
    return pipelines.every((p) => p.state === 'FINISH' || p.state === 'FAILED') ? true : undefined;
  }, 30_000, 'the tiny runs to end');

  const session = await signIn(viewer);
  const { page } = session;
  await open(page, `/graphs/${tinyId}`, 'tiny');
  const rows = page.locator('table.runs tbody tr');
  await expect.poll(() => rows.count()).toBe(10);
  const newestFirst = [...started].reverse();
  const ids = async () => (await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-testid')))).map((id) => Number(id!.slice('run-'.length)));
  expect(await ids()).toEqual(newestFirst.slice(0, 10));
  expect(await page.getByTestId('schedule-new-year').innerText()).toMatch(/^new-year\s+0 0 1 1 \*\s+Europe\/Berlin\s+\d+\/\d+\/\d{4}, [^\t]+\s+—\s+queue$/);
  await screenshot(page, 'graph');
  expect(await rows.first().getByRole('link').getAttribute('href')).toBe(`/runs/${newestFirst[0]}`);
  await page.getByRole('button', { name: 'Older runs' }).click();
  await expect.poll(() => rows.count()).toBe(12);
  expect(await ids()).toEqual(newestFirst);
  expect(await page.getByRole('button', { name: 'Older runs' }).count()).toBe(0);

  await page.getByLabel('State').selectOption('FAILED');
  await expect.poll(() => rows.count()).toBe(4);
  expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-state')))).toEqual(['FAILED', 'FAILED', 'FAILED', 'FAILED']);
  expect(await ids()).toEqual(newestFirst.filter((id) => started.indexOf(id) % 3 === 0));
  await page.getByLabel('State').selectOption('CANCELLED');
  await page.getByText('No cancelled runs.').waitFor();
  await finish(session);

  const admin = await signIn(operator);
  await open(admin.page, `/graphs/${draftId}`, 'draft');
  const start = admin.page.getByRole('button', { name: 'Start', exact: true });
  expect(await start.isDisabled()).toBe(true);
  const why = admin.page.locator(`#${await start.getAttribute('aria-describedby')}`);
  expect(await why.innerText()).toMatch(/^Run checkGraph first/);
  await finish(admin);
});
