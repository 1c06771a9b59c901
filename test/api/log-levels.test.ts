/**
 * A log level says whose fault a problem is. A request refused for want of a token or a
 * role, or with bad input, is the client's: at most an info line, without a stack. An
 * unexpected error is the service's: one error line, with its stack.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { print } from 'graphql';
import { createClient as createSseClient } from 'graphql-sse';
import { createClient, type Client } from 'graphql-ws';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createToken } from '../../src/auth/tokens.ts';
import { connectDb } from '../../src/db.ts';
import { graphql } from '../../src/generated/gql/index.ts';
import { CreateGraph, PipelineDetail, StartPipeline } from '../helpers/operations.ts';
import { eventually, seedGraph } from '../helpers/seed.ts';
import { freePort, killServerProcesses, startServerProcess, type ServerProcess } from '../helpers/server-process.ts';
import { freshDatabase, httpClient, startTestApp, type SubscribingClient } from '../helpers/test-app.ts';

const Graphs = graphql(`query LogGraphs { graphs { id } }`);
const Tokens = graphql(`query LogTokens { tokens { id } }`);

interface LogLine {
  level: number;
  msg: string;
  code?: string;
  path?: string;
  transport?: string;
  err?: { stack?: string; message?: string };
}

/** Parses JSON log lines; anything else a process printed is ignored. */
function parseLines(text: string): LogLine[] {
  return text.split('\n').flatMap((line) => {
    if (!line.startsWith('{')) return [];
    return [JSON.parse(line) as LogLine];
  });
}

const dir = mkdtempSync(path.join(tmpdir(), 'dagpipe-log-levels-'));
afterAll(() => {
  killServerProcesses();
  rmSync(dir, { recursive: true, force: true });
});

