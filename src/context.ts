/** What every resolver sees; a new object per request (or per subscription operation). */
import type { Db } from './db.ts';
import type { Identity } from './engine/roles.ts';
import type { Executor } from './executor/executor.ts';
import type { PubSub } from './pubsub.ts';
import type { PipelineDeletions } from './retention.ts';
import type { Store } from './store/transaction.ts';
import type { UrlCheck } from './store/webhooks.ts';

/**
 * What resolvers ask of this process's executor: the output of attempts it runs, not all
 * stored yet. An API process runs none (every page then comes from the database).
 */
export type LocalRuns = Pick<Executor, 'keptOutput' | 'unflushedOutput'>;

export const NO_LOCAL_RUNS: LocalRuns = { keptOutput: () => undefined, unflushedOutput: () => undefined };

export interface AppServices {
  store: Store;
  executor: LocalRuns;
  /** OUTPUT_LIMIT_BYTES: what is kept of a track's output. */
  outputLimitBytes: number;
  /** deletePipeline's way (the same as retention's). */
  deletions: Pick<PipelineDeletions, 'deletePipeline'>;
  /** The SSRF guard for webhook URLs (WEBHOOK_ALLOWED_HOSTS; webhooks/guard.ts). */
  checkWebhookUrl: UrlCheck;
}

export interface Context {
  db: Db;
  bus: PubSub;
  store: Store;
  executor: LocalRuns;
  outputLimitBytes: number;
  deletions: AppServices['deletions'];
  checkWebhookUrl: UrlCheck;
  /** Who is calling; null when no valid token came with the request. */
  identity: Identity | null;
  /** Why a token that came with the request was not accepted. */
  authProblem?: string;
  /** The peer address, for per-client limits when there is no token. */
  clientAddress?: string;
}

export interface Caller {
  identity: Identity | null;
  authProblem?: string;
  clientAddress?: string;
}

export function createContext(services: AppServices, caller: Caller): Context {
  return {
    db: services.store.db,
    bus: services.store.bus,
    store: services.store,
    executor: services.executor,
    outputLimitBytes: services.outputLimitBytes,
    deletions: services.deletions,
    checkWebhookUrl: services.checkWebhookUrl,
    identity: caller.identity,
    ...(caller.authProblem !== undefined && { authProblem: caller.authProblem }),
    ...(caller.clientAddress !== undefined && { clientAddress: caller.clientAddress }),
  };
}
