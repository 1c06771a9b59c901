/**
 * The track output viewer (dashboard/src/output.tsx on /tracks/:id) in Debian's Chromium
 * against the real service with authentication on: live lines arrive in order with their
 * numbers, only the rows in view are in the page, follow mode sticks to the bottom until
 * the reader scrolls up, search finds and steps through matches, the download is the stored
 * output byte for byte, a retry's attempt replaces the last one (which stays readable), and
 * a WebSocket cut mid-output (a TCP proxy between browser and service) loses and doubles no
 * line. Scripts wait on gate files the test creates, so "live" is really live.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createToken } from '../../src/auth/tokens.ts';
import { graphql } from '../../src/generated/gql/index.ts';
import { seriousViolations } from '../helpers/axe.ts';
import { launchChromium, recordRequests, screenshot, staysOnThisMachine } from '../helpers/browser.ts';
import { StartPipeline } from '../helpers/operations.ts';
import { eventually, seedGraph } from '../helpers/seed.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { httpClient, startTestApp, type GraphQLClient, type TestApp } from '../helpers/test-app.ts';

const OutputText = graphql(`
  query OutputViewerText($id: Int!, $attempt: Int) {
    track(id: $id) {
      state
      attempt
      output(attempt: $attempt) { text size complete }
    }
  }
`);

let t: TestApp;
let api: GraphQLClient;
let browser: Browser | undefined;
let viewer = '';
let gates = '';
beforeAll(async () => {
  browser = await launchChromium('track output');
  t = await startTestApp({ env: { AUTH: 'on' } });
  const admin = (await createToken(t.app.store.db, { name: 'output-admin', role: 'admin' })).secret;
  viewer = (await createToken(t.app.store.db, { name: 'output-viewer', role: 'viewer' })).secret;
  api = httpClient(t.url, { authorization: `Bearer ${admin}` });
  gates = mkdtempSync(path.join(tmpdir(), 'dagpipe-output-gates-'));
});
afterAll(async () => {
  await browser?.close();
  await t?.stop();
  rmSync(gates, { recursive: true, force: true });
});

/** Starts a one-vertex graph running `script`; returns its track's id. */
async function startTrack(name: string, script: string, vertex: { retries?: number; retryDelaySeconds?: number } = {}): Promise<number> {
  const { graphId } = await seedGraph(api, { name, vertices: { [name]: { script, ...vertex } } });
  const started = await api.request(StartPipeline, { graphId, name });
  if (started.startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(started));
  return started.startPipeline.tracks[0]!.id;
}

const until = async (trackId: number, check: (track: { state: string; attempt: number }) => boolean, what: string) => {
  let last: unknown;
  try {
    return await eventually(async () => {
      const { track } = await api.request(OutputText, { id: trackId });
      last = track;
      return track && check(track) ? track : undefined;
    }, 30_000, what);
  } catch (error) {
    throw new Error(`${(error as Error).message}; the track is ${JSON.stringify(last)}`);
  }
};

interface Opened {
  context: BrowserContext;
  page: Page;
  problems: string[];
  finish(): Promise<void>;
}

/** A signed-in viewer's tab on `/tracks/:id` (at `base`: the service, or a proxy in front of it). */
async function open(trackId: number, base = t.url.replace(/\/graphql$/, ''), allowLostSocket = false): Promise<Opened> {
  const context = await browser!.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  const recorded = await recordRequests(context);
  await context.addInitScript((token) => sessionStorage.setItem('dagpipe.token', token), viewer);
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    // The browser itself logs each refused reconnect while the proxy is cut.
    if (allowLostSocket && /WebSocket connection to .* failed|ERR_CONNECTION_(REFUSED|RESET|CLOSED)/.test(message.text())) return;
    problems.push(message.text());
  });
  await page.goto(`${base}/tracks/${trackId}`);
  return {
    context,
    page,
    problems,
    async finish() {
      const seen = await Promise.all(recorded.seen);
      expect([...recorded.refused, ...seen.map((s) => s.url).filter((url) => !staysOnThisMachine(url))]).toEqual([]);
      expect(problems).toEqual([]);
      await context.close();
    },
  };
}

/** The rows in the page now: line number (0 for a notice) and text. */
const rowsInPage = (page: Page) =>
  page.getByTestId('output-lines').evaluate((box) =>
    [...box.querySelectorAll<HTMLElement>('.output-line')].map((row) => ({
      n: Number(row.dataset.n ?? 0),
      text: row.querySelector('.text')!.textContent ?? '',
      stderr: row.classList.contains('stderr'),
    })),
  );

/** Every row of the list, scrolling it from top to bottom (only rows in view are in the page). */
const allRows = (page: Page) =>
  page.getByTestId('output-lines').evaluate(async (box) => {
    const frame = () => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
    const rows = new Map<number, string>();
    for (let top = 0; ; top += box.clientHeight) {
      box.scrollTop = top;
      await frame();
      for (const row of box.querySelectorAll<HTMLElement>('.output-line')) rows.set(Number(row.dataset.n ?? 0), row.querySelector('.text')!.textContent ?? '');
      if (box.scrollTop + box.clientHeight >= box.scrollHeight) break;
    }
    return [...rows.entries()].sort((a, b) => a[0] - b[0]);
  });

