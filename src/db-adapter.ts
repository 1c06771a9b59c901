/**
 * DATABASE_URL -> driver adapter. Kept apart from db.ts because prisma.config.ts loads it
 * before the client is generated. Adding PostgreSQL means choosing another adapter here.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { PrismaBetterSQLite3 } from '@prisma/adapter-better-sqlite3';

export function createAdapter(databaseUrl: string) {
  ensureSqliteDirectory(databaseUrl);
  return new PrismaBetterSQLite3({ url: databaseUrl });
}

/** SQLite creates the file but not its directory. */
function ensureSqliteDirectory(databaseUrl: string): void {
  const file = databaseUrl.slice('file:'.length).split('?')[0]!;
  if (file && file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
}
