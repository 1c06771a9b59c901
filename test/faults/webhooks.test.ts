/**
 * SPEC rule 20 across processes on PostgreSQL: an API process (in this test) and three
 * worker processes deliver from one outbox. Every delivery reaches the receiver, none is
 * attempted by two workers at once (FOR NO KEY UPDATE SKIP LOCKED and the lease), and when
 * the worker holding a delivery is SIGKILLed mid-request (the receiver holds it open), another
 * worker delivers it once the lease has run out: nothing is lost.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from '../../src/generated/gql/index.ts';
import { TEST_PROVIDER, TEST_REDIS_URL } from '../helpers/databases.ts';
import { StartPipeline } from '../helpers/operations.ts';
import { eventually, seedGraph } from '../helpers/seed.ts';
import { killServerProcesses, startWorkerProcess, type ServerProcess } from '../helpers/server-process.ts';
import { startTestApp, type TestApp } from '../helpers/test-app.ts';
import { startWebhookReceiver, type ReceivedRequest, type WebhookReceiver } from '../helpers/webhook-receiver.ts';

const CreateClusterWebhook = graphql(`
  mutation CreateClusterWebhook($url: String!, $events: [String!]!) {
    createWebhook(url: $url, events: $events) {
      __typename
      ... on Webhook { id }
      ... on Error { message field }
    }
  }
`);

/** Each attempt may take this long; a claim's lease is twice it. */
const TIMEOUT_MS = 5000;
const PIPELINES = 24;

const dir = mkdtempSync(path.join(tmpdir(), 'dagpipe-webhook-workers-'));
afterAll(() => {
  killServerProcesses();
  rmSync(dir, { recursive: true, force: true });
});

describe.runIf(TEST_PROVIDER === 'postgresql')('webhook deliveries from several worker processes', () => {
  let api: TestApp;
  let receiver: WebhookReceiver;
  const workers: ServerProcess[] = [];
  beforeAll(async () => {
    api = await startTestApp({ env: { ROLE: 'api', WEBHOOK_ALLOWED_HOSTS: '127.0.0.1' } });
    receiver = await startWebhookReceiver();
    for (let i = 1; i <= 3; i++) {
      workers.push(
        await startWorkerProcess(api.databaseUrl, path.join(dir, `work-${i}`), {
          WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
          WEBHOOK_TIMEOUT_MS: String(TIMEOUT_MS),
          WEBHOOK_RETRY_BASE_MS: '50',
          POLL_INTERVAL_MS: '200',
          // The killed worker's running tracks are settled soon (their pipelines fail).
          HEARTBEAT_INTERVAL_MS: '200',
          // Each delivery is logged at info: the test tells who delivered what.
          LOG_LEVEL: 'info',
        }),
      );
    }
  });
  afterAll(async () => {
    for (const worker of workers) await worker.stop();
    await receiver?.close();
    await api?.stop();
  });

  it('delivers every event once, never twice at once, and a delivery whose worker was SIGKILLed mid-request after its lease', { timeout: 90_000 }, async () => {
    // Each pipeline ends once: FINISH, or FAILED when its track ran on the worker that is killed.
    const { createWebhook } = await api.request(CreateClusterWebhook, { url: receiver.url, events: ['pipeline:finished', 'pipeline:failed'] });
    if (createWebhook.__typename !== 'Webhook') throw new Error(JSON.stringify(createWebhook));
    // The first delivery to arrive is held open, never answered; the others get 200.
    let holding: ((request: ReceivedRequest) => void) | undefined;
    const firstHeld = new Promise<ReceivedRequest>((resolve) => (holding = resolve));
    receiver.respond = (request) => {
      if (holding === undefined) return { status: 200, body: 'ok' };
      holding(request);
      holding = undefined;
      return 'hold';
    };
    const { graphId } = await seedGraph(api, { vertices: { only: { script: 'true' } } });
    // Started while the test watches: the held request is acted on at once, well within its worker's timeout.
    const starts = (async () => {
      for (let i = 0; i < PIPELINES; i++) {
        const { startPipeline } = await api.request(StartPipeline, { graphId });
        expect(startPipeline.__typename).toBe('Pipeline');
      }
    })();
    // Awaited below; a failure before that must not outlive the test unhandled.
    starts.catch(() => undefined);

    const held = await firstHeld;
    const claim = await api.app.store.db.webhookDelivery.findUniqueOrThrow({ where: { deliveryId: held.deliveryId } });
    const holderPid = Number(claim.lockedBy!.split('/')[1]);
    const victim = workers.find((w) => w.pid === holderPid)!;
    expect(victim, `the claim ${claim.lockedBy} names one of the workers`).toBeDefined();
    expect(held.closedAt, 'the victim gave up on the request by itself before it was killed').toBeUndefined();
    await victim.stop('SIGKILL');
    // Its connection went with it.
    await eventually(async () => (held.closedAt !== undefined ? true : undefined), 10_000, 'the held connection to close');
    await starts;

    const all = await eventually(async () => {
      const rows = await api.app.store.db.webhookDelivery.findMany({ where: { webhookId: createWebhook.id }, orderBy: { id: 'asc' } });
      return rows.length === PIPELINES && rows.every((d) => d.state === 3) ? rows : undefined;
    }, 45_000, 'every delivery to be delivered');

    // The killed worker's delivery: attempted again by another worker, only after its lease.
    const retried = all.find((d) => d.deliveryId === held.deliveryId)!;
    expect(retried.attempts).toBe(2);
    const again = receiver.requests.filter((r) => r.deliveryId === held.deliveryId);
    expect(again).toHaveLength(2);
    expect(again[1]!.at).toBeGreaterThanOrEqual(held.closedAt!);
    expect(again[1]!.at - held.at).toBeGreaterThanOrEqual(2 * TIMEOUT_MS - 500);

    // Every other delivery reached the receiver exactly once; none was ever attempted twice at once.
    expect(receiver.overlaps).toEqual([]);
    const received = new Map<string, number>();
    for (const r of receiver.requests) received.set(r.deliveryId, (received.get(r.deliveryId) ?? 0) + 1);
    expect(received.size).toBe(PIPELINES);
    for (const d of all) if (d.deliveryId !== held.deliveryId) expect(received.get(d.deliveryId), d.deliveryId).toBe(1);
    const ends = new Map(receiver.requests.map((r) => [(r.body as { pipeline: { id: number } }).pipeline.id, r.body as { event: string; pipeline: { state: string } }]));
    expect(ends.size).toBe(PIPELINES);
    for (const [id, body] of ends) {
      const { state } = await api.app.store.db.pipeline.findUniqueOrThrow({ where: { id } });
      expect(body.event).toBe(state === 5 ? 'pipeline:finished' : 'pipeline:failed');
    }
    // The workers that lived logged no error of their own.
    const survivors = workers.filter((w) => w !== victim);
    expect(survivors.every((w) => !/"level":50/.test(w.output()))).toBe(true);
    const deliveredBy = workers.map((w) => (w.output().match(/"msg":"webhook delivered"/g) ?? []).length);
    console.log(`deliveries recorded per worker: ${deliveredBy.join(', ')} (worker ${workers.indexOf(victim) + 1} was SIGKILLed holding one)`);
    expect(deliveredBy.reduce((a, b) => a + b, 0)).toBe(PIPELINES);
  });
});
