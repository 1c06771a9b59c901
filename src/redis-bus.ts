/**
 * Live delivery between processes (SPEC rules 11-12): the bus's messages on Redis pub/sub,
 * through graphql-yoga's Redis event target, on two ioredis connections (one publishes, one
 * subscribes).
 *
 * Redis pub/sub delivers at most once: a message published while a subscriber's connection
 * is down, or that its publisher could not send, is gone. Nothing is retried here. Instead
 * every feed is told when it may have missed something, and its subscriber reads the
 * database (event table, stored output), which has everything that was published:
 * - a new channel's subscription is confirmed a round trip later (see Bus.subscribe);
 * - the subscribe connection came back after a loss;
 * - a publisher (any process) could not send for a while: once it can again, it says so on
 *   the resync channel, and every process tells all its feeds.
 *
 * Publishing never blocks or buffers: without a connection a message fails at once, and
 * the bytes waiting for Redis's answer are bounded. A worker that loses Redis goes on
 * running its tracks; failures are counted (dagpipe_bus_publish_failures_total) and
 * logged once per outage.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { Redis, type RedisOptions } from 'ioredis';
import { redactedUrl } from './database-url.ts';
import type { Logger } from './logger.ts';
import { Bus, type Carrier, type MessageTarget } from './pubsub.ts';

/** Characters of messages sent and not yet answered by Redis beyond which new ones fail. */
const MAX_IN_FLIGHT_BYTES = 8 * 1024 * 1024;
/** How long buildApp waits for Redis before starting without it (delivery resumes once it answers). */
const CONNECT_WAIT_MS = 3000;
/** Where a publisher that could not send says it can again (after the deployment prefix). */
const RESYNC_CHANNEL = 'bus:resync';

export interface RedisBusOptions {
  redisUrl: string;
  /** Names the deployment: see channelPrefix. */
  databaseUrl: string;
  log: Logger;
  /**
   * How often each connection is checked with a PING; one unanswered for as long is
   * dropped and reconnected (a connection that died without a close, e.g. behind a NAT,
   * would otherwise keep a subscriber waiting forever).
   */
  pingMs?: number;
}

/**
 * The prefix of a deployment's channels, from the database it uses: processes on one
 * database talk to each other, and two deployments (or two test databases) on one Redis
 * never see each other's messages. Every process of a deployment must name the database
 * the same way (host, port, database, schema) in DATABASE_URL.
 */
export function channelPrefix(databaseUrl: string): string {
  let identity: string;
  if (databaseUrl.startsWith('file:')) {
    identity = path.resolve(databaseUrl.slice('file:'.length).split('?')[0]!);
  } else {
    const url = new URL(databaseUrl);
    const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
    identity = `${url.hostname.toLowerCase()}:${url.port || '5432'}/${database}?schema=${url.searchParams.get('schema') ?? 'public'}`;
  }
  return `dagpipe:${createHash('sha256').update(identity).digest('hex').slice(0, 12)}:`;
}

/** Event rows carry a Date; JSON brings it back as a string. */
const serializer = {
  stringify: (message: unknown) => JSON.stringify(message),
  parse: (text: string): unknown => JSON.parse(text, (key, value) => (key === 'createdAt' && typeof value === 'string' ? new Date(value) : value)),
};

const noop = () => undefined;