const lastRow = async (page: Page) => (await rowsInPage(page)).at(-1);
const waitForRow = (page: Page, n: number) => page.locator(`.output-line[data-n="${n}"]`).waitFor({ timeout: 20_000 });
/** Until line `n` or a later one was shown (at 1,000 lines a second a row is in view for moments only). */
const waitForLines = (page: Page, n: number) =>
  page.waitForFunction((n) => [...document.querySelectorAll<HTMLElement>('.output-line')].some((row) => Number(row.dataset.n) >= n), n, { timeout: 20_000 });

it('shows live lines in order with numbers, follows, searches and downloads the stored output', { timeout: 90_000 }, async () => {
  const gate = path.join(gates, 'live');
  const script = [
    // stdout and stderr are two pipes: only a pause keeps their lines in the order printed.
    'for i in $(seq 1 149); do echo "line $i"; done',
    'sleep 0.3; echo "line 150" >&2; sleep 0.3',
    `while [ ! -f ${gate} ]; do sleep 0.05; done`,
    'for i in $(seq 151 300); do echo "line $i"; done',
  ].join('\n');
  const trackId = await startTrack('printer', script);
  const { page, finish } = await open(trackId);
  await page.getByRole('heading', { name: 'printer' }).waitFor();
  expect(await page.getByRole('link', { name: 'printer' }).getAttribute('href')).toMatch(/^\/runs\/\d+\/tracks\/\d+$/);
  await page.getByTestId('track-state').filter({ hasText: 'RUNNING' }).waitFor();

  // Following: the newest line is in view, and only rows near the view are in the page.
  await waitForRow(page, 150);
  const rows = await rowsInPage(page);
  expect(rows.at(-1)).toEqual({ n: 150, text: 'line 150', stderr: true });
  expect(rows.length).toBeLessThan(100);
  for (const [i, row] of rows.entries()) {
    expect(row.n).toBe(rows[0]!.n + i);
    expect(row.text).toBe(`line ${row.n}`);
    expect(row.stderr).toBe(row.n === 150);
  }
  expect(await page.getByRole('button', { name: 'Following new lines' }).getAttribute('aria-pressed')).toBe('true');
  await expect.poll(() => page.getByRole('region', { name: 'Lines of attempt 1' }).count()).toBe(1);

  await screenshot(page, 'track');
  expect(await seriousViolations(page)).toEqual([]);

  // Scrolling up leaves follow mode: new lines no longer move the view.
  const box = page.getByTestId('output-lines');
  await box.hover();
  await page.mouse.wheel(0, -1200);
  await page.getByRole('button', { name: 'Follow new lines' }).waitFor();
  const scrolled = await box.evaluate((el) => el.scrollTop);
  writeFileSync(gate, '');
  await page.getByText('300 lines').waitFor();
  expect(await box.evaluate((el) => el.scrollTop)).toBe(scrolled);
  expect((await lastRow(page))!.n).toBeLessThan(150);
  // The button resumes it.
  await page.getByRole('button', { name: 'Follow new lines' }).click();
  await waitForRow(page, 300);
  expect(await lastRow(page)).toEqual({ n: 300, text: 'line 300', stderr: false });
  await until(trackId, (track) => track.state === 'SUCCEED', 'printer to succeed');
  await page.getByText('300 lines; the track succeeded').waitFor();

  // Search: "line 29" is in lines 29 and 290-299.
  const search = page.getByRole('searchbox', { name: 'Search the output' });
  await search.fill('line 29');
  const count = page.getByRole('status').filter({ hasText: 'matches' });
  await count.filter({ hasText: '1 of 11 matches' }).waitFor();
  const chosen = page.locator('mark.current');
  const chosenLine = () => chosen.evaluate((mark) => Number(mark.closest<HTMLElement>('.output-line')!.dataset.n));
  expect(await chosenLine()).toBe(29);
  expect(await page.getByRole('button', { name: 'Following new lines' }).count()).toBe(0);
  await page.getByRole('button', { name: 'Next match' }).click();
  await count.filter({ hasText: '2 of 11 matches' }).waitFor();
  expect(await chosenLine()).toBe(290);
  await search.press('Shift+Enter');
  await search.press('Shift+Enter');
  await count.filter({ hasText: '11 of 11 matches' }).waitFor();
  expect(await chosenLine()).toBe(299);
  expect(await chosen.textContent()).toBe('line 29');
  expect(await page.locator('mark').count()).toBeGreaterThanOrEqual(1);
  await search.fill('no such text');
  await count.filter({ hasText: 'No matches' }).waitFor();
  await search.fill('');

  // The download is the stored output, exactly.
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download' }).click()]);
  expect(download.suggestedFilename()).toBe(`printer-${trackId}-attempt-1.txt`);
  const stored = await api.request(OutputText, { id: trackId });
  const file = readFileSync((await download.path())!, 'utf8');
  expect(file).toBe(stored.track!.output.text);
  expect(file).toBe(Array.from({ length: 300 }, (_, i) => `line ${i + 1}\n`).join(''));
  await finish();
});

