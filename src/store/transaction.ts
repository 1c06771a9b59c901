/**
 * The unit of work for every transition: the state change and the events announcing it
 * commit in one transaction, and the events are published only after that commit, so a
 * subscriber never sees a transition that was rolled back.
 */
import type { Db } from '../db.ts';
import type { Event, Prisma } from '../generated/prisma/client.ts';
import { TrackState, type EventType } from '../engine/states.ts';
import type { PubSub } from '../pubsub.ts';
import type { DagCache } from './dag-cache.ts';
import { insertRows, prismaRunner, rawSql, sql, type FastSql, type InsertColumn, type SqlRunner } from './sql.ts';
import { enqueueDeliveries, WEBHOOK_HINT } from './webhooks.ts';

export type Tx = Prisma.TransactionClient;

/** An event to append; `id`, `seq` and `createdAt` are assigned when it is appended. */
export type EventDraft = Omit<Prisma.EventCreateManyInput, 'id' | 'seq' | 'createdAt' | 'type'> & {
  type: EventType;
  /**
   * For an event that makes a track PENDING: whether the track may lack its inputs (script
   * NULL), i.e. wait for finishInput (the webhook event track:needs-input). Not stored. False
   * (it has them: the executor's promotions of ready tracks) spares the outbox a look; true
   * or left out, the outbox looks at the track as the transaction leaves it, when a webhook
   * wants the event.
   */
  needsInput?: boolean;
};

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
  /** Told after a schedule was created, changed or deleted in this process (the scheduler). */
  scheduleListeners: Array<() => void>;
  /** Told after a commit that queued webhook deliveries (wakes this process's deliverer). */
  deliveriesQueued?: () => void;
  onListenerError?: (error: unknown) => void;
}

/**
 * Runs `work` in a Prisma interactive transaction, appends the events it recorded with the
 * webhook deliveries they call for (the outbox, store/webhooks.ts), commits, then publishes.
 * `sql` runs plain SQL in the same transaction.
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
      return { result, ...(await appendJournal(runner, drafts)) };
    },
    // Cancelling a 10,000-track pipeline is one transaction too.
    { timeout: 120_000, maxWait: 30_000 },
  );
  announce(store, committed);
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
    return { result, ...(await appendJournal(runner, drafts)) };
  });
  announce(store, committed);
  return committed;
}

/** The events, then the webhook deliveries they call for; on PostgreSQL, a hint to the deliverers. */
async function appendJournal(runner: SqlRunner, drafts: readonly EventDraft[]): Promise<{ events: Event[]; deliveries: number }> {
  const events = await appendEvents(runner, drafts);
  const deliveries = await enqueueDeliveries(runner, drafts, events);
  if (deliveries > 0 && runner.provider === 'postgres') await runner.execute(sql`SELECT pg_notify(${WORK_CHANNEL}, ${WEBHOOK_HINT})`);
  return { events, deliveries };
}

function announce(store: Store, { events, deliveries }: { events: readonly Event[]; deliveries: number }): void {
  if (deliveries > 0) store.deliveriesQueued?.();
  for (const event of events) store.bus.publish('pipeline:event', event.pipelineId, event);
  for (const listener of store.commitListeners) {
    try {
      listener(events);
    } catch (error) {
      store.onListenerError?.(error);
    }
  }
}

/**
 * The first key of the advisory locks that order a pipeline's events (the second is the
 * pipeline id): an arbitrary constant, so they meet no other advisory lock in the database.
 */
const JOURNAL_LOCK = 728_115;

/** The first key of the locks that serialise a pipeline's transitions (see lockPipeline). */
const TRANSITION_LOCK = 728_116;

/**
 * Serialises the transitions of one pipeline that decide from its tracks' states (a result
 * that may finish the pipeline or promote a join, a cancel, a retry): on PostgreSQL, two
 * predecessors of a join succeeding at once would each see the other still RUNNING under
 * READ COMMITTED, and neither promote the join. Take it first in the transaction; it is held
 * until commit. Claims do not take it (they change one track each, conditionally), so the
 * only lock a claim waits for after its rows is the journal lock, whose holders wait for
 * nothing. SQLite runs one transaction at a time: nothing to do.
 */
export async function lockPipeline(runner: SqlRunner, pipelineId: number): Promise<void> {
  if (runner.provider === 'postgres') await runner.execute(sql`SELECT pg_advisory_xact_lock(${rawSql(String(TRANSITION_LOCK))}, ${pipelineId})`);
}

