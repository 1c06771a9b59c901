/**
 * Webhooks in the database (SPEC rule 20): the outbox written with each event, the admin's
 * webhooks, and the claims of the processes that deliver (src/webhooks/deliverer.ts).
 *
 * Outbox: every transition appends its events through transaction.ts, which hands them here
 * in the same transaction; a delivery row is inserted for each (event, webhook that wants it)
 * pair, so a committed event always has its deliveries, and a rolled-back one none. The cost
 * when nothing is subscribed: no statement at all for a transaction without a webhook event
 * (most of the executor's: a claim, a success that promotes successors with their inputs),
 * one SELECT of the enabled webhooks for the others (a pipeline's end, a failure, a track
 * that may wait for input). Whether a ready track waits for input is read at the end of the
 * transaction (script still NULL, still PENDING), unless its transition said it has its inputs. Nothing is cached per process, so a webhook created on one API process
 * gets the very next event committed by any worker.
 *
 * Claims: a delivery is attempted by the process that set `lockedBy` to itself, until
 * `lockedUntil` (a lease twice the request timeout): on PostgreSQL claimed with FOR NO KEY
 * UPDATE SKIP LOCKED, so deliverers never wait for each other nor attempt the same delivery
 * at once. A process that dies mid-attempt loses its claim when the lease ends. Results are
 * recorded fenced by owner and attempt number: a result that comes after the lease was lost
 * changes nothing.
 */
import { randomUUID } from 'node:crypto';
import type { Db } from '../db.ts';
import { parseInputSchema } from '../engine/inputs.ts';
import { TrackState } from '../engine/states.ts';
import { DeliveryState } from '../engine/webhook-attempts.ts';
import {
  deliveryBody,
  parseStoredEvents,
  requireWebhookEvents,
  requireWebhookSecret,
  requireWebhookUrl,
  webhookEventOf,
  WEBHOOK_LIMITS,
  type WebhookEvent,
} from '../engine/webhook-events.ts';
import { optionalText } from '../engine/fields.ts';
import { ConflictError, NotFoundError } from '../errors.ts';
import type { Event, Webhook, WebhookDelivery } from '../generated/prisma/client.ts';
import { insertRows, prismaRunner, rawSql, sql, type InsertColumn, type Row, type SqlRunner } from './sql.ts';
import { WORK_CHANNEL, type EventDraft, type Store } from './transaction.ts';

/**
 * Inserts the deliveries that `events` (appended from `drafts`, in the same order) call for,
 * in the current transaction. Returns how many.
 */
