/**
 * The event bus. Topics are "domain:action" and keyed by the id subscribers filter on.
 * Only src/store/transaction.ts publishes transitions, after commit.
 *
 * Messages travel on an EventTarget: this process's memory, or Redis to every process of
 * the deployment (src/redis-bus.ts). Redis may lose messages, so subscribers treat the bus
 * as a hint of what is new and read the database whenever their feed says they may have
 * missed something (SPEC rule 12).
 *
 * Subscribers get a bounded {@link Feed}, never an unbounded queue: a slow or stalled
 * client must not grow the server's memory, and publishing must never throw (a throwing
 * listener inside a commit path would take the service down).
 */
import { setMaxListeners } from 'node:events';
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

/**
 * Published once a pipeline was deleted (SPEC rule 17: deletePipeline, retention), on its
 * events' channel: its live streams end. Redis may drop it like any message; a subscriber
 * that catches up and finds neither events nor the pipeline knows it too.
 */
export interface PipelineDeleted {
  pipelineId: number;
  deleted: true;
}

/** What a pipeline's channel carries: its committed events, and at the very end its deletion. */
export type PipelineMessage = Event | PipelineDeleted;

export function isPipelineDeleted(message: PipelineMessage): message is PipelineDeleted {
  return (message as Partial<PipelineDeleted>).deleted === true;
}

export type Topics = {
  /** A committed event of a pipeline (track or pipeline transition), or its deletion. */
  'pipeline:event': [pipelineId: number, message: PipelineMessage];
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
 * history); {@link missed} says the same when the carrier lost an unknown number. An item
 * heavier than the whole capacity still gets into an empty feed.
 */
export class Feed<P> {
  private items: P[] = [];
  private weight = 0;
  private dropped = 0;
  private wake: (() => void) | undefined;
  private direct: ((item: P) => boolean) | undefined;
  private closed = false;

  constructor(
    private readonly capacity: number,
    private readonly weigh: (item: P) => number = () => 1,
  ) {}

  push(item: P): void {
    // Straight to the reader waiting in take(direct), when nothing is ahead of this item.
    if (this.direct !== undefined && this.items.length === 0 && this.dropped === 0 && !this.closed && this.direct(item)) return;
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

  /** Items after those waiting may have been lost on the way: the reader is told as for drops. */
  missed(): void {
    if (this.closed) return;
    this.dropped++;
    this.wake?.();
  }

  close(): void {
    this.closed = true;
    this.wake?.();
  }

  /**
   * Waits for items (or a close); returns them with the count dropped since last time.
   * With `waitMs`, returns after that long at the latest, possibly with nothing. While it
   * waits, each item pushed is first offered to `direct`, which handles it there and then
   * (true: it is not queued) or declines it (false: it is queued and take returns); see
   * src/live-push.ts.
   */
  async take(waitMs?: number, direct?: (item: P) => boolean): Promise<{ items: P[]; dropped: number; closed: boolean }> {
    if (this.items.length === 0 && this.dropped === 0 && !this.closed && waitMs !== 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        // Once woken, nothing more goes direct: what follows queues behind what woke it.
        const wake = () => {
          this.direct = undefined;
          resolve();
        };
        this.wake = wake;
        this.direct = direct;
        if (waitMs !== undefined) timer = setTimeout(wake, waitMs);
      });
      clearTimeout(timer);
      this.wake = undefined;
    }
    const taken = { items: this.items, dropped: this.dropped, closed: this.closed };
    this.items = [];
    this.weight = 0;
    this.dropped = 0;
    return taken;
  }
}

/** The part of an EventTarget the bus uses; a message is a CustomEvent named by its channel. */
export interface MessageTarget {
  addEventListener(channel: string, listener: (message: CustomEvent) => void): void;
  removeEventListener(channel: string, listener: (message: CustomEvent) => void): void;
  dispatchEvent(message: CustomEvent): boolean;
}

