/**
 * The dashboard's files as the API serves them at `/`: compressed as the browser accepts,
 * hashed assets cached for good and the page revalidated, client routes answered with the
 * page, and nothing of /graphql, /health or /metrics shadowed. The first page's JavaScript
 * stays within issue 11's budget. It serves dist/dashboard, which `npm ci` (postinstall)
 * and `npm run build` make.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DASHBOARD_JS_BUDGET_BYTES, initialDashboardJs } from '../../scripts/dashboard-size.mjs';
import { Graphs } from '../helpers/operations.ts';
import { startTestApp, type TestApp } from '../helpers/test-app.ts';

const DIST = fileURLToPath(new URL('../../dist/dashboard', import.meta.url));

let t: TestApp;
let base = '';
beforeAll(async () => {
  t = await startTestApp();
  base = t.url.replace(/\/graphql$/, '');
});
afterAll(() => t?.stop());

it('serves the page at / compressed (brotli, gzip, or none), revalidated with an ETag', async () => {
  const byEncoding = new Map<string, { etag: string; body: string }>();
  for (const [accept, expected] of [
    ['gzip, deflate, br', 'br'],
    ['gzip', 'gzip'],
    ['identity', null],
  ] as const) {
    const response = await fetch(`${base}/`, { headers: { 'accept-encoding': accept } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-encoding')).toBe(expected);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(response.headers.get('cache-control')).toBe('no-cache');
    expect(response.headers.get('vary')).toBe('Accept-Encoding');
    expect(response.headers.get('content-security-policy')).toContain("default-src 'self'");
    const body = await response.text();
    expect(body).toContain('<div id="app"></div>');
    byEncoding.set(accept, { etag: response.headers.get('etag')!, body });
  }
  const etags = [...byEncoding.values()].map((v) => v.etag);
  expect(new Set(etags).size).toBe(3);
  expect(new Set([...byEncoding.values()].map((v) => v.body)).size).toBe(1);

  const again = await fetch(`${base}/`, { headers: { 'accept-encoding': 'br', 'if-none-match': byEncoding.get('gzip, deflate, br')!.etag } });
  expect(again.status).toBe(304);
  expect(await again.text()).toBe('');
});

it('caches hashed assets for good, answers a missing asset 404 and a client route with the page', async () => {
  const page = await (await fetch(`${base}/`)).text();
  const script = /<script type="module" crossorigin src="(\/assets\/[^"]+\.js)"/.exec(page)?.[1];
  expect(script).toBeDefined();
  const asset = await fetch(`${base}${script}`, { headers: { 'accept-encoding': 'gzip' } });
  expect(asset.status).toBe(200);
  expect(asset.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
  expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
  expect(asset.headers.get('content-encoding')).toBe('gzip');
  expect((await asset.text()).length).toBeGreaterThan(1000);

  const missing = await fetch(`${base}/assets/index-00000000.js`);
  expect(missing.status).toBe(404);
  expect(await missing.text()).toContain('Not found: /assets/index-00000000.js');
  // Vite's manifest is for the build only.
  expect((await fetch(`${base}/.vite/manifest.json`)).status).toBe(404);

  for (const route of ['/graphs/12', '/runs/3?track=B']) {
    const response = await fetch(`${base}${route}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-cache');
    expect(await response.text()).toBe(page);
  }
});

it('leaves /graphql, /health and /metrics to their owners', async () => {
  expect(await t.request(Graphs, {})).toEqual({ graphs: [] });
  const overGet = await fetch(`${base}/graphql?query=${encodeURIComponent('{ __typename }')}`, { headers: { accept: 'application/json', 'x-graphql-yoga-csrf': '1' } });
  expect(await overGet.json()).toEqual({ data: { __typename: 'Query' } });
  const health = await fetch(`${base}/health`);
  expect(health.headers.get('content-type')).toContain('application/json');
  const metrics = await fetch(`${base}/metrics`);
  expect(await metrics.text()).toContain('# HELP');
  // A POST elsewhere is not the dashboard's (it has no forms posting to the service).
  expect((await fetch(`${base}/`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })).headers.get('content-security-policy')).toBeNull();
});

it("keeps the first page's JavaScript within the budget (150 kB gzip)", () => {
  const bytes = initialDashboardJs(DIST);
  expect(bytes).toBeGreaterThan(5_000);
  expect(bytes).toBeLessThanOrEqual(DASHBOARD_JS_BUDGET_BYTES);
});