export async function enqueueDeliveries(runner: SqlRunner, drafts: readonly EventDraft[], events: readonly Event[]): Promise<number> {
  const candidates = events.flatMap((event, i) => {
    const kind = webhookEventOf({ type: drafts[i]!.type, trackState: event.trackState });
    if (kind === undefined) return [];
    // The transition knows the track has its inputs: nothing to look up (the executor's hot path).
    if (kind === 'needs-input-if-no-script' && drafts[i]!.needsInput === false) return [];
    return [{ event, kind }];
  });
  if (candidates.length === 0) return 0;
  // KEY SHARE, as the deliveries' foreign key will take anyway: a webhook being deleted is
  // either gone before this reads it, or waits until this commits (then takes its deliveries).
  const hooks = (
    await runner.query(sql`
      SELECT "id", "events" FROM "webhook" WHERE "enabled" = TRUE ORDER BY "id" ${rawSql(runner.provider === 'postgres' ? 'FOR KEY SHARE' : '')}`)
  ).map((row) => ({ id: Number(row.id), events: new Set(parseStoredEvents(String(row.events))) }));
  if (hooks.length === 0) return 0;
  const wanted = (name: WebhookEvent) => hooks.some((hook) => hook.events.has(name));

  // Ready tracks that may lack their inputs, as the transaction leaves them: one rendered later
  // in it (a track that reads step outputs) has them, one that failed meanwhile waits for nothing.
  const maybe = candidates.filter((c) => c.kind === 'needs-input-if-no-script').map((c) => c.event.trackId!);
  const withoutScript = new Set<number>();
  if (maybe.length > 0 && wanted('track:needs-input')) {
    const rows = await inChunks(maybe, (ids) =>
      runner.query(sql`SELECT "id" FROM "track" WHERE "id" IN (${ids}) AND "script" IS NULL AND "state" = ${TrackState.PENDING}`),
    );
    for (const row of rows) withoutScript.add(Number(row.id));
  }
  const announced = candidates.flatMap(({ event, kind }) => {
    const name: WebhookEvent | undefined =
      kind !== 'needs-input-if-no-script' ? kind : withoutScript.has(event.trackId!) ? 'track:needs-input' : undefined;
    return name !== undefined && wanted(name) ? [{ event, name }] : [];
  });
  if (announced.length === 0) return 0;

  const pipelineIds = [...new Set(announced.map((a) => a.event.pipelineId))];
  const pipelines = new Map(
    (
      await runner.query(sql`
        SELECT p."id", p."name", p."state", p."g_id", g."name" AS "graphName"
        FROM "pipeline" p JOIN "graph" g ON g."id" = p."g_id" WHERE p."id" IN (${pipelineIds})`)
    ).map((r) => [Number(r.id), { id: Number(r.id), name: String(r.name), state: Number(r.state), graph: { id: Number(r.g_id), name: String(r.graphName) } }]),
  );
  const trackIds = [...new Set(announced.flatMap((a) => (a.event.trackId === null ? [] : [a.event.trackId])))];
  const tracks = new Map(
    (
      await inChunks(trackIds, (ids) =>
        runner.query(sql`SELECT t."id", v."name", v."input" FROM "track" t JOIN "vertex" v ON v."id" = t."v_id" WHERE t."id" IN (${ids})`),
      )
    ).map((r) => [Number(r.id), { name: String(r.name), input: String(r.input) }]),
  );

  const now = new Date();
  const rows = announced.flatMap(({ event, name }) => {
    const pipeline = pipelines.get(event.pipelineId)!;
    const track = event.trackId === null ? undefined : tracks.get(event.trackId);
    return hooks
      .filter((hook) => hook.events.has(name))
      .map((hook) => {
        const deliveryId = randomUUID();
        const payload = deliveryBody({
          deliveryId,
          event: name,
          occurredAt: event.createdAt,
          pipeline: { ...pipeline, state: event.pipelineState ?? pipeline.state },
          ...(track && {
            track: {
              id: event.trackId!,
              name: track.name,
              state: event.trackState!,
              attempt: event.attempt,
              exitCode: event.exitCode,
              reason: event.reason,
              ...(name === 'track:needs-input' && { missingParams: missingParams(track.input) }),
            },
          }),
        });
        return [hook.id, event.id, name, event.pipelineId, event.trackId, payload, deliveryId, DeliveryState.PENDING, now, event.createdAt];
      });
  });
  await insertRows(runner, 'webhook_delivery', DELIVERY_COLUMNS, rows, '"id"');
  return rows.length;
}

/** Keeps every `IN (...)` list well inside the databases' bind-value limits (a start may have 10,000 tracks waiting for input). */
const CHUNK = 5000;

async function inChunks(ids: readonly number[], query: (chunk: readonly number[]) => Promise<Row[]>): Promise<Row[]> {
  const rows: Row[] = [];
  for (let start = 0; start < ids.length; start += CHUNK) rows.push(...(await query(ids.slice(start, start + CHUNK))));
  return rows;
}

const DELIVERY_COLUMNS: readonly InsertColumn[] = [
  { name: 'webhook_id', type: 'integer' },
  { name: 'event_id', type: 'integer' },
  { name: 'event', type: 'text' },
  { name: 'p_id', type: 'integer' },
  { name: 't_id', type: 'integer' },
  { name: 'payload', type: 'text' },
  { name: 'deliveryId', type: 'text' },
  { name: 'state', type: 'integer' },
  { name: 'nextAttemptAt', type: 'timestamp(3)' },
  { name: 'createdAt', type: 'timestamp(3)' },
];

