/**
 * A delivery's attempts (SPEC rule 20), pure: the signature, what an answer means, and
 * when a failed attempt is tried again.
 *
 * Retries: after failed attempt n the next one waits base * 2^(n-1), at most an hour, with
 * jitter (a random half of it is taken off, so that deliveries failing together do not come
 * back together). A delivery is retried while the next attempt would start within the retry
 * window (a day by default) of the event; then it is FAILED. The first attempt is always
 * made, however late (a webhook disabled for longer than the window, say).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { STATUS_CODES } from 'node:http';

/** Delivery states, as stored in webhook_delivery.state. */
export const DeliveryState = {
  PENDING: 1,
  DELIVERED: 3,
  FAILED: 4,
} as const;
export type DeliveryState = (typeof DeliveryState)[keyof typeof DeliveryState];

export const SIGNATURE_HEADER = 'X-Dagpipe-Signature-256';

/** GitHub's scheme: `sha256=` and the hex HMAC-SHA256 of the exact body bytes, keyed with the secret. */
export function signature(secret: string, body: string | Uint8Array): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** What a receiver does: compares the header with the signature of the body it got, in constant time. */
export function verifySignature(secret: string, body: string | Uint8Array, header: string | undefined | null): boolean {
  if (!header) return false;
  const expected = Buffer.from(signature(secret, body));
  const given = Buffer.from(header);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export interface RetrySchedule {
  /** The wait after the first failed attempt; each further one waits twice as long. */
  baseMs: number;
  /** No wait is longer than this. */
  capMs: number;
  /** No attempt starts later than this after the event. */
  windowMs: number;
}

export const DEFAULT_RETRY_SCHEDULE: RetrySchedule = { baseMs: 10_000, capMs: 3_600_000, windowMs: 86_400_000 };

/** The wait after failed attempt `attempts` before jitter: base * 2^(attempts-1), capped. */
export function nominalDelayMs(schedule: RetrySchedule, attempts: number): number {
  return Math.min(schedule.capMs, schedule.baseMs * 2 ** Math.min(Math.max(attempts - 1, 0), 40));
}

/**
 * After failed attempt number `attempts` (1 for the first) at `now`, of a delivery whose
 * event happened at `since`: when to try again, or give up. `random` in [0, 1) is the jitter.
 */
export function afterFailedAttempt(
  schedule: RetrySchedule,
  attempts: number,
  since: Date,
  now: Date,
  random: number,
): { retryAt: Date } | { giveUp: true } {
  const nominal = nominalDelayMs(schedule, attempts);
  const delay = Math.round(nominal * (1 - random / 2));
  const retryAt = new Date(now.getTime() + delay);
  return retryAt.getTime() - since.getTime() > schedule.windowMs ? { giveUp: true } : { retryAt };
}

/** How a 3xx answer reads: webhooks never follow redirects (the target was not checked). */
export function redirectMessage(status: number, location: string | undefined): string {
  const to = location ? ` to ${location}` : '';
  return `The receiver answered HTTP ${status} (${STATUS_CODES[status] ?? 'redirect'}), a redirect${to}. Webhooks do not follow redirects: register the URL it points to.`;
}

/** What an answer means: delivered on 2xx, else a failed attempt with the reason. */
export function answerOutcome(status: number, location?: string): { delivered: true } | { delivered: false; error: string } {
  if (status >= 200 && status < 300) return { delivered: true };
  if (status >= 300 && status < 400) return { delivered: false, error: redirectMessage(status, location) };
  return { delivered: false, error: `The receiver answered HTTP ${status} (${STATUS_CODES[status] ?? 'unknown status'}); only a 2xx answer counts as delivered.` };
}

/** The most of an answer's body kept in the log. */
export const RESPONSE_BODY_BYTES = 1024;

/**
 * The first RESPONSE_BODY_BYTES of a body as text: a character cut at the end, invalid
 * UTF-8, and NUL (which PostgreSQL cannot store) become U+FFFD.
 */
export function responseBodyText(bytes: Uint8Array): string {
  return Buffer.from(bytes.subarray(0, RESPONSE_BODY_BYTES)).toString('utf8').replaceAll('\u0000', '\ufffd');
}
