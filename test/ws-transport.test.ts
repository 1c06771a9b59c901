/**
 * The graphql-ws transport on its own (src/ws-transport.ts, src/live-push.ts), with a real
 * WebSocket server and a raw WebSocket client: results pushed through from the source and
 * results that take next() arrive as one stream in order, each frame exact, across the
 * frame-length boundaries of RFC 6455 (125/126 bytes, 64 KiB), with results that carry
 * errors formatted by graphql-ws in between, and a client that stops reading gets its
 * frames once it reads again.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildSchema, GraphQLError, type ExecutionResult } from 'graphql';
import { pino } from 'pino';
import WebSocket, { WebSocketServer } from 'ws';
import { afterEach, expect, it } from 'vitest';
import { pushThrough, type Sink } from '../src/live-push.ts';
import { serveGraphqlWs } from '../src/ws-transport.ts';

const schema = buildSchema('type Query { ok: Boolean } type Subscription { items: String }');

/**
 * A source as the service's event streams are: results waiting in a queue go through
 * next(); while the consumer waits and nothing is queued, an emitted result is offered to
 * the sink first, and queued if it declines.
 */
class PushSource implements AsyncIterableIterator<ExecutionResult> {
  private queue: Array<ExecutionResult | null> = [];
  private waiting: ((step: IteratorResult<ExecutionResult>) => void) | undefined;
  private sink: Sink<ExecutionResult> | undefined;
  pushed = 0;
  declined = 0;

  emit(result: ExecutionResult | null): void {
    if (result !== null && this.waiting && this.queue.length === 0 && this.sink) {
      if (this.sink(result)) {
        this.pushed++;
        return;
      }
      this.declined++;
    }
    this.queue.push(result);
    this.deliver();
  }

  [pushThrough](sink: Sink<ExecutionResult>): void {
    this.sink = sink;
  }

  next(): Promise<IteratorResult<ExecutionResult>> {
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.deliver();
    });
  }

  async return(): Promise<IteratorResult<ExecutionResult>> {
    this.queue = [null];
    this.deliver();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  private deliver(): void {
    if (!this.waiting || this.queue.length === 0) return;
    const resolve = this.waiting;
    this.waiting = undefined;
    const item = this.queue.shift()!;
    resolve(item === null ? { value: undefined, done: true } : { value: item, done: false });
  }
}

let server: Server | undefined;
let disposeWs: (() => Promise<void>) | undefined;

afterEach(async () => {
  await disposeWs?.();
  await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

async function serve(source: PushSource): Promise<string> {
  server = createServer();
  const wss = new WebSocketServer({ server, path: '/graphql' });
  const transport = serveGraphqlWs({ schema, subscribe: async () => source }, wss, pino({ level: 'silent' }));
  disposeWs = () => transport.dispose();
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `ws://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
}

const text = (length: number, seed: number) => String.fromCharCode(97 + (seed % 26)).repeat(length);

/** A raw graphql-transport-ws connection with subscription id "1": frames as they arrive. */
async function rawSubscription(url: string): Promise<{ socket: WebSocket; frames: string[] }> {
  const socket = new WebSocket(url, 'graphql-transport-ws');
  const frames: string[] = [];
  socket.on('message', (data, isBinary) => frames.push(isBinary ? 'BINARY' : String(data)));
  await new Promise((resolve) => socket.once('open', resolve));
  socket.send(JSON.stringify({ type: 'connection_init' }));
  await expect.poll(() => frames.includes('{"type":"connection_ack"}')).toBe(true);
  frames.length = 0;
  socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: 'subscription { items }' } }));
  return { socket, frames };
}

it('sends pushed and awaited results as one stream, in order and byte-exact, across the frame-length boundaries, with errors formatted by graphql-ws', async () => {
  const source = new PushSource();
  const { socket, frames } = await rawSubscription(await serve(source));
  await expect.poll(() => source['waiting'] !== undefined).toBe(true);

  // Frame payload lengths (the message's bytes) around 125/126 and 65,535/65,536.
  const overhead = JSON.stringify({ id: '1', type: 'next', payload: { data: { items: '' } } }).length;
  const lengths = [overhead, overhead + 1, 124, 125, 126, 127, 1000, 65_534, 65_535, 65_536, 65_537, 300_000, 200, 125];
  const expected: string[] = [];
  for (const [index, length] of lengths.entries()) {
    const result = { data: { items: text(length - overhead, index) } };
    source.emit(result);
    expected.push(JSON.stringify({ id: '1', type: 'next', payload: result }));
    expect(Buffer.byteLength(expected.at(-1)!)).toBe(length);
    if (index % 4 === 3) {
      source.emit({ errors: [new GraphQLError(`problem ${index}`)], data: null });
      expected.push(JSON.stringify({ id: '1', type: 'next', payload: { errors: [{ message: `problem ${index}` }], data: null } }));
    }
    // Some at once, some after the client had the ones before: both ways of delivery take turns.
    if (index % 3 === 0) await expect.poll(() => frames.length, { timeout: 10_000 }).toBe(expected.length);
  }
  source.emit(null);
  expected.push(JSON.stringify({ id: '1', type: 'complete' }));
  await expect.poll(() => frames.length, { timeout: 10_000 }).toBe(expected.length);

  expect(frames.map((frame) => JSON.parse(frame))).toEqual(expected.map((frame) => JSON.parse(frame)));
  // Byte for byte what graphql-ws would send, errors aside (graphql-ws formats those itself).
  for (const [index, frame] of frames.entries()) if (!expected[index]!.includes('"errors"')) expect(frame).toBe(expected[index]);
  expect(source.pushed).toBeGreaterThan(0);
  socket.close();
});

it('a client that stops reading holds the stream back at the high-water mark, and gets every frame in order once it reads again', async () => {
  const source = new PushSource();
  const { socket, frames } = await rawSubscription(await serve(source));
  const items = () => frames.map((frame) => JSON.parse(frame) as { type: string; payload?: { data: { items: string } } }).filter((m) => m.type === 'next').map((m) => m.payload!.data.items);
  await expect.poll(() => source['waiting'] !== undefined).toBe(true);

  // Stop reading: the kernel's buffers fill, then the server's socket, then the sink declines.
  (socket as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
  const count = 2000;
  for (let i = 0; i < count; i++) source.emit({ data: { items: `${i} ${text(2000, i)}` } });
  await expect.poll(() => source.declined, { timeout: 10_000 }).toBeGreaterThan(0);
  (socket as unknown as { _socket: { resume(): void } })._socket.resume();

  await expect.poll(() => frames.length, { timeout: 30_000 }).toBe(count);
  expect(items()).toEqual(Array.from({ length: count }, (_, i) => `${i} ${text(2000, i)}`));
  socket.close();
});