describe('the server process with LOG_LEVEL=info', { timeout: 90_000 }, () => {
  let server: ServerProcess;
  let stdout = '';
  const secrets = { viewer: '', admin: '' };

  beforeAll(async () => {
    const databaseUrl = freshDatabase(dir);
    const { prisma } = await connectDb(databaseUrl);
    for (const role of ['viewer', 'admin'] as const) secrets[role] = (await createToken(prisma, { name: `log-${role}`, role })).secret;
    await prisma.$disconnect();
    server = await startServerProcess({
      AUTH: 'on',
      LOG_LEVEL: 'info',
      DATABASE_URL: databaseUrl,
      WORK_DIR: path.join(dir, 'work'),
      PORT: String(await freePort()),
    });
    server.child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  });

  const wsClient = (authorization?: string): Client =>
    createClient({
      url: server.url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      lazy: true,
      ...(authorization && { connectionParams: { authorization } }),
    });

  /** The first result of an operation over graphql-ws, or how the connection closed. */
  const overWs = (client: Client, query: string) =>
    new Promise<unknown>((resolve) => {
      const dispose = client.subscribe(
        { query },
        {
          next: (value) => {
            dispose();
            resolve(value);
          },
          error: (error) => resolve({ closed: (error as CloseEvent).code ?? error }),
          complete: () => resolve('complete'),
        },
      );
    });

  it('logs refused and bad requests over HTTP, SSE and graphql-ws at info, without a stack, and nothing at error', async () => {
    const anonymous = httpClient(server.url);
    const viewer = httpClient(server.url, { authorization: `Bearer ${secrets.viewer}` });
    const admin = httpClient(server.url, { authorization: `Bearer ${secrets.admin}` });

    // HTTP: no token, a malformed one, an unknown one; a role too low; bad input.
    expect((await anonymous.execute(Graphs)).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect((await httpClient(server.url, { authorization: 'Bearer dp_cut-short' }).execute(Graphs)).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect((await httpClient(server.url, { authorization: `Bearer dp_${'x'.repeat(43)}` }).execute(Graphs)).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect((await anonymous.request(CreateGraph, { name: 'nope' })).createGraph.__typename).toBe('UnauthenticatedError');
    expect((await viewer.execute(Tokens)).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await viewer.request(StartPipeline, { graphId: 1 })).startPipeline.__typename).toBe('ForbiddenError');
    expect((await admin.request(StartPipeline, { graphId: 999 })).startPipeline.__typename).toBe('NotFoundError');
    const post = (body: string) =>
      fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${secrets.viewer}` }, body });
    expect(await (await post('{"query": "{ nope }"}')).text()).toContain('Cannot query field');
    expect(await (await post('{"query": "query ($id: Int!) { pipeline(id: $id) { id } }", "variables": {"id": "x"}}')).text()).toContain('Int cannot represent');
    expect(await (await post('{"query": ')).text()).toContain('errors');
    expect((await fetch(server.url.replace('/graphql', '/metrics'))).status).toBe(401);

    // SSE without a token.
    const sse = createSseClient({ url: server.url, retryAttempts: 0 });
    const sseError = await new Promise<unknown>((resolve) => {
      sse.subscribe({ query: 'subscription { pipelineUpdated(pipelineId: 1) { id } }' }, { next: (v) => resolve(v.errors), error: resolve, complete() {} });
    });
    sse.dispose();
    expect(JSON.stringify(sseError)).toContain('UNAUTHENTICATED');

    // graphql-ws: connections without a valid token are closed; a viewer's refused and bad operations.
    for (const authorization of [undefined, 'Bearer dp_cut-short']) {
      const client = wsClient(authorization);
      expect(await overWs(client, 'subscription { trackOutput(trackId: 1) { line } }')).toEqual({ closed: 4403 });
      await client.dispose();
    }
    const client = wsClient(`Bearer ${secrets.viewer}`);
    expect(JSON.stringify(await overWs(client, print(Tokens)))).toContain('FORBIDDEN');
    expect(JSON.stringify(await overWs(client, 'mutation { createGraph(name: "x") { __typename } }'))).toContain('ForbiddenError');
    expect(JSON.stringify(await overWs(client, 'subscription { pipelineLive(pipelineId: 999) { snapshot { state } } }'))).toContain('No pipeline with id 999');
    expect(JSON.stringify(await overWs(client, 'subscription { nope }'))).toContain('nope');
    await client.dispose();

    // The refusals are there at info (so the log was read), each once per request.
    const lines = await eventually(
      async () => {
        const parsed = parseLines(stdout);
        return parsed.filter((l) => l.transport === 'graphql-ws').length >= 2 && parsed.some((l) => l.path === '/metrics') ? parsed : undefined;
      },
      15_000,
      'the refusals in the log',
    );
    const refused = lines.filter((l) => l.msg.startsWith('request refused') || l.msg.startsWith('connection refused'));
    expect(refused.every((l) => l.level === 30)).toBe(true);
    expect(refused.filter((l) => l.code === 'UNAUTHENTICATED' && l.path === 'graphs')).toHaveLength(3);
    expect(refused.filter((l) => l.code === 'FORBIDDEN' && l.path === 'tokens')).toHaveLength(2);
    expect(refused.find((l) => l.path === 'graphs' && l.msg.includes('characters long'))).toBeDefined();

    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    expect(lines.filter((l) => JSON.stringify(l).includes('stack'))).toEqual([]);
  });
});

describe('an unexpected error', () => {
  it('is logged once, at error level, with its stack, and reaches the client masked', async () => {
    let captured = '';
    const logger = pino({ level: 'info' }, { write: (line: string) => void (captured += line) });
    const t = await startTestApp({ logger });
    try {
      // The service's own fault: its database lost a table.
      await t.app.store.db.$executeRawUnsafe('ALTER TABLE "graph" RENAME TO "graph_gone"');
      const result = await t.execute(Graphs);
      expect(result.errors?.[0]?.message).toBe('Unexpected error.');
      const errors = parseLines(captured).filter((l) => l.level >= 50);
      expect(errors).toHaveLength(1);
      expect(errors[0]!.msg).toBe('unexpected error');
      expect(errors[0]!.err?.stack).toContain('graph');
    } finally {
      await t.stop();
    }
  });

  it('in a subscription, reaches graphql-ws and SSE subscribers masked, and is logged at error level with its stack', async () => {
    let captured = '';
    const logger = pino({ level: 'info' }, { write: (line: string) => void (captured += line) });
    const t = await startTestApp({ logger });
    try {
      const { graphId } = await seedGraph(t, { vertices: { only: { script: 'true' } } });
      const started = await t.request(StartPipeline, { graphId });
      if (started.startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(started));
      const pipelineId = started.startPipeline.id;
      await eventually(async () => ((await t.request(PipelineDetail, { id: pipelineId })).pipeline?.state === 'FINISH' ? true : undefined));
      // Only the subscriptions meet the broken tables: the executor (which polls for work on
      // PostgreSQL) would log its own failures.
      await t.app.executor!.stop();
      /** What a subscriber gets first: a result's errors, the stream's error, or its end. */
      const firstOutcome = (client: SubscribingClient, query: string) =>
        new Promise<unknown>((resolve) => {
          const dispose = client.subscribe(
            { query, variables: { pipelineId } },
            {
              next: (value) => {
                dispose();
                resolve(value.errors ?? value);
              },
              error: resolve,
              complete: () => resolve('complete'),
            },
          );
        });
      const ids = 'subscription ($pipelineId: Int!) { trackUpdated(pipelineId: $pipelineId, after: 0) { id } }';
      const withTrack = 'subscription ($pipelineId: Int!) { trackUpdated(pipelineId: $pipelineId, after: 0) { id track { name } } }';
      // The service's own fault, in each place a subscription can meet it: subscribing (the
      // pipeline is looked up), following (the journal is read), executing an event.
      for (const [table, query] of [['pipeline', ids], ['event', ids], ['track', withTrack]] as const) {
        await t.app.store.db.$executeRawUnsafe(`ALTER TABLE "${table}" RENAME TO "${table}_gone"`);
        for (const [transport, client] of [['graphql-ws', t.wsClient()], ['SSE', t.sseClient()]] as const) {
          const outcome = JSON.stringify(await firstOutcome(client, query));
          expect(outcome, `${transport}, without the ${table} table`).toContain('Unexpected error.');
          expect(outcome, `${transport}, without the ${table} table`).not.toMatch(/exist|no such|relation/i);
        }
        await t.app.store.db.$executeRawUnsafe(`ALTER TABLE "${table}_gone" RENAME TO "${table}"`);
      }
      const errors = parseLines(captured).filter((l) => l.level >= 50);
      expect(errors.length).toBeGreaterThanOrEqual(6);
      for (const error of errors) {
        expect(error.msg).toBe('unexpected error');
        expect(error.err?.stack).toBeDefined();
      }
    } finally {
      await t.stop();
    }
  });
});
