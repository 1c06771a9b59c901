/**
 * The service in the bench's own process: buildApp on a given database, listening on a free
 * port, with a GraphQL client over HTTP; and what the sections do with it.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { pino } from 'pino';
import { buildApp, type App } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import type { DbOptions } from '../src/db.ts';
import { builtLauncherEntry } from '../src/executor/launcher-client.ts';
import { GraphQLClient } from './client.ts';
import { BenchStartPipeline } from './operations.ts';

/** Where the bench may create and drop databases (the machine's PostgreSQL). */
export const POSTGRES_ADMIN_URL = process.env.BENCH_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

/** The machine's Redis. */
export const BENCH_REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

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

export async function adminQuery(statement: string, values: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await client.connect();
  try {
    return await client.query(statement, values);
  } finally {
    await client.end();
  }
}

/**
 * A fresh, migrated PostgreSQL database. `drop` removes it once nobody is connected: the
 * app's pool keeps its idle connections after app.stop() (until pg's idle timeout, 10 s),
 * and ending them from outside (DROP ... WITH (FORCE)) would make that pool emit an error
 * this process cannot catch.
 */
export async function freshPostgres(root: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `dagpipe_bench_${randomBytes(6).toString('hex')}`;
  await adminQuery(`CREATE DATABASE "${name}"`);
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  const drop = async () => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const { rows } = await adminQuery('SELECT COUNT(*)::int AS "n" FROM pg_stat_activity WHERE datname = $1', [name]);
      if (rows[0].n === 0 || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    await adminQuery(`DROP DATABASE IF EXISTS "${name}"`);
  };
  try {
    await migrateDatabase(root, url.toString());
  } catch (error) {
    await drop();
    throw error;
  }
  return { url: url.toString(), drop };
}
