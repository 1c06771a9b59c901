/**
 * Plain SQL for the transitions, run either inside a Prisma interactive transaction or,
 * on the executor's hot path, directly on the driver adapter's transaction.
 *
 * Why below Prisma there: a Prisma interactive transaction with four raw statements costs
 * about 2.5 ms of CPU here, the same on the adapter about 0.2 ms, and the executor runs one
 * per track. The adapter is Prisma's own connection (and its lock), so both kinds of
 * transaction serialise correctly. Inside an adapter transaction no Prisma call may be
 * made: it would wait for the lock the transaction holds.
 *
 * The SQL is written to run on SQLite and PostgreSQL: double-quoted names, RETURNING,
 * placeholders rendered per provider.
 */
import type { ArgType, SqlDriverAdapter, Transaction } from '@prisma/driver-adapter-utils';

export type SqlValue = string | number | boolean | Date | null;

/** A SQL text with its values, built with the {@link sql} tag. */
export class SqlFragment {
  constructor(
    readonly strings: readonly string[],
    readonly values: ReadonlyArray<SqlValue | readonly SqlValue[] | SqlFragment>,
  ) {}
}

/**
 * `sql\`... WHERE "id" = ${id} AND "v_id" IN (${ids})\``: values become placeholders,
 * arrays become lists of placeholders, fragments are spliced in.
 */
export function sql(strings: TemplateStringsArray, ...values: Array<SqlValue | readonly SqlValue[] | SqlFragment>): SqlFragment {
  return new SqlFragment([...strings], values);
}

/** Literal SQL text (a constant, never a value from outside): spliced in as it is. */
export function rawSql(text: string): SqlFragment {
  return new SqlFragment([text], []);
}

/** Joins fragments with a separator, e.g. the rows of a multi-row VALUES. */
export function joinSql(fragments: readonly SqlFragment[], separator = ', '): SqlFragment {
  return new SqlFragment(['', ...fragments.slice(1).map(() => separator), ''], fragments);
}

export type Provider = 'sqlite' | 'postgres';

function render(fragment: SqlFragment, provider: Provider): { text: string; args: SqlValue[] } {
  const args: SqlValue[] = [];
  const placeholder = () => (provider === 'postgres' ? `$${args.length}` : '?');
  const walk = (f: SqlFragment): string =>
    f.strings.reduce((text, part, i) => {
      if (i === 0) return part;
      const value = f.values[i - 1];
      if (value instanceof SqlFragment) return text + walk(value) + part;
      if (Array.isArray(value)) {
        if (value.length === 0) return `${text}NULL${part}`; // IN (NULL) matches nothing
        return `${text}${value.map((v) => (args.push(v), placeholder())).join(', ')}${part}`;
      }
      args.push(value as SqlValue);
      return text + placeholder() + part;
    }, '');
  return { text: walk(fragment), args };
}

function argType(value: SqlValue): ArgType {
  if (value === null) return { scalarType: 'unknown', arity: 'scalar' };
  if (value instanceof Date) return { scalarType: 'datetime', arity: 'scalar' };
  if (typeof value === 'number') return { scalarType: Number.isInteger(value) ? 'int' : 'float', arity: 'scalar' };
  if (typeof value === 'boolean') return { scalarType: 'boolean', arity: 'scalar' };
  return { scalarType: 'string', arity: 'scalar' };
}

/** A row as the driver returns it. Integers may arrive as strings: read them with Number(). */
export type Row = Record<string, unknown>;

export interface SqlRunner {
  /** The SQL dialect it runs. */
  readonly provider: Provider;
  query(statement: SqlFragment): Promise<Row[]>;
  execute(statement: SqlFragment): Promise<number>;
}

/** SQL inside a Prisma interactive transaction. */
export function prismaRunner(
  tx: {
    $queryRawUnsafe(query: string, ...values: unknown[]): Promise<unknown>;
    $executeRawUnsafe(query: string, ...values: unknown[]): Promise<number>;
  },
  provider: Provider,
): SqlRunner {
  return {
    provider,
    async query(statement) {
      const { text, args } = render(statement, provider);
      return (await tx.$queryRawUnsafe(text, ...args)) as Row[];
    },
    execute(statement) {
      const { text, args } = render(statement, provider);
      return tx.$executeRawUnsafe(text, ...args);
    },
  };
}

function adapterRunner(tx: Transaction, provider: Provider): SqlRunner {
  const toQuery = (statement: SqlFragment) => {
    const { text, args } = render(statement, provider);
    return { sql: text, args, argTypes: args.map(argType) };
  };
  return {
    provider,
    async query(statement) {
      const result = await tx.queryRaw(toQuery(statement));
      return result.rows.map((values) => Object.fromEntries(result.columnNames.map((name, i) => [name, values[i]])));
    },
    execute: (statement) => tx.executeRaw(toQuery(statement)),
  };
}

/** Transactions straight on the driver adapter (see the module comment). */
export interface FastSql {
  readonly provider: Provider;
  transaction<T>(work: (sql: SqlRunner) => Promise<T>): Promise<T>;
}

export function fastSql(adapter: SqlDriverAdapter): FastSql {
  const provider: Provider = adapter.provider === 'postgres' ? 'postgres' : 'sqlite';
  const end = async (tx: Transaction, statement: 'COMMIT' | 'ROLLBACK') => {
    // The same protocol Prisma's transaction manager follows.
    if (!tx.options.usePhantomQuery) await tx.executeRaw({ sql: statement, args: [], argTypes: [] });
    await (statement === 'COMMIT' ? tx.commit() : tx.rollback());
  };
  return {
    provider,
    async transaction(work) {
      const tx = await adapter.startTransaction();
      try {
        const result = await work(adapterRunner(tx, provider));
        await end(tx, 'COMMIT');
        return result;
      } catch (error) {
        // Also when COMMIT itself failed: roll back, and above all release the connection.
        await end(tx, 'ROLLBACK').catch(() => tx.rollback());
        throw error;
      }
    },
  };
}
