/**
 * The webhook deliverer (SPEC rule 20): in every process that runs an executor (ROLE=all
 * and worker), it claims due deliveries from the outbox (store/webhooks.ts), POSTs them
 * (send.ts) and records each attempt. Woken after a commit of this process that queued
 * deliveries, by hints from other processes (a NOTIFY on PostgreSQL, store/work-listener.ts),
 * at the time of a retry it scheduled, and by a poll (POLL_INTERVAL_MS), the fallback that
 * also finds the retries other processes scheduled and the leases of dead ones that ran out.
 *
 * At most CONCURRENCY attempts at once per process. Each claim holds a lease of twice the
 * request timeout: an attempt always ends (its deadline) well within it, so no other process
 * attempts the same delivery meanwhile; one that dies mid-attempt lets it go when the lease
 * ends. Delivery is at least once: a receiver may get the same delivery id twice (the
 * process died after the receiver answered, before the result was written).
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { AllowList } from '../engine/webhook-address.ts';
import { afterFailedAttempt, DeliveryState, type RetrySchedule } from '../engine/webhook-attempts.ts';
import type { Logger } from '../logger.ts';
import { claimDeliveries, recordAttempt, releaseClaims, type AttemptRecord, type ClaimedDelivery } from '../store/webhooks.ts';
import type { Store } from '../store/transaction.ts';
import { sendDelivery } from './send.ts';

/** What the deliverer reports as it goes (metrics). */
export interface WebhookObserver {
  /** One attempt ended: delivered, failed and retried later, or failed for the last time. */
  webhookAttempt(outcome: 'delivered' | 'failed_attempt' | 'gave_up'): void;
}

export interface DelivererOptions {
  allowList: AllowList;
  timeoutMs: number;
  schedule: RetrySchedule;
  pollMs: number;
  observer?: WebhookObserver;
}

/** Attempts one process makes at once. */
export const CONCURRENCY = 8;

/** The longest a retry timer is set for; later ones are found by the poll. */
const MAX_TIMER_MS = 60_000;
/** Retry times kept for timers; beyond them, the poll. */
const MAX_RETRY_TIMES = 10_000;

export class WebhookDeliverer {
  /** This process's claims carry it (lockedBy): host and pid, to tell who holds one, and a unique part. */
  readonly owner = `${hostname()}/${process.pid}/${randomUUID()}`;
  private readonly inFlight = new Map<number, { abort: AbortController; done: Promise<void> }>();
  private pollTimer: NodeJS.Timeout | undefined;
  private retryTimer: { at: number; timer: NodeJS.Timeout } | undefined;
  /** When retries this process scheduled fall due, earliest first. */
  private readonly retryTimes: number[] = [];
  private pumping = false;
  private pumpAgain = false;
  private stopped = true;

  constructor(
    private readonly store: Store,
    private readonly options: DelivererOptions,
    private readonly log: Logger,
  ) {}

  private get leaseMs(): number {
    return 2 * this.options.timeoutMs;
  }

  start(): void {
    this.stopped = false;
    this.pollTimer = setInterval(() => this.wake(), this.options.pollMs);
    this.pollTimer.unref();
    this.wake();
  }

  /** Deliveries may be due (queued here or elsewhere, a webhook enabled). */
  hint(): void {
    this.wake();
  }

