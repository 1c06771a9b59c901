/**
 * DATABASE_URL -> driver adapter: better-sqlite3 for file: URLs, node-postgres for
 * postgresql:// ones. Kept apart from db.ts because prisma.config.ts loads it before the
 * clients are generated.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { PrismaBetterSQLite3 } from '@prisma/adapter-better-sqlite3';
import { PrismaPg } from '@prisma/adapter-pg';
import type { SqlDriverAdapter, SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import pg from 'pg';
import { databaseProviderOf } from './config.ts';

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
    const adapter = serialised(await super.connect());
    this.connected = Object.assign(adapter, {
      getConnectionInfo: () => ({ maxBindValues: SQLITE_MAX_BIND_VALUES, supportsRelationJoins: false }),
    });
    return this.connected;
  }
}

/**
 * One connection serves everything, and the adapter locks it only for transactions: a
 * statement issued outside a transaction would run inside whichever one is open, and be
 * rolled back with it. This puts every statement and every whole transaction in one queue.
 */
function serialised(adapter: SqlDriverAdapter): SqlDriverAdapter {
  let tail: Promise<void> = Promise.resolve();
  const acquire = async (): Promise<() => void> => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const previous = tail;
    tail = previous.then(() => held);
    await previous;
    return release;
  };
  const queryRaw = adapter.queryRaw.bind(adapter);
  const executeRaw = adapter.executeRaw.bind(adapter);
  const startTransaction = adapter.startTransaction.bind(adapter);
  const once = (release: () => void) => {
    let done = false;
    return () => {
      if (!done) (done = true), release();
    };
  };
  const locked =
    <A extends unknown[], R>(work: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const release = await acquire();
      try {
        return await work(...args);
      } finally {
        release();
      }
    };
  return Object.assign(adapter, {
    queryRaw: locked(queryRaw),
    executeRaw: locked(executeRaw),
    async startTransaction(isolationLevel?: Parameters<SqlDriverAdapter['startTransaction']>[0]) {
      const release = once(await acquire());
      try {
        const tx = await startTransaction(isolationLevel);
        const commit = tx.commit.bind(tx);
        const rollback = tx.rollback.bind(tx);
        return Object.assign(tx, {
          commit: () => commit().finally(release),
          rollback: () => rollback().finally(release),
        });
      } catch (error) {
        release();
        throw error;
      }
    },
  });
}

/**
 * PostgreSQL through a pool of `poolSize` connections. adapter-pg 7.10 with Prisma 6.19:
 * its 6.19 release fails `migrate deploy` on the type `name` (prisma/orm#27403), and its
 * interfaces differ from 6.19's only in types the client does not use.
 */
export class PostgresAdapterFactory extends PrismaPg {
  connected: SqlDriverAdapter | undefined;

  constructor(
    databaseUrl: string,
    readonly pool = new pg.Pool({ connectionString: databaseUrl, max: 10 }),
  ) {
    // $disconnect ends the pool: its idle connections would otherwise keep the process
    // (and the server's connection slots) for another 10 s.
    super(pool, { disposeExternalPool: true });
  }

  override async connect() {
    this.connected = (await super.connect()) as unknown as SqlDriverAdapter;
    return this.connected as never;
  }
}

export type AdapterFactory = SqliteAdapterFactory | PostgresAdapterFactory;

export function createAdapter(databaseUrl: string, options: { poolSize?: number; idleInTransactionTimeoutMs?: number } = {}): AdapterFactory {
  if (databaseProviderOf(databaseUrl) === 'postgresql') {
    return new PostgresAdapterFactory(
      databaseUrl,
      new pg.Pool({
        connectionString: databaseUrl,
        max: options.poolSize ?? 10,
        ...(options.idleInTransactionTimeoutMs !== undefined && { idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs }),
      }),
    );
  }
  ensureSqliteDirectory(databaseUrl);
  return new SqliteAdapterFactory({ url: databaseUrl });
}

/** What prisma.config.ts hands the CLI. */
export function migrationAdapter(databaseUrl: string): SqlMigrationAwareDriverAdapterFactory {
  return createAdapter(databaseUrl) as unknown as SqlMigrationAwareDriverAdapterFactory;
}

/** SQLite creates the file but not its directory. */
function ensureSqliteDirectory(databaseUrl: string): void {
  const file = databaseUrl.slice('file:'.length).split('?')[0]!;
  if (file && file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
}
