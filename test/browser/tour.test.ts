/**
 * The README's tour, its dashboard part, run as written in real Chromium against the real
 * service with authentication on: sign in with an admin token, import the example from its
 * file, start it from its graph page, watch it live, supply the input (first a wrong value:
 * the service's error at the field), see FINISH and the output. The words the README
 * quotes are checked against what the page shows.
 */
import path from 'node:path';
import { readFileSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createToken } from '../../src/auth/tokens.ts';
import { seriousViolations } from '../helpers/axe.ts';
import { launchChromium, recordRequests, staysOnThisMachine } from '../helpers/browser.ts';
import { startTestApp, type TestApp } from '../helpers/test-app.ts';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const tour = readme.slice(readme.indexOf('### In the dashboard'), readme.indexOf('### The same through the API'));
const prose = tour.replace(/\s+/g, ' ');
const EXAMPLE = path.join(import.meta.dirname, '../../examples/web-server-check.yaml');
const WAIT_MS = 30_000;

let t: TestApp;
let browser: Browser | undefined;
let token = '';
beforeAll(async () => {
  browser = await launchChromium('README tour');
  t = await startTestApp({ env: { AUTH: 'on' } });
  token = (await createToken(t.app.store.db, { name: 'me', role: 'admin' })).secret;
});
afterAll(async () => {
  await browser?.close();
  await t?.stop();
});

/** What the page shows, which the tour quotes ("...") as it is. */
function quotedByTheTour(text: string): string {
  expect(prose, 'the tour quotes what the page says').toContain(`"${text}"`);
  return text;
}

it('the dashboard tour works as written', { timeout: 180_000 }, async () => {
  const port = new URL(t.url).port;
  const context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
  const recorded = await recordRequests(context);
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('console', (message) => message.type() === 'error' && problems.push(message.text()));

  // 1. Sign in.
  await page.goto(t.url.replace(/\/graphql$/, '/'));
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Graphs', exact: true }).waitFor();

  // 2. Import the example from its file.
  expect(prose).toContain('under **Import a graph**, choose the file `examples/web-server-check.yaml` and press **Import and check**');
  await page.getByLabel('Definition file (YAML or JSON)').setInputFiles(EXAMPLE);
  await expect.poll(() => page.getByLabel('Definition', { exact: true }).inputValue()).toContain('name: web server check');
  await page.getByRole('button', { name: 'Import and check' }).click();
  const imported = page.getByRole('status').filter({ hasText: 'Imported' });
  await imported.waitFor();
  quotedByTheTour(await imported.innerText());
  await page.getByRole('img', { name: 'The DAG of web server check' }).waitFor();

  // 3. Start it from its graph page, on this service's port.
  await page.getByRole('link', { name: 'web server check' }).first().click();
  await page.getByRole('heading', { name: 'web server check', level: 1 }).waitFor();
  await page.getByRole('button', { name: 'Start', exact: true }).click();
  const portOpen = page.getByTestId('start-vertex-port-open');
  expect(await portOpen.getByLabel('ip').inputValue()).toBe('127.0.0.1');
  expect(await portOpen.getByLabel('port').inputValue()).toBe('4000');
  await portOpen.getByLabel('port').fill(port);
  await page.getByRole('button', { name: 'Start the run' }).click();
  await page.waitForURL(/\/runs\/\d+/);
  const run = page.getByRole('img', { name: 'The DAG of run web server check' });

  // 4. Live: port-open and health succeed; report waits for its input and says why.
  for (const name of ['port-open', 'health']) {
    await run.locator(`[data-testid="vertex-${name}"].state-SUCCEED`).waitFor({ timeout: WAIT_MS });
  }
  const report = page.getByTestId('track-report');
  await page.locator('[data-testid="track-report"][data-state="PENDING"]').waitFor({ timeout: WAIT_MS });
  await expect.poll(() => report.innerText(), { timeout: WAIT_MS }).toContain(quotedByTheTour('Waiting for input: supply operator with finishInput.'));

  // 5. The input: empty first (the service's words at the field), then Ada.
  await report.getByRole('link', { name: 'report' }).click();
  const form = page.getByRole('form', { name: 'Inputs of report' });
  const operator = form.getByLabel('operator');
  await operator.waitFor();
  await form.getByRole('button', { name: 'Supply inputs' }).click();
  await expect.poll(() => operator.getAttribute('aria-invalid'), { timeout: WAIT_MS }).toBe('true');
  const errorId = (await operator.getAttribute('aria-describedby'))!.split(' ').at(-1)!;
  quotedByTheTour(await page.locator(`#${errorId}`).innerText());
  await operator.fill('Ada');
  await form.getByRole('button', { name: 'Supply inputs' }).click();
  await page.getByTestId('pipeline-state').filter({ hasText: 'FINISH' }).waitFor({ timeout: WAIT_MS });
  await page.locator('[data-testid="track-report"][data-state="SUCCEED"]').waitFor();
  const output = quotedByTheTour('web server check passed; report signed by Ada');
  await page.getByText(output, { exact: true }).waitFor({ timeout: WAIT_MS });
  expect(await seriousViolations(page)).toEqual([]);

  // 6. The selected step can be re-run; the admin's pages are in the navigation.
  expect(await page.getByRole('button', { name: 'Re-run from report' }).isEnabled()).toBe(true);
  for (const name of ['Tokens', 'Webhooks', 'Audit log']) expect(await page.getByRole('link', { name }).count()).toBe(1);
  await page.getByRole('link', { name: 'Audit log' }).click();
  for (const action of ['importGraph', 'startPipeline', 'finishInput']) {
    await page.getByText(action, { exact: true }).first().waitFor({ timeout: WAIT_MS });
  }

  const seen = await Promise.all(recorded.seen);
  expect([...recorded.refused, ...seen.map((s) => s.url).filter((url) => !staysOnThisMachine(url))]).toEqual([]);
  expect(problems).toEqual([]);
  await context.close();
});
