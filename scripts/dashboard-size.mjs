/**
 * What the dashboard's first page costs: scripts/build.mjs prints it and fails over the
 * budget, and test/api/dashboard.test.ts asserts it. Plain JavaScript: the build runs it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

/** Issue 11's budget for the JavaScript the dashboard's first page loads, gzip bytes. */
export const DASHBOARD_JS_BUDGET_BYTES = 150_000;

/**
 * Gzip bytes of the JavaScript that `dir`/index.html loads before anything runs: its
 * module scripts and the chunks they preload (a lazily imported chunk is not counted).
 * @param {string} dir the built dashboard (dist/dashboard)
 */
export function initialDashboardJs(dir) {
  const html = readFileSync(path.join(dir, 'index.html'), 'utf8');
  const files = [...html.matchAll(/<(?:script[^>]*\bsrc|link[^>]*rel="modulepreload"[^>]*\bhref)="\/([^"]+\.js)"/g)].map((m) => m[1]);
  if (files.length === 0) throw new Error(`${dir}/index.html loads no script: is it the dashboard's build?`);
  return files.reduce((sum, file) => sum + gzipSync(readFileSync(path.join(dir, file)), { level: 9 }).length, 0);
}