/** The parameters a track without inputs waits for, as Track.blockedBy lists them. */
function missingParams(vertexInput: string): string[] {
  return parseInputSchema(vertexInput, 'input')
    .filter((p) => p.required || p.default === undefined)
    .map((p) => p.name);
}

/** Refuses a URL whose host may not be reached (the SSRF guard, webhooks/guard.ts): a ValidationError naming `field`. */
export type UrlCheck = (field: string, url: URL) => Promise<void>;

export interface WebhookInput {
  url?: string | null;
  events?: readonly string[] | null;
  /** A new signing secret; null removes it (update), undefined leaves it. */
  secret?: string | null;
  description?: string | null;
  enabled?: boolean | null;
}

/** Creates a webhook; every field is checked (the URL's host resolved and guarded) before anything is written. */
export async function createWebhook(store: Store, checkUrl: UrlCheck, input: WebhookInput & { url: string; events: readonly string[] }): Promise<Webhook> {
  const url = requireWebhookUrl('url', input.url);
  const events = requireWebhookEvents('events', input.events);
  const secret = input.secret == null ? null : requireWebhookSecret('secret', input.secret);
  const description = optionalText('description', input.description, WEBHOOK_LIMITS.description);
  await checkUrl('url', url);
  if ((await store.db.webhook.count()) >= WEBHOOK_LIMITS.webhooks) {
    throw new ConflictError('url', `There are ${WEBHOOK_LIMITS.webhooks} webhooks already, the most one service keeps. Delete one you no longer need, or let one webhook take several events.`);
  }
  return store.db.webhook.create({ data: { url: url.href, events: JSON.stringify(events), secret, description, enabled: input.enabled ?? true } });
}

/** Changes the given fields (the URL checked as at creation); enabling one lets its waiting deliveries go at once. */
export async function updateWebhook(store: Store, checkUrl: UrlCheck, id: number, input: WebhookInput): Promise<Webhook> {
  const existing = await store.db.webhook.findUnique({ where: { id } });
  if (!existing) throw new NotFoundError('id', 'webhook', id);
  const url = input.url == null ? undefined : requireWebhookUrl('input.url', input.url);
  const events = input.events == null ? undefined : requireWebhookEvents('input.events', input.events);
  const secret = input.secret === undefined ? undefined : input.secret === null ? null : requireWebhookSecret('input.secret', input.secret);
  const description = input.description === undefined ? undefined : optionalText('input.description', input.description, WEBHOOK_LIMITS.description);
  if (url) await checkUrl('input.url', url);
  const updated = await store.db.webhook.update({
    where: { id },
    data: {
      ...(url && { url: url.href }),
      ...(events && { events: JSON.stringify(events) }),
      ...(secret !== undefined && { secret }),
      ...(description !== undefined && { description }),
      ...(input.enabled != null && { enabled: input.enabled }),
    },
  });
  if (updated.enabled && !existing.enabled) await hintDeliverers(store);
  return updated;
}

/**
 * Sends a delivery again as a new one: a new delivery id (a receiver that drops duplicates
 * would drop a repeat of the old one), the same event and body otherwise, attempted at once
 * and retried for a whole window again. The original stays in the log as it was.
 */
export async function redeliver(store: Store, deliveryId: number): Promise<WebhookDelivery> {
  const original = await store.db.webhookDelivery.findUnique({ where: { id: deliveryId } });
  if (!original) throw new NotFoundError('id', 'webhook delivery', deliveryId);
  if (original.state === DeliveryState.PENDING) {
    throw new ConflictError('id', `Delivery ${deliveryId} is still PENDING: it is attempted (again) by itself${original.nextAttemptAt ? ` at ${original.nextAttemptAt.toISOString()}` : ''}. Redeliver it once it is DELIVERED or FAILED.`);
  }
  const id = randomUUID();
  const payload = JSON.stringify({ ...(JSON.parse(original.payload) as Record<string, unknown>), id });
  const now = new Date();
  const copy = await store.db.webhookDelivery.create({
    data: {
      webhookId: original.webhookId,
      eventId: original.eventId,
      event: original.event,
      pipelineId: original.pipelineId,
      trackId: original.trackId,
      payload,
      deliveryId: id,
      state: DeliveryState.PENDING,
      nextAttemptAt: now,
      createdAt: now,
    },
  });
  await hintDeliverers(store);
  return copy;
}