it('switches to a retry\'s attempt and still reads the earlier one', { timeout: 90_000 }, async () => {
  const gate = path.join(gates, 'retry');
  const counter = path.join(gates, 'retry-count');
  const script = [
    `n=$(cat ${counter} 2>/dev/null || echo 0); n=$((n + 1)); echo $n > ${counter}`,
    'if [ $n = 1 ]; then',
    '  echo "first attempt, line 1"; echo "first attempt, line 2"',
    `  while [ ! -f ${gate} ]; do sleep 0.05; done`,
    '  echo "first attempt fails" >&2; exit 3',
    'fi',
    'echo "second attempt, line 1"',
  ].join('\n');
  const trackId = await startTrack('flaky', script, { retries: 1, retryDelaySeconds: 0 });
  const { page, finish } = await open(trackId);
  await waitForRow(page, 2);
  expect((await rowsInPage(page)).map((r) => r.text)).toEqual(['first attempt, line 1', 'first attempt, line 2']);
  const attempt = page.getByRole('combobox', { name: 'Attempt' });

  writeFileSync(gate, '');
  await until(trackId, (track) => track.state === 'SUCCEED' && track.attempt === 2, 'the retry to succeed');
  await page.getByText('second attempt, line 1').waitFor();
  expect(await rowsInPage(page)).toEqual([{ n: 1, text: 'second attempt, line 1', stderr: false }]);
  await expect.poll(() => attempt.inputValue()).toBe('2');
  await attempt.locator('option', { hasText: '(current, SUCCEED)' }).waitFor({ state: 'attached' });
  expect(await attempt.locator('option').allTextContents()).toEqual(['1 (FAILED, exit 3)', '2 (current, SUCCEED)']);

  // The earlier attempt, read from its stored pages, and downloaded as such.
  await attempt.selectOption('1');
  await page.getByRole('region', { name: 'Lines of attempt 1' }).waitFor();
  await waitForRow(page, 3);
  expect(await rowsInPage(page)).toEqual([
    { n: 1, text: 'first attempt, line 1', stderr: false },
    { n: 2, text: 'first attempt, line 2', stderr: false },
    { n: 3, text: 'first attempt fails', stderr: true },
  ]);
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download' }).click()]);
  expect(download.suggestedFilename()).toBe(`flaky-${trackId}-attempt-1.txt`);
  expect(readFileSync((await download.path())!, 'utf8')).toBe((await api.request(OutputText, { id: trackId, attempt: 1 })).track!.output.text);

  // And back to the current one, live again.
  await attempt.selectOption('2');
  await page.getByRole('region', { name: 'Lines of attempt 2' }).waitFor();
  await page.getByText('second attempt, line 1').waitFor();
  expect(await rowsInPage(page)).toEqual([{ n: 1, text: 'second attempt, line 1', stderr: false }]);
  await finish();
});

it('loses and doubles no line when the WebSocket is cut mid-output', { timeout: 120_000 }, async () => {
  let proxy: TcpProxy | undefined;
  try {
    proxy = await startTcpProxy(t.url);
    const gate = path.join(gates, 'reconnect');
    // Lines keep coming while the connection is down; the gate holds the end until the
    // page has been cut off and is back, so some lines are only ever had from the replay.
    const script = [
      'for i in $(seq 1 3000); do echo "line $i"; if [ $((i % 50)) = 0 ]; then sleep 0.05; fi; done',
      `while [ ! -f ${gate} ]; do sleep 0.05; done`,
      'for i in $(seq 3001 3200); do echo "line $i"; done',
    ].join('\n');
    const trackId = await startTrack('chatty', script);
    const { page, finish } = await open(trackId, proxy.url, true);
    await waitForLines(page, 200);
    proxy.cut();
    await page.getByRole('status').filter({ hasText: 'Connection lost' }).waitFor();
    const before = (await lastRow(page))!.n;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    proxy.restore();
    await page.getByRole('status').filter({ hasText: 'Connection lost' }).waitFor({ state: 'detached', timeout: 30_000 });
    writeFileSync(gate, '');
    await page.getByText('3,200 lines; the track succeeded').waitFor({ timeout: 60_000 });
    expect(before).toBeLessThan(3000);

    const rows = await allRows(page);
    expect(rows.length).toBe(3200);
    const wrong = rows.filter(([n, text]) => text !== `line ${n}`);
    expect(wrong).toEqual([]);
    await finish();
  } finally {
    await proxy?.close();
  }
});
