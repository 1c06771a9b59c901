/**
 * Start-up migrations: the service tells applied from pending migrations by itself (names
 * and Prisma's checksums) and runs Prisma's `migrate deploy` only when one is pending.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Sqlite from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { applyMigrations, migrationsIn, pendingMigrations } from '../src/migrations.ts';
import { freshSqliteDatabase as freshDatabase } from './helpers/databases.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'dagpipe-migrations-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const all = migrationsIn(path.resolve('prisma/sqlite/migrations')).map((m) => m.name);
const fileOf = (url: string) => url.slice('file:'.length);

describe('pending migrations', () => {
  it('lists the project migrations oldest first, with the checksum Prisma records (SHA-256 of migration.sql)', () => {
    const migrations = migrationsIn(path.resolve('prisma/sqlite/migrations'));
    expect(migrations.length).toBeGreaterThanOrEqual(3);
    expect(migrations.map((m) => m.name)).toEqual([...migrations.map((m) => m.name)].sort());
    const db = new Sqlite(fileOf(freshDatabase(mkdtempSync(path.join(dir, 'sums-')))), { readonly: true });
    const recorded = db.prepare('SELECT migration_name AS name, checksum FROM _prisma_migrations ORDER BY migration_name').all();
    db.close();
    expect(recorded).toEqual(migrations);
  });

  it('none on a database that Prisma migrated', async () => {
    expect(await pendingMigrations(freshDatabase(mkdtempSync(path.join(dir, 'done-'))))).toEqual([]);
  });

  it('all on a missing file and on an empty database', async () => {
    expect(await pendingMigrations(`file:${path.join(dir, 'missing.db')}`)).toEqual(all);
    const empty = path.join(dir, 'empty.db');
    new Sqlite(empty).close();
    expect(await pendingMigrations(`file:${empty}`)).toEqual(all);
  });

  it('a migration that failed, was rolled back, or whose file changed since it was applied', async () => {
    const url = freshDatabase(mkdtempSync(path.join(dir, 'changed-')));
    const db = new Sqlite(fileOf(url));
    db.prepare('UPDATE _prisma_migrations SET checksum = ? WHERE migration_name = ?').run('0'.repeat(64), all[0]);
    db.prepare('UPDATE _prisma_migrations SET finished_at = NULL WHERE migration_name = ?').run(all[1]);
    db.prepare("UPDATE _prisma_migrations SET rolled_back_at = '2026-01-01' WHERE migration_name = ?").run(all[2]);
    db.close();
    expect(await pendingMigrations(url)).toEqual(all.slice(0, 3));
  });
});

describe('applying them', () => {
  it('migrates a new database with Prisma, then has nothing to do', async () => {
    const url = `file:${path.join(dir, 'new', 'dagpipe.db')}`;
    expect(await applyMigrations(url)).toEqual(all);
    expect(await applyMigrations(url)).toEqual([]);
  }, 60_000);

  it('a file that is not a database is a MigrationError naming the file and what to do', async () => {
    const file = path.join(dir, 'not-a-database.db');
    writeFileSync(file, 'this is not SQLite, and it is long enough to have a header that SQLite reads and refuses.');
    await expect(applyMigrations(`file:${file}`)).rejects.toThrow(expect.objectContaining({ name: 'MigrationError', message: expect.stringContaining(file) }));
  });
});
