/**
 * Builds dist/ when a source changed since the last build (tests that start the server, the
 * token tool or pipectl as processes run the built files, as production does), and applies
 * the real migrations (prisma migrate deploy) once to a template database; every test
 * copies it, so each starts from a fresh, fully migrated database. With
 * TEST_DATABASE=postgresql the template is a PostgreSQL database too (test/helpers/databases.ts),
 * and every database this run made is dropped at its end.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { adminSql, postgresUrl, TEST_PROVIDER } from './helpers/databases.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    templateDatabase: string;
    /** The migrated PostgreSQL template, and the name prefix of this run's databases. */
    postgres: { template: string; prefix: string };
  }
}

const migrate = (databaseUrl: string) =>
  execFileSync('npx', ['prisma', 'migrate', 'deploy'], { env: { ...process.env, DATABASE_URL: databaseUrl }, stdio: 'pipe' });

/** Drops this run's PostgreSQL databases, disconnecting whoever still uses one. */
function dropDatabases(prefix: string): void {
  const names = adminSql(`SELECT datname FROM pg_database WHERE datname LIKE '${prefix}%'`).split('\n').filter(Boolean);
  for (const name of names) {
    adminSql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${name}'`);
    adminSql(`DROP DATABASE IF EXISTS "${name}"`);
  }
}

export default function setup(project: TestProject) {
  execFileSync(process.execPath, ['scripts/build.mjs', '--if-stale'], { stdio: 'inherit' });
  const dir = mkdtempSync(path.join(tmpdir(), 'dagpipe-test-'));
  const file = path.join(dir, 'template.db');
  migrate(`file:${file}`);
  project.provide('templateDatabase', file);
  const prefix = `dagpipe_test_${randomBytes(4).toString('hex')}_`;
  const template = `${prefix}template`;
  if (TEST_PROVIDER === 'postgresql') {
    adminSql(`CREATE DATABASE "${template}"`);
    migrate(postgresUrl(template));
  }
  project.provide('postgres', { template, prefix });
  return () => {
    rmSync(dir, { recursive: true, force: true });
    if (TEST_PROVIDER === 'postgresql') dropDatabases(prefix);
  };
}
