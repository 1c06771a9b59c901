/** Validation of plain text and number fields of mutations. Pure. */
import { ValidationError } from '../errors.ts';
import { MAX_RETRIES, MAX_RETRY_BACKOFF, MAX_RETRY_DELAY_SECONDS } from './retry-policy.ts';

export const LIMITS = {
  graphName: 48,
  graphDesc: 100,
  vertexName: 48,
  pipelineName: 48,
  pipelineDesc: 100,
  idempotencyKey: 200,
  scriptBytes: 64 * 1024,
  maxTimeoutSeconds: 7 * 24 * 3600,
} as const;

// Control characters other than tab make names unreadable in UIs and logs.
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/**
 * A lone UTF-16 surrogate (half of a pair, e.g. "\ud800") is not Unicode text: it cannot be
 * stored (the database layer refuses it as invalid UTF-8) nor handed to a script.
 */
const LONE_SURROGATE = /\p{Surrogate}/u;

/** Whether `value` has a lone surrogate, i.e. is not well-formed Unicode. */
export function hasLoneSurrogate(value: string): boolean {
  return LONE_SURROGATE.test(value);
}

/** @throws ValidationError naming `field` if `value` is not well-formed Unicode. */
export function requireUnicode(field: string, value: string): string {
  if (hasLoneSurrogate(value)) {
    throw new ValidationError(field, `${field} is not valid Unicode text: it contains a lone surrogate (half of a UTF-16 pair).`);
  }
  return value;
}

/** A required, trimmed, single-line name of at most `max` characters. */
export function requireName(field: string, value: string, max: number): string {
  const name = value.trim();
  if (name === '') throw new ValidationError(field, `${field} must not be empty.`);
  if (name.length > max) throw new ValidationError(field, `${field} is ${name.length} characters long; at most ${max} are allowed.`);
  if (CONTROL.test(name)) throw new ValidationError(field, `${field} must be a single line without control characters.`);
  return requireUnicode(field, name);
}

/** An optional description; empty means none. */
export function optionalText(field: string, value: string | null | undefined, max: number): string | null {
  if (value === undefined || value === null) return null;
  const text = value.trim();
  if (text.length > max) throw new ValidationError(field, `${field} is ${text.length} characters long; at most ${max} are allowed.`);
  // PostgreSQL cannot store NUL in text: refused here for both databases alike.
  if (text.includes('\u0000')) throw new ValidationError(field, `${field} must not contain NUL characters.`);
  return text === '' ? null : requireUnicode(field, text);
}

export function requireScript(field: string, value: string): string {
  const bytes = Buffer.byteLength(value);
  if (bytes > LIMITS.scriptBytes) {
    throw new ValidationError(field, `The script is ${bytes} bytes; at most ${LIMITS.scriptBytes} are allowed. Put large logic in a file the script calls.`);
  }
  if (value.includes('\u0000')) throw new ValidationError(field, 'The script must not contain NUL characters.');
  return requireUnicode(field, value);
}

export function requireTimeout(field: string, seconds: number): number {
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > LIMITS.maxTimeoutSeconds) {
    throw new ValidationError(field, `${field} must be a whole number of seconds from 1 to ${LIMITS.maxTimeoutSeconds}.`);
  }
  return seconds;
}

/**
 * A startPipeline idempotency key (SPEC rule 15): opaque, compared exactly (not trimmed), so
 * it must be non-empty, single-line text of at most LIMITS.idempotencyKey characters.
 */
export function requireIdempotencyKey(field: string, value: string): string {
  if (value.trim() === '') throw new ValidationError(field, `${field} must not be empty: pass a key that names this start, e.g. "nightly-2026-12-02", or leave it out.`);
  if (value.length > LIMITS.idempotencyKey) {
    throw new ValidationError(field, `${field} is ${value.length} characters long; at most ${LIMITS.idempotencyKey} are allowed. Use a shorter key (a hash of a long one works).`);
  }
  if (CONTROL.test(value)) throw new ValidationError(field, `${field} must be a single line without control characters.`);
  return requireUnicode(field, value);
}

/** SPEC rule 13: how many automatic retries a vertex has. */
export function requireRetries(field: string, retries: number): number {
  if (!Number.isInteger(retries) || retries < 0 || retries > MAX_RETRIES) {
    throw new ValidationError(field, `${field} must be a whole number from 0 (no automatic retry) to ${MAX_RETRIES}; got ${retries}.`);
  }
  return retries;
}

/** The wait before the first retry: whole seconds, at most the cap every retry keeps to. */
export function requireRetryDelay(field: string, seconds: number): number {
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > MAX_RETRY_DELAY_SECONDS) {
    throw new ValidationError(field, `${field} must be a whole number of seconds from 0 to ${MAX_RETRY_DELAY_SECONDS}; got ${seconds}.`);
  }
  return seconds;
}

/** The factor each further retry's delay grows by: 1 (a fixed delay) to MAX_RETRY_BACKOFF. */
export function requireRetryBackoff(field: string, factor: number): number {
  if (!Number.isFinite(factor) || factor < 1 || factor > MAX_RETRY_BACKOFF) {
    throw new ValidationError(field, `${field} must be a number from 1 (the same delay each time) to ${MAX_RETRY_BACKOFF}; got ${factor}.`);
  }
  return factor;
}
