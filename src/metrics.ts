/**
 * Prometheus metrics at /metrics (prom-client). Counts that live in the database (tracks
 * by state, the queue) are read when scraped, so they are right whichever executor
 * process changed them; timings are observed by this process's executor as they happen.
 * One registry per app: several apps in one process (tests) keep their own.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Db } from './db.ts';
import { TICK_OUTCOMES } from './engine/schedule.ts';
import type { ScheduleObserver } from './scheduler/scheduler.ts';
import { PipelineState, TrackState, trackStateName } from './engine/states.ts';
import { DeliveryState } from './engine/webhook-attempts.ts';
import type { WebhookObserver } from './webhooks/deliverer.ts';

/** What the executor reports as it runs tracks. */
export interface ExecutorObserver {
  /** From the commit that made a track ready to its process start. */
  dispatched(seconds: number): void;
  /** A script ended: how long it ran and how its track ended. */
  finished(seconds: number, outcome: 'succeeded' | 'failed'): void;
  /** A failed attempt was put back to run again by itself (SPEC rule 13). */
  retried(): void;
}

/** Told of pipelines deleted (SPEC rule 17): by retention, or by an admin's deletePipeline. */
export interface DeletionObserver {
  pipelinesDeleted(by: 'retention' | 'admin', count: number): void;
}

export interface Metrics extends ExecutorObserver, ScheduleObserver, DeletionObserver, WebhookObserver {
  readonly registry: Registry;
  /** A subscription event delivered; `executed` false when it reused another subscriber's execution. */
  subscriptionEvent(executed: boolean): void;
  /** The exposition text and its content type. */
  render(): Promise<{ body: string; contentType: string }>;
}

export interface MetricsSources {
  db: Db;
  runningTracks(): number;
  subscriptions(): number;
  /** Live messages this process could not publish (Redis away). */
  busPublishFailures(): number;
  webSocketConnections(): number;
}

const PIPELINE_STATE_NAMES = Object.fromEntries(Object.entries(PipelineState).map(([name, value]) => [value, name]));

