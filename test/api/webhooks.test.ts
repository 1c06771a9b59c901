/**
 * SPEC rule 20 through the real API, with real receivers (node:http on loopback, listed in
 * WEBHOOK_ALLOWED_HOSTS): signed deliveries checked over the raw body, retries with backoff
 * until a receiver answers 2xx, giving up after the retry window, redirects not followed,
 * track:needs-input once per attempt on every path that makes a track ready without its
 * inputs (the README tour's human step), the delivery log, validation, the SSRF guard at
 * registration and at delivery, the audit trail and the metrics.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadWebServerCheck } from '../../examples/web-server-check.ts';
import { createToken } from '../../src/auth/tokens.ts';
import { verifySignature } from '../../src/engine/webhook-attempts.ts';
import { graphql } from '../../src/generated/gql/index.ts';
import { CancelPipeline, FinishInput, RetryPipeline, StartPipeline } from '../helpers/operations.ts';
import { eventually, seedGraph, seedScenario } from '../helpers/seed.ts';
import { httpClient, startTestApp, type GraphQLClient, type TestApp } from '../helpers/test-app.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.ts';

const CreateWebhook = graphql(`
  mutation CreateWebhook($url: String!, $events: [String!]!, $secret: String, $description: String, $enabled: Boolean) {
    createWebhook(url: $url, events: $events, secret: $secret, description: $description, enabled: $enabled) {
      __typename
      ... on Webhook { id url events hasSecret description enabled createdAt }
      ... on Error { message field }
    }
  }
`);

const UpdateWebhook = graphql(`
  mutation UpdateWebhook($id: Int!, $input: WebhookInput!) {
    updateWebhook(id: $id, input: $input) {
      __typename
      ... on Webhook { id url events hasSecret description enabled }
      ... on Error { message field }
    }
  }
`);

const DeleteWebhook = graphql(`
  mutation DeleteWebhook($id: Int!) {
    deleteWebhook(id: $id) {
      __typename
      ... on Deleted { id name }
      ... on Error { message field }
    }
  }
`);

const Redeliver = graphql(`
  mutation RedeliverWebhookDelivery($id: Int!) {
    redeliverWebhookDelivery(id: $id) {
      __typename
      ... on WebhookDelivery { id deliveryId state attempts }
      ... on Error { message field }
    }
  }
`);

const WebhookLog = graphql(`
  query WebhookLog($id: Int!, $first: Int, $after: Int, $state: WebhookDeliveryState) {
    webhook(id: $id) {
      id
      deliveries(first: $first, after: $after, state: $state) {
        id deliveryId event state attempts nextAttemptAt statusCode durationMs responseBody error payload createdAt lastAttemptAt deliveredAt
        pipeline { id name }
        track { id name }
      }
    }
  }
`);

const Webhooks = graphql(`
  query Webhooks {
    webhooks { id url events hasSecret description enabled }
  }
`);

const WebhookAudit = graphql(`
  query WebhookAudit {
    auditLog { action targetType targetId details }
  }
`);

type Delivery = NonNullable<Awaited<ReturnType<typeof log>>>[number];

async function createWebhook(t: GraphQLClient, variables: { url: string; events: string[]; secret?: string; description?: string; enabled?: boolean }) {
  const { createWebhook: created } = await t.request(CreateWebhook, variables);
  if (created.__typename !== 'Webhook') throw new Error(JSON.stringify(created));
  return created;
}

async function log(t: GraphQLClient, id: number) {
  return (await t.request(WebhookLog, { id, first: 500 })).webhook?.deliveries;
}

/** Waits until the webhook's log has `count` deliveries that `done` accepts. */
async function deliveries(t: GraphQLClient, id: number, count: number, done: (d: Delivery) => boolean = (d) => d.state !== 'PENDING', timeoutMs = 15_000) {
  return eventually(async () => {
    const all = (await log(t, id)) ?? [];
    return all.length === count && all.every(done) ? all : undefined;
  }, timeoutMs, `${count} deliveries of webhook ${id}`);
}