/** A bus whose messages reach every process of the deployment; resolves once Redis answers, or after a short wait. */
export async function connectRedisBus(options: RedisBusOptions): Promise<Bus> {
  const { log } = options;
  const prefix = channelPrefix(options.databaseUrl);
  const common: RedisOptions = {
    // Retry quickly and forever: Redis is usually close, and delivery should resume soon.
    retryStrategy: (times) => Math.min(times * 50, 1000),
  };
  // No offline queue: a message that cannot go now is dropped, not kept in memory; at a
  // loss, those waiting for an answer fail at once (maxRetriesPerRequest 0).
  const publisher = new Redis(options.redisUrl, { ...common, connectionName: 'dagpipe-publish', enableOfflineQueue: false, maxRetriesPerRequest: 0 });
  // Subscriptions made while Redis is away wait for it (and resume with it).
  const subscriber = new Redis(options.redisUrl, { ...common, connectionName: 'dagpipe-subscribe', maxRetriesPerRequest: null });

  let closing = false;
  const resumedListeners: Array<() => void> = [];
  const resumed = () => {
    for (const listener of resumedListeners) listener();
  };

  // --- Publishing ---
  let failures = 0;
  let inFlightBytes = 0;
  /** Some message could not be sent since the last resync. */
  let failing = false;
  let resyncing = false;
  const failed = (error: unknown) => {
    failures++;
    if (failing || closing) return;
    failing = true;
    log.warn(
      { err: error, redis: redactedUrl(options.redisUrl) },
      'live updates cannot be published to Redis: subscribers on other processes will catch up from the database once it is back',
    );
  };
  /** Tells every process that messages were lost; ends the outage once that got through. */
  const resync = () => {
    if (!failing || resyncing || publisher.status !== 'ready') return;
    resyncing = true;
    publisher.publish(prefix + RESYNC_CHANNEL, '').then(
      () => {
        resyncing = false;
        failing = false;
        log.info({ failed: failures }, 'live updates are published to Redis again; subscribers elsewhere were told to catch up');
      },
      () => {
        resyncing = false;
      },
    );
  };
  const publish = (channel: string, message: string) => {
    const bytes = message.length; // characters: close enough to bound memory
    if (publisher.status !== 'ready') return failed(new Error(`the connection to Redis is ${publisher.status}`));
    if (inFlightBytes + bytes > MAX_IN_FLIGHT_BYTES) return failed(new Error(`Redis has not answered ${inFlightBytes} bytes of messages yet`));
    inFlightBytes += bytes;
    publisher.publish(channel, message).then(
      () => {
        inFlightBytes -= bytes;
        resync();
      },
      (error: unknown) => {
        inFlightBytes -= bytes;
        failed(error);
      },
    );
  };
  publisher.on('ready', resync);
  publisher.on('error', noop); // reported as failed publishes, once per outage

  // --- Subscribing ---
  /** Channels listened to, and the subscriptions Redis has not confirmed yet. */
  const channels = new Set<string>();
  const unconfirmed = new Map<string, Promise<void>>();
  let subscribed = false;
  let lost = false;
  subscriber.on('ready', () => {
    subscribed = true;
    if (!lost) return;
    lost = false;
    log.info('the Redis subscription connection is back: subscribers catch up from the database');
    // Redis answers in order: once this is confirmed, every channel is listened to again
    // (ioredis resubscribed them before it said ready), and the database has everything
    // published before.
    subscriber.subscribe(...channels).then(resumed, noop);
  });
  subscriber.on('close', () => {
    if (!subscribed || closing) return;
    subscribed = false;
    lost = true;
    log.warn({ redis: redactedUrl(options.redisUrl) }, 'lost the Redis subscription connection: live updates from other processes wait until it is back');
  });
  subscriber.on('error', noop); // reported on close, once per outage

  // The event target fires and forgets these clients' promises; a rejection nobody handles
  // would end the process. It only calls publish on one, and on, subscribe and unsubscribe
  // on the other.
  const publishClient = { publish } as unknown as Redis;
  const subscribeClient = {
    on: (event: string, handler: (...args: any[]) => void) => subscriber.on(event, handler),
    subscribe: (channel: string) => {
      channels.add(channel);
      const confirmed: Promise<void> = subscriber.subscribe(channel).then(noop, noop).then(() => {
        if (unconfirmed.get(channel) === confirmed) unconfirmed.delete(channel);
      });
      unconfirmed.set(channel, confirmed);
    },
    unsubscribe: (channel: string) => {
      channels.delete(channel);
      unconfirmed.delete(channel);
      subscriber.unsubscribe(channel).catch(noop);
    },
  } as unknown as Redis;
  const target = createRedisEventTarget<CustomEvent>({ publishClient, subscribeClient, serializer }) as unknown as MessageTarget;
  target.addEventListener(prefix + RESYNC_CHANNEL, resumed);

  // --- Liveness ---
  const pingMs = options.pingMs ?? 10_000;
  const pinging = new Set<Redis>();
  const watchdog = setInterval(() => {
    for (const client of [publisher, subscriber]) {
      if (client.status !== 'ready' || pinging.has(client)) continue;
      pinging.add(client);
      const timer = setTimeout(() => closing || client.disconnect(true), pingMs).unref();
      client
        .ping()
        .then(noop, noop)
        .finally(() => {
          clearTimeout(timer);
          pinging.delete(client);
        });
    }
  }, pingMs);
  watchdog.unref();

  const connected = Promise.all([publisher, subscriber].map((client) => new Promise((resolve) => client.once('ready', resolve))));
  const waited = await Promise.race([connected.then(() => true), new Promise<false>((resolve) => setTimeout(resolve, CONNECT_WAIT_MS, false).unref())]);
  if (!waited) {
    log.warn({ redis: redactedUrl(options.redisUrl) }, 'Redis does not answer: starting without it; live updates between processes begin once it does');
  }

  const carrier: Carrier = {
    target,
    prefix,
    listening: (channel) => unconfirmed.get(channel),
    onResumed: (listener) => void resumedListeners.push(listener),
    get publishFailures() {
      return failures;
    },
    async close() {
      closing = true;
      clearInterval(watchdog);
      await Promise.all(
        [publisher, subscriber].map(async (client) => {
          // QUIT lets the messages sent last reach Redis; a connection that is down just ends.
          if (client.status === 'ready') await Promise.race([client.quit().catch(noop), new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
          client.disconnect();
        }),
      );
    },
  };
  return new Bus(carrier);
}