export function createMetrics(sources: MetricsSources): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'dagpipe_' });

  new Gauge({
    name: 'dagpipe_tracks',
    help: 'Tracks by state, all pipelines (read from the database when scraped).',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const rows = await sources.db.track.groupBy({ by: ['state'], _count: { _all: true } });
      const counts = new Map(rows.map((r) => [r.state, r._count._all]));
      for (const state of Object.values(TrackState)) this.set({ state: trackStateName(state) }, counts.get(state) ?? 0);
    },
  });

  new Gauge({
    name: 'dagpipe_pipelines',
    help: 'Pipelines by state (read from the database when scraped).',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const rows = await sources.db.pipeline.groupBy({ by: ['state'], _count: { _all: true } });
      const counts = new Map(rows.map((r) => [r.state, r._count._all]));
      for (const state of Object.values(PipelineState)) this.set({ state: PIPELINE_STATE_NAMES[state]! }, counts.get(state) ?? 0);
    },
  });

  new Gauge({
    name: 'dagpipe_queued_pipeline_wait_seconds',
    help: "How long the oldest QUEUED pipeline has waited for a slot of its graph's maxConcurrentPipelines (0 when none is queued).",
    registers: [registry],
    async collect() {
      const oldest = await sources.db.pipeline.aggregate({ where: { state: PipelineState.QUEUED }, _min: { queuedAt: true } });
      const since = oldest._min.queuedAt;
      this.set(since ? Math.max(0, (Date.now() - since.getTime()) / 1000) : 0);
    },
  });

  new Gauge({
    name: 'dagpipe_queue_depth',
    help: 'Tracks ready to run (PENDING, inputs resolved, no retry delay left to wait, pipeline RUNNING) waiting for a free worker.',
    registers: [registry],
    async collect() {
      this.set(
        await sources.db.track.count({
          where: {
            state: TrackState.PENDING,
            script: { not: null },
            // A failed pipeline still runs its handlers (SPEC rule 19).
            pipeline: { state: { in: [PipelineState.RUNNING, PipelineState.FAILED] } },
            OR: [{ notBefore: null }, { notBefore: { lte: new Date() } }],
          },
        }),
      );
    },
  });

  new Gauge({
    name: 'dagpipe_running_tracks',
    help: 'Scripts this process is running now.',
    registers: [registry],
    collect() {
      this.set(sources.runningTracks());
    },
  });

  new Gauge({
    name: 'dagpipe_subscriptions',
    help: 'Live GraphQL subscriptions (graphql-ws and SSE) open now.',
    registers: [registry],
    collect() {
      this.set(sources.subscriptions());
    },
  });

  new Gauge({
    name: 'dagpipe_websocket_connections',
    help: 'graphql-ws connections open now.',
    registers: [registry],
    collect() {
      this.set(sources.webSocketConnections());
    },
  });

  new Counter({
    name: 'dagpipe_bus_publish_failures_total',
    help: 'Live updates this process could not publish to Redis (it was away); subscribers caught up from the database instead.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(sources.busPublishFailures());
    },
  });

  const dispatchLatency = new Histogram({
    name: 'dagpipe_dispatch_latency_seconds',
    help: 'From the commit that made a track ready to its script process starting.',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });

  const trackDuration = new Histogram({
    name: 'dagpipe_track_duration_seconds',
    help: 'How long scripts ran, by how their track ended.',
    labelNames: ['outcome'],
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600],
    registers: [registry],
  });

  const retries = new Counter({
    name: 'dagpipe_track_retries_total',
    help: 'Failed track attempts this process put back to run again by themselves (vertex retries): non-zero exit, timeout, could not start, or their worker died.',
    registers: [registry],
  });

  const scheduleTicks = new Counter({
    name: 'dagpipe_schedule_ticks_total',
    help: 'Schedule ticks this process recorded, by outcome: started a pipeline, skipped (the previous run still active), missed (no scheduler was running), failed (the start was refused).',
    labelNames: ['outcome'],
    registers: [registry],
  });
  // Every outcome from the start, at 0: a rate over a counter that appears late misses its first increase.
  for (const outcome of TICK_OUTCOMES) scheduleTicks.inc({ outcome: outcome.toLowerCase() }, 0);
  const deleted = new Counter({
    name: 'dagpipe_pipelines_deleted_total',
    help: 'Pipelines this process deleted with everything of theirs, by who: retention (RETENTION_DAYS) or an admin (deletePipeline).',
    labelNames: ['by'],
    registers: [registry],
  });
  // Both series from the start, so that a rate over them never begins with a gap.
  deleted.inc({ by: 'retention' }, 0);
  deleted.inc({ by: 'admin' }, 0);
  new Gauge({
    name: 'dagpipe_webhook_deliveries_pending',
    help: 'Webhook deliveries not delivered yet and still to be attempted (PENDING; read from the database when scraped).',
    registers: [registry],
    async collect() {
      this.set(await sources.db.webhookDelivery.count({ where: { state: DeliveryState.PENDING } }));
    },
  });

  const webhookAttempts = new Counter({
    name: 'dagpipe_webhook_deliveries_total',
    help: 'Webhook delivery attempts this process made, by outcome: delivered (a 2xx answer), failed_attempt (retried later), gave_up (the last one failed: the delivery is FAILED).',
    labelNames: ['outcome'],
    registers: [registry],
  });
  for (const outcome of ['delivered', 'failed_attempt', 'gave_up']) webhookAttempts.inc({ outcome }, 0);

  // Counted once per subscriber and event, a million times in a big fan-out: plain numbers,
  // handed to the counter when scraped (its inc hashes the labels on every call).
  const delivered = { executed: 0, shared: 0 };
  new Counter({
    name: 'dagpipe_subscription_events_total',
    help: 'Events delivered to subscribers, by whether they were executed for that subscriber or shared with another of the same operation.',
    labelNames: ['execution'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [execution, count] of Object.entries(delivered)) this.inc({ execution }, count);
    },
  });

  return {
    registry,
    subscriptionEvent: (executed) => {
      if (executed) delivered.executed++;
      else delivered.shared++;
    },
    dispatched: (seconds) => dispatchLatency.observe(seconds),
    finished: (seconds, outcome) => trackDuration.observe({ outcome }, seconds),
    retried: () => retries.inc(),
    scheduleTick: (outcome, count) => scheduleTicks.inc({ outcome: outcome.toLowerCase() }, count),
    pipelinesDeleted: (by, count) => deleted.inc({ by }, count),
    webhookAttempt: (outcome) => webhookAttempts.inc({ outcome }),
    async render() {
      return { body: await registry.metrics(), contentType: registry.contentType };
    },
  };
}
