/**
 * Webhook events and what a delivery says (SPEC rule 20). Pure.
 *
 *   pipeline:finished, pipeline:failed, pipeline:cancelled, track:failed
 *       the journal events of the same name (a track:failed is an attempt that will not be
 *       retried: a failed attempt with retries left is track:retrying, no webhook event);
 *   track:needs-input
 *       a track became ready (PENDING) without its inputs: it waits for finishInput. The
 *       journal says track:created (a start), track:ready (its predecessors succeeded, or
 *       its pipeline left the queue) or track:retried (retryPipeline) with state PENDING;
 *       the event is for a track whose script is still NULL then, once per attempt.
 *
 * The body of a delivery is made once, when its event commits, and sent byte for byte on
 * every attempt (the signature is over those bytes).
 */
import { ValidationError } from '../errors.ts';
import { blockedBy } from './blocked-by.ts';
import { PipelineState, TrackState, trackStateName, type EventType } from './states.ts';

export const WEBHOOK_EVENTS = ['pipeline:finished', 'pipeline:failed', 'pipeline:cancelled', 'track:failed', 'track:needs-input'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export function isWebhookEvent(name: string): name is WebhookEvent {
  return (WEBHOOK_EVENTS as readonly string[]).includes(name);
}

/** Journal events that are webhook events under the same name. */
const SAME_NAME: ReadonlySet<EventType> = new Set<EventType>(['pipeline:finished', 'pipeline:failed', 'pipeline:cancelled', 'track:failed']);

/** Journal events that may put a track in PENDING without its inputs. */
const MAKES_READY: ReadonlySet<EventType> = new Set<EventType>(['track:created', 'track:ready', 'track:retried']);

/** What a journal event is for webhooks: a webhook event, one if its track has no script, or nothing. */
export function webhookEventOf(event: { type: EventType; trackState?: number | null }): WebhookEvent | 'needs-input-if-no-script' | undefined {
  if (SAME_NAME.has(event.type)) return event.type as WebhookEvent;
  if (MAKES_READY.has(event.type) && event.trackState === TrackState.PENDING) return 'needs-input-if-no-script';
  return undefined;
}

/** The facts a delivery's body is made of, read in the event's transaction. */
export interface DeliveryFacts {
  deliveryId: string;
  event: WebhookEvent;
  occurredAt: Date;
  pipeline: { id: number; name: string; state: number; graph: { id: number; name: string } };
  /** For track events. */
  track?: {
    id: number;
    name: string;
    state: number;
    attempt: number | null;
    exitCode: number | null;
    reason: string | null;
    /** track:needs-input: the parameters finishInput must supply. */
    missingParams?: readonly string[];
  };
}

function pipelineStateName(state: number): string {
  return Object.entries(PipelineState).find(([, code]) => code === state)?.[0] ?? String(state);
}

/**
 * The JSON body: `{ id, event, occurredAt, pipeline: { id, name, state, graph: { id, name } },
 * track: { id, name, state, attempt, exitCode, reason } }` (track only for track events;
 * track:needs-input adds `missingParams`, and its reason says what to supply).
 */
export function deliveryBody(facts: DeliveryFacts): string {
  const { track } = facts;
  const body = {
    id: facts.deliveryId,
    event: facts.event,
    occurredAt: facts.occurredAt.toISOString(),
    pipeline: {
      id: facts.pipeline.id,
      name: facts.pipeline.name,
      state: pipelineStateName(facts.pipeline.state),
      graph: { id: facts.pipeline.graph.id, name: facts.pipeline.graph.name },
    },
    ...(track && {
      track: {
        id: track.id,
        name: track.name,
        state: trackStateName(track.state),
        attempt: track.attempt,
        exitCode: track.exitCode,
        reason: facts.event === 'track:needs-input' ? needsInputReason(track.missingParams ?? []) : track.reason,
        ...(facts.event === 'track:needs-input' && { missingParams: [...(track.missingParams ?? [])] }),
      },
    }),
  };
  return JSON.stringify(body);
}

/** The same sentence Track.blockedBy shows for a track that waits for input. */
function needsInputReason(missingParams: readonly string[]): string {
  return blockedBy({ state: TrackState.PENDING, needsInput: true, pipelineState: PipelineState.RUNNING, predecessors: [], failed: [], missingParams })!.message;
}

/** The events a webhook wants, as stored (a JSON array). */
export function parseStoredEvents(text: string): WebhookEvent[] {
  const parsed = JSON.parse(text) as unknown;
  return Array.isArray(parsed) ? parsed.filter((name): name is WebhookEvent => typeof name === 'string' && isWebhookEvent(name)) : [];
}

/** At least one known event, none twice; errors name `events.N`. */
export function requireWebhookEvents(field: string, events: readonly string[]): WebhookEvent[] {
  if (events.length === 0) {
    throw new ValidationError(field, `${field} must list at least one event: ${WEBHOOK_EVENTS.join(', ')}.`);
  }
  const seen = new Set<string>();
  events.forEach((name, i) => {
    if (!isWebhookEvent(name)) {
      throw new ValidationError(`${field}.${i}`, `"${name}" is not a webhook event. The events are ${WEBHOOK_EVENTS.join(', ')}.`);
    }
    if (seen.has(name)) throw new ValidationError(`${field}.${i}`, `"${name}" is listed twice; list each event once.`);
    seen.add(name);
  });
  return events as WebhookEvent[];
}

export const WEBHOOK_LIMITS = {
  urlLength: 2000,
  secretMin: 16,
  secretMax: 256,
  description: 200,
  /** Webhooks one service keeps: each event is checked against all of them. */
  webhooks: 100,
} as const;

/**
 * The URL's form: http or https, a host, no user name or password (they would be shown to
 * every admin; the secret authenticates deliveries) and no fragment (never sent). Where the
 * host may be reached is the SSRF guard's (webhook-address.ts, webhooks/guard.ts).
 */
export function requireWebhookUrl(field: string, text: string): URL {
  const value = text.trim();
  if (value === '') throw new ValidationError(field, `${field} must not be empty: give the receiver's http(s) URL, e.g. https://hooks.example.com/dagpipe.`);
  if (value.length > WEBHOOK_LIMITS.urlLength) {
    throw new ValidationError(field, `${field} is ${value.length} characters long; at most ${WEBHOOK_LIMITS.urlLength} are allowed.`);
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ValidationError(field, `${field} is not a URL: give an absolute http(s) URL, e.g. https://hooks.example.com/dagpipe.`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ValidationError(field, `${field} must be an http or https URL; "${url.protocol.slice(0, -1)}" is not supported.`);
  }
  if (url.hostname === '') throw new ValidationError(field, `${field} has no host name.`);
  if (url.username !== '' || url.password !== '') {
    throw new ValidationError(
      field,
      `${field} must not contain a user name or password: the URL is shown to every admin. Set a secret instead: each delivery is signed with it (X-Dagpipe-Signature-256), and the receiver checks the signature.`,
    );
  }
  if (url.hash !== '') throw new ValidationError(field, `${field} must not have a fragment (#${url.hash.slice(1)}): it is never sent to the receiver.`);
  return url;
}

/** A signing secret: 16 to 256 characters, one line, no whitespace at either end (easily lost when pasted). */
export function requireWebhookSecret(field: string, secret: string): string {
  const length = [...secret].length;
  if (length < WEBHOOK_LIMITS.secretMin || length > WEBHOOK_LIMITS.secretMax) {
    throw new ValidationError(
      field,
      `${field} is ${length} characters long; it must have ${WEBHOOK_LIMITS.secretMin} to ${WEBHOOK_LIMITS.secretMax} (e.g. the output of: openssl rand -hex 32).`,
    );
  }
  if (secret.trim() !== secret) throw new ValidationError(field, `${field} starts or ends with whitespace, which is easily lost when the receiver is set up; remove it.`);
  if (/[\u0000-\u001f\u007f]/.test(secret)) throw new ValidationError(field, `${field} must be one line without control characters.`);
  if (/\p{Surrogate}/u.test(secret)) throw new ValidationError(field, `${field} is not valid Unicode text.`);
  return secret;
}
