/**
 * (j) The dashboard in Chromium (Debian's, through playwright-core; test/helpers/browser.ts):
 * a live 200-track run page. The run is a layered graph (50 layers of 4, each layer joined
 * to the next) built and started through the API, its first layer held at a gate so that the
 * page is live while it is measured (2 tracks RUNNING with WORKERS=2, the others PENDING or
 * WAITING) and the subscription stays open.
 *
 * Measured: the time from navigation to the run page fully drawn (all 200 DAG nodes carry
 * their state class), read in the page itself (performance.now() is relative to the
 * navigation's start) at the first animation frame it holds, in a fresh browser context each
 * time (nothing cached: the first visit), median of 5 loads, against the target (<= 1 s);
 * and the page's JS heap (used, after a garbage collection) once drawn.
 *
 * The service runs in this process with AUTH=off (as the other sections); the page is given
 * a token anyway, since the dashboard signs in with one. BENCH_ONLY=dashboard runs it alone.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { runDashboardOutput } from './dashboard-output.ts';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../test/helpers/browser.ts';
import { CancelPipeline } from '../test/helpers/operations.ts';
import { migrateDatabase, quiesce, startBenchApp, startPipeline } from './app.ts';
import { buildLayeredGraphViaApi, layeredShape, type LayeredShape } from './graphs.ts';

export interface DashboardBenchOptions {
  root: string;
  dir: string;
  progress: (message: string) => void;
  problems: string[];
}

export const DASHBOARD_SHAPE: LayeredShape = { vertices: 200, width: 4 };
const WORKERS = 2;
const LOADS = 5;
const TARGET_MS = 1_000;
const LOAD_TIMEOUT_MS = 30_000;

const ms = (value: number) => `${value.toFixed(0)} ms`;
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

interface Load {
  drawnMs: number;
  heapUsedBytes: number;
}

async function loadRunPage(browser: Browser, base: string, pipelineId: number, nodes: number): Promise<Load> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    await context.addInitScript(() => sessionStorage.setItem('dagpipe.token', 'bench'));
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('Performance.enable');
    await page.goto(`${base}/runs/${pipelineId}`, { waitUntil: 'commit' });
    const drawn = await page.waitForFunction(
      (count) => document.querySelectorAll('.dag [data-testid^="vertex-"][class*="state-"]').length === count && performance.now(),
      nodes,
      { polling: 'raf', timeout: LOAD_TIMEOUT_MS },
    );
    const drawnMs = (await drawn.jsonValue()) as number;
    await cdp.send('HeapProfiler.collectGarbage');
    const { metrics } = await cdp.send('Performance.getMetrics');
    const heapUsedBytes = metrics.find((metric) => metric.name === 'JSHeapUsedSize')?.value ?? Number.NaN;
    return { drawnMs, heapUsedBytes };
  } finally {
    await context.close();
  }
}

export async function runDashboard(options: DashboardBenchOptions): Promise<string[]> {
  const { root, dir, progress, problems } = options;
  const databaseUrl = `file:${path.join(dir, 'dashboard.db')}`;
  progress('(j) dashboard: fresh database, migrations');
  await migrateDatabase(root, databaseUrl);
  const { app, client } = await startBenchApp({ root, databaseUrl, workDir: path.join(dir, 'work-dashboard'), workers: WORKERS });
  let browser: Browser | undefined;
  let runPage: string[];
  try {
    const gate = path.join(dir, 'dashboard-gate');
    const held = `while [ ! -e ${gate} ]; do sleep 0.1; done`;
    progress(`(j) building the ${DASHBOARD_SHAPE.vertices}-vertex graph through the API and starting it (first layer held)`);
    const graph = await buildLayeredGraphViaApi(client, 'bench-dashboard-200', DASHBOARD_SHAPE, held);
    const pipelineId = await startPipeline(client, graph.graphId, 'bench-dashboard-200');
    const base = client.url.replace(/\/graphql$/, '');

    browser = await launchChromium('dashboard bench');
    progress(`(j) ${LOADS} loads of the run page in Chromium`);
    // One load first that is not counted: the service's first pipelineLive and the files'
    // first reads are not what a visitor of a running service waits for.
    await loadRunPage(browser, base, pipelineId, DASHBOARD_SHAPE.vertices);
    const loads: Load[] = [];
    for (let i = 0; i < LOADS; i++) loads.push(await loadRunPage(browser, base, pipelineId, DASHBOARD_SHAPE.vertices));

    const drawn = median(loads.map((load) => load.drawnMs));
    const heap = median(loads.map((load) => load.heapUsedBytes));
    if (drawn > TARGET_MS) problems.push(`(j) the 200-track run page took ${ms(drawn)} to draw (median of ${LOADS}), over the target of ${ms(TARGET_MS)}`);

    writeFileSync(gate, '');
    const cancelled = await client.request(CancelPipeline, { id: pipelineId });
    if (cancelled.cancelPipeline.__typename !== 'Pipeline') problems.push(`(j) cancelPipeline(${pipelineId}) failed: ${JSON.stringify(cancelled.cancelPipeline)}`);
    await quiesce(app);
    runPage = [
      `(j) dashboard: a live ${DASHBOARD_SHAPE.vertices}-track run page (${DASHBOARD_SHAPE.vertices / DASHBOARD_SHAPE.width} layers of ${DASHBOARD_SHAPE.width}, ${layeredShape(DASHBOARD_SHAPE).edges.length} edges) in Chromium`,
      `    navigation -> all ${DASHBOARD_SHAPE.vertices} nodes drawn  ${ms(drawn)} median of ${LOADS} (${loads.map((load) => ms(load.drawnMs)).join(', ')})  (target <= ${ms(TARGET_MS)})`,
      `    JS heap used, drawn (after GC)  ${(heap / 1024 / 1024).toFixed(1)} MB median`,
    ];
  } finally {
    await browser?.close();
    await app.stop();
  }
  // The output viewer's measurements: their own app and browser (bench/dashboard-output.ts).
  return [...runPage, ...(await runDashboardOutput(options))];
}
