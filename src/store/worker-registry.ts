/**
 * The registry of executors (SPEC rules 10, 11): every process that runs scripts has a row
 * in `executor` and renews its `heartbeatAt`; the row is what lets it claim (see
 * claimInTransaction) and what fences its results (completeTrack checks `executorId`).
 *
 * A row is deleted when its executor stops, or when another one finds it dead: on
 * PostgreSQL its heartbeat is older than the lease, measured on the database's clock so
 * that hosts whose clocks differ agree; at start-up also when it was on this host and its
 * pid is dead. Deleting the row comes first: from then on the dead executor can neither
 * claim nor renew (a worker that was merely frozen learns it at its next heartbeat), and
 * its RUNNING tracks are orphans that any executor settles (settleOrphans in
 * executions.ts), even if the one that deleted the row dies before it does.
 */
import { hostname } from 'node:os';
import { prismaRunner, rawSql, sql, type SqlFragment, type SqlRunner } from './sql.ts';
import type { Store } from './transaction.ts';

export interface ExecutorRow {
  id: string;
  host: string;
  pid: number;
}

/** This process, as an executor row names it. */
export const THIS_PROCESS = { host: hostname(), pid: process.pid };

/** Statements outside any transaction, on the Prisma client's connection (pool). */
function runner(store: Store): SqlRunner {
  return prismaRunner(store.db, store.fast.provider);
}

/**
 * Now, by the clock heartbeats are compared with: the database's on PostgreSQL (as UTC,
 * the way Prisma stores DateTime), this process's on SQLite (one process, one clock).
 */
function clockNow(provider: SqlRunner['provider']): SqlFragment {
  return provider === 'postgres' ? rawSql(`(now() AT TIME ZONE 'UTC')`) : sql`${new Date()}`;
}

export async function registerExecutor(store: Store, id: string): Promise<void> {
  const db = runner(store);
  const now = clockNow(db.provider);
  await db.execute(sql`
    INSERT INTO "executor" ("id", "host", "pid", "startedAt", "heartbeatAt")
    VALUES (${id}, ${THIS_PROCESS.host}, ${THIS_PROCESS.pid}, ${now}, ${now})`);
}

/**
 * Renews the heartbeat. False when the row is gone: another executor took this one for
 * dead and settled its running tracks.
 */
export async function renewHeartbeat(store: Store, id: string): Promise<boolean> {
  const db = runner(store);
  return (await db.execute(sql`UPDATE "executor" SET "heartbeatAt" = ${clockNow(db.provider)} WHERE "id" = ${id}`)) === 1;
}

export async function unregisterExecutor(store: Store, id: string): Promise<void> {
  await runner(store).execute(sql`DELETE FROM "executor" WHERE "id" = ${id}`);
}

export async function listExecutors(store: Store): Promise<Array<ExecutorRow & { heartbeatAt: Date }>> {
  return store.db.executor.findMany({ select: { id: true, host: true, pid: true, heartbeatAt: true } });
}

/**
 * Deletes the rows of executors found dead and returns them: those in `ids`, and on
 * PostgreSQL those whose heartbeat is older than `leaseMs`, never `except` (the caller).
 * Rows another executor is deleting at the same moment are skipped (SKIP LOCKED): the
 * executor table only, a statement of its own, so it waits for nothing.
 */
export async function removeDeadExecutors(
  store: Store,
  options: { except: string; ids?: readonly string[]; leaseMs?: number },
): Promise<ExecutorRow[]> {
  const db = runner(store);
  const ids = options.ids ?? [];
  let rows;
  if (db.provider === 'postgres') {
    const stale =
      options.leaseMs === undefined
        ? sql`FALSE`
        : sql`"heartbeatAt" < (now() AT TIME ZONE 'UTC') - make_interval(secs => ${options.leaseMs / 1000})`;
    rows = await db.query(sql`
      DELETE FROM "executor" WHERE "id" IN (
        SELECT "id" FROM "executor"
        WHERE "id" <> ${options.except} AND (${stale} OR "id" IN (${ids}))
        FOR UPDATE SKIP LOCKED)
      RETURNING "id", "host", "pid"`);
  } else {
    // One process at a time on SQLite: the caller decided from the rows (see Executor.start).
    if (ids.length === 0) return [];
    rows = await db.query(sql`
      DELETE FROM "executor" WHERE "id" IN (${ids}) AND "id" <> ${options.except}
      RETURNING "id", "host", "pid"`);
  }
  return rows.map((r) => ({ id: String(r.id), host: String(r.host), pid: Number(r.pid) }));
}

/** Whether a process with this pid runs on this host (EPERM: it does, as another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
