/**
 * The unit of work for every transition: the state change and the events announcing it
 * commit in one transaction, and the events are published only after that commit, so a
 * subscriber never sees a transition that was rolled back.
 */
import type { Db } from '../db.ts';
import { Prisma, type Event } from '../generated/prisma/client.ts';
import type { PubSub } from '../pubsub.ts';
import type { DagCache } from './dag-cache.ts';

export type Tx = Prisma.TransactionClient;

/** An event to append; `id` and `createdAt` come from the database. */
export type EventDraft = Omit<Prisma.EventCreateManyInput, 'id' | 'createdAt'>;

export interface Journal {
  /** Queue an event; it is inserted at the end of the transaction, in call order. */
  record(event: EventDraft): void;
}

/** Called after every commit with its events, e.g. to wake the executor. */
export type CommitListener = (events: readonly Event[]) => void;

export interface Store {
  db: Db;
  bus: PubSub;
  dags: DagCache;
  /** Listeners run synchronously after publishing; one that throws is logged, not fatal. */
  commitListeners: CommitListener[];
  onListenerError?: (error: unknown) => void;
}

/**
 * Runs `work` in a transaction, appends the events it recorded, commits, then publishes.
 * @returns what `work` returned and the committed events.
 */
export async function transition<T>(
  store: Store,
  work: (tx: Tx, journal: Journal) => Promise<T>,
): Promise<{ result: T; events: Event[] }> {
  const { result, events } = await store.db.$transaction(
    async (tx) => {
      const drafts: EventDraft[] = [];
      const result = await work(tx, { record: (event) => drafts.push(event) });
      return { result, events: await appendEvents(tx, drafts) };
    },
    // Starting a 10,000-vertex pipeline is one transaction too.
    { timeout: 120_000, maxWait: 30_000 },
  );
  for (const event of events) store.bus.publish('pipeline:event', event.pipelineId, event);
  for (const listener of store.commitListeners) {
    try {
      listener(events);
    } catch (error) {
      store.onListenerError?.(error);
    }
  }
  return { result, events };
}

/** Rows per INSERT: 10 values each, well inside the bind-value limit. */
const EVENTS_PER_STATEMENT = 2000;

/**
 * Inserts the events in order and returns them as committed rows. Plain SQL rather than
 * createManyAndReturn: this runs in every transition, and Prisma's query compiler costs
 * about three times the statement itself.
 */
async function appendEvents(tx: Tx, drafts: readonly EventDraft[]): Promise<Event[]> {
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
    const rows = await tx.$queryRaw<Array<{ id: number }>>`
      INSERT INTO "event" ("p_id", "t_id", "type", "pipelineState", "trackState", "attempt", "exitCode", "reason", "createdAt")
      VALUES ${Prisma.join(
        batch.map(
          (e) =>
            Prisma.sql`(${e.pipelineId}, ${e.trackId}, ${e.type}, ${e.pipelineState}, ${e.trackState}, ${e.attempt}, ${e.exitCode}, ${e.reason}, ${e.createdAt})`,
        ),
      )}
      RETURNING "id"`;
    // Ids are assigned in VALUES order; RETURNING itself promises no order.
    const ids = rows.map((r) => Number(r.id)).sort((a, b) => a - b);
    batch.forEach((event, i) => events.push({ id: ids[i]!, ...event }));
  }
  return events;
}