async function start(t: GraphQLClient, graphId: number, inputs?: Array<{ vertex: string; params: Record<string, unknown> }>) {
  const { startPipeline } = await t.request(StartPipeline, { graphId, ...(inputs && { inputs }) });
  if (startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(startPipeline));
  return startPipeline;
}

const SECRET = 'a-shared-secret-of-some-length';

let t: TestApp;
let receiver: WebhookReceiver;
beforeAll(async () => {
  t = await startTestApp({ env: { WEBHOOK_ALLOWED_HOSTS: '127.0.0.1', WEBHOOK_RETRY_BASE_MS: '50', WEBHOOK_TIMEOUT_MS: '3000' } });
  receiver = await startWebhookReceiver();
});
afterAll(async () => {
  await t?.stop();
  await receiver?.close();
});

describe('deliveries', () => {
  it('POSTs the event as signed JSON: headers, the body the signature covers, and the delivery log', async () => {
    const hook = await createWebhook(t, { url: receiver.url, events: ['pipeline:finished', 'track:failed'], secret: SECRET, description: 'chat' });
    expect(hook).toMatchObject({ url: receiver.url, events: ['pipeline:finished', 'track:failed'], hasSecret: true, description: 'chat', enabled: true });
    const { graphId } = await seedGraph(t, { name: 'signed', vertices: { only: { script: 'echo hi' } } });
    const pipeline = await start(t, graphId);
    const [delivery] = await deliveries(t, hook.id, 1);
    const request = receiver.requests.find((r) => r.deliveryId === delivery!.deliveryId)!;
    expect(request.method).toBe('POST');
    expect(request.path).toBe('/hook');
    expect(request.headers).toMatchObject({
      'content-type': 'application/json',
      'user-agent': 'dagpipe-webhooks',
      'x-dagpipe-event': 'pipeline:finished',
      'x-dagpipe-delivery': delivery!.deliveryId,
    });
    expect(delivery!.deliveryId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // The receiver's check: the HMAC of the raw body bytes with the shared secret.
    expect(request.headers['x-dagpipe-signature-256']).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(verifySignature(SECRET, request.raw, String(request.headers['x-dagpipe-signature-256']))).toBe(true);
    expect(verifySignature('another-secret-entirely', request.raw, String(request.headers['x-dagpipe-signature-256']))).toBe(false);
    expect(request.body).toEqual({
      id: delivery!.deliveryId,
      event: 'pipeline:finished',
      occurredAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      pipeline: { id: pipeline.id, name: 'signed', state: 'FINISH', graph: { id: graphId, name: 'signed' } },
    });
    expect(delivery).toMatchObject({
      event: 'pipeline:finished',
      state: 'DELIVERED',
      attempts: 1,
      nextAttemptAt: null,
      statusCode: 200,
      responseBody: 'ok',
      error: null,
      payload: request.body,
      pipeline: { id: pipeline.id, name: 'signed' },
      track: null,
    });
    expect(delivery!.durationMs).toBeGreaterThanOrEqual(0);
    expect(new Date(delivery!.deliveredAt!).getTime()).toBeGreaterThanOrEqual(new Date(delivery!.createdAt).getTime());

    // The secret is never shown again, nor kept in the audit trail.
    const everything = JSON.stringify([await t.request(Webhooks), await t.request(WebhookLog, { id: hook.id }), await t.request(WebhookAudit)]);
    expect(everything).not.toContain(SECRET);
    const audit = (await t.request(WebhookAudit)).auditLog.find((e) => e.action === 'createWebhook')!;
    expect(audit).toMatchObject({ targetType: 'webhook', targetId: hook.id, details: { url: receiver.url, secret: '***', description: 'chat' } });
    await t.request(DeleteWebhook, { id: hook.id });
  });

  it('an unsigned webhook gets no signature header; track:failed carries the track, pipeline:failed the pipeline', async () => {
    const hook = await createWebhook(t, { url: receiver.url, events: ['track:failed', 'pipeline:failed'] });
    expect(hook.hasSecret).toBe(false);
    const { graphId } = await seedGraph(t, seedScenario({ C: 'echo failing; exit 3' }));
    const pipeline = await start(t, graphId);
    const log = await deliveries(t, hook.id, 2);
    const trackFailed = log.find((d) => d.event === 'track:failed')!;
    const c = pipeline.tracks.find((track) => track.name === 'C')!;
    expect(trackFailed.payload).toMatchObject({
      event: 'track:failed',
      pipeline: { id: pipeline.id, state: 'FAILED' },
      track: { id: c.id, name: 'C', state: 'FAILED', attempt: 1, exitCode: 3, reason: 'The script exited with code 3.' },
    });
    expect(trackFailed.track).toEqual({ id: c.id, name: 'C' });
    expect(log.find((d) => d.event === 'pipeline:failed')!.payload).toMatchObject({ pipeline: { id: pipeline.id, state: 'FAILED' } });
    expect((log.find((d) => d.event === 'pipeline:failed')!.payload as { track?: unknown }).track).toBeUndefined();
    for (const d of log) expect(receiver.requests.find((r) => r.deliveryId === d.deliveryId)!.headers['x-dagpipe-signature-256']).toBeUndefined();
    await t.request(DeleteWebhook, { id: hook.id });
  });

  it('a receiver that answers 500 three times gets the same delivery on the fourth try, with backoff', async () => {
    let calls = 0;
    const flaky = await startWebhookReceiver(() => (++calls <= 3 ? { status: 500, body: 'down for maintenance' } : { status: 202, body: 'took it' }));
    try {
      const hook = await createWebhook(t, { url: flaky.url, events: ['pipeline:finished'], secret: SECRET });
      const { graphId } = await seedGraph(t, { vertices: { only: { script: 'true' } } });
      await start(t, graphId);
      const [delivery] = await deliveries(t, hook.id, 1, (d) => d.state === 'DELIVERED');
      expect(delivery).toMatchObject({ attempts: 4, statusCode: 202, responseBody: 'took it', error: null });
      expect(flaky.requests).toHaveLength(4);
      // The same delivery, byte for byte, each time; each retry waited longer than the one before (50, 100, 200 ms less jitter).
      expect(new Set(flaky.requests.map((r) => r.deliveryId))).toEqual(new Set([delivery!.deliveryId]));
      expect(new Set(flaky.requests.map((r) => r.raw.toString('hex'))).size).toBe(1);
      const gaps = flaky.requests.slice(1).map((r, i) => r.at - flaky.requests[i]!.at);
      expect(gaps[0]).toBeGreaterThanOrEqual(24);
      expect(gaps[1]).toBeGreaterThanOrEqual(49);
      expect(gaps[2]).toBeGreaterThanOrEqual(99);
      expect(flaky.overlaps).toEqual([]);

      const metrics = await (await fetch(t.url.replace('/graphql', '/metrics'))).text();
      expect(Number(/^dagpipe_webhook_deliveries_total\{outcome="failed_attempt"\} (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(3);
      expect(Number(/^dagpipe_webhook_deliveries_total\{outcome="delivered"\} (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
      expect(metrics).toMatch(/^dagpipe_webhook_deliveries_pending \d+$/m);
      await t.request(DeleteWebhook, { id: hook.id });
    } finally {
      await flaky.close();
    }
  });

  it('a redirect is a failed attempt that says where it pointed; it is not followed', async () => {
    const target = await startWebhookReceiver();
    const redirecting = await startWebhookReceiver(() => ({ status: 302, headers: { location: target.url } }));
    try {
      const hook = await createWebhook(t, { url: redirecting.url, events: ['pipeline:finished'] });
      const { graphId } = await seedGraph(t, { vertices: { only: { script: 'true' } } });
      await start(t, graphId);
      const [delivery] = await deliveries(t, hook.id, 1, (d) => d.attempts >= 1 && d.error !== null);
      expect(delivery).toMatchObject({
        state: 'PENDING',
        statusCode: 302,
        error: `The receiver answered HTTP 302 (Found), a redirect to ${target.url}. Webhooks do not follow redirects: register the URL it points to.`,
      });
      await t.request(UpdateWebhook, { id: hook.id, input: { enabled: false } });
      expect(target.requests).toEqual([]);
      await t.request(DeleteWebhook, { id: hook.id });
    } finally {
      await target.close();
      await redirecting.close();
    }
  });

  it('a disabled webhook gets no new deliveries and its pending ones wait; enabled again, they go; a redelivery is a copy with a new id', async () => {
    let failing = true;
    const flaky = await startWebhookReceiver(() => (failing ? { status: 500, body: 'not now' } : { status: 200, body: 'ok' }));
    try {
      const hook = await createWebhook(t, { url: flaky.url, events: ['pipeline:finished'] });
      const { graphId } = await seedGraph(t, { vertices: { only: { script: 'true' } } });
      const first = await start(t, graphId);
      await eventually(async () => (flaky.requests.length >= 1 ? true : undefined));
      expect((await t.request(UpdateWebhook, { id: hook.id, input: { enabled: false } })).updateWebhook).toMatchObject({ enabled: false });
      // An attempt already under way may still land; then nothing more while it is disabled.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const attempted = flaky.requests.length;
      const second = await start(t, graphId);
      await eventually(async () => ((await t.app.store.db.pipeline.findUniqueOrThrow({ where: { id: second.id } })).state === 5 ? true : undefined));
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(flaky.requests.length).toBe(attempted);
      const [waiting, ...none] = (await log(t, hook.id))!;
      expect(none).toEqual([]);
      expect(waiting).toMatchObject({ state: 'PENDING', statusCode: 500, pipeline: { id: first.id }, error: expect.stringMatching(/HTTP 500/) });

      failing = false;
      await t.request(UpdateWebhook, { id: hook.id, input: { enabled: true } });
      const [delivered] = await deliveries(t, hook.id, 1, (d) => d.state === 'DELIVERED');
      expect(delivered!.attempts).toBe(attempted + 1);

      const { redeliverWebhookDelivery: copy } = await t.request(Redeliver, { id: delivered!.id });
      if (copy.__typename !== 'WebhookDelivery') throw new Error(JSON.stringify(copy));
      expect(copy.deliveryId).not.toBe(delivered!.deliveryId);
      const both = await deliveries(t, hook.id, 2, (d) => d.state === 'DELIVERED');
      expect(both[0]).toMatchObject({ id: copy.id, attempts: 1, payload: { ...(delivered!.payload as object), id: copy.deliveryId } });
      expect(flaky.requests.filter((r) => r.deliveryId === copy.deliveryId)).toHaveLength(1);
      expect((await t.request(Redeliver, { id: 999_999 })).redeliverWebhookDelivery).toMatchObject({ __typename: 'NotFoundError', field: 'id' });
      expect((await t.request(WebhookAudit)).auditLog.find((e) => e.action === 'redeliverWebhookDelivery')).toMatchObject({ targetType: 'webhookDelivery', targetId: copy.id });

      // Deleting the webhook deletes its log with it.
      const { deleteWebhook } = await t.request(DeleteWebhook, { id: hook.id });
      expect(deleteWebhook).toEqual({ __typename: 'Deleted', id: hook.id, name: flaky.url });
      expect(await t.request(WebhookLog, { id: hook.id })).toEqual({ webhook: null });
      expect(await t.app.store.db.webhookDelivery.count({ where: { webhookId: hook.id } })).toBe(0);
    } finally {
      await flaky.close();
    }
  });
});

describe('track:needs-input (the README tour: report waits for an operator)', () => {
  it('is delivered once per attempt when a step becomes ready without its inputs: after its predecessors, and again after a retry', async () => {
    const hook = await createWebhook(t, { url: receiver.url, events: ['track:needs-input'], secret: SECRET });
    const graphId = await loadWebServerCheck(t.url, 'web server check (webhooks)');
    const port = Number(new URL(t.url).port);
    // health reads the port from port-open's outputs (SPEC rule 18).
    const pipeline = await start(t, graphId, [{ vertex: 'port-open', params: { port } }]);
    const report = pipeline.tracks.find((track) => track.name === 'report')!;
    const [first] = await deliveries(t, hook.id, 1);
    expect(first).toMatchObject({ event: 'track:needs-input', state: 'DELIVERED', track: { id: report.id, name: 'report' } });
    expect(first!.payload).toEqual({
      id: first!.deliveryId,
      event: 'track:needs-input',
      occurredAt: expect.any(String),
      pipeline: { id: pipeline.id, name: 'web server check (webhooks)', state: 'RUNNING', graph: { id: graphId, name: 'web server check (webhooks)' } },
      track: {
        id: report.id,
        name: 'report',
        state: 'PENDING',
        attempt: 1,
        exitCode: null,
        reason: 'Waiting for input: supply operator with finishInput.',
        missingParams: ['operator'],
      },
    });
    const request = receiver.requests.find((r) => r.deliveryId === first!.deliveryId)!;
    expect(request.headers['x-dagpipe-event']).toBe('track:needs-input');
    expect(verifySignature(SECRET, request.raw, String(request.headers['x-dagpipe-signature-256']))).toBe(true);

    // Cancelled while it waits, then retried: the step waits again, in attempt 2.
    await t.request(CancelPipeline, { id: pipeline.id });
    await t.request(RetryPipeline, { id: pipeline.id });
    const both = await deliveries(t, hook.id, 2);
    expect(both[0]!.payload).toMatchObject({ track: { id: report.id, attempt: 2, missingParams: ['operator'] } });

    // Supplied: it runs, the pipeline finishes, and nothing else is announced.
    const { finishInput } = await t.request(FinishInput, { trackId: report.id, params: { operator: 'Ada' } });
    expect(finishInput).toMatchObject({ __typename: 'Track' });
    await eventually(async () => ((await t.app.store.db.pipeline.findUniqueOrThrow({ where: { id: pipeline.id } })).state === 5 ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await log(t, hook.id)).toHaveLength(2);
    await t.request(DeleteWebhook, { id: hook.id });
  });

  it('at the start for a first step, and when a queued pipeline starts; never for a step whose inputs were given', async () => {
    const hook = await createWebhook(t, { url: receiver.url, events: ['track:needs-input'] });
    const { graphId } = await seedGraph(t, {
      maxConcurrentPipelines: 1,
      vertices: { approve: { script: 'echo {who}', inputs: [{ name: 'who', type: 'STRING', required: true }] } },
    });
    const first = await start(t, graphId);
    const [atStart] = await deliveries(t, hook.id, 1);
    expect(atStart).toMatchObject({ track: { id: first.tracks[0]!.id }, pipeline: { id: first.id } });
    const queued = await start(t, graphId);
    expect(queued.state).toBe('QUEUED');
    const given = await start(t, graphId, [{ vertex: 'approve', params: { who: 'Ada' } }]);
    expect(given.state).toBe('QUEUED');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await log(t, hook.id)).toHaveLength(1);
    // The first run ends; the queued one starts and its step waits for input; the third, whose input was given, runs.
    await t.request(CancelPipeline, { id: first.id });
    const released = await deliveries(t, hook.id, 2);
    expect(released[0]).toMatchObject({ event: 'track:needs-input', pipeline: { id: queued.id }, track: { id: queued.tracks[0]!.id } });
    await t.request(CancelPipeline, { id: queued.id });
    await eventually(async () => ((await t.app.store.db.pipeline.findUniqueOrThrow({ where: { id: given.id } })).state === 5 ? true : undefined));
    expect(await log(t, hook.id)).toHaveLength(2);
    await t.request(DeleteWebhook, { id: hook.id });
  });
});

describe('the delivery log', () => {
  it('pages newest first with first/after and filters by state', async () => {
    const hook = await createWebhook(t, { url: receiver.url, events: ['pipeline:finished'] });
    const { graphId } = await seedGraph(t, { vertices: { only: { script: 'true' } } });
    for (let i = 0; i < 3; i++) await start(t, graphId);
    const all = await deliveries(t, hook.id, 3);
    expect(all.map((d) => d.id)).toEqual([...all.map((d) => d.id)].sort((a, b) => b - a));
    const page = (await t.request(WebhookLog, { id: hook.id, first: 2 })).webhook!.deliveries;
    expect(page.map((d) => d.id)).toEqual(all.slice(0, 2).map((d) => d.id));
    const next = (await t.request(WebhookLog, { id: hook.id, first: 2, after: page[1]!.id })).webhook!.deliveries;
    expect(next.map((d) => d.id)).toEqual([all[2]!.id]);
    expect((await t.request(WebhookLog, { id: hook.id, state: 'FAILED' })).webhook!.deliveries).toEqual([]);
    expect((await t.request(WebhookLog, { id: hook.id, state: 'DELIVERED' })).webhook!.deliveries).toHaveLength(3);
    await t.request(DeleteWebhook, { id: hook.id });
  });
});

describe('validation', () => {
  it('refuses bad input with a typed error naming the field, and changes nothing', async () => {
    const before = await t.request(Webhooks);
    const refused = async (variables: Parameters<typeof createWebhook>[1]) => (await t.request(CreateWebhook, variables)).createWebhook;
    expect(await refused({ url: 'ftp://127.0.0.1/x', events: ['pipeline:failed'] })).toMatchObject({ __typename: 'ValidationError', field: 'url' });
    expect(await refused({ url: 'not a url', events: ['pipeline:failed'] })).toMatchObject({ __typename: 'ValidationError', field: 'url' });
    expect(await refused({ url: 'http://user:pw@127.0.0.1/x', events: ['pipeline:failed'] })).toMatchObject({ field: 'url', message: expect.stringMatching(/user name or password/) });
    expect(await refused({ url: receiver.url, events: [] })).toMatchObject({ __typename: 'ValidationError', field: 'events' });
    expect(await refused({ url: receiver.url, events: ['pipeline:failed', 'pipeline:done'] })).toMatchObject({ field: 'events.1', message: expect.stringMatching(/"pipeline:done" is not a webhook event/) });
    expect(await refused({ url: receiver.url, events: ['pipeline:failed'], secret: 'short' })).toMatchObject({ field: 'secret', message: expect.stringMatching(/16 to 256/) });
    expect(await refused({ url: receiver.url, events: ['pipeline:failed'], description: 'x'.repeat(201) })).toMatchObject({ field: 'description' });
    expect(await refused({ url: 'http://no-such-host.invalid/hook', events: ['pipeline:failed'] })).toMatchObject({ field: 'url', message: expect.stringMatching(/could not be resolved/) });

    const hook = await createWebhook(t, { url: receiver.url, events: ['pipeline:failed'] });
    const update = async (input: Record<string, unknown>, id = hook.id) => (await t.request(UpdateWebhook, { id, input })).updateWebhook;
    expect(await update({ url: 'gopher://127.0.0.1/' })).toMatchObject({ __typename: 'ValidationError', field: 'input.url' });
    expect(await update({ events: ['track:failed', 'track:failed'] })).toMatchObject({ field: 'input.events.1' });
    expect(await update({ secret: 'x' })).toMatchObject({ field: 'input.secret' });
    expect(await update({ events: ['track:failed'] }, 999_999)).toMatchObject({ __typename: 'NotFoundError', field: 'id' });
    expect(await update({ secret: SECRET })).toMatchObject({ __typename: 'Webhook', hasSecret: true, events: ['pipeline:failed'] });
    expect(await update({ secret: null, description: 'ops' })).toMatchObject({ hasSecret: false, description: 'ops' });
    expect((await t.request(DeleteWebhook, { id: 999_999 })).deleteWebhook).toMatchObject({ __typename: 'NotFoundError', field: 'id' });
    await t.request(DeleteWebhook, { id: hook.id });
    expect(await t.request(Webhooks)).toEqual(before);
  });
});

describe('the SSRF guard (WEBHOOK_ALLOWED_HOSTS not set)', () => {
  let guarded: TestApp;
  beforeAll(async () => {
    guarded = await startTestApp({ env: { WEBHOOK_RETRY_BASE_MS: '50' } });
  });
  afterAll(() => guarded?.stop());

  it.each([
    ['http://127.0.0.1:9/hook', /^127\.0\.0\.1 is a loopback address/],
    ['http://10.1.2.3/hook', /^10\.1\.2\.3 is a private-network address/],
    ['http://169.254.169.254/latest/meta-data/', /^169\.254\.169\.254 is a link-local address/],
    ['http://[::1]:9/hook', /^::1 is a loopback address/],
    ['http://[::ffff:127.0.0.1]/hook', /^127\.0\.0\.1 is a loopback address/],
    ['http://0.0.0.0/hook', /^0\.0\.0\.0 is the unspecified address/],
    ['http://2130706433/hook', /^127\.0\.0\.1 is a loopback address/],
    ['http://localhost:9/hook', /^localhost resolves to 127\.0\.0\.1, a loopback address/],
  ])('refuses %s at registration, naming url and WEBHOOK_ALLOWED_HOSTS', async (url, message) => {
    const { createWebhook: refused } = await guarded.request(CreateWebhook, { url, events: ['pipeline:failed'] });
    expect(refused).toMatchObject({ __typename: 'ValidationError', field: 'url', message: expect.stringMatching(message) });
    expect((refused as { message: string }).message).toMatch(/unless the service's WEBHOOK_ALLOWED_HOSTS lists the host name or the address/);
    expect((await guarded.request(Webhooks)).webhooks).toEqual([]);
  });

  it('checks again at delivery, on the address it connects to: a webhook registered while allowed is refused once it is not', async () => {
    // Registered by a process that allowed it (the same database, another configuration).
    const hook = await guarded.app.store.db.webhook.create({ data: { url: receiver.url, events: JSON.stringify(['pipeline:finished']) } });
    const { graphId } = await seedGraph(guarded, { vertices: { only: { script: 'true' } } });
    const before = receiver.requests.length;
    await start(guarded, graphId);
    const [delivery] = await deliveries(guarded, hook.id, 1, (d) => d.error !== null);
    expect(delivery).toMatchObject({ state: 'PENDING', statusCode: null, error: expect.stringMatching(/^127\.0\.0\.1 is a loopback address/) });
    expect(receiver.requests.length).toBe(before);
    await guarded.request(DeleteWebhook, { id: hook.id });
  });
});

describe('authorization', () => {
  it('webhooks and their log are for admins only: an operator is refused, and nothing is created', async () => {
    const app = await startTestApp({ env: { AUTH: 'on', WEBHOOK_ALLOWED_HOSTS: '127.0.0.1' } });
    try {
      const as = async (role: 'operator' | 'admin') => httpClient(app.url, { authorization: `Bearer ${(await createToken(app.app.store.db, { name: role, role })).secret}` });
      const operator = await as('operator');
      const admin = await as('admin');
      const listed = await operator.execute(Webhooks);
      expect(listed.errors?.[0]).toMatchObject({ extensions: { code: 'FORBIDDEN', requiredRole: 'admin' } });
      expect((await operator.request(CreateWebhook, { url: receiver.url, events: ['pipeline:failed'] })).createWebhook).toMatchObject({
        __typename: 'ForbiddenError',
        field: 'authorization',
        message: expect.stringContaining('createWebhook needs the admin role'),
      });
      expect((await admin.request(Webhooks)).webhooks).toEqual([]);
      expect((await admin.request(CreateWebhook, { url: receiver.url, events: ['pipeline:failed'] })).createWebhook).toMatchObject({ __typename: 'Webhook' });
    } finally {
      await app.stop();
    }
  });
});

describe('giving up', () => {
  it('after the retry window the delivery is FAILED, counted gave_up, and no longer pending', async () => {
    const app = await startTestApp({ env: { WEBHOOK_ALLOWED_HOSTS: '127.0.0.1', WEBHOOK_RETRY_BASE_MS: '100', WEBHOOK_RETRY_WINDOW_MS: '1000' } });
    const down = await startWebhookReceiver(() => ({ status: 503, body: 'x'.repeat(5000) }));
    try {
      const hook = await createWebhook(app, { url: down.url, events: ['pipeline:finished'] });
      const { graphId } = await seedGraph(app, { vertices: { only: { script: 'true' } } });
      await start(app, graphId);
      const [delivery] = await deliveries(app, hook.id, 1, (d) => d.state === 'FAILED');
      expect(delivery).toMatchObject({ statusCode: 503, nextAttemptAt: null, deliveredAt: null, error: expect.stringMatching(/HTTP 503 \(Service Unavailable\)/) });
      expect(delivery!.responseBody).toHaveLength(1024);
      expect(delivery!.attempts).toBe(down.requests.length);
      expect(delivery!.attempts).toBeGreaterThanOrEqual(2);
      const metrics = await (await fetch(app.url.replace('/graphql', '/metrics'))).text();
      expect(metrics).toMatch(/^dagpipe_webhook_deliveries_total\{outcome="gave_up"\} 1$/m);
      expect(metrics).toMatch(/^dagpipe_webhook_deliveries_pending 0$/m);
    } finally {
      await app.stop();
      await down.close();
    }
  });
});

describe("the README's Webhooks section, as written", () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('## Webhooks'), readme.indexOf('## Architecture'));
  const blocks = (language: string) => [...section.matchAll(new RegExp(`^\`\`\`${language}\\n([\\s\\S]*?)^\`\`\`$`, 'gm'))].map((m) => m[1]!);
  const keysOf = (value: unknown): unknown =>
    value !== null && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, keysOf(inner)]))
      : typeof value;

  it('createWebhook, the body, a receiver check in Node and in Python, and the log query work', async () => {
    const [create, logQuery] = blocks('graphql') as [string, string];
    const run = async (query: string): Promise<any> => {
      const response = await fetch(t.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) });
      const body = (await response.json()) as { data?: unknown; errors?: unknown };
      expect(body.errors).toBeUndefined();
      return body.data;
    };
    const { createWebhook: hook } = await run(create.replace('https://hooks.example.com/dagpipe', receiver.url));
    expect(hook).toMatchObject({ url: receiver.url, events: ['pipeline:failed', 'track:failed', 'track:needs-input'], hasSecret: true, enabled: true });
    const secret = /secret: "([^"]+)"/.exec(create)![1]!;

    const { graphId } = await seedGraph(t, {
      vertices: { fails: { script: 'exit 1' }, ask: { script: 'echo {who}', inputs: [{ name: 'who', type: 'STRING', required: true }] } },
    });
    await start(t, graphId);
    const sent = await deliveries(t, hook.id, 3);
    const needsInput = sent.find((d) => d.event === 'track:needs-input')!;
    // The example body has the keys and kinds of a real one.
    expect(keysOf(JSON.parse(blocks('json')[0]!))).toEqual(keysOf(needsInput.payload));

    const request = receiver.requests.find((r) => r.deliveryId === sent.find((d) => d.event === 'track:failed')!.deliveryId)!;
    const header = String(request.headers['x-dagpipe-signature-256']);
    const tampered = Buffer.from(request.raw.toString().replace('"FAILED"', '"FINISH"'));
    const node = (body: Buffer) =>
      execFileSync(
        process.execPath,
        ['--input-type=module', '-e', `${blocks('js')[0]}\nconst chunks = []; for await (const c of process.stdin) chunks.push(c);\nconsole.log(signedByDagpipe(Buffer.concat(chunks), process.argv[1], process.argv[2]));`, header, secret],
        { input: body, encoding: 'utf8' },
      ).trim();
    expect(node(request.raw)).toBe('true');
    expect(node(tampered)).toBe('false');
    const python = (body: Buffer) =>
      execFileSync('python3', ['-c', `${blocks('python')[0]}\nimport sys\nprint(signed_by_dagpipe(sys.stdin.buffer.read(), sys.argv[1], sys.argv[2]))`, header, secret], {
        input: body,
        encoding: 'utf8',
      }).trim();
    expect(python(request.raw)).toBe('True');
    expect(python(tampered)).toBe('False');

    const logged = await run(logQuery.replace('webhook(id: 1)', `webhook(id: ${hook.id})`).replace('state: FAILED', 'state: DELIVERED'));
    expect(logged.webhook.deliveries).toHaveLength(3);
    await t.request(DeleteWebhook, { id: hook.id });
  });
});
