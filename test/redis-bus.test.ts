/**
 * The Redis carrier of the bus against a real Redis, through a TCP proxy where the
 * connection has to fail: channels per deployment, event rows surviving JSON, publishing
 * that neither throws nor waits without Redis, and a connection that died silently.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Bus } from '../src/pubsub.ts';
import { channelPrefix, connectRedisBus } from '../src/redis-bus.ts';
import { postgresUrl, TEST_PROVIDER, TEST_REDIS_URL } from './helpers/databases.ts';
import { eventually } from './helpers/seed.ts';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.ts';

const silent = pino({ level: 'silent' });
const event = (pipelineId: number, seq: number) => ({
  id: seq,
  seq,
  type: 'track:ready',
  pipelineId,
  trackId: 7,
  pipelineState: null,
  trackState: 1,
  attempt: 1,
  exitCode: null,
  reason: null,
  createdAt: new Date('2024-05-06T07:08:09.010Z'),
});

it('names channels after the database: the same one named alike shares them, any other database, server or schema does not', () => {
  const base = channelPrefix('postgresql://app:secret@db.example:5432/dagpipe');
  expect(channelPrefix('postgresql://other:pw@DB.example/dagpipe?connection_limit=5')).toBe(base);
  expect(channelPrefix('postgresql://app@db.example:5432/dagpipe?schema=public')).toBe(base);
  for (const other of [
    'postgresql://app@db.example:5432/dagpipe2',
    'postgresql://app@db2.example:5432/dagpipe',
    'postgresql://app@db.example:5433/dagpipe',
    'postgresql://app@db.example:5432/dagpipe?schema=staging',
  ]) {
    expect(channelPrefix(other)).not.toBe(base);
  }
  expect(channelPrefix('file:./a.db')).not.toBe(channelPrefix('file:./b.db'));
});

describe.runIf(TEST_PROVIDER === 'postgresql')('on Redis', () => {
  const open: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((o) => o.close()));
  });
  const bus = async (databaseName: string, options: { redisUrl?: string; pingMs?: number } = {}): Promise<Bus> => {
    const connected = await connectRedisBus({ redisUrl: TEST_REDIS_URL, databaseUrl: postgresUrl(databaseName), log: silent, ...options });
    open.push(connected);
    return connected;
  };
  const proxy = async (): Promise<TcpProxy> => {
    const started = await startTcpProxy(TEST_REDIS_URL);
    open.push(started);
    return started;
  };
  /** Until Redis confirmed the subscription: the feed then reports a possible miss. */
  const listening = async (feed: { take(waitMs?: number): Promise<{ dropped: number }> }) => {
    expect((await feed.take(5000)).dropped).toBe(1);
  };

  it('delivers to the processes of its deployment only, an event row as it was (its date a Date)', async () => {
    const name = `bus_${process.pid}_${Date.now()}`;
    const [publisher, sameDeployment, otherDeployment] = await Promise.all([bus(name), bus(name), bus(`${name}_other`)]);
    const same = sameDeployment.subscribe('pipeline:event', 41);
    const other = otherDeployment.subscribe('pipeline:event', 41);
    await Promise.all([listening(same.feed), listening(other.feed)]);
    publisher.publish('pipeline:event', 41, event(41, 1) as never);
    const { items } = await same.feed.take(5000);
    expect(items).toEqual([event(41, 1)]);
    expect((items[0] as ReturnType<typeof event>).createdAt).toBeInstanceOf(Date);
    expect(await other.feed.take(300)).toEqual({ items: [], dropped: 0, closed: false });
  });

  it('without Redis, publishing returns at once and counts each failure; no promise is left to reject', async () => {
    const redis = await proxy();
    const cutOff = await bus(`bus_cut_${process.pid}`, { redisUrl: redis.url });
    redis.cut();
    // The client does not know yet: these go to ioredis, and fail there.
    for (let i = 1; i <= 10; i++) cutOff.publish('pipeline:event', 1, event(1, i) as never);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = performance.now();
    for (let i = 11; i <= 10_010; i++) cutOff.publish('pipeline:event', 1, event(1, i) as never);
    const took = performance.now() - started;
    expect(took).toBeLessThan(1000);
    // An unhandled rejection would fail this file (vitest reports it).
    await eventually(async () => (cutOff.publishFailures === 10_010 ? true : undefined), 5000);
  });

  it('a subscription connection that died without closing is noticed by its ping, reconnected, and its feeds told they may have missed messages', async () => {
    const name = `bus_ping_${process.pid}`;
    const redis = await proxy();
    const [publisher, subscriber] = await Promise.all([bus(name), bus(name, { redisUrl: redis.url, pingMs: 200 })]);
    const live = subscriber.subscribe('pipeline:event', 5);
    await listening(live.feed);
    publisher.publish('pipeline:event', 5, event(5, 1) as never);
    expect((await live.feed.take(5000)).items).toHaveLength(1);

    redis.blackhole();
    publisher.publish('pipeline:event', 5, event(5, 2) as never);
    // Lost on the dead connection; the ping notices within two intervals and a new one resumes.
    const missed = await live.feed.take(5000);
    expect(missed).toEqual({ items: [], dropped: 1, closed: false });
    await eventually(async () => {
      publisher.publish('pipeline:event', 5, event(5, 3) as never);
      const { items } = await live.feed.take(100);
      return items.length > 0 ? true : undefined;
    });
  });
});
