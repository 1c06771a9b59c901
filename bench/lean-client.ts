/**
 * A lean client of the graphql-transport-ws protocol (the one graphql-ws speaks), for the
 * fan-out bench's 1,000 subscribers: one `ws` WebSocket each, the protocol's handshake,
 * subscribe, next, error, complete and ping/pong, and nothing else (no retries, no lazy
 * connection, no message validation beyond what the bench checks itself).
 *
 * Why not graphql-ws's own client, which the tests use: the subscribers run on the same
 * two cores as the service they measure, and the official client's per-message machinery
 * (a MessageEvent, the message validated, listeners emitted) made them take about 8.5 us
 * of CPU per message, more than the API process spent delivering it. The bytes on the wire
 * are the same; what the service does is the same.
 */
import WebSocket from 'ws';

export interface LeanSink<T> {
  next(value: T): void;
  error(error: unknown): void;
  complete(): void;
}

export interface LeanClient {
  subscribe<T>(payload: { query: string; variables?: Record<string, unknown> }, sink: LeanSink<T>): () => void;
  dispose(): Promise<void>;
}

const SUBPROTOCOL = 'graphql-transport-ws';

/** Connects and completes the handshake (connection_init, connection_ack) before resolving. */
export function connectLean(httpUrl: string, timeoutMs = 30_000): Promise<LeanClient> {
  // The bench checks every message's content itself: ws need not validate its UTF-8 first.
  const socket = new WebSocket(httpUrl.replace(/^http/, 'ws'), SUBPROTOCOL, { perMessageDeflate: false, skipUTF8Validation: true });
  const sinks = new Map<string, LeanSink<unknown>>();
  let nextId = 0;
  const fail = (error: unknown) => {
    for (const sink of sinks.values()) sink.error(error);
    sinks.clear();
  };

  const client: LeanClient = {
    subscribe<T>(payload: { query: string; variables?: Record<string, unknown> }, sink: LeanSink<T>) {
      const id = String(++nextId);
      sinks.set(id, sink as LeanSink<unknown>);
      socket.send(JSON.stringify({ id, type: 'subscribe', payload }));
      return () => {
        if (!sinks.delete(id) || socket.readyState !== WebSocket.OPEN) return;
        socket.send(JSON.stringify({ id, type: 'complete' }));
      };
    },
    dispose() {
      if (socket.readyState === WebSocket.CLOSED) return Promise.resolve();
      return new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        socket.close(1000, 'Normal Closure');
      });
    },
  };

  return new Promise<LeanClient>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error(`no connection_ack within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('open', () => socket.send(JSON.stringify({ type: 'connection_init' })));
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('close', (code, reason) => {
      clearTimeout(timer);
      fail(new Error(`the connection closed: ${code} ${String(reason)}`));
    });
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as { type: string; id?: string; payload?: unknown };
      switch (message.type) {
        case 'next':
          sinks.get(message.id!)?.next(message.payload);
          return;
        case 'error': {
          const sink = sinks.get(message.id!);
          sinks.delete(message.id!);
          sink?.error(message.payload);
          return;
        }
        case 'complete': {
          const sink = sinks.get(message.id!);
          sinks.delete(message.id!);
          sink?.complete();
          return;
        }
        case 'ping':
          socket.send(JSON.stringify({ type: 'pong' }));
          return;
        case 'connection_ack':
          clearTimeout(timer);
          resolve(client);
          return;
        default:
          return; // pong
      }
    });
  });
}
