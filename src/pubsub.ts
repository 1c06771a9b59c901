/**
 * The in-process event bus. Topics are "domain:action" and keyed by the id subscribers
 * filter on. Only src/store/transaction.ts publishes transitions, after commit.
 *
 * Subscribers get a bounded {@link Feed}, never an unbounded queue: a slow or stalled
 * client must not grow the server's memory, and publishing must never throw (a throwing
 * listener inside a commit path would take the service down).
 */
import { EventEmitter } from 'node:events';
import type { OutputChunkData } from './engine/output-window.ts';
import type { Event } from './generated/prisma/client.ts';

/**
 * Lines a track attempt printed, as a piece of whole lines (one bus message for many
 * lines): its byte offset in that attempt's output, the text and a stream per line.
 */
export interface OutputChunk extends OutputChunkData {
  trackId: number;
  attempt: number;
}

export type Topics = {
  /** A committed event of a pipeline (track or pipeline transition). */
  'pipeline:event': [pipelineId: number, event: Event];
  /** Lines a running track printed, live (stored within a moment, see OutputRecorder). */
  'track:output': [trackId: number, chunk: OutputChunk];
};

type Topic = keyof Topics;
type Key<T extends Topic> = Topics[T][0];
type Payload<T extends Topic> = Topics[T][1];

/**
 * What a subscriber reads: items in publish order, at most `capacity` waiting, counted by
 * `weigh` (one per item by default; output counts its bytes, since a piece may hold one
 * line or thousands). When a subscriber falls behind, the newest items are dropped and
 * counted, and the reader is told how many it missed (it can then re-read the persisted
 * history). An item heavier than the whole capacity still gets into an empty feed.
 */
export class Feed<P> {
  private items: P[] = [];
  private weight = 0;
  private dropped = 0;
  private wake: (() => void) | undefined;
  private closed = false;

  constructor(
    private readonly capacity: number,
    private readonly weigh: (item: P) => number = () => 1,
  ) {}

  push(item: P): void {
    const weight = this.weigh(item);
    // Once one is dropped, later ones are too: what a reader gets runs without a hole.
    if (this.dropped > 0 || (this.items.length > 0 && this.weight + weight > this.capacity)) {
      this.dropped++;
    } else {
      this.items.push(item);
      this.weight += weight;
    }
    this.wake?.();
  }

  close(): void {
    this.closed = true;
    this.wake?.();
  }

  /** Waits for items (or a close); returns them with the count dropped since last time. */
  async take(): Promise<{ items: P[]; dropped: number; closed: boolean }> {
    while (this.items.length === 0 && this.dropped === 0 && !this.closed) {
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
    const taken = { items: this.items, dropped: this.dropped, closed: this.closed };
    this.items = [];
    this.weight = 0;
    this.dropped = 0;
    return taken;
  }
}

export class Bus {
  private readonly emitter = new EventEmitter().setMaxListeners(0);
  private open = 0;

  /** Subscriptions listening now. */
  get subscriptions(): number {
    return this.open;
  }

  publish<T extends Topic>(topic: T, key: Key<T>, payload: Payload<T>): void {
    this.emitter.emit(`${topic}:${key}`, payload);
  }

  /**
   * Starts listening now; call `stop` when the subscriber goes away. See Feed for `capacity`
   * and `weigh`. `counted: false` for a further topic of one subscription (trackOutput also
   * follows its pipeline's events), so that `subscriptions` counts subscribers.
   */
  subscribe<T extends Topic>(
    topic: T,
    key: Key<T>,
    capacity = 1000,
    { weigh, counted = true }: { weigh?: (payload: Payload<T>) => number; counted?: boolean } = {},
  ): { feed: Feed<Payload<T>>; stop(): void } {
    const feed = new Feed<Payload<T>>(capacity, weigh);
    const name = `${topic}:${key}`;
    const listener = (payload: Payload<T>) => feed.push(payload);
    this.emitter.on(name, listener);
    const count = counted ? 1 : 0;
    this.open += count;
    let stopped = false;
    return {
      feed,
      stop: () => {
        if (stopped) return;
        stopped = true;
        this.open -= count;
        this.emitter.off(name, listener);
        feed.close();
      },
    };
  }
}

export type PubSub = Bus;

export function createBus(): Bus {
  return new Bus();
}
