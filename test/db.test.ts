/** The one SQLite connection is shared safely between transactions and plain statements (SQLite only: PostgreSQL has a pool). */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { freshSqliteDatabase } from './helpers/databases.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'dagpipe-db-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('a statement issued while a transaction is open is not rolled back with it', () => {
  const output = execFileSync(process.execPath, ['--import', 'tsx', 'test/fixtures/shared-connection.ts', freshSqliteDatabase(dir)], {
    encoding: 'utf8',
  });
  expect(JSON.parse(output.trim().split('\n').at(-1)!)).toEqual(['outside']);
});
