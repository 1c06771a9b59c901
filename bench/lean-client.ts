/**
 * A lean client of the graphql-transport-ws protocol (the one graphql-ws speaks), for the
 * fan-out bench's 1,000 subscribers: the WebSocket handshake (RFC 6455) on a plain HTTP
 * upgrade, the protocol's connection_init, subscribe, next, error, complete and ping/pong,
 * and nothing else (no retries, no lazy connection, no extensions, no fragmented messages).
 *
 * Why not graphql-ws's own client, which the tests use, nor even a `ws` WebSocket: the
 * subscribers run on the same two cores as the service they measure, so every microsecond
 * they spend on a message is taken from the run being measured. The official client's
 * per-message machinery (a MessageEvent, the message validated, listeners emitted) made
 * them take about 8.5 us of CPU per message, more than the API process spent delivering
 * it; `ws` alone with a JSON.parse per message still took 3.5 to 5 us. Here a read's
 * frames are cut out of the chunk in one loop, and a `next` message's payload is offered as
 * bytes first (LeanSink.nextBytes), so the bench reads the one field it checks without
 * parsing the rest. The bytes on the wire are the same; what the service does is the same.
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { Socket } from 'node:net';

export interface LeanSink<T> {
  /** A `next` message's payload, and when the read that brought it arrived (process.hrtime, ms). */
  next(value: T, at: number): void;
  /** Offered a `next` payload's bytes first: true when it has taken them (next is then not called). */
  nextBytes?(payload: Buffer, at: number): boolean;
  error(error: unknown): void;
  complete(): void;
}

export interface LeanClient {
  subscribe<T>(payload: { query: string; variables?: Record<string, unknown> }, sink: LeanSink<T>): () => void;
  dispose(): Promise<void>;
}

const SUBPROTOCOL = 'graphql-transport-ws';
const ACCEPT_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const OPCODE = { text: 0x1, close: 0x8, ping: 0x9, pong: 0xa } as const;

const hrMs = () => Number(process.hrtime.bigint()) / 1e6;

/** Connects and completes the handshake (connection_init, connection_ack) before resolving. */
export function connectLean(httpUrl: string, timeoutMs = 30_000): Promise<LeanClient> {
  const url = new URL(httpUrl);
  const key = randomBytes(16).toString('base64');
  const request = http.request({
    hostname: url.hostname,
    port: url.port,
    path: url.pathname + url.search,
    agent: false,
    headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': key, 'Sec-WebSocket-Protocol': SUBPROTOCOL },
  });

  return new Promise<LeanClient>((resolve, reject) => {
    const timer = setTimeout(() => {
      request.destroy();
      reject(new Error(`no connection_ack within ${timeoutMs} ms`));
    }, timeoutMs);
    const failed = (error: Error) => {
      clearTimeout(timer);
      reject(error);
    };
    request.once('error', failed);
    request.once('response', (response) => {
      response.resume();
      failed(new Error(`the server answered ${response.statusCode} instead of upgrading to a WebSocket`));
    });
    request.once('upgrade', (response, socket: Socket, head: Buffer) => {
      const accept = createHash('sha1').update(key + ACCEPT_GUID).digest('base64');
      if (response.headers['sec-websocket-accept'] !== accept || response.headers['sec-websocket-protocol'] !== SUBPROTOCOL) {
        socket.destroy();
        failed(new Error('the server upgraded without the expected Sec-WebSocket-Accept or subprotocol'));
        return;
      }
      socket.setNoDelay(true);
      const connection = new LeanConnection(socket, () => {
        clearTimeout(timer);
        resolve(connection);
      }, failed);
      if (head.length > 0) connection.read(head);
      connection.sendMessage({ type: 'connection_init' });
    });
    request.end();
  });
}

class LeanConnection implements LeanClient {
  private readonly sinks = new Map<string, LeanSink<unknown>>();
  private nextId = 0;
  /** The start of a frame whose end has not arrived yet. */
  private partial: Buffer | undefined;
  private closing = false;
  private readonly closed: Promise<void>;

  constructor(
    private readonly socket: Socket,
    private readonly acknowledged: () => void,
    private readonly refused: (error: Error) => void,
  ) {
    socket.on('data', (chunk: Buffer) => this.read(chunk));
    socket.on('error', () => undefined); // 'close' follows, which fails what is still open
    this.closed = new Promise<void>((resolve) =>
      socket.once('close', () => {
        this.fail(new Error('the connection closed'));
        this.refused(new Error('the connection closed before connection_ack'));
        resolve();
      }),
    );
  }

  subscribe<T>(payload: { query: string; variables?: Record<string, unknown> }, sink: LeanSink<T>): () => void {
    const id = String(++this.nextId);
    this.sinks.set(id, sink as LeanSink<unknown>);
    this.sendMessage({ id, type: 'subscribe', payload });
    return () => {
      if (!this.sinks.delete(id) || this.closing) return;
      this.sendMessage({ id, type: 'complete' });
    };
  }

  dispose(): Promise<void> {
    if (!this.closing && !this.socket.destroyed) {
      this.closing = true;
      const code = Buffer.alloc(2);
      code.writeUInt16BE(1000);
      this.sendFrame(OPCODE.close, Buffer.concat([code, Buffer.from('Normal Closure')]));
    }
    return this.closed;
  }

