/**
 * The API's HTTP side (ROLE=api and all): GraphQL over HTTP and SSE through Yoga, with its
 * limits (graphql-armor, body size, mutation rate), GraphiQL, and graphql-ws on the same
 * path of the same server; the dashboard's files at `/` (dashboard.ts).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { EnvelopArmor } from '@escape.tech/graphql-armor';
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { useDisableIntrospection } from '@graphql-yoga/plugin-disable-introspection';
import { GraphQLError, Kind, type DefinitionNode, type OperationDefinitionNode } from 'graphql';
import { createGraphQLError, createYoga, type Plugin } from 'graphql-yoga';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { WebSocketServer } from 'ws';
import type { Config } from '../config.ts';
import { createContext, type AppServices, type Caller, type Context } from '../context.ts';
import { DomainError, ForbiddenError, UnauthenticatedError } from '../errors.ts';
import { FAVICON, servedGraphiQL } from '../graphiql.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { schema } from '../schema/index.ts';
import { useSharedEventExecution } from '../shared-execution.ts';
import { serveGraphqlWs, type SocketExtra } from '../ws-transport.ts';
import { createDashboard } from './dashboard.ts';
import type { Identify } from './identify.ts';

/** What a client sees of an error that is the service's fault. */
const UNEXPECTED_ERROR = 'Unexpected error.';

export type Yoga = ReturnType<typeof createYoga<Record<string, unknown>, Context>>;

export interface GraphQLApi {
  readonly yoga: Yoga;
  /** Serves a request that is not a probe (see probes.ts). */
  serve(req: IncomingMessage, res: ServerResponse): void;
  /** graphql-ws connections open now. */
  webSocketConnections(): number;
  /** Closes the WebSocket side (the HTTP server is closed by its owner). */
  close(): Promise<void>;
}

export interface GraphQLApiDeps {
  config: Config;
  logger: Logger;
  services: AppServices;
  identify: Identify;
  metrics: Metrics;
  /** The server graphql-ws listens on, at the GraphQL path. */
  server: Server;
}

export function createGraphQLApi(deps: GraphQLApiDeps): GraphQLApi {
  const { config, logger, services, identify, metrics, server } = deps;
  const requestLog = logger.child({ component: 'request' });
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

  const dashboard = createDashboard();
  return {
    yoga,
    serve(req, res) {
      if (dashboard(req, res)) return;
      if (req.method === 'POST' && !bodyWithinLimit(req, res, config.limits.bodyBytes)) return;
      void yoga(req, res);
    },
    webSocketConnections: () => wss.clients.size,
    close: async () => {
      await wsServer.dispose();
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