/**
 * The channel that tells workers on PostgreSQL that a track may have become ready (payload
 * '') or that a track was cancelled (CANCEL_HINT: the worker running it kills it), or that
 * webhook deliveries were queued (WEBHOOK_HINT, store/webhooks.ts). See
 * store/work-listener.ts.
 */
export const WORK_CHANNEL = 'dagpipe_work';

export const CANCEL_HINT = 'cancelled';

/**
 * Inserts the events in order and returns them as committed rows, each with its position
 * in its pipeline (`seq`: 1, 2, 3, ... without gaps).
 *
 * SPEC rule 12 asks that positions grow in commit order. An id from a sequence is handed
 * out at INSERT, and the row becomes visible at COMMIT, so with concurrent writers an event
 * could commit after a later-numbered one, and a reader replaying "after N" skip it. On
 * PostgreSQL every transaction therefore takes its pipelines' journal locks (transaction-
 * scoped advisory locks, in pipeline order, so two writers never wait for each other in a
 * circle) right before it appends, and holds them until it commits: the next writer of the
 * same pipeline numbers its events only after this one is visible. The lock is taken last,
 * after the transaction's other work, and nothing after it waits for a row lock (the
 * foreign-key checks of the INSERT take KEY SHARE locks, which no claim or update blocks),
 * so it is held for the INSERT and the COMMIT only. SQLite has one writer at a time: ids are
 * in commit order already.
 */
export async function appendEvents(runner: SqlRunner, drafts: readonly EventDraft[]): Promise<Event[]> {
  if (drafts.length === 0) return [];
  const pipelineIds = [...new Set(drafts.map((d) => d.pipelineId))].sort((a, b) => a - b);
  if (runner.provider === 'postgres') {
    // OFFSET 0 keeps the subquery's order for the calls: locks are taken in pipeline order.
    await runner.execute(sql`
      SELECT pg_advisory_xact_lock(${rawSql(String(JOURNAL_LOCK))}, s."id") FROM (
        SELECT "id" FROM "pipeline" WHERE "id" IN (${pipelineIds}) ORDER BY "id" OFFSET 0) s`);
    if (drafts.some(makesReady)) await runner.execute(sql`SELECT pg_notify(${WORK_CHANNEL}, '')`);
    if (drafts.some((d) => d.type === 'track:cancelled')) await runner.execute(sql`SELECT pg_notify(${WORK_CHANNEL}, ${CANCEL_HINT})`);
  }
  const lastSeq = new Map<number, number>(pipelineIds.map((id) => [id, 0]));
  const rows = await runner.query(sql`
    SELECT "p_id", MAX("seq") AS "seq" FROM "event" WHERE "p_id" IN (${pipelineIds}) GROUP BY "p_id"`);
  for (const row of rows) lastSeq.set(Number(row.p_id), Number(row.seq));
  const createdAt = new Date();
  const events = drafts.map((d) => {
    const seq = lastSeq.get(d.pipelineId)! + 1;
    lastSeq.set(d.pipelineId, seq);
    return {
      pipelineId: d.pipelineId,
      seq,
      trackId: d.trackId ?? null,
      type: d.type,
      pipelineState: d.pipelineState ?? null,
      trackState: d.trackState ?? null,
      attempt: d.attempt ?? null,
      exitCode: d.exitCode ?? null,
      reason: d.reason ?? null,
      createdAt,
    };
  });
  const inserted = await insertRows(
    runner,
    'event',
    EVENT_COLUMNS,
    events.map((e) => [e.pipelineId, e.seq, e.trackId, e.type, e.pipelineState, e.trackState, e.attempt, e.exitCode, e.reason, e.createdAt]),
    '"id"',
  );
  // Ids are drawn in the order given (insertRows); RETURNING itself promises no order.
  const ids = inserted.map((r) => Number(r.id)).sort((a, b) => a - b);
  return events.map((event, i) => ({ id: ids[i]!, ...event }));
}

const EVENT_COLUMNS: readonly InsertColumn[] = [
  { name: 'p_id', type: 'integer' },
  { name: 'seq', type: 'integer' },
  { name: 't_id', type: 'integer' },
  { name: 'type', type: 'text' },
  { name: 'pipelineState', type: 'integer' },
  { name: 'trackState', type: 'integer' },
  { name: 'attempt', type: 'integer' },
  { name: 'exitCode', type: 'integer' },
  { name: 'reason', type: 'text' },
  { name: 'createdAt', type: 'timestamp(3)' },
];

/** Whether an event may let a worker claim something: a track became PENDING. */
function makesReady(event: EventDraft): boolean {
  return event.trackState === TrackState.PENDING;
}
