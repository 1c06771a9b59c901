/**
 * graphql-ws (the graphql-transport-ws protocol) over `ws`, built for fan-out: a thousand
 * sockets following one pipeline get every event, and the cost per (socket, event) is what
 * decides whether the service keeps up. It does what graphql-ws/use/ws's useServer does
 * (subprotocol, keep-alive pings, closing on internal errors, dispose) on graphql-ws's public
 * makeServer, and differs in two ways, invisible to clients (the same messages, byte for
 * byte, in the same order):
 *
 *  - Writes are coalesced. A socket's frames wait in its outbox and go out together in
 *    one write: right after the current burst of work if nothing was flushed for
 *    FLUSH_INTERVAL_MS, otherwise when that interval has passed (Nagle's rule, shared by all
 *    sockets, so that one timer serves them all). A write per frame was the largest single
 *    cost of a delivery (a quarter of the server's CPU in the fan-out bench, 1,000 sockets);
 *    batching divides it by the frames per batch. Sparse traffic goes out at once; a busy
 *    stream's frames wait at most the interval, or until the burst that made them ends.
 *    The outbox frames messages itself (an unmasked text frame is a 2 to 10 byte header)
 *    and writes to the TCP socket under the WebSocket, which ws writes its own frames to:
 *    ws would copy each message into a frame and queue it as two writes.
 *  - A result is serialised once, not once per socket: subscribers of the same operation
 *    share the result object (see shared-execution.ts), and the JSON of its `next` payload
 *    is kept beside it. Results are sent here as soon as the stream yields them, without
 *    graphql-ws's per-message machinery, and live ones are pushed through from the bus
 *    without a promise (src/live-push.ts); results with errors (which graphql-ws formats)
 *    still go through graphql-ws.
 *
 * Backpressure stays: a send resolves at once while the socket has less waiting than its
 * high-water mark (what makes a stream's write() say "wait": 16 KiB), otherwise the socket
 * is flushed at once and the send resolves once the socket has drained. A client that stops
 * reading holds at most that much here; its subscription then stops taking events, its
 * bounded feed drops them, and it catches up from the journal when it reads again.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ExecutionResult } from 'graphql';
import { CloseCode, handleProtocols, makeServer, type ServerOptions } from 'graphql-ws';
import type { WebSocket, WebSocketServer } from 'ws';
import { pushesThrough, pushThrough } from './live-push.ts';
import type { Logger } from './logger.ts';

/** Longest a frame waits for others to share its write, when the socket is busy. */
export const FLUSH_INTERVAL_MS = 50;
/** As useServer: a ping every 12 s; no pong within another 12 s ends the connection. */
const KEEP_ALIVE_MS = 12_000;

export interface SocketExtra {
  readonly socket: WebSocket;
  readonly request: IncomingMessage;
}

export function serveGraphqlWs<P extends Record<string, unknown>, E extends SocketExtra>(
  options: ServerOptions<P, E>,
  wss: WebSocketServer,
  logger: Logger,
): { dispose(): Promise<void> } {
  const writers = new WeakMap<WebSocket, SocketWriter>();
  const server = makeServer<P, E>({
    ...options,
    onOperation: async (ctx, id, payload, args, result) => {
      const replaced = (await options.onOperation?.(ctx, id, payload, args, result)) ?? result;
      const writer = writers.get(ctx.extra.socket);
      return writer && isAsyncIterable(replaced) ? sendingResults(replaced, id, writer) : replaced;
    },
  });
  wss.options.handleProtocols = handleProtocols;
  // "Internal server error" to the client, whatever went wrong: details stay in the log.
  wss.once('error', (error) => {
    logger.error({ err: error }, 'the WebSocket server failed');
    for (const client of wss.clients) client.close(CloseCode.InternalServerError, 'Internal server error');
  });
  wss.on('connection', (socket: WebSocket, request: IncomingMessage) => {
    socket.once('error', (error) => {
      logger.error({ err: error }, 'a WebSocket connection failed');
      socket.close(CloseCode.InternalServerError, 'Internal server error');
    });
    const writer = new SocketWriter(socket, request.socket);
    writers.set(socket, writer);
    let pongWait: NodeJS.Timeout | undefined;
    const pings = setInterval(() => {
      if (socket.readyState !== socket.OPEN) return;
      pongWait = setTimeout(() => socket.terminate(), KEEP_ALIVE_MS);
      socket.once('pong', () => {
        clearTimeout(pongWait);
        pongWait = undefined;
      });
      socket.ping();
    }, KEEP_ALIVE_MS);
    const closed = server.opened(
      {
        protocol: socket.protocol,
        send: (data) => writer.send(data),
        close: (code, reason) => {
          writer.flush(); // what was sent goes before the close frame
          socket.close(code, reason);
        },
        onMessage: (handle) =>
          socket.on('message', async (data) => {
            try {
              await handle(String(data));
            } catch (error) {
              logger.error({ err: error }, 'a graphql-ws message could not be handled');
              socket.close(CloseCode.InternalServerError, 'Internal server error');
            }
          }),
      },
      { socket, request } as E,
    );
    socket.once('close', (code, reason) => {
      clearTimeout(pongWait);
      clearInterval(pings);
      void closed(code, String(reason));
    });
  });
  return {
    async dispose() {
      for (const client of wss.clients) client.close(1001, 'Going away');
      wss.removeAllListeners();
      await new Promise<void>((resolve, reject) => wss.close((error) => (error ? reject(error) : resolve())));
    },
  };
}

