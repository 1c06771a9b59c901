/**
 * The unit of work for every transition: the state change and the events announcing it
 * commit in one transaction, and the events are published only after that commit, so a
 * subscriber never sees a transition that was rolled back.
 */
import type { Db } from '../db.ts';
import type { Event, Prisma } from '../generated/prisma/client.ts';
import type { EventType } from '../engine/states.ts';
import type { PubSub } from '../pubsub.ts';
import type { DagCache } from './dag-cache.ts';
import { joinSql, prismaRunner, sql, type FastSql, type SqlRunner } from './sql.ts';

export type Tx = Prisma.TransactionClient;

/** An event to append; `id` and `createdAt` come from the database. */
export type EventDraft = Omit<Prisma.EventCreateManyInput, 'id' | 'createdAt' | 'type'> & { type: EventType };

export interface Journal {
  /** Queue an event; it is inserted at the end of the transaction, in call order. */
  record(event: EventDraft): void;
}

/** Called after every commit with its events, e.g. to wake the executor. */
export type CommitListener = (events: readonly Event[]) => void;

export interface Store {
  db: Db;
  fast: FastSql;
  bus: PubSub;
  dags: DagCache;
  /** Listeners run synchronously after publishing; one that throws is logged, not fatal. */
  commitListeners: CommitListener[];
  onListenerError?: (error: unknown) => void;
}

/**
 * Runs `work` in a Prisma interactive transaction, appends the events it recorded,
 * commits, then publishes. `sql` runs plain SQL in the same transaction.
 */
export async function transition<T>(
  store: Store,
  work: (tx: Tx, journal: Journal, sql: SqlRunner) => Promise<T>,
): Promise<{ result: T; events: Event[] }> {
  const committed = await store.db.$transaction(
    async (tx) => {
      const runner = prismaRunner(tx, store.fast.provider);
      const drafts: EventDraft[] = [];
      const result = await work(tx, { record: (event) => drafts.push(event) }, runner);
      return { result, events: await appendEvents(runner, drafts) };
    },
    // Starting a 10,000-vertex pipeline is one transaction too.
    { timeout: 120_000, maxWait: 30_000 },
  );
  announce(store, committed.events);
  return committed;
}

/**
 * The same for the executor's hot path: plain SQL on the driver adapter's transaction,
 * with no Prisma call inside (see store/sql.ts).
 */
export async function fastTransition<T>(
  store: Store,
  work: (sql: SqlRunner, journal: Journal) => Promise<T>,
): Promise<{ result: T; events: Event[] }> {
  const committed = await store.fast.transaction(async (runner) => {
    const drafts: EventDraft[] = [];
    const result = await work(runner, { record: (event) => drafts.push(event) });
    return { result, events: await appendEvents(runner, drafts) };
  });
  announce(store, committed.events);
  return committed;
}

function announce(store: Store, events: readonly Event[]): void {
  for (const event of events) store.bus.publish('pipeline:event', event.pipelineId, event);
  for (const listener of store.commitListeners) {
    try {
      listener(events);
    } catch (error) {
      store.onListenerError?.(error);
    }
  }
}

/** Rows per INSERT: 9 values each, well inside the bind-value limit. */
const EVENTS_PER_STATEMENT = 2000;

/** Inserts the events in order and returns them as committed rows. */
async function appendEvents(runner: SqlRunner, drafts: readonly EventDraft[]): Promise<Event[]> {
  const events: Event[] = [];
  const createdAt = new Date();
  for (let start = 0; start < drafts.length; start += EVENTS_PER_STATEMENT) {
    const batch = drafts.slice(start, start + EVENTS_PER_STATEMENT).map((d) => ({
      pipelineId: d.pipelineId,
      trackId: d.trackId ?? null,
      type: d.type,
      pipelineState: d.pipelineState ?? null,
      trackState: d.trackState ?? null,
      attempt: d.attempt ?? null,
      exitCode: d.exitCode ?? null,
      reason: d.reason ?? null,
      createdAt,
    }));
    const rows = await runner.query(sql`
      INSERT INTO "event" ("p_id", "t_id", "type", "pipelineState", "trackState", "attempt", "exitCode", "reason", "createdAt")
      VALUES ${joinSql(
        batch.map(
          (e) => sql`(${e.pipelineId}, ${e.trackId}, ${e.type}, ${e.pipelineState}, ${e.trackState}, ${e.attempt}, ${e.exitCode}, ${e.reason}, ${e.createdAt})`,
        ),
      )}
      RETURNING "id"`);
    // Ids are assigned in VALUES order; RETURNING itself promises no order.
    const ids = rows.map((r) => Number(r.id)).sort((a, b) => a - b);
    batch.forEach((event, i) => events.push({ id: ids[i]!, ...event }));
  }
  return events;
}
