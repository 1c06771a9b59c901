/** What every resolver sees; a new object per request (or per subscription operation). */
import type { Db } from './db.ts';
import type { Executor } from './executor/executor.ts';
import type { PubSub } from './pubsub.ts';
import type { Store } from './store/transaction.ts';

export interface AppServices {
  store: Store;
  executor: Executor;
  /** OUTPUT_LIMIT_BYTES: what is kept of a track's output. */
  outputLimitBytes: number;
}

export interface Context {
  db: Db;
  bus: PubSub;
  store: Store;
  executor: Executor;
  outputLimitBytes: number;
}

export function createContext(services: AppServices): Context {
  return {
    db: services.store.db,
    bus: services.store.bus,
    store: services.store,
    executor: services.executor,
    outputLimitBytes: services.outputLimitBytes,
  };
}