function isAsyncIterable(value: unknown): value is AsyncIterable<ExecutionResult> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

/**
 * The stream graphql-ws iterates, sending each result without errors itself: graphql-ws
 * would stringify the whole message for every socket. It sends exactly what graphql-ws
 * would: JSON.stringify({ id, type: 'next', payload }), the payload being the result.
 * Results with errors are yielded to graphql-ws, which formats them (and in order: it asks
 * for the next result only after sending that one). Nothing is sent once graphql-ws has
 * ended the stream (the client completed it).
 */
function sendingResults(results: AsyncIterable<ExecutionResult>, id: string, writer: SocketWriter): AsyncGenerator<ExecutionResult> {
  const iterator = results[Symbol.asyncIterator]();
  const prefix = Buffer.from(`{"id":${JSON.stringify(id)},"type":"next","payload":`);
  let ended = false;
  // Live results while the loop below waits on the stream: sent there and then, unless they
  // have errors or the socket is over its high-water mark (then they come through next()).
  if (pushesThrough<ExecutionResult>(iterator)) {
    iterator[pushThrough]((result) => {
      if (ended) return true;
      const payload = payloadBytes(result);
      return payload !== undefined && writer.sendNow(prefix, payload);
    });
  }
  const done = (): IteratorResult<ExecutionResult> => ({ value: undefined, done: true });
  const stream: AsyncGenerator<ExecutionResult> = {
    async next() {
      for (;;) {
        const step = await iterator.next();
        if (step.done || ended) return ended ? done() : step;
        const payload = payloadBytes(step.value);
        if (payload === undefined) return step;
        const written = writer.send(prefix, payload, CLOSING_BRACE);
        if (written) await written;
      }
    },
    async return() {
      ended = true;
      await iterator.return?.();
      return done();
    },
    async throw(error: unknown) {
      ended = true;
      if (iterator.throw) return iterator.throw(error);
      throw error;
    },
    [Symbol.asyncIterator]() {
      return stream;
    },
  };
  return stream;
}

const CLOSING_BRACE = Buffer.from('}');

/**
 * The JSON of each result without errors, as UTF-8, made once for all the sockets it goes
 * to. Bytes rather than text: the frame is then copied once (Buffer.concat), not joined,
 * flattened, measured and encoded for every socket.
 */
const payloads = new WeakMap<ExecutionResult, Buffer>();

function payloadBytes(result: ExecutionResult): Buffer | undefined {
  if (result.errors !== undefined) return undefined;
  let bytes = payloads.get(result);
  if (bytes === undefined) payloads.set(result, (bytes = Buffer.from(JSON.stringify(result))));
  return bytes;
}

/**
 * The header of an unmasked text frame of one whole message (RFC 6455, 5.2): FIN and the
 * text opcode, then the payload length in 7 bits, or 126 and 16 bits, or 127 and 64 bits.
 * The usual ones are made once and shared (they are never written to).
 */
function textFrameHeader(length: number): Buffer {
  if (length < COMMON_HEADERS.length) return (COMMON_HEADERS[length] ??= makeTextFrameHeader(length));
  return makeTextFrameHeader(length);
}

