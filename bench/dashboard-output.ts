/**
 * The dashboard's track output viewer under load (issue 11), in Debian's Chromium driven by
 * playwright-core, on the /tracks/:id page of an in-process service (SQLite, AUTH on, a
 * viewer's token, OUTPUT_LIMIT_BYTES raised so that nothing of the output is dropped):
 *
 *  a. A track printing 1,000 lines a second for a minute (paced by the script's clock), the
 *     page open and following from its first line. Long tasks are recorded in the page
 *     (PerformanceObserver 'longtask'; target: none over 200 ms), the JS heap is sampled every
 *     5 s (CDP Runtime.getHeapUsage after a garbage collection, so that the figure is what
 *     is kept, not what is waiting to be collected; target: bounded, printed start/peak/end
 *     with the elements in the page, which the virtual list keeps constant), and the page must
 *     end with all 60,000 lines.
 *  b. 100,000 lines of stored output (a track that succeeded): the page loads them (the time
 *     is printed), then the list is scrolled from top to bottom in steps of two views, one
 *     step a frame; frame times (between animation frames) p50/p99/max and long tasks are
 *     printed. Target: smooth, no long task over 200 ms and p99 frame under 50 ms.
 *
 * BENCH_ONLY=dashboardoutput runs it (about two and a half minutes).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { print } from 'graphql';
import type { Page } from 'playwright-core';
import { createToken } from '../src/auth/tokens.ts';
import { launchChromium } from '../test/helpers/browser.ts';
import { migrateDatabase, startBenchApp } from './app.ts';
import { BenchStartPipeline } from './operations.ts';

export interface DashboardOutputBenchOptions {
  root: string;
  dir: string;
  progress: (message: string) => void;
  problems: string[];
}

const LIVE_SECONDS = 60;
const LINES_PER_SECOND = 1000;
const STORED_LINES = 100_000;
const LONG_TASK_TARGET_MS = 200;
const FRAME_P99_TARGET_MS = 50;
const HEAP_SAMPLE_MS = 5000;

/**
 * Once the page is open (the gate file exists), 100 lines every tenth of a second, each burst
 * waiting for its moment by the clock (bash's $EPOCHREALTIME).
 */
const liveScript = (gate: string) => `while [ ! -f ${gate} ]; do sleep 0.05; done
start=\${EPOCHREALTIME/./}; n=0
while [ $n -lt ${LIVE_SECONDS * LINES_PER_SECOND} ]; do
  for i in 1 2 3 4 5 6 7 8 9 10; do
    for j in 1 2 3 4 5 6 7 8 9 10; do n=$((n + 1)); echo "live line $n: the quick brown fox jumps over the lazy dog"; done
  done
  d=$((start + n * ${1_000_000 / LINES_PER_SECOND} - \${EPOCHREALTIME/./}))
  if [ $d -gt 0 ]; then sleep $(printf '0.%06d' $d); fi
done`;

const storedScript = `seq -f 'stored line %.0f: the quick brown fox jumps over the lazy dog' 1 ${STORED_LINES}`;

/** Installed before the dashboard's scripts: every long task from the page's start. */
function observeLongTasks() {
  const w = window as unknown as { longTasks: number[] };
  w.longTasks = [];
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) w.longTasks.push(entry.duration);
  }).observe({ type: 'longtask', buffered: true });
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;
const ms = (value: number) => `${value.toFixed(1)} ms`;
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
const verdict = (met: boolean) => (met ? 'met' : 'MISSED');