/** What carries the bus's messages: memory ({@link memoryCarrier}) or Redis (src/redis-bus.ts). */
export interface Carrier {
  readonly target: MessageTarget;
  /** Put before every channel name: deployments sharing a Redis never meet. */
  readonly prefix: string;
  /**
   * Undefined when messages on `channel` reach its listeners already; otherwise resolves
   * once they do (Redis confirmed the subscription).
   */
  listening(channel: string): Promise<void> | undefined;
  /** Calls `resumed` whenever delivery works again after messages may have been lost. */
  onResumed(resumed: () => void): void;
  /** Messages that could not be sent. */
  readonly publishFailures: number;
  close(): Promise<void>;
}

/** One process: messages go from publisher to subscribers in memory, none is lost. */
export function memoryCarrier(): Carrier {
  const target = new EventTarget();
  // Any number of subscribers may follow one pipeline.
  setMaxListeners(0, target);
  return {
    target: target as unknown as MessageTarget,
    prefix: '',
    listening: () => undefined,
    onResumed: () => undefined,
    publishFailures: 0,
    close: async () => undefined,
  };
}

export class Bus {
  private open = 0;
  private readonly feeds = new Set<Feed<unknown>>();
  private failures = 0;

  constructor(private readonly carrier: Carrier = memoryCarrier()) {
    carrier.onResumed(() => {
      for (const feed of this.feeds) feed.missed();
    });
  }

  /** Subscriptions listening now (on Redis: once it confirmed their channel). */
  get subscriptions(): number {
    return this.open;
  }

  /** Messages that could not be sent (the carrier's failures, and ones it refused outright). */
  get publishFailures(): number {
    return this.failures + this.carrier.publishFailures;
  }

  /** Never throws: the caller has committed already, and subscribers fill gaps from the database. */
  publish<T extends Topic>(topic: T, key: Key<T>, payload: Payload<T>): void {
    try {
      this.carrier.target.dispatchEvent(new CustomEvent(this.channel(topic, key), { detail: payload }));
    } catch {
      this.failures++;
    }
  }

  /**
   * Starts listening now; call `stop` when the subscriber goes away. See Feed for `capacity`
   * and `weigh`. `counted: false` for a further topic of one subscription (trackOutput also
   * follows its pipeline's events), so that `subscriptions` counts subscribers.
   *
   * Where listening takes a moment to begin (Redis confirms a new channel a round trip
   * later), the feed reports a miss once it has: the subscriber read the database before
   * that, or will, and reads again for what was published in between.
   */
  subscribe<T extends Topic>(
    topic: T,
    key: Key<T>,
    capacity = 1000,
    { weigh, counted = true }: { weigh?: (payload: Payload<T>) => number; counted?: boolean } = {},
  ): { feed: Feed<Payload<T>>; stop(): void } {
    const feed = new Feed<Payload<T>>(capacity, weigh);
    const channel = this.channel(topic, key);
    const listener = (message: CustomEvent) => feed.push(message.detail as Payload<T>);
    this.carrier.target.addEventListener(channel, listener);
    this.feeds.add(feed as Feed<unknown>);
    let stopped = false;
    // Counted once listening: what is published from then on reaches the feed.
    let count = 0;
    const listened = () => {
      if (stopped) return;
      count = counted ? 1 : 0;
      this.open += count;
    };
    const listening = this.carrier.listening(channel);
    if (listening === undefined) listened();
    else {
      void listening.then(() => {
        listened();
        feed.missed();
      });
    }
    return {
      feed,
      stop: () => {
        if (stopped) return;
        stopped = true;
        this.open -= count;
        this.carrier.target.removeEventListener(channel, listener);
        this.feeds.delete(feed as Feed<unknown>);
        feed.close();
      },
    };
  }

  /** Stops carrying messages (closes the Redis connections). */
  close(): Promise<void> {
    return this.carrier.close();
  }

  private channel(topic: Topic, key: number): string {
    return `${this.carrier.prefix}${topic}:${key}`;
  }
}

export type PubSub = Bus;

/** A bus in this process's memory. */
export function createBus(): Bus {
  return new Bus();
}
