/**
 * A real service for a test file: its own migrated database (SQLite, or PostgreSQL: see databases.ts), its own work directory,
 * listening on a free port, with a typed GraphQL client over HTTP and graphql-ws.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type ExecutionResult } from 'graphql';
import { createClient as createSseClient, type Client as SseClient } from 'graphql-sse';
import { createClient, type Client } from 'graphql-ws';
import { pino, type Logger } from 'pino';
import WebSocket from 'ws';
import { buildApp, type App } from '../../src/app.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { freshDatabase, suiteEnvironment } from './databases.ts';

export interface GraphQLClient {
  execute<R, V>(document: TypedDocumentNode<R, V>, variables?: V): Promise<ExecutionResult<R>>;
  /** Like execute, but fails the test on GraphQL errors and returns the data. */
  request<R, V>(document: TypedDocumentNode<R, V>, variables?: V): Promise<R>;
}

/** A typed GraphQL-over-HTTP client for a server at `url`. */
export function httpClient(url: string, headers: Record<string, string> = {}): GraphQLClient {
  async function execute<R, V>(document: TypedDocumentNode<R, V>, variables?: V): Promise<ExecutionResult<R>> {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...headers },
      body: JSON.stringify({ query: print(document), variables }),
    });
    return (await response.json()) as ExecutionResult<R>;
  }
  return {
    execute,
    async request(document, variables) {
      const result = await execute(document, variables);
      if (result.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(result.errors)}`);
      return result.data!;
    },
  };
}

/** A graphql-ws client for a server at `wsUrl` (ws://host:port/graphql), connecting on first use. */
export function wsClient(wsUrl: string): Client {
  return createClient({ url: wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
}

export interface TestApp extends GraphQLClient {
  app: App;
  url: string;
  wsUrl: string;
  databaseUrl: string;
  dir: string;
  /** Every SQL statement run, in order (only when `countQueries` was set). */
  queries: string[];
  wsClient(): Client;
  /** A graphql-sse client (Server-Sent Events, distinct connections). */
  sseClient(): SseClient;
  stop(): Promise<void>;
}

export { freshDatabase } from './databases.ts';

/**
 * `databaseUrl`: another app's database (a second process of one deployment, on PostgreSQL);
 * by default a fresh one.
 */
export async function startTestApp(
  options: { env?: Record<string, string>; countQueries?: boolean; logger?: Logger; databaseUrl?: string } = {},
): Promise<TestApp> {
  const dir = mkdtempSync(path.join(tmpdir(), 'dagpipe-app-'));
  const databaseUrl = options.databaseUrl ?? freshDatabase(dir);
  const config: Config = loadConfig({
    PORT: '0',
    WORKERS: '4',
    DATABASE_URL: databaseUrl,
    ...suiteEnvironment(),
    WORK_DIR: path.join(dir, 'work'),
    LOG_LEVEL: 'silent',
    // Tests of other things run on loopback without authentication, and without the
    // mutation rate limit; test/api/auth.test.ts and limits.test.ts switch them on.
    AUTH: 'off',
    MUTATIONS_PER_MINUTE: '100000000',
    // Tests run as root and their scripts share files with the test: root for scripts,
    // explicitly (test/api/script-user.test.ts runs them as nobody).
    SCRIPT_USER: 'root',
    ...options.env,
  });
  const queries: string[] = [];
  const app = await buildApp({
    config,
    logger: options.logger ?? pino({ level: 'silent' }),
    env: process.env,
    ...(options.countQueries && { db: { onQuery: (sql: string) => queries.push(sql) } }),
  });
  const url = await app.start();
  const wsUrl = url.replace(/^http/, 'ws');
  const clients: Array<Client | SseClient> = [];

  return {
    ...httpClient(url),
    app,
    url,
    wsUrl,
    databaseUrl,
    dir,
    queries,
    wsClient() {
      const client = wsClient(wsUrl);
      clients.push(client);
      return client;
    },
    sseClient() {
      const client = createSseClient({ url, retryAttempts: 0 });
      clients.push(client);
      return client;
    },
    async stop() {
      await Promise.all(clients.map((c) => c.dispose()));
      await app.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** What collect needs of a client: graphql-ws's and graphql-sse's both have it. */
export interface SubscribingClient {
  subscribe(
    request: { query: string; variables?: Record<string, unknown> },
    sink: { next(value: ExecutionResult<Record<string, unknown>, unknown>): void; error(error: unknown): void; complete(): void },
  ): () => void;
}

/**
 * Collects a subscription's payloads until `until` says stop, or the server completes the
 * stream (or the timeout fails it). graphql-ws does not acknowledge a subscription: pass
 * `after` to replay what was committed before the server started listening.
 */
export function collect<R, V>(
  client: SubscribingClient,
  document: TypedDocumentNode<R, V>,
  variables: V,
  until: (items: R[]) => boolean,
  timeoutMs = 20_000,
): Promise<R[]> {
  const items: R[] = [];
  return new Promise<R[]>((resolve, reject) => {
    const timer = setTimeout(() => {
      dispose();
      reject(new Error(`subscription timed out after ${timeoutMs} ms with ${items.length} item(s): ${JSON.stringify(items)}`));
    }, timeoutMs);
    const dispose = client.subscribe(
      { query: print(document), variables: variables as Record<string, unknown> },
      {
        next: (value) => {
          if (value.errors) {
            clearTimeout(timer);
            reject(new Error(JSON.stringify(value.errors)));
            return;
          }
          items.push(value.data as R);
          if (until(items)) {
            clearTimeout(timer);
            dispose();
            resolve(items);
          }
        },
        error: (error) => {
          clearTimeout(timer);
          reject(error instanceof Error ? error : new Error(JSON.stringify(error)));
        },
        complete: () => {
          clearTimeout(timer);
          resolve(items);
        },
      },
    );
  });
}

/**
 * Every payload of a subscription until the server completes it; fails if it does not
 * within the timeout. `seen` is told of each payload (to act on what arrived).
 */
export function collectAll<R, V>(
  client: SubscribingClient,
  document: TypedDocumentNode<R, V>,
  variables: V,
  seen: (items: R[]) => void = () => undefined,
  timeoutMs = 20_000,
): Promise<R[]> {
  return collect(client, document, variables, (items) => (seen(items), false), timeoutMs);
}