export async function runDashboardOutput(options: DashboardOutputBenchOptions): Promise<string[]> {
  const databaseUrl = `file:${path.join(options.dir, 'dashboard-output.db')}`;
  options.progress('dashboard output: a fresh database');
  await migrateDatabase(options.root, databaseUrl);
  const { app, client } = await startBenchApp({
    root: options.root,
    databaseUrl,
    workDir: path.join(options.dir, 'work-dashboard-output'),
    workers: 2,
    env: { AUTH: 'on', OUTPUT_LIMIT_BYTES: String(64 * 1024 * 1024) },
  });
  const admin = (await createToken(app.store.db, { name: 'bench-admin', role: 'admin' })).secret;
  const viewer = (await createToken(app.store.db, { name: 'bench-viewer', role: 'viewer' })).secret;
  const graphql = async <R>(query: string, variables: Record<string, unknown>): Promise<R> => {
    const response = await fetch(client.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await response.json()) as { data?: R; errors?: unknown[] };
    if (!body.data || body.errors) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
    return body.data;
  };
  /** A one-vertex graph running `script`, started: its track's id. */
  const startTrack = async (name: string, script: string): Promise<number> => {
    const graph = await app.store.db.graph.create({ data: { name, checked: true } });
    await app.store.db.vertex.create({ data: { graphId: graph.id, name, script } });
    const started = await graphql<{ startPipeline: { __typename: string; id: number } }>(print(BenchStartPipeline), { graphId: graph.id, name });
    if (started.startPipeline.__typename !== 'Pipeline') throw new Error(`startPipeline failed: ${JSON.stringify(started)}`);
    const track = await app.store.db.track.findFirstOrThrow({ where: { pipelineId: started.startPipeline.id }, select: { id: true } });
    return track.id;
  };
  const stateOf = async (trackId: number) => (await graphql<{ track: { state: string } }>('query ($id: Int!) { track(id: $id) { state } }', { id: trackId })).track.state;

  const browser = await launchChromium('dashboard output bench');
  const base = client.url.replace(/\/graphql$/, '');
  const openPage = async (trackId: number): Promise<{ page: Page; heap(): Promise<{ used: number; elements: number }>; close(): Promise<void> }> => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await context.addInitScript((token) => sessionStorage.setItem('dagpipe.token', token), viewer);
    await context.addInitScript(observeLongTasks);
    const page = await context.newPage();
    page.on('pageerror', (error) => options.problems.push(`dashboard output: the page threw: ${error.message}`));
    const cdp = await context.newCDPSession(page);
    await page.goto(`${base}/tracks/${trackId}`);
    return {
      page,
      async heap() {
        await cdp.send('HeapProfiler.collectGarbage');
        const { usedSize } = await cdp.send('Runtime.getHeapUsage');
        const elements = await page.evaluate(() => document.getElementsByTagName('*').length);
        return { used: usedSize, elements };
      },
      close: () => context.close(),
    };
  };
  const longTasks = (page: Page) => page.evaluate(() => (window as unknown as { longTasks: number[] }).longTasks.splice(0));
  const shownLines = (page: Page) =>
    page.evaluate(() => Number(/([\d,]+) lines/.exec(document.querySelector('.output-summary')?.textContent ?? '')?.[1]?.replaceAll(',', '') ?? 0));

  const lines: string[] = [];
  try {
    // ---- (a) live
    options.progress(`dashboard output (a): a track printing ${LINES_PER_SECOND.toLocaleString('en')} lines a second for ${LIVE_SECONDS} s`);
    const gate = path.join(options.dir, 'dashboard-output-gate');
    const liveTrack = await startTrack('live-printer', liveScript(gate));
    const live = await openPage(liveTrack);
    await live.page.getByText('No output yet.').waitFor({ timeout: 120_000 });
    // The subscription is sent once the page has drawn the empty list; give it a moment to arrive.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const samples = [await live.heap()];
    writeFileSync(gate, '');
    const gateOpened = performance.now();
    // Rows come and go every frame while following: wait on the DOM, not on one row's locator.
    await live.page
      .waitForFunction(() => document.querySelector('.output-line') !== null, undefined, { timeout: 120_000, polling: 50 });
    const firstLineMs = performance.now() - gateOpened;
    const t0 = gateOpened;
    const expected = LIVE_SECONDS * LINES_PER_SECOND;
    while ((await shownLines(live.page)) < expected && performance.now() - t0 < (LIVE_SECONDS + 60) * 1000) {
      await new Promise((resolve) => setTimeout(resolve, HEAP_SAMPLE_MS));
      samples.push(await live.heap());
      options.progress(`dashboard output (a): ${(await shownLines(live.page)).toLocaleString('en')} lines shown, heap ${mb(samples.at(-1)!.used)}`);
    }
    const liveMs = performance.now() - t0;
    const shown = await shownLines(live.page);
    if (shown !== expected) options.problems.push(`dashboard output (a): the page shows ${shown} lines, not ${expected}`);
    if ((await stateOf(liveTrack)) !== 'SUCCEED') options.problems.push(`dashboard output (a): the printing track ended ${await stateOf(liveTrack)}`);
    const liveLong = await longTasks(live.page);
    samples.push(await live.heap());
    await live.close();
    const peak = samples.reduce((a, b) => (b.used > a.used ? b : a));
    const maxLong = Math.max(0, ...liveLong);

    // ---- (b) stored
    options.progress(`dashboard output (b): ${STORED_LINES.toLocaleString('en')} lines of stored output`);
    const storedTrack = await startTrack('stored-printer', storedScript);
    for (let waited = 0; (await stateOf(storedTrack)) !== 'SUCCEED'; waited += 200) {
      if (waited > 120_000) throw new Error('the track printing 100,000 lines did not succeed within 2 minutes');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const loadStart = performance.now();
    const stored = await openPage(storedTrack);
    await stored.page.waitForFunction((n) => document.querySelector('.output-summary')?.textContent?.startsWith(`${n.toLocaleString('en')} lines`), STORED_LINES, {
      timeout: 180_000,
      polling: 100,
    });
    const loadMs = performance.now() - loadStart;
    const loadLong = await longTasks(stored.page);
    const storedHeap = await stored.heap();
    options.progress('dashboard output (b): scrolling from top to bottom');
    // No named functions inside: tsx (esbuild's keepNames) would wrap them in a helper the page does not have.
    const scroll = await stored.page.getByTestId('output-lines').evaluate(async (box) => {
      box.scrollTop = 0;
      await new Promise<number>((resolve) => requestAnimationFrame(resolve));
      await new Promise<number>((resolve) => requestAnimationFrame(resolve));
      const frames: number[] = [];
      let last = await new Promise<number>((resolve) => requestAnimationFrame(resolve));
      let steps = 0;
      while (box.scrollTop + box.clientHeight < box.scrollHeight - 1) {
        box.scrollTop += 2 * box.clientHeight;
        const now = await new Promise<number>((resolve) => requestAnimationFrame(resolve));
        frames.push(now - last);
        last = now;
        steps++;
      }
      // The last rows are drawn, not only scrolled to.
      await new Promise<number>((resolve) => requestAnimationFrame(resolve));
      const lastRow = [...box.querySelectorAll<HTMLElement>('.output-line')].at(-1)?.dataset.n;
      return { frames, steps, lastRow: Number(lastRow), rowsInPage: box.querySelectorAll('.output-line').length };
    });
    const scrollLong = await longTasks(stored.page);
    await stored.close();
    if (scroll.lastRow !== STORED_LINES) options.problems.push(`dashboard output (b): the last row drawn is line ${scroll.lastRow}, not ${STORED_LINES}`);
    const frames = [...scroll.frames].sort((a, b) => a - b);
    const p99 = percentile(frames, 99);
    const scrollMaxLong = Math.max(0, ...scrollLong);

    lines.push(
      `dashboard output viewer (Chromium ${browser.version()}, /tracks/:id, viewport 1280x800; AUTH on, a viewer's token)`,
      `  (a) ${LINES_PER_SECOND.toLocaleString('en')} lines/s for ${LIVE_SECONDS} s, following: ${shown.toLocaleString('en')} lines shown ${(liveMs / 1000).toFixed(1)} s after the script began (the first seen by the bench after ${(firstLineMs / 1000).toFixed(1)} s)`,
      `      long tasks: ${liveLong.length}, longest ${ms(maxLong)} (target: none over ${LONG_TASK_TARGET_MS} ms) ${verdict(maxLong <= LONG_TASK_TARGET_MS)}`,
      `      JS heap after GC: start (empty list) ${mb(samples[0]!.used)}, peak ${mb(peak.used)}, end ${mb(samples.at(-1)!.used)}; elements in the page ${samples[0]!.elements} / ${peak.elements} / ${samples.at(-1)!.elements}`,
      `      (target: bounded; the view keeps at most 100,000 lines, ${samples.length} samples every ${HEAP_SAMPLE_MS / 1000} s: ${samples.map((s) => (s.used / 1024 / 1024).toFixed(0)).join(' ')} MB)`,
      `  (b) ${STORED_LINES.toLocaleString('en')} stored lines: loaded in ${(loadMs / 1000).toFixed(1)} s (replayed by trackOutput from offset 0), ${loadLong.length} long tasks while loading, longest ${ms(Math.max(0, ...loadLong))}; heap ${mb(storedHeap.used)}`,
      `      scroll top to bottom, ${scroll.steps} steps of two views, ${scroll.rowsInPage} rows in the page: frame p50 ${ms(percentile(frames, 50))}, p99 ${ms(p99)}, max ${ms(frames.at(-1) ?? 0)} (target: p99 under ${FRAME_P99_TARGET_MS} ms) ${verdict(p99 < FRAME_P99_TARGET_MS)}`,
      `      long tasks while scrolling: ${scrollLong.length}, longest ${ms(scrollMaxLong)} (target: none over ${LONG_TASK_TARGET_MS} ms) ${verdict(scrollMaxLong <= LONG_TASK_TARGET_MS)}`,
    );
  } finally {
    await browser.close();
    await app.stop();
  }
  return lines;
}