/** How many of a deleted webhook's deliveries one statement deletes: a long log never holds locks for long. */
const DELETE_BATCH = 1000;

/**
 * Deletes a webhook with its deliveries, pending ones and the log (SPEC rule 20 leaves it
 * open; a log without its webhook would be unreachable in the API). The log goes first, in
 * batches, so that the webhook's own row, which the outbox of running transitions may wait
 * for, is locked only for a moment; what arrives meanwhile goes with the row (cascade).
 */
export async function deleteWebhook(store: Store, id: number): Promise<{ id: number; name: string }> {
  const webhook = await store.db.webhook.findUnique({ where: { id } });
  if (!webhook) throw new NotFoundError('id', 'webhook', id);
  const runner = prismaRunner(store.db, store.fast.provider);
  while (
    (await runner.execute(sql`
      DELETE FROM "webhook_delivery" WHERE "id" IN (SELECT "id" FROM "webhook_delivery" WHERE "webhook_id" = ${id} LIMIT ${DELETE_BATCH})`)) > 0
  );
  await store.db.webhook.deleteMany({ where: { id } });
  return { id, name: webhook.url };
}

/** The payload of a NOTIFY on WORK_CHANNEL that wakes the deliverers of other processes. */
export const WEBHOOK_HINT = 'webhook';

/** Wakes this process's deliverer and, on PostgreSQL, every other one. */
export async function hintDeliverers(store: Store): Promise<void> {
  store.deliveriesQueued?.();
  if (store.fast.provider === 'postgres') await store.db.$executeRawUnsafe('SELECT pg_notify($1, $2)', WORK_CHANNEL, WEBHOOK_HINT);
}

/** A delivery this process claimed: what to send, and what fences its result. */
export interface ClaimedDelivery {
  id: number;
  deliveryId: string;
  event: WebhookEvent;
  payload: string;
  /** This attempt's number (1 for the first). */
  attempt: number;
  createdAt: Date;
  url: string;
  secret: string | null;
}

/**
 * Claims up to `limit` due deliveries of enabled webhooks for `owner` until `leaseMs` from
 * now, counting the attempt. One statement: on PostgreSQL, rows other deliverers hold are
 * skipped, and a claim that committed meanwhile is seen (the lease condition is checked again
 * on the locked row).
 */
export async function claimDeliveries(db: Db, provider: SqlRunner['provider'], owner: string, limit: number, leaseMs: number): Promise<ClaimedDelivery[]> {
  if (limit <= 0) return [];
  const runner = prismaRunner(db, provider);
  const now = new Date();
  const until = new Date(now.getTime() + leaseMs);
  const due = sql`
    SELECT d."id" FROM "webhook_delivery" d JOIN "webhook" w ON w."id" = d."webhook_id"
    WHERE d."state" = ${DeliveryState.PENDING} AND d."nextAttemptAt" <= ${now}
      AND (d."lockedUntil" IS NULL OR d."lockedUntil" <= ${now}) AND w."enabled" = TRUE
    ORDER BY d."nextAttemptAt", d."id" LIMIT ${limit}`;
  const set = sql`"lockedBy" = ${owner}, "lockedUntil" = ${until}, "attempts" = "attempts" + 1, "lastAttemptAt" = ${now}`;
  const rows =
    provider === 'postgres'
      ? await runner.query(sql`
          WITH due AS MATERIALIZED (${due} FOR NO KEY UPDATE OF d SKIP LOCKED)
          UPDATE "webhook_delivery" SET ${set} FROM due
          WHERE "webhook_delivery"."id" = due."id" AND "webhook_delivery"."state" = ${DeliveryState.PENDING}
            AND ("webhook_delivery"."lockedUntil" IS NULL OR "webhook_delivery"."lockedUntil" <= ${now})
          RETURNING "webhook_delivery"."id", "webhook_id", "deliveryId", "event", "payload", "attempts", "createdAt"`)
      : await runner.query(sql`
          UPDATE "webhook_delivery" SET ${set} WHERE "id" IN (${due})
          RETURNING "id", "webhook_id", "deliveryId", "event", "payload", "attempts", "createdAt"`);
  if (rows.length === 0) return [];
  const webhookIds = [...new Set(rows.map((r) => Number(r.webhook_id)))];
  const hooks = new Map(
    (await db.webhook.findMany({ where: { id: { in: webhookIds } }, select: { id: true, url: true, secret: true } })).map((w) => [w.id, w]),
  );
  return rows.flatMap((r) => {
    const hook = hooks.get(Number(r.webhook_id));
    // Deleted since the claim: its deliveries went with it.
    if (!hook) return [];
    return [
      {
        id: Number(r.id),
        deliveryId: String(r.deliveryId),
        event: String(r.event) as WebhookEvent,
        payload: String(r.payload),
        attempt: Number(r.attempts),
        createdAt: asDate(r.createdAt),
        url: hook.url,
        secret: hook.secret,
      },
    ];
  });
}

