/**
 * Webhooks (SPEC rule 20): the types, the admin's queries and mutations. A webhook's secret
 * is written, never read back: the API says only whether there is one (hasSecret).
 */
import { DeliveryState } from '../engine/webhook-attempts.ts';
import { parseStoredEvents, WEBHOOK_EVENTS, WEBHOOK_LIMITS } from '../engine/webhook-events.ts';
import * as webhooks from '../store/webhooks.ts';
import { builder } from './builder.ts';
import { ALL_ERRORS } from './errors.ts';
import { Deleted } from './graph.ts';

const EVENTS = WEBHOOK_EVENTS.join(', ');

const DeliveryStateEnum = builder.enumType('WebhookDeliveryState', {
  description: 'Where a webhook delivery is.',
  values: {
    PENDING: { value: DeliveryState.PENDING, description: 'Not delivered yet: attempted at nextAttemptAt (again, after a failed attempt).' },
    DELIVERED: { value: DeliveryState.DELIVERED, description: 'The receiver answered 2xx.' },
    FAILED: { value: DeliveryState.FAILED, description: 'Every attempt failed for the whole retry window (a day by default): no more attempts. redeliverWebhookDelivery sends it again.' },
  } as const,
});

const PAGE = { default: 50, max: 500 };

export const Webhook = builder.prismaObject('Webhook', {
  description: 'A URL that is POSTed a signed JSON delivery for each event it wants (role admin).',
  authScopes: { admin: true },
  fields: (t) => ({
    id: t.exposeInt('id', { description: 'Unique id.' }),
    url: t.exposeString('url', { description: 'Where deliveries are POSTed (http or https).' }),
    events: t.stringList({ description: `The events it wants: some of ${EVENTS}.`, resolve: (hook) => parseStoredEvents(hook.events) }),
    hasSecret: t.boolean({
      description: 'Whether deliveries are signed (X-Dagpipe-Signature-256). The secret itself is never shown after it is set.',
      select: { secret: true },
      resolve: (hook) => hook.secret !== null,
    }),
    description: t.exposeString('description', { nullable: true, description: 'What it is for.' }),
    enabled: t.exposeBoolean('enabled', {
      description: 'False: events make no deliveries for it, and deliveries already queued wait until it is enabled again.',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When it was created.' }),
    deliveries: t.relation('deliveries', {
      description: `Its delivery log, newest first. Page with \`after\` set to the last id you received (default ${PAGE.default}, at most ${PAGE.max} at once).`,
      args: {
        first: t.arg.int({ required: false, description: `At most this many (default ${PAGE.default}, at most ${PAGE.max}).` }),
        after: t.arg.int({ required: false, description: 'Only deliveries with an id lower than this (the cursor).' }),
        state: t.arg({ type: DeliveryStateEnum, required: false, description: 'Only deliveries in this state.' }),
      },
      query: (args) => ({
        where: {
          ...(args.state != null && { state: args.state }),
          ...(args.after != null && { id: { lt: args.after } }),
        },
        orderBy: { id: 'desc' },
        take: Math.min(Math.max(args.first ?? PAGE.default, 0), PAGE.max),
      }),
    }),
  }),
});

export const WebhookDelivery = builder.prismaObject('WebhookDelivery', {
  description: 'One event for one webhook: what was sent and how its last attempt went (role admin).',
  authScopes: { admin: true },
  fields: (t) => ({
    id: t.exposeInt('id', { description: 'Unique id (the cursor of Webhook.deliveries).' }),
    deliveryId: t.exposeString('deliveryId', {
      description: 'The UUID sent as X-Dagpipe-Delivery and as the body\'s "id": the same on every attempt, so a receiver can drop duplicates.',
    }),
    event: t.exposeString('event', { description: `The event: one of ${EVENTS}.` }),
    state: t.field({ type: DeliveryStateEnum, description: 'Where it is.', resolve: (d) => d.state as never }),
    attempts: t.exposeInt('attempts', { description: 'Attempts made so far.' }),
    nextAttemptAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'While PENDING: when it is attempted next. Null once DELIVERED or FAILED.',
      resolve: (d) => (d.state === DeliveryState.PENDING ? d.nextAttemptAt : null),
    }),
    statusCode: t.exposeInt('statusCode', { nullable: true, description: "The last attempt's HTTP status; null if no answer came." }),
    durationMs: t.exposeInt('durationMs', { nullable: true, description: 'How long the last attempt took, in milliseconds.' }),
    responseBody: t.exposeString('responseBody', { nullable: true, description: "The first KiB of the last answer's body." }),
    error: t.exposeString('error', { nullable: true, description: 'Why the last attempt failed, in plain words; null once delivered.' }),
    payload: t.field({ type: 'JSON', description: 'The JSON body POSTed, byte for byte the same on every attempt.', resolve: (d) => JSON.parse(d.payload) as unknown }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When the event happened (the delivery was queued in its transaction).' }),
    lastAttemptAt: t.expose('lastAttemptAt', { type: 'DateTime', nullable: true, description: 'When the last attempt started.' }),
    deliveredAt: t.expose('deliveredAt', { type: 'DateTime', nullable: true, description: 'When the receiver answered 2xx.' }),
    webhook: t.relation('webhook', { description: 'The webhook it is for.' }),
    pipeline: t.relation('pipeline', { nullable: true, description: 'The pipeline of the event.' }),
    track: t.relation('track', { nullable: true, description: 'The track of a track event (track:failed, track:needs-input).' }),
  }),
});

const WebhookInput = builder.inputType('WebhookInput', {
  description: 'The fields of a webhook to change; those left out stay as they are.',
  fields: (t) => ({
    url: t.string({ required: false, description: 'The http(s) URL; its host is checked as at creation.' }),
    events: t.stringList({ required: false, description: `The events it wants: some of ${EVENTS}.` }),
    secret: t.string({
      required: false,
      description: `A new signing secret (${WEBHOOK_LIMITS.secretMin} to ${WEBHOOK_LIMITS.secretMax} characters); null stops signing.`,
    }),
    description: t.string({ required: false, description: `What it is for, at most ${WEBHOOK_LIMITS.description} characters; empty clears it.` }),
    enabled: t.boolean({ required: false, description: 'False pauses it (queued deliveries wait); true resumes it.' }),
  }),
});

builder.queryFields((t) => ({
  webhooks: t.prismaField({
    type: ['Webhook'],
    authScopes: { admin: true },
    description: 'Every webhook, oldest first (role admin).',
    resolve: (query, _root, _args, ctx) => ctx.db.webhook.findMany({ ...query, orderBy: { id: 'asc' } }),
  }),
  webhook: t.prismaField({
    type: 'Webhook',
    nullable: true,
    authScopes: { admin: true },
    description: 'One webhook, with its delivery log (role admin).',
    args: { id: t.arg.int({ description: 'The webhook id.' }) },
    resolve: (query, _root, args, ctx) => ctx.db.webhook.findUnique({ ...query, where: { id: args.id } }),
  }),
}));

builder.mutationFields((t) => ({
  createWebhook: t.field({
    type: Webhook,
    description:
      "Registers a webhook (role admin). Its URL's host must resolve to public addresses unless the service's WEBHOOK_ALLOWED_HOSTS lists it. With a secret, every delivery is signed: X-Dagpipe-Signature-256: sha256=<HMAC-SHA256 of the body>.",
    errors: { types: [...ALL_ERRORS], directResult: true },
    args: {
      url: t.arg.string({ description: 'The http(s) URL deliveries are POSTed to.' }),
      events: t.arg.stringList({ description: `The events it wants: some of ${EVENTS}.` }),
      secret: t.arg.string({
        required: false,
        description: `The signing secret, ${WEBHOOK_LIMITS.secretMin} to ${WEBHOOK_LIMITS.secretMax} characters (e.g. openssl rand -hex 32). Never shown again.`,
      }),
      description: t.arg.string({ required: false, description: `What it is for, at most ${WEBHOOK_LIMITS.description} characters.` }),
      enabled: t.arg.boolean({ required: false, description: 'False creates it paused (default true).' }),
    },
    resolve: (_root, args, ctx) => webhooks.createWebhook(ctx.store, ctx.checkWebhookUrl, args),
  }),
  updateWebhook: t.field({
    type: Webhook,
    description: "Changes a webhook's URL, events, secret, description or enabled (role admin).",
    errors: { types: [...ALL_ERRORS], directResult: true },
    args: { id: t.arg.int({ description: 'The webhook id.' }), input: t.arg({ type: WebhookInput, description: 'The fields to change.' }) },
    resolve: (_root, args, ctx) => webhooks.updateWebhook(ctx.store, ctx.checkWebhookUrl, args.id, args.input),
  }),
  deleteWebhook: t.field({
    type: Deleted,
    description: 'Deletes a webhook with its delivery log and its deliveries still pending (role admin; updateWebhook enabled: false keeps the log). Returns its id and URL.',
    errors: { types: [...ALL_ERRORS], directResult: true },
    args: { id: t.arg.int({ description: 'The webhook id.' }) },
    resolve: (_root, args, ctx) => webhooks.deleteWebhook(ctx.store, args.id),
  }),
  redeliverWebhookDelivery: t.field({
    type: WebhookDelivery,
    description:
      'Sends a DELIVERED or FAILED delivery again, as a new delivery with a new deliveryId (the body is the same otherwise), attempted at once and retried like any other (role admin).',
    errors: { types: [...ALL_ERRORS], directResult: true },
    args: { id: t.arg.int({ description: 'The delivery (WebhookDelivery.id).' }) },
    resolve: (_root, args, ctx) => webhooks.redeliver(ctx.store, args.id),
  }),
}));
