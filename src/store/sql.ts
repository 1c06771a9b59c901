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
import { SQLITE_MAX_BIND_VALUES } from '../db-adapter.ts';

export type SqlValue = string | number | boolean | Date | null;

/** The column types {@link SqlArray} binds. */
export type SqlArrayType = 'integer' | 'text' | 'timestamp(3)';

/** A whole array bound as one parameter of PostgreSQL, typed: see {@link insertRows}. */
export class SqlArray {
  constructor(
    readonly values: readonly SqlValue[],
    readonly type: SqlArrayType,
  ) {}
}

type SqlPart = SqlValue | readonly SqlValue[] | SqlArray | SqlFragment;

/** A SQL text with its values, built with the {@link sql} tag. */
export class SqlFragment {
  constructor(
    readonly strings: readonly string[],
    readonly values: readonly SqlPart[],
  ) {}
}

/**
 * `sql\`... WHERE "id" = ${id} AND "v_id" IN (${ids})\``: values become placeholders,
 * arrays become lists of placeholders, fragments are spliced in.
 */
export function sql(strings: TemplateStringsArray, ...values: SqlPart[]): SqlFragment {
  return new SqlFragment(strings, values);
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

/** The most values one statement may bind: SQLite's limit (see db-adapter.ts). */
const MAX_BIND_VALUES = SQLITE_MAX_BIND_VALUES;

type SqlArg = SqlValue | readonly SqlValue[];

function render(fragment: SqlFragment, provider: Provider): { text: string; args: SqlArg[]; argTypes: ArgType[] } {
  const args: SqlArg[] = [];
  const argTypes: ArgType[] = [];
  const placeholder = () => (provider === 'postgres' ? `$${args.length}` : '?');
  const bind = (value: SqlValue) => {
    args.push(value);
    argTypes.push(argType(value));
    return placeholder();
  };
  const walk = (f: SqlFragment): string =>
    f.strings.reduce((text, part, i) => {
      if (i === 0) return part;
      const value = f.values[i - 1]!;
      if (value instanceof SqlFragment) return text + walk(value) + part;
      if (value instanceof SqlArray) {
        if (provider !== 'postgres') throw new Error('SqlArray binds on PostgreSQL only');
        args.push(value.values);
        argTypes.push(ARRAY_TYPES[value.type]);
        return `${text}${placeholder()}::${value.type}[]${part}`;
      }
      if (Array.isArray(value)) {
        if (value.length === 0) return `${text}NULL${part}`; // IN (NULL) matches nothing
        return `${text}${value.map(bind).join(', ')}${part}`;
      }
      return text + bind(value as SqlValue) + part;
    }, '');
  return { text: walk(fragment), args, argTypes };
}

/** Shared: a large INSERT binds tens of thousands of values. */
const ARG_TYPES = {
  unknown: { scalarType: 'unknown', arity: 'scalar' },
  datetime: { scalarType: 'datetime', arity: 'scalar' },
  int: { scalarType: 'int', arity: 'scalar' },
  float: { scalarType: 'float', arity: 'scalar' },
  boolean: { scalarType: 'boolean', arity: 'scalar' },
  string: { scalarType: 'string', arity: 'scalar' },
} as const satisfies Record<string, ArgType>;

const ARRAY_TYPES = {
  integer: { scalarType: 'int', arity: 'list' },
  text: { scalarType: 'string', arity: 'list' },
  'timestamp(3)': { scalarType: 'datetime', arity: 'list' },
} as const satisfies Record<SqlArrayType, ArgType>;

function argType(value: SqlValue): ArgType {
  if (value === null) return ARG_TYPES.unknown;
  if (value instanceof Date) return ARG_TYPES.datetime;
  if (typeof value === 'number') return Number.isInteger(value) ? ARG_TYPES.int : ARG_TYPES.float;
  if (typeof value === 'boolean') return ARG_TYPES.boolean;
  return ARG_TYPES.string;
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
    const { text, args, argTypes } = render(statement, provider);
    return { sql: text, args, argTypes };
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

/** A column {@link insertRows} fills: its name and its type (PostgreSQL's unnest needs it). */
export interface InsertColumn {
  name: string;
  type: SqlArrayType;
}

/**
 * `INSERT INTO table (columns) ... RETURNING returning` for many rows (values in column
 * order) in as few statements as the database allows: a start inserts 10,000 tracks and
 * as many events, and each statement costs far more than each row. On PostgreSQL that is
 * one statement binding one array per column (unnest; multi-row VALUES would be longer to
 * send and to parse, and bounded by 65,535 parameters); on SQLite, multi-row VALUES filling
 * its bind limit. Rows take their ids in the order given; the returned rows come in no
 * promised order. `table`, the column names and `returning` are SQL text: constants.
 */
export async function insertRows(
  runner: SqlRunner,
  table: string,
  columns: readonly InsertColumn[],
  rows: ReadonlyArray<readonly SqlValue[]>,
  returning: string,
): Promise<Row[]> {
  if (rows.length === 0) return [];
  const names = columns.map((c) => `"${c.name}"`).join(', ');
  const into = rawSql(`INSERT INTO "${table}" (${names})`);
  if (runner.provider === 'postgres') {
    const arrays = columns.map((column, i) => sql`${new SqlArray(rows.map((row) => row[i] as SqlValue), column.type)}`);
    return runner.query(sql`
      ${into} SELECT ${rawSql(names)}
      FROM unnest(${joinSql(arrays)}) WITH ORDINALITY AS "row"(${rawSql(names)}, "position")
      ORDER BY "position"
      RETURNING ${rawSql(returning)}`);
  }
  const perStatement = Math.floor(MAX_BIND_VALUES / columns.length);
  const returned: Row[] = [];
  for (let start = 0; start < rows.length; start += perStatement) {
    const values = rows.slice(start, start + perStatement).map((row) => sql`(${row})`);
    for (const row of await runner.query(sql`${into} VALUES ${joinSql(values)} RETURNING ${rawSql(returning)}`)) returned.push(row);
  }
  return returned;
}
