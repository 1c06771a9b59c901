/**
 * The service in the bench's own process: buildApp on a given database, listening on a free
 * port, with a GraphQL client over HTTP; and what the sections do with it.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { buildApp, type App } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import type { DbOptions } from '../src/db.ts';
import { builtLauncherEntry } from '../src/executor/launcher-client.ts';
import { GraphQLClient } from './client.ts';
import { BenchStartPipeline } from './operations.ts';

/** Applies the real migrations (the prisma config picks the schema by the URL's scheme). */
export async function migrateDatabase(root: string, databaseUrl: string): Promise<void> {
  await promisify(execFile)('npx', ['prisma', 'migrate', 'deploy'], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: databaseUrl },
    timeout: 120_000,
  });
}

export interface BenchAppOptions {
  root: string;
  databaseUrl: string;
  workDir: string;
  workers: number;
  /** More settings, e.g. REDIS_URL. */
  env?: Record<string, string>;
  db?: DbOptions;
}

export async function startBenchApp(options: BenchAppOptions): Promise<{ app: App; client: GraphQLClient }> {
  const config = loadConfig({
    PORT: '0',
    WORKERS: String(options.workers),
    DATABASE_URL: options.databaseUrl,
    WORK_DIR: options.workDir,
    LOG_LEVEL: 'silent',
    // The bench measures the engine, not the limits that protect a public service.
    AUTH: 'off',
    SCRIPT_USER: 'root', // as the bare-spawn baseline runs
    MUTATIONS_PER_MINUTE: '100000000',
    MAX_ALIASES: '1000000',
    MAX_TOKENS: '10000000',
    MAX_QUERY_COST: '100000000',
    ...options.env,
  });
  // Service errors go to stderr (BENCH_LOG_LEVEL=silent|error|warn|info|debug; default error).
  const logger = pino({ level: process.env.BENCH_LOG_LEVEL ?? 'error' }, pino.destination(2));
  const launcher = builtLauncherEntry(path.join(options.root, 'dist'));
  const app = await buildApp({ config, logger, env: process.env, launcher, ...(options.db && { db: options.db }) });
  const url = await app.start();
  return { app, client: new GraphQLClient(url) };
}

export async function startPipeline(client: GraphQLClient, graphId: number, name: string): Promise<number> {
  const { startPipeline: started } = await client.request(BenchStartPipeline, { graphId, name });
  if (started.__typename !== 'Pipeline') throw new Error(`startPipeline failed: ${JSON.stringify(started)}`);
  return started.id;
}

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis));

/** Until the executor has had nothing running for a few consecutive looks. */
export async function quiesce(app: App, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let idleLooks = 0;
  while (idleLooks < 5) {
    if (Date.now() > deadline) throw new Error(`the executor still runs ${app.executor!.runningCount} track(s) after ${timeoutMs} ms`);
    idleLooks = app.executor!.runningCount === 0 ? idleLooks + 1 : 0;
    await sleep(50);
  }
}
