/**
 * The composition root. The service parts (database, store, bus) are composed for every
 * role; then by ROLE (SPEC rule 11):
 * - `all` and `worker` run the executor (with its launcher), the scheduler beside it
 *   (src/scheduler/), the webhook deliverer and, on PostgreSQL, the listener that wakes them
 *   when another process made work ready, changed a schedule or queued deliveries;
 * - `all` and `api` serve GraphQL over HTTP, SSE and WebSocket (src/http/api.ts);
 * - every role serves /health and /metrics (src/http/probes.ts); a worker serves nothing
 *   else, on its own port;
 * - `all` and `worker` also run retention beside the executor (src/retention.ts); every role
 *   deletes through the same PipelineDeletions (deletePipeline on the API).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config.ts';
import { NO_LOCAL_RUNS } from './context.ts';
import { connectDb, type DbOptions } from './db.ts';
import { Executor } from './executor/executor.ts';
import type { LauncherEntry } from './executor/launcher-client.ts';
import { resolveScriptUser } from './executor/script-user.ts';
import { createGraphQLApi, type GraphQLApi, type Yoga } from './http/api.ts';
import { createIdentify } from './http/identify.ts';
import { createProbes, notOnWorker } from './http/probes.ts';
import type { Logger } from './logger.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { createBus } from './pubsub.ts';
import { DEFAULT_RETRY_SCHEDULE } from './engine/webhook-attempts.ts';
import { connectRedisBus } from './redis-bus.ts';
import { BUSY_AFTER_SCRIPT_MS, PipelineDeletions, RetentionJob } from './retention.ts';
import { Scheduler } from './scheduler/scheduler.ts';
import { DagCache } from './store/dag-cache.ts';
import { SCHEDULES_HINT } from './store/schedules.ts';
import type { Store } from './store/transaction.ts';
import { WorkListener } from './store/work-listener.ts';
import { WEBHOOK_HINT } from './store/webhooks.ts';
import { WebhookDeliverer } from './webhooks/deliverer.ts';
import { urlCheck } from './webhooks/guard.ts';

/**
 * Variables a script may inherit from the service's environment, plus those SCRIPT_ENV
 * names; nothing else leaks (DATABASE_URL is refused even there).
 */