  /** Attempts in progress in this process. */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Ends the attempts in progress and gives their deliveries back, due at once for any process. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.pollTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer.timer);
    for (const { abort } of this.inFlight.values()) abort.abort();
    await Promise.all([...this.inFlight.values()].map((attempt) => attempt.done));
  }

  private wake(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        for (;;) {
          const free = CONCURRENCY - this.inFlight.size;
          if (free <= 0 || this.stopped) break;
          const claimed = await claimDeliveries(this.store.db, this.store.fast.provider, this.owner, free, this.leaseMs);
          for (const delivery of claimed) this.attempt(delivery);
          if (claimed.length < free) break;
        }
      } while (this.pumpAgain && !this.stopped);
    } catch (error) {
      this.log.warn({ err: error }, 'could not claim webhook deliveries; trying again at the next poll');
    } finally {
      this.pumping = false;
    }
  }

  private attempt(delivery: ClaimedDelivery): void {
    const abort = new AbortController();
    const done = this.deliver(delivery, abort.signal)
      .catch((error: unknown) => {
        // The database, most likely: the claim's lease runs out and the delivery is attempted again.
        this.log.warn({ err: error, deliveryId: delivery.deliveryId }, 'could not record a webhook attempt; it is made again after its lease');
      })
      .finally(() => {
        this.inFlight.delete(delivery.id);
        this.wake();
      });
    this.inFlight.set(delivery.id, { abort, done });
  }

  private async deliver(delivery: ClaimedDelivery, signal: AbortSignal): Promise<void> {
    const result = await sendDelivery(delivery, { allowList: this.options.allowList, timeoutMs: this.options.timeoutMs, signal });
    const fields = {
      deliveryId: delivery.deliveryId,
      event: delivery.event,
      // The host only: a URL's path and query may be a secret of their own (a chat service's hook token).
      host: URL.canParse(delivery.url) ? new URL(delivery.url).host : undefined,
      attempt: delivery.attempt,
      statusCode: result.statusCode ?? undefined,
      durationMs: result.durationMs,
    };
    if (result.aborted) {
      await releaseClaims(this.store.db, this.store.fast.provider, this.owner, [delivery.id]);
      return;
    }
    let record: AttemptRecord;
    let outcome: 'delivered' | 'failed_attempt' | 'gave_up';
    const base = { statusCode: result.statusCode, durationMs: result.durationMs, responseBody: result.responseBody, error: result.error };
    if (result.delivered) {
      record = { ...base, state: DeliveryState.DELIVERED };
      outcome = 'delivered';
    } else {
      const next = afterFailedAttempt(this.options.schedule, delivery.attempt, delivery.createdAt, new Date(), Math.random());
      if ('retryAt' in next) {
        record = { ...base, state: DeliveryState.PENDING, retryAt: next.retryAt };
        outcome = 'failed_attempt';
      } else {
        record = { ...base, state: DeliveryState.FAILED };
        outcome = 'gave_up';
      }
    }
    const recorded = await recordAttempt(this.store.db, this.store.fast.provider, this.owner, delivery, record);
    if (!recorded) {
      this.log.warn(fields, 'webhook attempt outlived its lease and another process took the delivery over; its result is not recorded');
      return;
    }
    this.options.observer?.webhookAttempt(outcome);
    if (outcome === 'delivered') this.log.info(fields, 'webhook delivered');
    else if (outcome === 'gave_up') this.log.warn({ ...fields, error: result.error }, 'webhook delivery failed for the last time: it is FAILED (no more retries)');
    else this.log.warn({ ...fields, error: result.error, retryAt: record.retryAt!.toISOString() }, 'webhook attempt failed; it will be retried');
    if (record.retryAt) this.wakeAt(record.retryAt);
  }

  /** Claims again when each retry this process scheduled falls due: one timer, for the earliest. */
  private wakeAt(at: Date): void {
    const when = at.getTime();
    if (this.stopped || when - Date.now() > MAX_TIMER_MS) return;
    if (this.retryTimes.length >= MAX_RETRY_TIMES) return; // the poll finds the rest
    this.retryTimes.push(when);
    this.retryTimes.sort((a, b) => a - b);
    this.armRetryTimer();
  }

  private armRetryTimer(): void {
    const next = this.retryTimes[0];
    if (next === undefined || this.stopped) return;
    if (this.retryTimer && this.retryTimer.at <= next) return;
    if (this.retryTimer) clearTimeout(this.retryTimer.timer);
    const timer = setTimeout(() => {
      this.retryTimer = undefined;
      const now = Date.now();
      while (this.retryTimes.length > 0 && this.retryTimes[0]! <= now) this.retryTimes.shift();
      this.wake();
      this.armRetryTimer();
    }, Math.max(0, next - Date.now()));
    timer.unref();
    this.retryTimer = { at: next, timer };
  }
}
