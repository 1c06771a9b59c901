/**
 * The dashboard's one graphql-ws connection, shared by every live view: a page holds
 * subscriptions, never sockets. The connection opens with the first subscription, closes a
 * moment after the last one ends (a page left), and reconnects for as long as any is open.
 *
 * Resuming without a gap or a duplicate is each subscription's own cursor. graphql-ws sends
 * a subscription's payload again on every reconnect, stringifying it anew, so `variables`
 * is a function read at each (re)subscribe: a view passes its latest cursor (pipelineLive's
 * `after`: the last event id; trackOutput's `offset`: the byte after the last line).
 *
 * A connection that stops answering (a laptop asleep, a proxy that dropped it) is noticed by
 * its ping: no pong within PONG_TIMEOUT_MS closes it, and the retry begins.
 */
import { createClient, type Client } from 'graphql-ws';
import { session } from './api';
import type { TypedDocumentString } from './generated/graphql';

/** `lost`: the connection dropped while views were open; it is being retried. */
export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'lost' | 'refused';

const PING_INTERVAL_MS = 10_000;
const PONG_TIMEOUT_MS = 5_000;
const MAX_RETRY_WAIT_MS = 10_000;
/** Close code of a refused connection (src/http/api.ts): no retry, the token is not valid. */
const FORBIDDEN = 4403;

let client: Client | undefined;
let state: ConnectionState = 'idle';
let open = 0;
const watchers = new Set<(state: ConnectionState) => void>();

function setState(next: ConnectionState) {
  if (next === state) return;
  state = next;
  for (const watch of watchers) watch(next);
}

export function connectionState(): ConnectionState {
  return state;
}

/** Calls `watch` on every change of the connection's state; returns the unwatch. */
export function watchConnection(watch: (state: ConnectionState) => void): () => void {
  watchers.add(watch);
  return () => watchers.delete(watch);
}

function isCloseEvent(value: unknown): value is CloseEvent {
  return typeof value === 'object' && value !== null && 'code' in value;
}

function liveClient(): Client {
  if (client) return client;
  let pongTimer: ReturnType<typeof setTimeout> | undefined;
  let socket: WebSocket | undefined;
  client = createClient({
    url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`,
    connectionParams: () => {
      const token = session.token();
      return token ? { authorization: `Bearer ${token}` } : {};
    },
    lazy: true,
    lazyCloseTimeout: 1_000,
    keepAlive: PING_INTERVAL_MS,
    retryAttempts: Number.POSITIVE_INFINITY,
    shouldRetry: (event) => !(isCloseEvent(event) && event.code === FORBIDDEN),
    // Exponential with jitter, so that a restarted service is not met by every tab at once.
    retryWait: (retries) => new Promise((resolve) => setTimeout(resolve, Math.min(MAX_RETRY_WAIT_MS, 300 * 2 ** retries) * (0.5 + Math.random()))),
    on: {
      connecting: () => setState(state === 'idle' ? 'connecting' : state),
      connected: (connected) => {
        socket = connected as WebSocket;
        setState('connected');
      },
      ping: (received) => {
        if (received) return;
        clearTimeout(pongTimer);
        pongTimer = setTimeout(() => socket?.readyState === WebSocket.OPEN && socket.close(4408, 'Pong timeout'), PONG_TIMEOUT_MS);
      },
      pong: (received) => received && clearTimeout(pongTimer),
      closed: (event) => {
        clearTimeout(pongTimer);
        socket = undefined;
        if (isCloseEvent(event) && event.code === FORBIDDEN) setState('refused');
        else setState(open > 0 ? 'lost' : 'idle');
      },
    },
  });
  return client;
}

/** Ends the connection and every subscription on it (at sign-out: the next one signs in anew). */
export function closeLive() {
  void client?.dispose();
  client = undefined;
  open = 0;
  setState('idle');
}

export interface LiveSink<Result> {
  next(data: Result): void;
  /** The service refused the subscription (its errors' messages, in its words). */
  error?(message: string): void;
}

/**
 * Subscribes over the shared connection; `variables` is read at every (re)subscribe (see the
 * header). Returns the unsubscribe, which a view calls when it is left.
 */
export function subscribe<Result, Variables>(document: TypedDocumentString<Result, Variables>, variables: () => Variables, sink: LiveSink<Result>): () => void {
  open++;
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    open--;
  };
  const payload = {
    query: document.toString(),
    get variables() {
      return variables() as Record<string, unknown>;
    },
  };
  const dispose = liveClient().subscribe<Result>(payload, {
    next: (message) => {
      if (message.errors?.length) sink.error?.(message.errors.map((e) => e.message).join(' '));
      else if (message.data) sink.next(message.data);
    },
    error: (error) => {
      end();
      if (Array.isArray(error)) sink.error?.(error.map((e: { message: string }) => e.message).join(' '));
      else if (!isCloseEvent(error)) sink.error?.(error instanceof Error ? error.message : String(error));
    },
    complete: end,
  });
  return () => {
    end();
    dispose();
  };
}
