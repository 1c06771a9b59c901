/**
 * The GraphiQL page as HTTP sees it: self-contained (nothing from another site), sent
 * compressed per Accept-Encoding, with an ETag that turns a second visit into a 304.
 * test/browser/graphiql.test.ts uses it in a real browser.
 */
import { request } from 'node:http';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseEncoding } from '../../src/graphiql.ts';
import { startTestApp, type TestApp } from '../helpers/test-app.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ env: { AUTH: 'on' } });
});
afterAll(() => t?.stop());

/** A GET of the page with node:http, which (unlike fetch) hands over the bytes as sent. */
function getPage(headers: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(t.url, { headers: { accept: 'text/html,application/xhtml+xml', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the GraphiQL page', () => {
  it('is self-contained: no script, style, worker or icon from another site', async () => {
    const page = await getPage({});
    expect(page.status).toBe(200);
    const html = page.body.toString('utf8');
    expect(html).toContain('<title>dagpipe</title>');
    expect(html).not.toContain('unpkg.com');
    // No element loads anything by URL: the script, styles and Monaco's workers are inline.
    expect(html).not.toMatch(/<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=\s*["']?(https?:)?\/\//i);
    expect(html).toMatch(/<link rel="icon" href="data:image\/svg\+xml,/);
  });

  it('is sent compressed (brotli, else gzip) at a fraction of its size, and the same page once decompressed', { timeout: 60_000 }, async () => {
    const raw = await getPage({ 'accept-encoding': 'identity' });
    expect(raw.headers['content-encoding']).toBeUndefined();
    expect(Number(raw.headers['content-length'])).toBe(raw.body.length);

    const br = await getPage({ 'accept-encoding': 'gzip, deflate, br, zstd' });
    expect(br.headers['content-encoding']).toBe('br');
    expect(br.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(br.headers.vary).toMatch(/Accept-Encoding/i);
    expect(br.body.length).toBeLessThan(raw.body.length / 4);
    expect(brotliDecompressSync(br.body).equals(raw.body)).toBe(true);

    const gzip = await getPage({ 'accept-encoding': 'gzip;q=1, br;q=0' });
    expect(gzip.headers['content-encoding']).toBe('gzip');
    expect(gzip.body.length).toBeLessThan(raw.body.length / 3);
    expect(gunzipSync(gzip.body).equals(raw.body)).toBe(true);
  });

  it('has an ETag per encoding and answers 304 to a browser that has the page', { timeout: 60_000 }, async () => {
    const first = await getPage({ 'accept-encoding': 'br' });
    const etag = first.headers.etag as string;
    expect(etag).toMatch(/^"[\w-]+-br"$/);
    expect(first.headers['cache-control']).toBe('no-cache');

    const again = await getPage({ 'accept-encoding': 'br', 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    expect(again.headers.etag).toBe(etag);
    // A weak validator from a proxy matches too; another encoding's tag does not.
    expect((await getPage({ 'accept-encoding': 'br', 'if-none-match': `"other", W/${etag}` })).status).toBe(304);
    const gzip = await getPage({ 'accept-encoding': 'gzip', 'if-none-match': etag });
    expect(gzip.status).toBe(200);
    expect(gzip.headers.etag).not.toBe(etag);
  });

  it('leaves GraphQL requests alone (a GET query still gets JSON)', async () => {
    const response = await fetch(`${t.url}?query=${encodeURIComponent('{ __typename }')}`, { headers: { 'x-graphql-yoga-csrf': '1' } });
    expect(response.headers.get('content-type')).toMatch(/json/);
    expect(response.headers.get('etag')).toBeNull();
    expect(await response.json()).toEqual({ data: { __typename: 'Query' } });
  });
});

describe('chooseEncoding', () => {
  it.each([
    [null, 'identity'],
    ['', 'identity'],
    ['gzip, deflate, br', 'br'],
    ['gzip', 'gzip'],
    ['br;q=0.5, gzip', 'gzip'],
    ['br;q=0, gzip;q=0', 'identity'],
    ['*', 'br'],
    ['*;q=0, gzip', 'gzip'],
    ['deflate', 'identity'],
  ] as const)('%j -> %s', (header, expected) => {
    expect(chooseEncoding(header)).toBe(expected);
  });
});
