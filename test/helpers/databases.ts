/**
 * The suite's databases. `npm test` runs everything on SQLite; `TEST_DATABASE=postgresql
 * npm test` runs the same tests on PostgreSQL (each test database a copy of a migrated
 * template on the local server) with Redis carrying live events, as a deployment does.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync } from 'node:fs';
import path from 'node:path';
import { inject } from 'vitest';

export type TestProvider = 'sqlite' | 'postgresql';

export const TEST_PROVIDER: TestProvider = process.env.TEST_DATABASE === 'postgresql' ? 'postgresql' : 'sqlite';

/** A database on the local PostgreSQL server where this suite may create and drop databases. */
export const POSTGRES_ADMIN_URL = process.env.TEST_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** The URL of database `name` on the test server. */
export function postgresUrl(name: string): string {
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Runs SQL on the admin database (psql: the helpers are synchronous). */
export function adminSql(statement: string): string {
  return execFileSync('psql', [POSTGRES_ADMIN_URL, '-v', 'ON_ERROR_STOP=1', '-qAtc', statement], { encoding: 'utf8' });
}

/** A fresh, migrated PostgreSQL database (a copy of the suite's template); dropped when the suite ends. */
export function freshPostgresDatabase(): string {
  const { template, prefix } = inject('postgres');
  const name = `${prefix}${randomBytes(6).toString('hex')}`;
  adminSql(`CREATE DATABASE "${name}" TEMPLATE "${template}"`);
  return postgresUrl(name);
}

/** A fresh, migrated SQLite file in `dir`. */
export function freshSqliteDatabase(dir: string): string {
  const file = path.join(dir, 'test.db');
  copyFileSync(inject('templateDatabase'), file);
  return `file:${file}`;
}

/** A fresh migrated database of the suite's provider (`dir` holds a SQLite file). */
export function freshDatabase(dir: string): string {
  return TEST_PROVIDER === 'postgresql' ? freshPostgresDatabase() : freshSqliteDatabase(dir);
}

/**
 * Environment for a service under test beyond its database: on PostgreSQL, Redis, so that
 * live delivery goes the way it goes between processes.
 */
export function suiteEnvironment(): Record<string, string> {
  return TEST_PROVIDER === 'postgresql' ? { REDIS_URL: TEST_REDIS_URL } : {};
}
