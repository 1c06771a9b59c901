/**
 * The one place that builds the Prisma client from DATABASE_URL, so that another
 * database engine changes only this module and db-adapter.ts.
 */
import { createAdapter } from './db-adapter.ts';
import { fastSql, type FastSql } from './store/sql.ts';
import { PrismaClient } from './generated/prisma/client.ts';

export type Db = PrismaClient;

export interface DbOptions {
  /** Called with every SQL statement; used by tests and the benchmark to count queries. */
  onQuery?: (sql: string) => void;
}

export interface Database {
  prisma: Db;
  /** Transactions on Prisma's own connection, below the client (see store/sql.ts). */
  fast: FastSql;
}

export async function connectDb(databaseUrl: string, options: DbOptions = {}): Promise<Database> {
  const adapter = createAdapter(databaseUrl);
  const prisma = new PrismaClient({
    adapter,
    // Transactions queue for the one connection (db-adapter.ts); a large start can hold it
    // for seconds, so waiting for it is normal, not an error.
    transactionOptions: { maxWait: 30_000, timeout: 120_000 },
    log: options.onQuery ? [{ emit: 'event', level: 'query' }] : [],
  });
  if (options.onQuery) {
    const onQuery = options.onQuery;
    prisma.$on('query' as never, (event: { query: string }) => onQuery(event.query));
  }
  // WAL lets readers (queries, subscriptions) proceed while the executor commits;
  // synchronous=NORMAL keeps every commit durable across a process crash.
  await prisma.$queryRawUnsafe('PRAGMA journal_mode = WAL');
  await prisma.$executeRawUnsafe('PRAGMA synchronous = NORMAL');
  await prisma.$executeRawUnsafe('PRAGMA busy_timeout = 5000');
  await prisma.$executeRawUnsafe('PRAGMA foreign_keys = ON');
  if (!adapter.connected) throw new Error('the database adapter did not connect');
  return { prisma, fast: fastSql(adapter.connected) };
}