const SCRIPT_ENV_ALLOWLIST = ['PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'SHELL'];

export interface AppDeps {
  config: Config;
  logger: Logger;
  /** The service environment, for the variables scripts may inherit. */
  env: Record<string, string | undefined>;
  db?: DbOptions;
  /** Another launcher than the one beside the executor (the bench runs the built one). */
  launcher?: LauncherEntry;
}

export interface App {
  readonly store: Store;
  /** This process's executor; none on an API process (ROLE=api). */
  readonly executor: Executor | undefined;
  /** This process's scheduler: beside the executor, none on an API process. */
  readonly scheduler: Scheduler | undefined;
  /** This process's webhook deliverer; beside the executor, so none on an API process. */
  readonly deliverer: WebhookDeliverer | undefined;
  readonly server: Server;
  readonly metrics: Metrics;
  /** The GraphQL server; none on a worker (ROLE=worker). */
  readonly yoga: Yoga | undefined;
  /** Retention, beside the executor; none on an API process. */
  readonly retention: RetentionJob | undefined;
  /** Listens on config.port (0 picks a free one); returns the GraphQL URL (a worker's: its /health). */
  start(): Promise<string>;
  stop(): Promise<void>;
}

export async function buildApp(deps: AppDeps): Promise<App> {
  const { config, logger } = deps;
  const { prisma: db, fast } = await connectDb(config.databaseUrl, {
    poolSize: config.databasePoolSize,
    // A process frozen inside a transaction (SIGSTOP, a VM paused) would hold its locks, and
    // so stall the pipelines they cover and the sweep that settles it, for as long as it is
    // frozen: PostgreSQL ends such a transaction once it is idle for a lease.
    idleInTransactionTimeoutMs: config.leaseMs,
    ...deps.db,
  });
  const store: Store = {
    db,
    fast,
    bus: config.redisUrl
      ? await connectRedisBus({ redisUrl: config.redisUrl, databaseUrl: config.databaseUrl, log: logger.child({ component: 'bus' }) })
      : createBus(),
    dags: new DagCache(),
    commitListeners: [],
    scheduleListeners: [],
    onListenerError: (error) => logger.error({ err: error }, 'commit listener failed'),
  };
  let api: GraphQLApi | undefined;
  const metrics = createMetrics({
    db,
    runningTracks: () => executor?.runningCount ?? 0,
    subscriptions: () => store.bus.subscriptions,
    busPublishFailures: () => store.bus.publishFailures,
    webSocketConnections: () => api?.webSocketConnections() ?? 0,
  });
  const executor = config.role === 'api' ? undefined : createExecutor(deps, store, metrics);
  const scheduler = executor ? new Scheduler(store, logger.child({ component: 'scheduler' }), { observer: metrics }) : undefined;
  if (scheduler) store.scheduleListeners.push(() => scheduler.changed());
  const retentionLog = logger.child({ component: 'retention' });
  const deletions = new PipelineDeletions(store, config.workDir, retentionLog, metrics);
  const retention = executor ? new RetentionJob(deletions, config.retention, retentionLog, () => executor.ranWithin(BUSY_AFTER_SCRIPT_MS)) : undefined;
  const deliverer =
    config.role === 'api'
      ? undefined
      : new WebhookDeliverer(
          store,
          {
            allowList: config.webhooks.allowList,
            timeoutMs: config.webhooks.timeoutMs,
            schedule: { baseMs: config.webhooks.retryBaseMs, capMs: DEFAULT_RETRY_SCHEDULE.capMs, windowMs: config.webhooks.retryWindowMs },
            pollMs: config.pollMs,
            observer: metrics,
          },
          logger.child({ component: 'webhooks' }),
        );
  if (deliverer) store.deliveriesQueued = () => deliverer.hint();
  const listener =
    executor && fast.provider === 'postgres'
      ? new WorkListener(
          config.databaseUrl,
          (hint) => {
            if (hint === SCHEDULES_HINT) return scheduler?.changed();
            // '' after a (re)connection: whatever any of them missed meanwhile.
            if (hint !== WEBHOOK_HINT) executor.hinted(hint);
            if (hint === WEBHOOK_HINT || hint === '') deliverer?.hint();
            if (hint === '') scheduler?.changed();
          },
          logger.child({ component: 'listener' }),
        )
      : undefined;
  // Every committed pipeline change in the log, with its ids; track changes at debug.
  const journalLog = logger.child({ component: 'journal' });
  store.commitListeners.push((events) => {
    for (const event of events) {
      const fields = { pipelineId: event.pipelineId, trackId: event.trackId ?? undefined, eventId: event.id, attempt: event.attempt ?? undefined, reason: event.reason ?? undefined };
      if (event.trackId === null) journalLog.info(fields, event.type);
      else journalLog.debug(fields, event.type);
    }
  });

  const identify = createIdentify(config.auth, db);
  const probes = createProbes({ role: config.role, db, executor, workers: config.workers, metrics, identify, logger });
  const server = createServer((req, res) => {
    if (probes(req, res)) return;
    if (api) api.serve(req, res);
    else notOnWorker(req, res);
  });
  // Node closes idle keep-alive sockets after 5 s, which races with clients (load balancers,
  // fetch's pool) reusing them: the reused request dies with ECONNRESET. Outlive them instead.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  if (config.role !== 'worker') {
    api = createGraphQLApi({
      config,
      logger,
      services: {
        store,
        executor: executor ?? NO_LOCAL_RUNS,
        outputLimitBytes: config.outputLimitBytes,
        deletions,
        checkWebhookUrl: urlCheck(config.webhooks.allowList),
      },
      identify,
      metrics,
      server,
    });
  }

  let started = false;
  return {
    store,
    executor,
    scheduler,
    deliverer,
    server,
    metrics,
    yoga: api?.yoga,
    retention,
    async start() {
      // Listen first: a second instance started by mistake must fail on the port before
      // its executor reconciles or claims anything.
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.port, config.host, () => resolve());
      });
      started = true;
      await executor?.start();
      await scheduler?.start();
      deliverer?.start();
      await listener?.start();
      retention?.start();
      const { port } = server.address() as AddressInfo;
      const host = config.host.includes(':') ? `[${config.host}]` : config.host;
      return `http://${host}:${port}${api ? '/graphql' : '/health'}`;
    },
    async stop() {
      await api?.close();
      if (started) {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
      await retention?.stop();
      await listener?.stop();
      await scheduler?.stop();
      await deliverer?.stop();
      await executor?.stop();
      await store.bus.close();
      await db.$disconnect();
    },
  };
}

/** The executor of a process that runs scripts (ROLE=all or worker). */
function createExecutor(deps: AppDeps, store: Store, metrics: Metrics): Executor {
  const { config, logger } = deps;
  const baseEnv = Object.fromEntries(
    [...SCRIPT_ENV_ALLOWLIST, ...config.scriptEnv].flatMap((name) => (deps.env[name] !== undefined ? [[name, deps.env[name]!]] : [])),
  );
  const scriptUser = resolveScriptUser(config.scriptUser, process.getuid?.());
  if (process.getuid?.() === 0 && scriptUser === undefined) {
    logger.warn('scripts run as root (SCRIPT_USER=root): every script can do anything on this machine');
  }
  return new Executor(
    store,
    {
      workers: config.workers,
      outputLimitBytes: config.outputLimitBytes,
      workDir: config.workDir,
      pollMs: config.pollMs,
      heartbeatMs: config.heartbeatMs,
      leaseMs: config.leaseMs,
      baseEnv,
      observer: metrics,
      ...(scriptUser && { scriptUser }),
      ...(deps.launcher && { launcher: deps.launcher }),
    },
    logger.child({ component: 'executor' }),
  );
}
