/**
 * The dashboard in a real browser (Debian's Chromium, playwright-core) against the service
 * with authentication on: a wrong token is refused in words, a right one (a viewer's) shows
 * the seed graph with its DAG drawn, the token is kept for the tab only, and nothing leaves
 * loopback.
 */
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createToken } from '../../src/auth/tokens.ts';
import { graphql } from '../../src/generated/gql/index.ts';
import { seriousViolations } from '../helpers/axe.ts';
import { launchChromium, recordRequests, staysOnThisMachine } from '../helpers/browser.ts';
import { seedGraph, seedScenario } from '../helpers/seed.ts';
import { httpClient, startTestApp, type TestApp } from '../helpers/test-app.ts';

const GraphNames = graphql(`query DashboardGraphNames { graphs { name } }`);

let t: TestApp;
let browser: Browser | undefined;
let admin = '';
let viewer = '';
beforeAll(async () => {
  browser = await launchChromium('dashboard');
  t = await startTestApp({ env: { AUTH: 'on' } });
  admin = (await createToken(t.app.store.db, { name: 'dashboard-admin', role: 'admin' })).secret;
  viewer = (await createToken(t.app.store.db, { name: 'dashboard-viewer', role: 'viewer' })).secret;
});
afterAll(async () => {
  await browser?.close();
  await t?.stop();
});

it('signs in with a token and draws the seed graph, offline', { timeout: 60_000 }, async () => {
  await seedGraph(httpClient(t.url, { authorization: `Bearer ${admin}` }), { name: 'seed', ...seedScenario() });
  const context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
  const recorded = await recordRequests(context);
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('console', (message) => message.type() === 'error' && !message.text().includes('401') && problems.push(message.text()));
  await page.goto(t.url.replace(/\/graphql$/, '/'));
  expect(await page.title()).toBe('dagpipe');

  await page.getByLabel('API token').waitFor();
  expect(await seriousViolations(page)).toEqual([]);
  await page.getByLabel('API token').fill('dp_not-a-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').waitFor();
  expect(await page.getByRole('alert').innerText()).toMatch(/token/i);

  await page.getByLabel('API token').fill(viewer);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'seed' }).waitFor();
  const dag = page.getByRole('img', { name: 'The DAG of seed' });
  for (const name of ['A', 'B', 'C', 'D', 'E']) expect(await dag.getByTestId(`vertex-${name}`).textContent()).toBe(name);
  expect(await dag.locator('.edge').count()).toBe(4);
  // A before B and C, which come before D: the layout runs left to right.
  const x = async (name: string) => (await dag.getByTestId(`vertex-${name}`).boundingBox())!.x;
  expect(await x('A')).toBeLessThan(await x('B'));
  expect(await x('C')).toBeLessThan(await x('D'));
  expect(await seriousViolations(page)).toEqual([]);

  // The token lives in this tab's sessionStorage: a reload keeps the session.
  expect(await page.evaluate(() => sessionStorage.getItem('dagpipe.token'))).toBe(viewer);
  await page.reload();
  await page.getByRole('heading', { name: 'seed' }).waitFor();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('API token').waitFor();
  expect(await page.evaluate(() => sessionStorage.getItem('dagpipe.token'))).toBeNull();

  const seen = await Promise.all(recorded.seen);
  // Only the page's first question, who it speaks for, goes without a token (a service with
  // AUTH=off would answer it); every other request carries the one signed in with.
  const posts = seen.filter((s) => s.url.endsWith('/graphql') && s.method === 'POST');
  const tokenless = posts.filter((s) => s.headers.authorization === undefined);
  expect(tokenless.map((s) => JSON.parse(s.body!).query)).toEqual([expect.stringMatching(/^\s*query Viewer \{/)]);
  expect(posts.filter((s) => s.headers.authorization !== undefined).every((s) => /^Bearer dp_/.test(s.headers.authorization!))).toBe(true);
  expect([...recorded.refused, ...seen.map((s) => s.url).filter((url) => !staysOnThisMachine(url))]).toEqual([]);
  expect(problems).toEqual([]);
  await context.close();
});

it('an admin imports the example from its file: a broken definition is refused at the field, the good one is imported and checked; a viewer has no import form', { timeout: 60_000 }, async () => {
  const context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(error.message));
  await page.goto(t.url.replace(/\/graphql$/, '/'));
  await page.getByLabel('API token').fill(admin);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Import a graph' }).waitFor();

  await page.getByLabel('Definition', { exact: true }).fill('name: broken\nvertices:\n  - name: x\n    inputs: {ip: {type: address}}\n');
  await page.getByRole('button', { name: 'Import and check' }).click();
  const definition = page.getByLabel('Definition', { exact: true });
  await page.locator('#definition[aria-invalid="true"]').waitFor();
  const problem = page.locator('#definition-problem');
  expect(await definition.getAttribute('aria-describedby')).toBe('definition-problem');
  expect(await problem.innerText()).toMatch(/^definition\.vertices\.0\.inputs\.ip\.type .*address/);
  const { graphs } = await httpClient(t.url, { authorization: `Bearer ${admin}` }).request(GraphNames);
  expect(graphs.map((g) => g.name)).toEqual(['seed']);

  await page.getByLabel('Definition file (YAML or JSON)').setInputFiles(path.join(import.meta.dirname, '../../examples/web-server-check.yaml'));
  await expect.poll(() => definition.inputValue()).toContain('name: web server check');
  await page.getByRole('button', { name: 'Import and check' }).click();
  const status = page.getByRole('status').filter({ hasText: 'Imported' });
  await status.waitFor();
  expect(await status.innerText()).toBe('Imported web server check and checked it: it can be started.');
  await page.getByRole('heading', { name: 'web server check' }).waitFor();
  expect(await page.getByRole('img', { name: 'The DAG of web server check' }).locator('.node').count()).toBe(3);
  expect(await seriousViolations(page)).toEqual([]);
  await page.getByRole('button', { name: 'Sign out' }).click();

  await page.getByLabel('API token').fill(viewer);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'web server check' }).waitFor();
  expect(await page.getByRole('heading', { name: 'Import a graph' }).count()).toBe(0);
  expect(problems).toEqual([]);
  await context.close();
});

it('with authentication off (AUTH=off, loopback only) it opens signed in as the anonymous admin, with no sign-in form and no sign-out', { timeout: 60_000 }, async () => {
  const open = await startTestApp();
  const context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
  try {
    const page = await context.newPage();
    await page.goto(open.url.replace(/\/graphql$/, '/'));
    await page.getByRole('heading', { name: 'Graphs' }).waitFor();
    expect((await page.locator('.who').textContent())?.replace(/\s+/g, ' ').trim()).toBe('anonymous (admin) authentication is off');
    expect(await page.getByLabel('API token').count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Sign out' }).count()).toBe(0);
    expect(await page.getByRole('link', { name: 'Tokens' }).count()).toBe(1);
  } finally {
    await context.close();
    await open.stop();
  }
});
