/**
 * The unit of work for every transition: the state change and the events announcing it
 * commit in one transaction, and the events are published only after that commit, so a
 * subscriber never sees a transition that was rolled back.
 */
import type { Db } from '../db.ts';
import type { Event, Prisma } from '../generated/prisma/client.ts';
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
      const events = drafts.length > 0 ? await tx.event.createManyAndReturn({ data: drafts }) : [];
      return { result, events: events.sort((a, b) => a.id - b.id) };
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
