/**
 * Schema migrations at start-up. Prisma's `migrate deploy` applies them, but its CLI takes
 * seconds to start, most of a start's time when nothing is to be done. So the service first
 * compares prisma/<provider>/migrations with the `_prisma_migrations` table itself (names and the
 * SHA-256 checksums Prisma records) and runs `migrate deploy` only when a migration is
 * pending, failed or was changed; Prisma then applies it, or explains what is wrong.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Sqlite from 'better-sqlite3';
import pg from 'pg';
import { databaseProviderOf, type DatabaseProvider } from './config.ts';
import { redactedUrl } from './database-url.ts';

/** The repository root: this module sits one level down, in src/ or in dist/. */
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** prisma/<provider>/migrations: each database has its own. */
export function migrationsDir(provider: DatabaseProvider): string {
  return path.join(ROOT, 'prisma', provider, 'migrations');
}

interface AppliedMigration {
  name: string;
  checksum: string;
}

export class MigrationError extends Error {
  override name = 'MigrationError';
}

/** The migrations of `dir`, oldest first, with the checksum Prisma records for each. */
export function migrationsIn(dir: string): Array<{ name: string; checksum: string }> {
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(path.join(dir, entry.name, 'migration.sql')))
    .map((entry) => entry.name)
    .sort()
    .map((name) => ({ name, checksum: createHash('sha256').update(readFileSync(path.join(dir, name, 'migration.sql'))).digest('hex') }));
}

/** Names of the migrations that the database at `databaseUrl` has not applied as they are. */
export async function pendingMigrations(databaseUrl: string, dir?: string): Promise<string[]> {
  const provider = databaseProviderOf(databaseUrl) ?? 'sqlite';
  const wanted = migrationsIn(dir ?? migrationsDir(provider));
  const applied = provider === 'postgresql' ? await appliedOnPostgres(databaseUrl) : appliedOnSqlite(databaseUrl);
  if (applied === undefined) return wanted.map((m) => m.name);
  const checksums = new Map(applied.map((row) => [row.name, row.checksum]));
  return wanted.filter((m) => checksums.get(m.name) !== m.checksum).map((m) => m.name);
}

const APPLIED = 'SELECT migration_name AS name, checksum FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL';

/** Undefined when the database has no migrations table (or, for SQLite, no file) yet. */
function appliedOnSqlite(databaseUrl: string): AppliedMigration[] | undefined {
  const file = databaseUrl.slice('file:'.length).split('?')[0]!;
  if (!existsSync(file)) return undefined;
  const db = new Sqlite(file, { readonly: true, fileMustExist: true });
  try {
    const table = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_prisma_migrations'").get();
    return table ? (db.prepare(APPLIED).all() as AppliedMigration[]) : undefined;
  } finally {
    db.close();
  }
}

async function appliedOnPostgres(databaseUrl: string): Promise<AppliedMigration[] | undefined> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ table: string | null }>("SELECT to_regclass('_prisma_migrations')::text AS table");
    if (rows[0]?.table == null) return undefined;
    return (await client.query<AppliedMigration>(APPLIED)).rows;
  } finally {
    await client.end();
  }
}

/**
 * Brings the database up to date: nothing to do in a few milliseconds, else `prisma migrate
 * deploy` (on PostgreSQL it takes an advisory lock, so processes starting together apply
 * each migration once). Returns the migrations it applied. Prisma's output is shown only when it fails:
 * on success it is the list the caller logs, plus a warning that does not apply here (the
 * schema's datasource url, which the driver adapter replaces; Prisma needs it to work offline).
 */
export async function applyMigrations(databaseUrl: string): Promise<string[]> {
  let pending: string[];
  try {
    pending = await pendingMigrations(databaseUrl);
  } catch (error) {
    throw new MigrationError(
      databaseProviderOf(databaseUrl) === 'postgresql'
        ? `The PostgreSQL database ${redactedUrl(databaseUrl)} cannot be read (${(error as Error).message}). ` +
            'Check that the server runs, that the database exists (createdb <name>), and the user and password in DATABASE_URL.'
        : `The database ${databaseUrl} cannot be read (${(error as Error).message}). DATABASE_URL must name a SQLite database file ` +
            'that dagpipe made, or a new one; move this file aside, or point DATABASE_URL elsewhere.',
    );
  }
  if (pending.length === 0) return pending;
  const prisma = createRequire(import.meta.url).resolve('prisma/build/index.js');
  const result = spawnSync(process.execPath, [prisma, 'migrate', 'deploy'], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: databaseUrl },
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
  });
  if (result.status !== 0) {
    const said = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim();
    throw new MigrationError(
      `Applying the database migrations (${pending.join(', ')}) failed${result.error ? `: ${result.error.message}` : ''}. ` +
        'Fix its cause and start again (`npm run migrate` runs the same step alone).' +
        (said ? `\nPrisma said:\n${said}` : ''),
    );
  }
  return pending;
}
