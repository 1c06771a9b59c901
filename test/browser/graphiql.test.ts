/**
 * GraphiQL in a real browser (Debian's Chromium, driven by playwright-core), against the
 * service with authentication on, as a user without internet would use it: nothing may
 * leave loopback; the token goes in the Headers tab; a query and a live subscription
 * show their results in the result pane.
 */
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createToken } from '../../src/auth/tokens.ts';
import { launchChromium, recordRequests, staysOnThisMachine } from '../helpers/browser.ts';
import { FinishInput, StartPipeline } from '../helpers/operations.ts';
import { seedGraph } from '../helpers/seed.ts';
import { httpClient, startTestApp, type TestApp } from '../helpers/test-app.ts';

/** The first visit renders and compresses a 9 MB page, and the browser parses 5 MB of script. */
const PAGE_TIMEOUT = 90_000;

let t: TestApp;
let browser: Browser | undefined;
let token = '';
beforeAll(async () => {
  browser = await launchChromium('GraphiQL');
  t = await startTestApp({ env: { AUTH: 'on' } });
  token = (await createToken(t.app.store.db, { name: 'graphiql', role: 'admin' })).secret;
});
afterAll(async () => {
  await browser?.close();
  await t?.stop();
});

/** What a Monaco editor shows (its rendered lines; Monaco draws spaces as no-break spaces). */
async function textOf(editor: Locator): Promise<string> {
  return (await editor.locator('.view-lines').innerText()).replace(/\u00a0/g, ' ');
}

/** Waits until the result pane shows `text` (or errors, which fail the test with the pane's text). */
async function resultShows(page: Page, text: string): Promise<string> {
  const pane = page.locator('.graphiql-response .monaco-editor');
  // Monaco draws spaces as no-break spaces, which \s matches.
  const pattern = text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/ /g, '\\s');
  await pane.locator('.view-lines').filter({ hasText: new RegExp(`${pattern}|"errors"`) }).waitFor({ timeout: PAGE_TIMEOUT });
  const shown = await textOf(pane);
  expect(shown).toContain(text);
  return shown;
}

it('works offline: the token in the Headers tab, a query and a live subscription', { timeout: 4 * PAGE_TIMEOUT }, async () => {
  // A pipeline that waits for its input: its subscription shows a snapshot, then the
  // events of supplying it, which this test causes once the snapshot is on screen.
  const api = httpClient(t.url, { authorization: `Bearer ${token}` });
  const { graphId } = await seedGraph(api, {
    name: 'graphiql-demo',
    vertices: { greet: { script: 'echo hello {who}', inputs: [{ name: 'who', type: 'STRING', required: true }] } },
  });
  const started = await api.request(StartPipeline, { graphId });
  if (started.startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(started));
  const { id: pipelineId, tracks } = started.startPipeline;

  const context = await browser!.newContext({ viewport: { width: 1600, height: 1000 } });
  const recorded = await recordRequests(context);
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(error.message));
  await page.goto(t.url, { timeout: PAGE_TIMEOUT });
  // Loaded: anything it wanted from another site was refused by now.
  expect(recorded.refused).toEqual([]);
  const queryEditor = page.locator('.graphiql-query-editor .monaco-editor');
  await queryEditor.waitFor({ timeout: PAGE_TIMEOUT });
  expect(await page.title()).toBe('dagpipe');
  expect(await page.locator('link[rel="icon"]').getAttribute('href')).toMatch(/^data:image\/svg\+xml,/);

  // The token, typed into the Headers tab as a user would.
  await page.getByRole('button', { name: 'Headers' }).click();
  const headersEditor = page.locator('.graphiql-editor-tool .graphiql-editor:not(.hidden) .monaco-editor');
  await headersEditor.click();
  await page.keyboard.press('ControlOrMeta+KeyA');
  await page.keyboard.type(`{"Authorization": "Bearer ${token}"}`);
  // Monaco draws its lines on a later animation frame: wait until it shows the text.
  await expect.poll(() => textOf(headersEditor), { timeout: PAGE_TIMEOUT }).toBe(`{"Authorization": "Bearer ${token}"}`);

  // Queries are pasted: typed key by key, Monaco's bracket closing would add its own.
  const run = async (operation: string) => {
    await queryEditor.click();
    await page.keyboard.press('ControlOrMeta+KeyA');
    await page.keyboard.press('Delete');
    await page.keyboard.insertText(operation);
    await page.keyboard.press('Escape');
    await expect.poll(() => textOf(queryEditor), { timeout: PAGE_TIMEOUT }).toBe(operation);
    await page.getByRole('button', { name: /^Execute query/ }).click();
  };

  await run('{ graphs { id name } }');
  expect(await resultShows(page, '"name": "graphiql-demo"')).toContain(`"id": ${graphId}`);

  await run(`subscription { pipelineLive(pipelineId: ${pipelineId}) { snapshot { state tracks { name state } } event { type pipelineState } } }`);
  expect(await resultShows(page, '"snapshot"')).toMatch(/"state": "RUNNING"[\s\S]*"name": "greet",\s*"state": "PENDING"/);
  // Supplying the input runs the track and finishes the pipeline: its events arrive live.
  const finished = await api.request(FinishInput, { trackId: tracks[0]!.id, params: { who: 'graphiql' } });
  expect(finished.finishInput.__typename).toBe('Track');
  expect(await resultShows(page, '"pipelineState": "FINISH"')).toContain('"type": "pipeline:finished"');

  // The subscription went over SSE (GraphiQL's subscriptionsProtocol): a GET with the typed
  // token, which CSRF prevention accepts because of that Authorization header.
  const seen = await Promise.all(recorded.seen);
  const subscription = seen.find((s) => s.method === 'GET' && s.headers.accept === 'text/event-stream');
  expect(subscription?.url).toContain('pipelineLive');
  expect(subscription?.headers.authorization).toBe(`Bearer ${token}`);
  expect(seen.length).toBeGreaterThan(3);
  expect([...recorded.refused, ...seen.map((s) => s.url).filter((url) => !staysOnThisMachine(url))]).toEqual([]);
  expect(problems).toEqual([]);
  await context.close();
});
