/**
 * The composition root: database, bus, executor, GraphQL over HTTP, SSE and WebSocket
 * (graphql-ws) on one node:http server and one path.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { useServer } from 'graphql-ws/use/ws';
import { createYoga } from 'graphql-yoga';
import { WebSocketServer } from 'ws';
import type { Config } from './config.ts';
import { createContext, type Context } from './context.ts';
import { connectDb, type DbOptions } from './db.ts';
import { Executor } from './executor/executor.ts';
import type { Logger } from './logger.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { createBus } from './pubsub.ts';
import { schema } from './schema/index.ts';
import { DagCache } from './store/dag-cache.ts';
import type { Store } from './store/transaction.ts';

/** Variables a script may inherit from the service's environment; nothing else leaks. */
const SCRIPT_ENV_ALLOWLIST = ['PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'SHELL'];

export interface AppDeps {
  config: Config;
  logger: Logger;
  /** The service environment, for the variables scripts may inherit. */
  env: Record<string, string | undefined>;
  db?: DbOptions;
}

export interface App {
  readonly store: Store;
  readonly executor: Executor;
  readonly server: Server;
  readonly metrics: Metrics;
  readonly yoga: ReturnType<typeof createYoga<Record<string, unknown>, Context>>;
  /** Listens on config.port (0 picks a free one); returns the GraphQL URL. */
  start(): Promise<string>;
  stop(): Promise<void>;
}

export async function buildApp(deps: AppDeps): Promise<App> {
  const { config, logger } = deps;
  const { prisma: db, fast } = await connectDb(config.databaseUrl, deps.db);
  const store: Store = {
    db,
    fast,
    bus: createBus(),
    dags: new DagCache(),
    commitListeners: [],
    onListenerError: (error) => logger.error({ err: error }, 'commit listener failed'),
  };
  const baseEnv = Object.fromEntries(
    SCRIPT_ENV_ALLOWLIST.flatMap((name) => (deps.env[name] !== undefined ? [[name, deps.env[name]!]] : [])),
  );
  const metrics = createMetrics({
    db,
    runningTracks: () => executor.runningCount,
    subscriptions: () => store.bus.subscriptions,
    webSocketConnections: () => wss.clients.size,
  });
  const executor = new Executor(
    store,
    { workers: config.workers, outputLimitBytes: config.outputLimitBytes, workDir: config.workDir, baseEnv, observer: metrics },
    logger.child({ component: 'executor' }),
  );
  // Every committed pipeline change in the log, with its ids; track changes at debug.
  const journalLog = logger.child({ component: 'journal' });
  store.commitListeners.push((events) => {
    for (const event of events) {
      const fields = { pipelineId: event.pipelineId, trackId: event.trackId ?? undefined, eventId: event.id, attempt: event.attempt ?? undefined, reason: event.reason ?? undefined };
      if (event.trackId === null) journalLog.info(fields, event.type);
      else journalLog.debug(fields, event.type);
    }
  });

  const yoga = createYoga<Record<string, unknown>, Context>({
    schema,
    context: () => createContext({ store, executor, outputLimitBytes: config.outputLimitBytes }),
    graphqlEndpoint: '/graphql',
    graphiql: { title: 'dagpipe', subscriptionsProtocol: 'WS' },
    landingPage: false,
    // Unexpected errors reach clients as "Unexpected error." and are logged with their stack.
    maskedErrors: true,
    logging: {
      debug: (...args) => logger.debug(args.map(String).join(' ')),
      info: (...args) => logger.info(args.map(String).join(' ')),
      warn: (...args) => logger.warn(args.map(String).join(' ')),
      error: (...args) => logger.error({ err: args.find((a) => a instanceof Error) }, args.map(String).join(' ')),
    },
  });

  const server = createServer((req, res) => {
    if (req.url === '/health' && (req.method === 'GET' || req.method === 'HEAD')) {
      db.$queryRawUnsafe('SELECT 1')
        .then(() => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ status: 'ok', executor: { id: executor.id, running: executor.runningCount, workers: config.workers } }));
        })
        .catch((error: unknown) => {
          logger.error({ err: error }, 'health check failed');
          res.writeHead(503, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ status: 'unavailable', reason: 'the database does not answer' }));
        });
      return;
    }
    if (req.url === '/metrics' && req.method === 'GET') {
      metrics
        .render()
        .then(({ body, contentType }) => {
          res.writeHead(200, { 'content-type': contentType });
          res.end(body);
        })
        .catch((error: unknown) => {
          logger.error({ err: error }, 'metrics collection failed');
          res.writeHead(503, { 'content-type': 'text/plain' });
          res.end('metrics are unavailable: the database does not answer\n');
        });
      return;
    }
    void yoga(req, res);
  });
  // Node closes idle keep-alive sockets after 5 s, which races with clients (load balancers,
  // fetch's pool) reusing them: the reused request dies with ECONNRESET. Outlive them instead.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  const wss = new WebSocketServer({ server, path: yoga.graphqlEndpoint });
  const wsServer = useServer(
    {
      execute: (args: any) => args.rootValue.execute(args),
      subscribe: (args: any) => args.rootValue.subscribe(args),
      onSubscribe: async (ctx, _id, params) => {
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params,
        });
        const args = {
          schema,
          operationName: params.operationName,
          document: parse(params.query),
          variableValues: params.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        };
        const errors = validate(args.schema, args.document);
        if (errors.length) return errors;
        return args;
      },
    },
    wss,
  );

  let started = false;
  return {
    store,
    executor,
    server,
    metrics,
    yoga,
    async start() {
      // Listen first: a second instance started by mistake must fail on the port before
      // its executor reconciles or claims anything.
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.port, config.host, () => resolve());
      });
      started = true;
      await executor.start();
      const { port } = server.address() as AddressInfo;
      const host = config.host.includes(':') ? `[${config.host}]` : config.host;
      return `http://${host}:${port}/graphql`;
    },
    async stop() {
      await wsServer.dispose();
      if (started) {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
      await executor.stop();
      await db.$disconnect();
    },
  };
}
