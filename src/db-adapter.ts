/**
 * DATABASE_URL -> driver adapter. Kept apart from db.ts because prisma.config.ts loads it
 * before the client is generated. Adding PostgreSQL means choosing another adapter here.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { PrismaBetterSQLite3 } from '@prisma/adapter-better-sqlite3';
import type { SqlDriverAdapter } from '@prisma/driver-adapter-utils';

/**
 * SQLite since 3.32 binds up to 32,766 values per statement, but the adapter does not say
 * so and Prisma then assumes 999: relation loads get split and `IN` lists of more than
 * 999 ids fail. This factory reports the real limit.
 */
export const SQLITE_MAX_BIND_VALUES = 32_766;

export class SqliteAdapterFactory extends PrismaBetterSQLite3 {
  /** The connection Prisma opened, once it did; the executor's fast transactions use it too. */
  connected: SqlDriverAdapter | undefined;

  override async connect() {
    const adapter = await super.connect();
    this.connected = Object.assign(adapter, {
      getConnectionInfo: () => ({ maxBindValues: SQLITE_MAX_BIND_VALUES, supportsRelationJoins: false }),
    });
    return this.connected;
  }
}

export function createAdapter(databaseUrl: string): SqliteAdapterFactory {
  ensureSqliteDirectory(databaseUrl);
  return new SqliteAdapterFactory({ url: databaseUrl });
}

/** SQLite creates the file but not its directory. */
function ensureSqliteDirectory(databaseUrl: string): void {
  const file = databaseUrl.slice('file:'.length).split('?')[0]!;
  if (file && file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
}
