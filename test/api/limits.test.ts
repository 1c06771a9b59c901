/**
 * Limits a public service needs: query depth, cost, aliases and tokens, body size,
 * subscriptions per connection, a mutation rate limit, CSRF prevention, introspection off;
 * and the GraphQL-over-HTTP audit of graphql-http, in full, with all of them on.
 */
import { auditServer } from 'graphql-http';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createToken } from '../../src/auth/tokens.ts';
import { startPipeline } from '../../src/store/pipelines.ts';
import { eventually } from '../helpers/seed.ts';
import { startTestApp, type TestApp } from '../helpers/test-app.ts';

let t: TestApp;
let token = '';
beforeAll(async () => {
  t = await startTestApp({
    env: {
      AUTH: 'on',
      MAX_BODY_BYTES: '20000',
      MAX_QUERY_DEPTH: '6',
      MAX_QUERY_COST: '50000',
      MAX_ALIASES: '5',
      MAX_TOKENS: '400',
      SUBSCRIPTIONS_PER_CONNECTION: '2',
      MUTATIONS_PER_MINUTE: '5',
    },
  });
  token = (await createToken(t.app.store.db, { name: 'limits', role: 'admin' })).secret;
});
afterAll(() => t?.stop());

async function post(body: string, headers: Record<string, string> = {}) {
  const response = await fetch(t.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', authorization: `Bearer ${token}`, ...headers },
    body,
  });
  const text = await response.text();
  return { status: response.status, text, json: (() => { try { return JSON.parse(text) as { data?: unknown; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> }; } catch { return undefined; } })() };
}
const query = (q: string) => post(JSON.stringify({ query: q }));

describe('query limits', () => {
  it('refuses a query deeper than MAX_QUERY_DEPTH', async () => {
    const deep = await query('{ pipelines { graph { pipelines { graph { pipelines { graph { pipelines { id } } } } } } } }');
    expect(deep.json?.errors?.[0]!.message).toMatch(/depth/i);
    expect(deep.json?.data ?? null).toBeNull();
    expect((await query('{ pipelines { graph { id } } }')).json?.errors).toBeUndefined();
  });

  it('refuses a query costlier than MAX_QUERY_COST (a literal first multiplies the cost)', async () => {
    const costly = await query('{ pipelines(first: 100) { events(first: 10000) { id type reason } } }');
    expect(costly.json?.errors?.[0]!.message).toMatch(/Cost limit of 50000 exceeded/);
    expect((await query('{ pipelines(first: 10) { events(first: 100) { id type reason } } }')).json?.errors).toBeUndefined();
  });

  it('refuses more aliases than MAX_ALIASES and more tokens than MAX_TOKENS', async () => {
    const aliases = await query(`{ ${Array.from({ length: 6 }, (_, i) => `a${i}: graphs { id }`).join(' ')} }`);
    expect(aliases.json?.errors?.[0]!.message).toMatch(/aliases/i);
    const tokens = await query(`{ graphs { ${'id '.repeat(500)} } }`);
    expect(tokens.json?.errors?.[0]!.message).toMatch(/token/i);
  });

  it('refuses a body over MAX_BODY_BYTES with 413 before reading it', async () => {
    const big = await post(JSON.stringify({ query: '{ graphs { id } }', variables: { pad: 'x'.repeat(30_000) } }));
    expect(big.status).toBe(413);
    expect(big.text).toContain('MAX_BODY_BYTES');
  });

  it('limits mutations per minute per token, saying when to try again', async () => {
    const results = [];
    for (let i = 0; i < 7; i++) results.push(await query(`mutation { checkGraph(id: 999999) { __typename } }`));
    const limited = results.filter((r) => r.json?.errors?.[0]?.extensions?.code === 'RATE_LIMITED');
    expect(limited.length).toBeGreaterThanOrEqual(2);
    expect(limited[0]!.status).toBe(429);
    expect(limited[0]!.json!.errors![0]!.message).toMatch(/MUTATIONS_PER_MINUTE\). Try again in \d+ s/);
    // Queries are not limited.
    expect((await query('{ graphs { id } }')).json?.errors).toBeUndefined();
  });

  it('refuses a cross-site "simple" request (GET without the CSRF header)', async () => {
    const response = await fetch(`${t.url}?query=${encodeURIComponent('{ graphs { id } }')}`, { headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(403);
    const allowed = await fetch(`${t.url}?query=${encodeURIComponent('{ graphs { id } }')}`, {
      headers: { authorization: `Bearer ${token}`, 'x-graphql-yoga-csrf': '1', accept: 'application/graphql-response+json' },
    });
    expect(allowed.status).toBe(200);
  });

  it('allows at most SUBSCRIPTIONS_PER_CONNECTION subscriptions on one graphql-ws connection', async () => {
    // A pipeline to follow (made with the store: the mutation budget is spent above).
    const graph = await t.app.store.db.graph.create({ data: { name: 'followed', checked: true, vertices: { create: [{ name: 'A', script: 'sleep 30' }] } } });
    const pipeline = await startPipeline(t.app.store, { graphId: graph.id });
    const client = createClient({ url: t.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { authorization: `Bearer ${token}` } });
    const outcomes: string[] = [];
    const stops = [1, 2, 3].map((n) =>
      client.subscribe(
        { query: `subscription { pipelineUpdated(pipelineId: ${pipeline.id}, after: 0) { type } }` },
        { next: (v) => outcomes.push(`${n}: ${JSON.stringify(v)}`), error: (e) => outcomes.push(`${n} error: ${JSON.stringify(e)}`), complete() {} },
      ),
    );
    // Two replays and one refusal, however long a busy machine takes to deliver them.
    await eventually(async () => (outcomes.length >= 3 ? true : undefined), 10_000, 'the two replays and the refusal');
    expect(outcomes.filter((o) => o.includes('pipeline:started'))).toHaveLength(2);
    expect(outcomes.filter((o) => o.includes('SUBSCRIPTIONS_PER_CONNECTION'))).toHaveLength(1);
    for (const stop of stops) stop();
    await client.dispose();
  });
});

describe('introspection off', () => {
  it('refuses introspection and hides field suggestions when INTROSPECTION=off', async () => {
    const closed = await startTestApp({ env: { INTROSPECTION: 'off' } });
    try {
      const response = await fetch(closed.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ __schema { types { name } } }' }),
      });
      expect(JSON.stringify(await response.json())).toMatch(/introspection/i);
      const typo = await fetch(closed.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ graph { id } }' }) });
      expect(JSON.stringify(await typo.json())).not.toContain('Did you mean');
    } finally {
      await closed.stop();
    }
  });
});

describe('GraphQL over HTTP', () => {
  it('passes every audit of graphql-http (MUST, SHOULD and MAY) with authentication and the limits on', async () => {
    // A non-browser client: it sends its token and the CSRF header, as API clients do.
    const fetchFn = (input: RequestInfo | URL, init: RequestInit = {}) => {
      const headers = new Headers(init.headers);
      headers.set('authorization', `Bearer ${token}`);
      headers.set('x-graphql-yoga-csrf', '1');
      return fetch(input, { ...init, headers });
    };
    const results = await auditServer({ url: t.url, fetchFn });
    const failures = results.filter((r) => r.status !== 'ok').map((r) => `${r.id} ${r.name}: ${'reason' in r ? r.reason : ''}`);
    expect(failures).toEqual([]);
  });
});