const COMMON_HEADERS = new Array<Buffer | undefined>(4096);

function makeTextFrameHeader(length: number): Buffer {
  if (length < 126) return Buffer.from([0x81, length]);
  if (length < 65536) return Buffer.from([0x81, 126, length >> 8, length & 0xff]);
  const header = Buffer.alloc(10);
  header[0] = 0x81;
  header[1] = 127;
  header.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
  header.writeUInt32BE(length >>> 0, 6);
  return header;
}

/**
 * One socket's outgoing messages: framed into its outbox until the flush (see the top of
 * this file), then written at once to the TCP socket under the WebSocket, the upgraded
 * request's. ws writes its own frames (pings, pongs, the close) to that socket directly;
 * a control frame may go between two messages, and close() flushes the outbox first.
 */
class SocketWriter {
  private parts: Buffer[] = [];
  private bytes = 0;
  private drained: Promise<void> | undefined;

  constructor(
    private readonly socket: WebSocket,
    private readonly tcp: Duplex,
  ) {}

  /**
   * Frames the message made of `pieces`. Undefined when it may be taken as sent; a promise to
   * wait for otherwise (the socket is over its high-water mark).
   */
  send(...pieces: Array<string | Buffer>): Promise<void> | undefined {
    if (this.socket.readyState !== this.socket.OPEN) return undefined;
    this.append(pieces.map((piece) => (typeof piece === 'string' ? Buffer.from(piece) : piece)));
    if (this.waiting() < this.tcp.writableHighWaterMark) return undefined;
    // Waiting on the client, not on the next flush: a fast one (a long replay) goes on at once.
    this.flush();
    return this.drained;
  }

  /** `prefix` + `payload` + "}" now, if the socket can take it without waiting (false otherwise). */
  sendNow(prefix: Buffer, payload: Buffer): boolean {
    if (this.socket.readyState !== this.socket.OPEN) return true; // gone: as send(), nothing to wait for
    if (this.waiting() >= this.tcp.writableHighWaterMark) return false;
    const length = prefix.length + payload.length + 1;
    if (this.bytes === 0) flushes.add(this);
    const header = textFrameHeader(length);
    this.parts.push(header, prefix, payload, CLOSING_BRACE);
    this.bytes += header.length + length;
    return true;
  }

  flush(): void {
    if (this.bytes === 0) return;
    const parts = this.parts;
    const bytes = this.bytes;
    this.parts = [];
    this.bytes = 0;
    // A closing socket (ws sent or answered the close frame) takes nothing more.
    if (this.socket.readyState !== this.socket.OPEN || this.tcp.destroyed) return;
    // A failed write errors the socket, which closes it and ends its subscriptions.
    if (this.tcp.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts, bytes))) return;
    this.drained ??= new Promise<void>((resolve) => {
      const done = () => {
        this.tcp.off('drain', done);
        this.tcp.off('close', done);
        this.drained = undefined;
        resolve();
      };
      this.tcp.on('drain', done);
      this.tcp.on('close', done);
    });
  }

  /** Bytes not yet taken by the kernel: the outbox and what the TCP socket buffers. */
  private waiting(): number {
    return this.bytes + this.tcp.writableLength;
  }

  private append(pieces: Buffer[]): void {
    let length = 0;
    for (const piece of pieces) length += piece.length;
    if (this.bytes === 0) flushes.add(this);
    const header = textFrameHeader(length);
    this.parts.push(header);
    for (const piece of pieces) this.parts.push(piece);
    this.bytes += header.length + length;
  }
}

/** The writers with something in their outbox, flushed together (one timer or immediate for all of them). */
class Flushes {
  private waiting: SocketWriter[] = [];
  private scheduled = false;
  private last = 0;

  add(writer: SocketWriter): void {
    this.waiting.push(writer);
    if (this.scheduled) return;
    this.scheduled = true;
    const wait = this.last + FLUSH_INTERVAL_MS - performance.now();
    if (wait > 0) setTimeout(this.flush, wait);
    else setImmediate(this.flush);
  }

  private readonly flush = () => {
    this.scheduled = false;
    this.last = performance.now();
    const writers = this.waiting;
    this.waiting = [];
    for (const writer of writers) writer.flush();
  };
}

const flushes = new Flushes();
