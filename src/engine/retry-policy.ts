/**
 * A vertex's automatic retries (SPEC rule 13): how many, and how long each waits. Pure; the
 * decision to retry is transitions.ts's afterFailedAttempt.
 */

/** A vertex's automatic retries (SPEC rule 13). */
export interface RetryPolicy {
  /** How many times a failed attempt is retried, 0 to MAX_RETRIES. */
  retries: number;
  /** The wait before the first retry, in seconds. */
  retryDelaySeconds: number;
  /** Each further retry waits this many times longer than the one before. */
  retryBackoff: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { retries: 0, retryDelaySeconds: 10, retryBackoff: 2 };
export const MAX_RETRIES = 10;
/** No retry waits longer than this, whatever the backoff. */
export const MAX_RETRY_DELAY_SECONDS = 3600;
/** The largest backoff factor accepted (10 retries at x10 would pass the cap anyway). */
export const MAX_RETRY_BACKOFF = 10;

/**
 * The wait before retry number `retry` (1 for the first): retryDelaySeconds *
 * retryBackoff^(retry - 1), at most MAX_RETRY_DELAY_SECONDS.
 */
export function retryDelaySeconds(policy: RetryPolicy, retry: number): number {
  return Math.min(MAX_RETRY_DELAY_SECONDS, policy.retryDelaySeconds * policy.retryBackoff ** (retry - 1));
}
