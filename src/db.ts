/**
 * The one place that builds the Prisma client from DATABASE_URL: the SQLite client for
 * file: URLs, the PostgreSQL one for postgresql:// URLs. Both are generated from schemas
 * with the same models (prisma/sqlite, prisma/postgresql; test/schema-drift.test.ts keeps
 * them equal), so the rest of the code sees one type, the SQLite client's.
 */
import { createAdapter, PostgresAdapterFactory } from './db-adapter.ts';
import { databaseProviderOf } from './config.ts';
import { fastSql, type FastSql } from './store/sql.ts';
import { PrismaClient } from './generated/prisma/client.ts';
import { PrismaClient as PostgresPrismaClient } from './generated/prisma-postgresql/client.ts';

export type Db = PrismaClient;

export interface DbOptions {
  /** Called with every SQL statement; used by tests and the benchmark to count queries. */
  onQuery?: (sql: string) => void;
  /** PostgreSQL connections in the pool. */
  poolSize?: number;
  /** PostgreSQL ends a transaction left idle (its process frozen) for longer than this. */
  idleInTransactionTimeoutMs?: number;
}

export interface Database {
  prisma: Db;
  /** Transactions on Prisma's own connection, below the client (see store/sql.ts). */
  fast: FastSql;
  provider: 'sqlite' | 'postgresql';
}

export async function connectDb(databaseUrl: string, options: DbOptions = {}): Promise<Database> {
  const adapter = createAdapter(databaseUrl, { poolSize: options.poolSize, idleInTransactionTimeoutMs: options.idleInTransactionTimeoutMs });
  const postgres = adapter instanceof PostgresAdapterFactory;
  const clientOptions = {
    adapter,
    // On SQLite, transactions queue for the one connection (db-adapter.ts); a large start
    // can hold it for seconds, so waiting for it is normal, not an error.
    transactionOptions: { maxWait: 30_000, timeout: 120_000 },
    log: options.onQuery ? [{ emit: 'event' as const, level: 'query' as const }] : [],
  };
  const prisma = postgres
    ? (new PostgresPrismaClient(clientOptions as never) as unknown as PrismaClient)
    : new PrismaClient(clientOptions as never);
  if (options.onQuery) {
    const onQuery = options.onQuery;
    prisma.$on('query' as never, (event: { query: string }) => onQuery(event.query));
  }
  if (postgres) {
    await prisma.$queryRawUnsafe('SELECT 1');
  } else {
    // WAL lets readers (queries, subscriptions) proceed while the executor commits;
    // synchronous=NORMAL keeps every commit durable across a process crash.
    await prisma.$queryRawUnsafe('PRAGMA journal_mode = WAL');
    await prisma.$executeRawUnsafe('PRAGMA synchronous = NORMAL');
    await prisma.$executeRawUnsafe('PRAGMA busy_timeout = 5000');
    await prisma.$executeRawUnsafe('PRAGMA foreign_keys = ON');
  }
  if (!adapter.connected) throw new Error('the database adapter did not connect');
  return { prisma, fast: fastSql(adapter.connected), provider: databaseProviderOf(databaseUrl)! };
}
