/**
 * The fan-out bench's subscribers, spread over worker threads: 1,000 WebSocket clients on
 * one event loop kept it busy for most of the run, and the time each message waited there
 * counted as the service's latency. With one thread per core, each thread holds a share of
 * the clients (connection i on thread i mod threads).
 *
 * This file is both sides: the SubscriberPool class runs in the bench's main thread; the
 * same module, started as a worker (workerData.subscriberThread), runs the clients.
 */
import { availableParallelism } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { connectLean, type LeanClient } from './lean-client.ts';

/** What one subscriber received: event ids in arrival order, and when (process.hrtime, ms). */
export interface Received {
  ids: number[];
  at: number[];
  errors: string[];
  ended: boolean;
}

type Request =
  | { op: 'connect'; url: string; count: number; batch: number }
  | { op: 'subscribe'; query: string; variables: Record<string, unknown>; field: string }
  | { op: 'behind'; lastId: number }
  | { op: 'loopDelay'; reset: boolean }
  | { op: 'collect' }
  | { op: 'disconnect' };

export class SubscriberPool {
  private nextRequest = 0;

  private constructor(private readonly threads: Worker[]) {}

  static async start(threads = Math.max(1, Math.min(4, availableParallelism()))): Promise<SubscriberPool> {
    // A worker thread does not inherit tsx's loader: it registers it, then loads this file.
    const bootstrap = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(import.meta.url)}); })`;
    const workers = Array.from({ length: threads }, () => new Worker(bootstrap, { eval: true, workerData: { subscriberThread: true } }));
    await Promise.all(workers.map((worker) => new Promise<void>((resolve, reject) => worker.once('online', resolve).once('error', reject))));
    return new SubscriberPool(workers);
  }

  get threadCount(): number {
    return this.threads.length;
  }

  /** Opens `count` connections in all, `batch` at a time per thread. */
  async connect(url: string, count: number, batch: number): Promise<void> {
    const share = (index: number) => Math.floor(count / this.threads.length) + (index < count % this.threads.length ? 1 : 0);
    await this.all((index) => ({ op: 'connect', url, count: share(index), batch }));
  }

  /**
   * Subscribes every connection; resolves when each has received its first message (or an
   * error). `field`: the subscription field, whose `id` each message is recorded by.
   */
  async subscribe(query: string, variables: Record<string, unknown>, field: string): Promise<void> {
    await this.all(() => ({ op: 'subscribe', query, variables, field }));
  }

  /** Subscribers still open whose last id is not `lastId`. */
  async behind(lastId: number): Promise<number> {
    const counts = await this.all<number>(() => ({ op: 'behind', lastId }));
    return counts.reduce((sum, count) => sum + count, 0);
  }

  /** The worst of the threads' event-loop delays (p50, p99, max in ms) since the last reset; `reset` starts anew. */
  async loopDelay(reset = false): Promise<{ p50: number; p99: number; max: number }> {
    const delays = await this.all<{ p50: number; p99: number; max: number }>(() => ({ op: 'loopDelay', reset }));
    return { p50: Math.max(...delays.map((d) => d.p50)), p99: Math.max(...delays.map((d) => d.p99)), max: Math.max(...delays.map((d) => d.max)) };
  }

  /** What every subscriber received, thread by thread. */
  async collect(): Promise<Received[]> {
    return (await this.all<Received[]>(() => ({ op: 'collect' }))).flat();
  }

  async disconnect(): Promise<void> {
    await this.all(() => ({ op: 'disconnect' }));
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.map((thread) => thread.terminate()));
  }

  private all<T = void>(request: (index: number) => Request): Promise<T[]> {
    return Promise.all(
      this.threads.map(
        (thread, index) =>
          new Promise<T>((resolve, reject) => {
            const id = ++this.nextRequest;
            const onMessage = (message: { reply: number; body?: T; error?: string }) => {
              if (message.reply !== id) return;
              thread.off('message', onMessage);
              thread.off('error', onError);
              if (message.error !== undefined) reject(new Error(message.error));
              else resolve(message.body as T);
            };
            const onError = (error: Error) => {
              thread.off('message', onMessage);
              reject(error);
            };
            thread.on('message', onMessage);
            thread.once('error', onError);
            thread.postMessage({ id, ...request(index) });
          }),
      ),
    );
  }
}

// ---- The worker side.

interface Subscriber extends Received {
  first: Promise<void>;
  unsubscribe: () => void;
}

function runThread(): void {
  const port = parentPort!;
  const clients: LeanClient[] = [];
  let subscribers: Subscriber[] = [];
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();

  const subscribe = (client: LeanClient, query: string, variables: Record<string, unknown>, field: string): Subscriber => {
    let firstArrived!: () => void;
    const subscriber: Subscriber = {
      ids: [],
      at: [],
      errors: [],
      ended: false,
      first: new Promise<void>((resolve) => (firstArrived = resolve)),
      unsubscribe: () => undefined,
    };
    // The payload as the service writes it, {"data":{"<field>":{"id":<digits>,...}}}: the id
    // read from the bytes. Anything else (errors, another shape) is parsed and checked below.
    const start = Buffer.from(`{"data":{${JSON.stringify(field)}:{"id":`);
    const record = (id: number, at: number) => {
      subscriber.ids.push(id);
      subscriber.at.push(at);
      firstArrived();
    };
    subscriber.unsubscribe = client.subscribe<{ data?: Record<string, { id?: number } | undefined>; errors?: unknown[] }>(
      { query, variables },
      {
        nextBytes: (payload, at) => {
          if (payload.length <= start.length || payload.compare(start, 0, start.length, 0, start.length) !== 0) return false;
          let id = 0;
          let index = start.length;
          for (; index < payload.length; index++) {
            const digit = payload[index]! - 0x30;
            if (digit < 0 || digit > 9) break;
            id = id * 10 + digit;
          }
          const after = payload[index];
          if (index === start.length || (after !== 0x2c && after !== 0x7d)) return false; // "," or "}"
          record(id, at);
          return true;
        },
        next: (value, at) => {
          const id = value.data?.[field]?.id;
          if (value.errors?.length || id === undefined) {
            subscriber.errors.push(JSON.stringify(value.errors ?? value));
            firstArrived();
          } else record(id, at);
        },
        error: (error) => {
          subscriber.errors.push(error instanceof Error ? error.message : JSON.stringify(error));
          subscriber.ended = true;
          firstArrived();
        },
        complete: () => {
          subscriber.ended = true;
        },
      },
    );
    return subscriber;
  };

  const handle = async (request: Request): Promise<unknown> => {
    switch (request.op) {
      case 'connect':
        while (clients.length < request.count) {
          const batch = Math.min(request.batch, request.count - clients.length);
          clients.push(...(await Promise.all(Array.from({ length: batch }, () => connectLean(request.url)))));
        }
        return undefined;
      case 'subscribe':
        subscribers = clients.map((client) => subscribe(client, request.query, request.variables, request.field));
        await Promise.all(subscribers.map((s) => s.first));
        return undefined;
      case 'behind':
        return subscribers.filter((s) => !s.ended && s.ids.at(-1) !== request.lastId).length;
      case 'loopDelay': {
        const delay = { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 };
        if (request.reset) loopDelay.reset();
        return delay;
      }
      case 'collect':
        return subscribers.map(({ ids, at, errors, ended }) => ({ ids, at, errors, ended }));
      case 'disconnect':
        for (const s of subscribers) s.unsubscribe();
        subscribers = [];
        await Promise.all(clients.splice(0).map((c) => c.dispose()));
        return undefined;
    }
  };

  port.on('message', (message: Request & { id: number }) => {
    handle(message).then(
      (body) => port.postMessage({ reply: message.id, body }),
      (error: unknown) => port.postMessage({ reply: message.id, error: error instanceof Error ? error.message : String(error) }),
    );
  });
}

if (!isMainThread && (workerData as { subscriberThread?: boolean } | null)?.subscriberThread) runThread();