/** What one attempt came to. */
export interface AttemptRecord {
  /** DELIVERED, FAILED (gave up) or PENDING (retried at retryAt). */
  state: DeliveryState;
  retryAt?: Date;
  statusCode: number | null;
  durationMs: number;
  responseBody: string | null;
  error: string | null;
}

/** Records an attempt if `owner` still holds it in that attempt; false when the claim was lost (nothing changed). */
export async function recordAttempt(db: Db, provider: SqlRunner['provider'], owner: string, claimed: ClaimedDelivery, record: AttemptRecord): Promise<boolean> {
  const now = new Date();
  const updated = await prismaRunner(db, provider).execute(sql`
    UPDATE "webhook_delivery" SET "state" = ${record.state}, "nextAttemptAt" = ${record.retryAt ?? now},
      "lockedBy" = NULL, "lockedUntil" = NULL, "statusCode" = ${record.statusCode}, "durationMs" = ${record.durationMs},
      "responseBody" = ${record.responseBody}, "error" = ${record.error},
      "deliveredAt" = ${record.state === DeliveryState.DELIVERED ? now : null}
    WHERE "id" = ${claimed.id} AND "lockedBy" = ${owner} AND "attempts" = ${claimed.attempt}`);
  return updated === 1;
}

/** Gives back what `owner` holds (it is stopping): due again at once, for any process. */
export async function releaseClaims(db: Db, provider: SqlRunner['provider'], owner: string, ids: readonly number[]): Promise<void> {
  if (ids.length === 0) return;
  await prismaRunner(db, provider).execute(sql`
    UPDATE "webhook_delivery" SET "lockedBy" = NULL, "lockedUntil" = NULL, "nextAttemptAt" = ${new Date()},
      "error" = 'The service stopped during this attempt; it is made again.'
    WHERE "id" IN (${ids}) AND "lockedBy" = ${owner} AND "state" = ${DeliveryState.PENDING}`);
}

/**
 * When the next pending delivery of an enabled webhook falls due, or null: an unclaimed one
 * at its nextAttemptAt, a claimed one when its lease ends (it was due when it was claimed).
 */
export async function nextDueAt(db: Db): Promise<Date | null> {
  const pending = { state: DeliveryState.PENDING, webhook: { enabled: true } };
  const [free, held] = await Promise.all([
    db.webhookDelivery.aggregate({ where: { ...pending, lockedUntil: null }, _min: { nextAttemptAt: true } }),
    db.webhookDelivery.aggregate({ where: { ...pending, lockedUntil: { not: null } }, _min: { lockedUntil: true } }),
  ]);
  const times = [free._min.nextAttemptAt, held._min.lockedUntil].filter((t): t is Date => t !== null);
  return times.length === 0 ? null : new Date(Math.min(...times.map((t) => t.getTime())));
}

/** A timestamp as a raw query returns it: a Date, or (SQLite) epoch milliseconds or ISO text. */
function asDate(value: unknown): Date {
  if (value instanceof Date) return value;
  return new Date(typeof value === 'number' || typeof value === 'bigint' ? Number(value) : String(value));
}
