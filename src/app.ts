/**
 * The composition root: database, bus, executor, GraphQL over HTTP, SSE and WebSocket
 * (graphql-ws) on one node:http server and one path.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EnvelopArmor } from '@escape.tech/graphql-armor';
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { useDisableIntrospection } from '@graphql-yoga/plugin-disable-introspection';
import { GraphQLError, Kind, type DefinitionNode, type OperationDefinitionNode } from 'graphql';
import { createGraphQLError, createYoga, type Plugin } from 'graphql-yoga';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { WebSocketServer } from 'ws';
import { TokenVerifier, type TokenCheck } from './auth/tokens.ts';
import type { Identity } from './engine/roles.ts';
import { DomainError, ForbiddenError, UnauthenticatedError, tokenHint } from './errors.ts';
import type { Config } from './config.ts';
import { createContext, type Caller, type Context } from './context.ts';
import { connectDb, type DbOptions } from './db.ts';
import { Executor } from './executor/executor.ts';
import type { LauncherEntry } from './executor/launcher-client.ts';
import { resolveScriptUser } from './executor/script-user.ts';
import { FAVICON, servedGraphiQL } from './graphiql.ts';
import type { Logger } from './logger.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { createBus } from './pubsub.ts';
import { schema } from './schema/index.ts';
import { useSharedEventExecution } from './shared-execution.ts';
import { serveGraphqlWs, type SocketExtra } from './ws-transport.ts';
import { DagCache } from './store/dag-cache.ts';
import type { Store } from './store/transaction.ts';

/** What a client sees of an error that is the service's fault. */
const UNEXPECTED_ERROR = 'Unexpected error.';

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
    [...SCRIPT_ENV_ALLOWLIST, ...config.scriptEnv].flatMap((name) => (deps.env[name] !== undefined ? [[name, deps.env[name]!]] : [])),
  );
  const metrics = createMetrics({
    db,
    runningTracks: () => executor.runningCount,
    subscriptions: () => store.bus.subscriptions,
    webSocketConnections: () => wss.clients.size,
  });
  const scriptUser = resolveScriptUser(config.scriptUser, process.getuid?.());
  if (process.getuid?.() === 0 && scriptUser === undefined) {
    logger.warn('scripts run as root (SCRIPT_USER=root): every script can do anything on this machine');
  }
  const executor = new Executor(
    store,
    { workers: config.workers, outputLimitBytes: config.outputLimitBytes, workDir: config.workDir, baseEnv, observer: metrics, ...(scriptUser && { scriptUser }), ...(deps.launcher && { launcher: deps.launcher }) },
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

  const verifier = new TokenVerifier(db);
  /** Who is calling, from an Authorization value; everyone is admin with authentication off. */
  const identify = async (authorization: string | null | undefined): Promise<{ identity: Identity | null; authProblem?: string }> => {
    if (!config.auth) return { identity: { name: 'anonymous', role: 'admin', tokenId: null } };
    const check: TokenCheck | null = await verifier.check(authorization);
    if (check === null) return { identity: null };
    return 'identity' in check ? { identity: check.identity } : { identity: null, authProblem: check.problem };
  };
  const services = { store, executor, outputLimitBytes: config.outputLimitBytes };
  const armor = new EnvelopArmor({
    maxDepth: { n: config.limits.depth, ignoreIntrospection: true },
    costLimit: { maxCost: config.limits.cost, ignoreIntrospection: true },
    maxAliases: { n: config.limits.aliases },
    maxTokens: { n: config.limits.tokens },
    maxDirectives: { n: 50 },
    // Suggestions ("Did you mean ...?") would describe a schema that introspection hides.
    blockFieldSuggestion: { enabled: !config.introspection },
  });

  // SSE for subscriptions: GraphiQL then sends the Authorization header set in its Headers
  // tab (on a GET, which CSRF prevention below accepts because of that header).
  const graphiql = servedGraphiQL({ title: 'dagpipe', subscriptionsProtocol: 'SSE', favicon: FAVICON });
  const requestLog = logger.child({ component: 'request' });
  /** Errors maskError has logged (Yoga may hand the same one over more than once). */
  const logged = new WeakSet<object>();
  const logOnce = (error: unknown, log: () => void) => {
    if (typeof error !== 'object' || error === null) return log();
    if (logged.has(error)) return;
    logged.add(error);
    log();
  };

  // Unexpected errors reach clients as "Unexpected error." and are logged with their
  // stack, at error level: they are the service's fault. Expected ones (a domain error
  // outside a result union: no token, a role too low, an unknown id) keep their message
  // and are logged at info, without a stack: they are the client's.
  const maskError = (error: unknown, message: string): GraphQLError => {
    const original = error instanceof GraphQLError ? error.originalError : error;
    if (original instanceof DomainError) {
      const code =
        original instanceof UnauthenticatedError ? 'UNAUTHENTICATED' : original instanceof ForbiddenError ? 'FORBIDDEN' : original.name;
      const requiredRole = original instanceof UnauthenticatedError || original instanceof ForbiddenError ? original.requiredRole : undefined;
      const path = error instanceof GraphQLError ? error.path : undefined;
      logOnce(error, () => requestLog.info({ code, field: original.field, path: path?.join('.'), requiredRole }, `request refused: ${original.message}`));
      return createGraphQLError(original.message, {
        ...(error instanceof GraphQLError && { nodes: error.nodes, path: error.path }),
        extensions: { code, field: original.field, ...(requiredRole && { requiredRole }) },
      });
    }
    if (error instanceof GraphQLError && !error.originalError) return error;
    if (error instanceof GraphQLError && error.originalError instanceof GraphQLError) return error;
    logOnce(error, () => logger.error({ err: original }, 'unexpected error'));
    return createGraphQLError(message);
  };

  const yoga = createYoga<Record<string, unknown>, Context>({
    schema,
    context: async (initial) => {
      const fromSocket = initial.caller as Caller | undefined;
      if (fromSocket) return createContext(services, fromSocket);
      const address = (initial.req as IncomingMessage | undefined)?.socket.remoteAddress;
      return createContext(services, { ...(await identify(initial.request.headers.get('authorization'))), ...(address && { clientAddress: address }) });
    },
    graphqlEndpoint: '/graphql',
    graphiql: graphiql.options,
    // The self-contained page: Yoga's default one loads everything from unpkg.com.
    renderGraphiQL: graphiql.render,
    landingPage: false,
    plugins: [
      ...armor.protect().plugins,
      // After armor's token limit, so that it wraps the parser that enforces it.
      parseWithoutOverflow,
      graphiql.plugin,
      // A browser page of another site cannot make a "simple" request (a form post, a GET
      // without these headers) on a user's behalf: either header needs a CORS preflight,
      // and a browser never adds a Bearer token by itself. API clients send JSON, the
      // token or the CSRF header.
      useCSRFPrevention({ requestHeaders: ['x-graphql-yoga-csrf', 'authorization'] }),
      ...(config.introspection ? [] : [useDisableIntrospection()]),
      mutationRateLimit(config.limits.mutationsPerMinute),
      // The last with an onSubscribe hook: it ends the subscribe phase and masks
      // subscription results itself (see src/shared-execution.ts).
      useSharedEventExecution({ observe: (executed) => metrics.subscriptionEvent(executed), maskError: (error) => maskError(error, UNEXPECTED_ERROR) }),
    ],
    maskedErrors: { maskError, errorMessage: UNEXPECTED_ERROR },
    logging: {
      debug: (...args) => logger.debug(args.map(String).join(' ')),
      info: (...args) => logger.info(args.map(String).join(' ')),
      warn: (...args) => logger.warn(args.map(String).join(' ')),
      error: (...args) => {
        const error = args.find((a) => a instanceof Error);
        // Yoga logs every error maskError replaced, at error level with its stack;
        // maskError has logged those already, at the level they deserve.
        if (error && logged.has(error)) return;
        logger.error({ err: error }, args.map(String).join(' '));
      },
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
      identify(req.headers.authorization)
        .then(async ({ identity, authProblem }) => {
          if (identity === null) {
            const problem = `${authProblem ?? 'Metrics need an API token: send "Authorization: Bearer <token>".'} Any role will do: ${tokenHint('viewer')}`;
            requestLog.info({ code: 'UNAUTHENTICATED', path: '/metrics' }, `request refused: ${problem}`);
            res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer' });
            res.end(`${problem}\n`);
            return;
          }
          const { body, contentType } = await metrics.render();
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
    if (req.method === 'POST' && !bodyWithinLimit(req, res, config.limits.bodyBytes)) return;
    void yoga(req, res);
  });
  // Node closes idle keep-alive sockets after 5 s, which races with clients (load balancers,
  // fetch's pool) reusing them: the reused request dies with ECONNRESET. Outlive them instead.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  // maxPayload: one graphql-ws message is a subscription request, never a body-sized upload.
  const wss = new WebSocketServer({ server, path: yoga.graphqlEndpoint, maxPayload: config.limits.bodyBytes });
  const wsServer = serveGraphqlWs<Record<string, unknown>, SocketExtra & { caller?: Caller }>(
    {
      // The token comes in connectionParams ({"authorization": "Bearer <token>"}); a
      // connection without a valid one is closed with 4403 Forbidden.
      onConnect: async (ctx) => {
        const params = ctx.connectionParams ?? {};
        const authorization = params.authorization ?? params.Authorization ?? (typeof params.token === 'string' ? `Bearer ${params.token}` : undefined);
        const caller = await identify(typeof authorization === 'string' ? authorization : undefined);
        if (caller.identity === null) {
          requestLog.info(
            { code: 'UNAUTHENTICATED', transport: 'graphql-ws' },
            `connection refused: ${caller.authProblem ?? 'no API token in connectionParams ({"authorization": "Bearer <token>"})'}`,
          );
          return false;
        }
        const address = ctx.extra.request.socket.remoteAddress;
        ctx.extra.caller = { ...caller, ...(address && { clientAddress: address }) };
        return true;
      },
      execute: (args: any) => args.rootValue.execute(args),
      subscribe: (args: any) => args.rootValue.subscribe(args),
      onSubscribe: async (ctx, _id, params) => {
        // graphql-ws lists the operations of this connection, this one included.
        if (Object.keys(ctx.subscriptions).length > config.limits.subscriptionsPerConnection) {
          return [
            new GraphQLError(
              `This connection already has ${config.limits.subscriptionsPerConnection} subscriptions (SUBSCRIPTIONS_PER_CONNECTION); complete one, or open another connection.`,
              { extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' } },
            ),
          ];
        }
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          caller: ctx.extra.caller,
          params,
        });
        let document;
        try {
          document = parse(params.query);
        } catch (error) {
          return [error instanceof GraphQLError ? error : new GraphQLError('The query could not be parsed.')];
        }
        const args = {
          schema,
          operationName: params.operationName,
          document,
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
    logger.child({ component: 'graphql-ws' }),
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

/**
 * Refuses a request body over the limit before anything reads it (413), and one of unknown
 * length (411): GraphQL clients send a Content-Length, and a body read without one could
 * be of any size.
 */
function bodyWithinLimit(req: IncomingMessage, res: ServerResponse, limit: number): boolean {
  const header = req.headers['content-length'];
  const length = Number(header);
  if (header === undefined || !Number.isSafeInteger(length)) {
    res.writeHead(411, { 'content-type': 'text/plain', connection: 'close' });
    res.end('Send the request body with a Content-Length header.\n');
    return false;
  }
  if (length > limit) {
    res.writeHead(413, { 'content-type': 'text/plain', connection: 'close' });
    res.end(`The request body is ${length} bytes; at most ${limit} are accepted (MAX_BODY_BYTES).\n`);
    return false;
  }
  return true;
}

/**
 * At most `perMinute` mutation fields per minute per caller (token, or client address with
 * authentication off); beyond it a RATE_LIMITED error says when to try again.
 */
function mutationRateLimit(perMinute: number): Plugin<Context> {
  const limiter = new RateLimiterMemory({ points: perMinute, duration: 60 });
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const operation = args.document.definitions.find(
        (d: DefinitionNode): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION && (!args.operationName || d.name?.value === args.operationName),
      );
      if (operation?.operation !== 'mutation') return;
      const ctx = args.contextValue;
      const caller = ctx.identity?.tokenId != null ? `token:${ctx.identity.tokenId}` : `address:${ctx.clientAddress ?? 'unknown'}`;
      const fields = operation.selectionSet.selections.length;
      return limiter.consume(caller, fields).then(
        () => undefined,
        (refusal: unknown) => {
          const wait = refusal instanceof RateLimiterRes ? Math.ceil(refusal.msBeforeNext / 1000) : 60;
          setResultAndStopExecution({
            errors: [
              createGraphQLError(`Too many changes: at most ${perMinute} mutations a minute are accepted (MUTATIONS_PER_MINUTE). Try again in ${wait} s.`, {
                extensions: { code: 'RATE_LIMITED', retryAfterSeconds: wait, http: { status: 429, headers: { 'retry-after': String(wait) } } },
              }),
            ],
          });
        },
      );
    },
  };
}

/**
 * graphql-js parses recursively: a literal nested a few thousand levels deep overflows
 * the stack before any limit applies. Say so as a request error instead of an unexpected one.
 */
const parseWithoutOverflow: Plugin = {
  onParse({ parseFn, setParseFn }) {
    setParseFn((source, options) => {
      try {
        return parseFn(source, options);
      } catch (error) {
        if (!(error instanceof RangeError)) throw error;
        throw createGraphQLError('The request is nested too deeply to be read. Send deep values as variables (JSON), not as literals in the query.', {
          extensions: { code: 'NESTED_TOO_DEEPLY', http: { status: 400 } },
        });
      }
    });
  },
};