  sendMessage(message: unknown): void {
    this.sendFrame(OPCODE.text, Buffer.from(JSON.stringify(message)));
  }

  /** The frames of one read, cut out in a loop; a frame cut off at the end waits for the next read. */
  read(chunk: Buffer): void {
    const at = hrMs();
    const data = this.partial === undefined ? chunk : Buffer.concat([this.partial, chunk]);
    this.partial = undefined;
    let offset = 0;
    while (data.length - offset >= 2) {
      const first = data[offset]!;
      const second = data[offset + 1]!;
      let length = second & 0x7f;
      let start = offset + 2;
      if (length === 126) {
        if (data.length - offset < 4) break;
        length = data.readUInt16BE(offset + 2);
        start = offset + 4;
      } else if (length === 127) {
        if (data.length - offset < 10) break;
        length = Number(data.readBigUInt64BE(offset + 2));
        start = offset + 10;
      }
      if (data.length < start + length) break;
      offset = start + length;
      if (second & 0x80 || !(first & 0x80)) {
        this.protocolError('the server sent a masked or fragmented frame, which this client does not take');
        return;
      }
      this.frame(first & 0x0f, data.subarray(start, offset), at);
    }
    if (offset < data.length) this.partial = data.subarray(offset);
  }

  private frame(opcode: number, payload: Buffer, at: number): void {
    switch (opcode) {
      case OPCODE.text:
        this.message(payload, at);
        return;
      case OPCODE.ping:
        this.sendFrame(OPCODE.pong, payload);
        return;
      case OPCODE.pong:
        return;
      case OPCODE.close:
        // The server's answer to our close, or its own close: answered, then the TCP connection ends.
        if (!this.closing) {
          this.closing = true;
          this.sendFrame(OPCODE.close, payload.subarray(0, 2));
        }
        this.socket.end();
        return;
      default:
        this.protocolError(`the server sent a frame with opcode ${opcode}, which graphql-transport-ws does not use`);
    }
  }

  private message(bytes: Buffer, at: number): void {
    const payload = nextPayload(bytes);
    if (payload !== undefined) {
      const sink = this.sinks.get(payload.id);
      if (sink?.nextBytes?.(payload.bytes, at)) return;
    }
    const message = JSON.parse(bytes.toString()) as { type: string; id?: string; payload?: unknown };
    switch (message.type) {
      case 'next':
        this.sinks.get(message.id!)?.next(message.payload, at);
        return;
      case 'error': {
        const sink = this.sinks.get(message.id!);
        this.sinks.delete(message.id!);
        sink?.error(message.payload);
        return;
      }
      case 'complete': {
        const sink = this.sinks.get(message.id!);
        this.sinks.delete(message.id!);
        sink?.complete();
        return;
      }
      case 'ping':
        this.sendMessage({ type: 'pong' });
        return;
      case 'connection_ack':
        this.acknowledged();
        return;
      default:
        return; // pong
    }
  }

  /** A client's frames are masked (RFC 6455, 5.3): the key is random, the payload XORed with it. */
  private sendFrame(opcode: number, payload: Buffer): void {
    if (this.socket.destroyed) return;
    const length = payload.length;
    const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10;
    const frame = Buffer.allocUnsafe(headerLength + 4 + length);
    frame[0] = 0x80 | opcode;
    if (length < 126) frame[1] = 0x80 | length;
    else if (length < 65536) {
      frame[1] = 0x80 | 126;
      frame.writeUInt16BE(length, 2);
    } else {
      frame[1] = 0x80 | 127;
      frame.writeBigUInt64BE(BigInt(length), 2);
    }
    const mask = randomBytes(4);
    mask.copy(frame, headerLength);
    for (let i = 0; i < length; i++) frame[headerLength + 4 + i] = payload[i]! ^ mask[i & 3]!;
    this.socket.write(frame);
  }

  private protocolError(reason: string): void {
    this.fail(new Error(reason));
    this.socket.destroy();
  }

  private fail(error: Error): void {
    for (const sink of this.sinks.values()) sink.error(error);
    this.sinks.clear();
  }
}

const NEXT_START = Buffer.from('{"id":"');
const NEXT_TYPE = Buffer.from('","type":"next","payload":');

/**
 * A `next` message as the service writes it, `{"id":"<id>","type":"next","payload":<payload>}`:
 * its operation id and the payload's bytes, without parsing them. Undefined for any other
 * message (or spelling), which is then parsed as JSON.
 */
function nextPayload(bytes: Buffer): { id: string; bytes: Buffer } | undefined {
  if (bytes.length < NEXT_START.length + NEXT_TYPE.length + 2 || bytes.compare(NEXT_START, 0, NEXT_START.length, 0, NEXT_START.length) !== 0) return undefined;
  const idEnd = bytes.indexOf(0x22, NEXT_START.length); // the closing quote: ids here are plain numbers
  if (idEnd < 0 || bytes.compare(NEXT_TYPE, 0, NEXT_TYPE.length, idEnd, idEnd + NEXT_TYPE.length) !== 0) return undefined;
  if (bytes[bytes.length - 1] !== 0x7d) return undefined; // "}"
  return { id: bytes.toString('latin1', NEXT_START.length, idEnd), bytes: bytes.subarray(idEnd + NEXT_TYPE.length, bytes.length - 1) };
}
