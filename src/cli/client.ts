/**
 * The I/O edge of pipectl: typed documents over HTTP (fetch) and subscriptions over
 * graphql-ws. Failures come out in the user's terms: which URL could not be reached and
 * how to point pipectl elsewhere, or what the server said.
 */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
// The printer and the client only, not all of graphql (validation, execution) or graphql-ws's
// server: start-up time is what a command-line tool is felt by.
import type { ExecutionResult, GraphQLFormattedError } from 'graphql';
import { print } from 'graphql/language/printer.js';
import type { Client } from 'graphql-ws/client';
import { DEFAULT_URL } from './args.ts';
import { CliError, ExitCode, RefusedError, TokenRefusedError, UnavailableError } from './errors.ts';

/** How long one HTTP request may take (startPipeline on a 10,000-vertex graph takes seconds). */
const REQUEST_TIMEOUT_MS = 120_000;

export interface Sink<R> {
  next(data: R): void;
  error(error: CliError): void;
  /** The server ended the stream. */
  complete?(): void;
}

export interface Api {
  readonly url: string;
  /** Runs a query or mutation; throws a CliError on transport or GraphQL errors. */
  request<R, V>(document: TypedDocumentNode<R, V>, variables: V): Promise<R>;
  /** Starts a subscription; returns a function that ends it. */
  subscribe<R, V>(document: TypedDocumentNode<R, V>, variables: V, sink: Sink<R>): () => void;
  /** Closes the WebSocket, if one was opened. */
  close(): Promise<void>;
}

function howToPoint(url: string): string {
  return `Is the server running (npm start)? pipectl uses ${url}; point it elsewhere with --url <url> or PIPECTL_URL.`;
}

/** What is behind a failed fetch: an error code such as ECONNREFUSED, else the cause's message. */
function causeCode(error: unknown): string | undefined {
  let cause: unknown = error;
  let message: string | undefined;
  for (let depth = 0; cause && depth < 5; depth++) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    const nested = (cause as { errors?: unknown[] }).errors?.[0];
    const text = (cause as { message?: unknown }).message;
    if (depth > 0 && typeof text === 'string' && text) message ??= text;
    cause = nested ?? (cause as { cause?: unknown }).cause;
  }
  return message || undefined;
}

/** GraphQL errors (not typed mutation errors) as one CliError. */
export function graphqlErrors(errors: readonly GraphQLFormattedError[]): CliError {
  const codes = errors.map((e) => e.extensions?.code);
  const text = errors.map((e) => e.message).join('; ');
  if (codes.includes('NOT_FOUND')) return new RefusedError(text);
  if (codes.includes('UNAUTHENTICATED')) return new TokenRefusedError(text);
  if (codes.includes('FORBIDDEN')) return new RefusedError(text);
  if (codes.includes('GRAPHQL_VALIDATION_FAILED')) {
    return new CliError(`The server does not understand pipectl's request (${text}). Are pipectl and the server the same version?`, ExitCode.INTERNAL);
  }
  return new CliError(`The server reported an error: ${text}`, ExitCode.INTERNAL);
}

/** A graphql-ws failure: GraphQL errors of the subscription, a close event, or a socket error. */
function wsError(error: unknown, url: string): CliError {
  if (Array.isArray(error)) return graphqlErrors(error as GraphQLFormattedError[]);
  const wsUrl = url.replace(/^http/, 'ws');
  const close = error as { code?: unknown; reason?: unknown };
  if (typeof close.code === 'number') {
    const reason = typeof close.reason === 'string' && close.reason ? close.reason : `close code ${close.code}`;
    return new UnavailableError(`The WebSocket to ${wsUrl} closed (${reason}). ${howToPoint(url)}`);
  }
  const code = causeCode((error as { error?: unknown }).error ?? error);
  return new UnavailableError(`Lost the WebSocket to ${wsUrl}${code ? ` (${code})` : ''}. ${howToPoint(url)}`);
}

/** `token`: an API token (PIPECTL_TOKEN), sent as a Bearer header and in graphql-ws connectionParams. */
export function createApi(url: string, token?: string): Api {
  const authorization: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  let ws: Promise<Client> | undefined;

  /** The WebSocket client, loaded on first use: commands that only query start faster. */
  function wsClient(): Promise<Client> {
    ws ??= Promise.all([import('graphql-ws/client'), import('ws')]).then(([{ createClient }, { default: WebSocket }]) =>
      createClient({
        url: url.replace(/^http/, 'ws'),
        webSocketImpl: WebSocket,
        connectionParams: authorization,
        lazy: true,
        // A dropped connection is retried and the subscriptions resumed (callers dedupe by id).
        retryAttempts: 5,
        shouldRetry: () => true,
      }),
    );
    return ws;
  }

  return {
    url,
    async request(document, variables) {
      let response: Response;
      try {
        response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', ...authorization },
          body: JSON.stringify({ query: print(document), variables }),
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
      } catch (error) {
        if ((error as Error).name === 'TimeoutError') {
          throw new UnavailableError(`The server at ${url} did not answer within ${REQUEST_TIMEOUT_MS / 1000} s.`);
        }
        const code = causeCode(error);
        throw new UnavailableError(`Cannot reach the dagpipe server at ${url}${code ? ` (${code})` : ''}. ${howToPoint(url)}`);
      }
      const text = await response.text();
      let result: ExecutionResult<unknown>;
      try {
        result = JSON.parse(text) as ExecutionResult<unknown>;
      } catch {
        throw new UnavailableError(
          `${url} answered HTTP ${response.status} ${response.statusText} without a GraphQL result: is it a dagpipe server? ` +
            `The URL is the server's GraphQL endpoint, e.g. ${DEFAULT_URL}; set it with --url or PIPECTL_URL.`,
        );
      }
      if (result.errors?.length) throw graphqlErrors(result.errors);
      if (!result.data) throw new CliError(`The server answered HTTP ${response.status} without data.`, ExitCode.INTERNAL);
      return result.data as never;
    },
    subscribe(document, variables, sink) {
      let ended = false;
      let dispose = () => {};
      const end = (fn: () => void) => {
        if (ended) return;
        ended = true;
        fn();
      };
      void wsClient().then((client) => {
        if (ended) return;
        dispose = client.subscribe<unknown>(
          { query: print(document), variables: variables as Record<string, unknown> },
          {
            next: (value) => {
              if (ended) return;
              if (value.errors?.length) {
                const error = graphqlErrors(value.errors);
                end(() => sink.error(error));
                return;
              }
              sink.next(value.data as never);
            },
            error: (error) => end(() => sink.error(wsError(error, url))),
            complete: () => end(() => sink.complete?.()),
          },
        );
      });
      return () => {
        ended = true;
        dispose();
      };
    },
    async close() {
      if (ws) await (await ws).dispose();
    },
  };
}
