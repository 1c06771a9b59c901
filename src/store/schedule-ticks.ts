/**
 * What the scheduler writes (SPEC rule 16): a tick's outcome, once, whatever the number of
 * scheduler processes.
 *
 * A tick is claimed by inserting its schedule_tick row: the unique index on (schedule, tick
 * time) lets one insert win; on PostgreSQL a racing one waits for the winner's commit and
 * then inserts nothing. The claim, the overlap decision and the start (the pipeline with the
 * tick's idempotency key, its tracks and events) are one transaction, so a tick's row and its
 * pipeline commit together or not at all: there is never a STARTED tick without its pipeline,
 * nor a scheduled pipeline whose tick says otherwise. On PostgreSQL the transaction first
 * locks the schedule's row, so the ticks of one schedule are decided one at a time (the
 * overlap check sees the previous tick's pipeline). The idempotency key is the safety net
 * beneath: no second pipeline for a tick, even from a start that did not go through here.
 */
import { ACTIVE_PIPELINE_STATES } from '../engine/states.ts';
import { overlapAction, tickIdempotencyKey, type OverlapPolicy, type TickOutcome } from '../engine/schedule.ts';
import { DomainError } from '../errors.ts';
import { AlreadyStarted, pipelineStateName, rememberStarted, startWithin, type Started, type VertexParams } from './pipelines.ts';
import { rawSql, sql, type SqlRunner } from './sql.ts';
import { fastTransition, type Store } from './transaction.ts';

/** A schedule as the scheduler reads it. */
export interface DueSchedule {
  id: number;
  graphId: number;
  name: string;
  cron: string;
  timeZone: string;
  misfireGraceSeconds: number;
  since: Date;
  lastTickAt: Date | null;
}

/** The schedules that are not paused. */
export async function activeSchedules(store: Store): Promise<DueSchedule[]> {
  return store.db.schedule.findMany({
    where: { paused: false },
    select: { id: true, graphId: true, name: true, cron: true, timeZone: true, misfireGraceSeconds: true, since: true, lastTickAt: true },
    orderBy: { id: 'asc' },
  });
}

/** A tick row to record as it is (missed, or a start that was refused). */
export interface TickRecord {
  tickAt: Date;
  outcome: Exclude<TickOutcome, 'STARTED' | 'SKIPPED'>;
  count?: number;
  reason: string;
}

/** The latest tick handled moves forward only. */
function advance(runner: SqlRunner, scheduleId: number, tick: Date) {
  return runner.execute(sql`
    UPDATE "schedule" SET "lastTickAt" = ${tick}
    WHERE "id" = ${scheduleId} AND ("lastTickAt" IS NULL OR "lastTickAt" < ${tick})`);
}

/**
 * Records ticks that start nothing (missed, refused), each unless its tick has a row already;
 * returns those recorded here. A schedule deleted meanwhile records nothing.
 */
export async function recordTicks(store: Store, scheduleId: number, records: readonly TickRecord[]): Promise<TickRecord[]> {
  if (records.length === 0) return [];
  return store.fast.transaction(async (runner) => {
    const [exists] = await runner.query(sql`SELECT "id" FROM "schedule" WHERE "id" = ${scheduleId} ${forUpdate(runner)}`);
    if (!exists) return [];
    const recorded: TickRecord[] = [];
    const now = new Date();
    for (const record of records) {
      const [row] = await runner.query(sql`
        INSERT INTO "schedule_tick" ("s_id", "tickAt", "outcome", "count", "reason", "recordedAt")
        VALUES (${scheduleId}, ${record.tickAt}, ${record.outcome}, ${record.count ?? 1}, ${record.reason}, ${now})
        ON CONFLICT ("s_id", "tickAt") DO NOTHING
        RETURNING "id"`);
      if (row) recorded.push(record);
    }
    const latest = records.reduce((a, b) => (a.tickAt > b.tickAt ? a : b)).tickAt;
    await advance(runner, scheduleId, latest);
    return recorded;
  });
}

/** On PostgreSQL, locks the row read (the ticks of one schedule are decided one at a time). */
function forUpdate(runner: SqlRunner) {
  return rawSql(runner.provider === 'postgres' ? 'FOR UPDATE' : '');
}

/** What became of a tick this process handled; null: another process had it, or the schedule was paused or deleted meanwhile. */
export type TickResult =
  | { outcome: 'STARTED'; pipelineId: number; graphId: number; existing: boolean }
  | { outcome: 'SKIPPED'; reason: string; graphId: number }
  | { outcome: 'FAILED'; reason: string; graphId: number }
  | null;

/** Thrown inside the tick's transaction to roll it back: the tick is not this process's to handle. */
class NotOurs extends Error {
  constructor() {
    super('the tick was handled elsewhere');
  }
}

/**
 * Handles one due tick: claims it, and starts the schedule's graph with the tick's
 * idempotency key, unless its overlap policy says to skip it. A start the service refuses
 * (the graph is not checked, an input no longer fits it) is recorded FAILED with the reason.
 */
export async function handleTick(store: Store, scheduleId: number, tick: Date): Promise<TickResult> {
  const key = tickIdempotencyKey(scheduleId, tick);
  let graphId = 0;
  try {
    const { result } = await fastTransition(store, async (runner, journal) => {
      // Read in the transaction: paused, moved or deleted since the scheduler looked.
      const [schedule] = await runner.query(sql`
        SELECT "g_id", "inputs", "overlap", "paused" FROM "schedule" WHERE "id" = ${scheduleId} ${forUpdate(runner)}`);
      if (!schedule || isTrue(schedule.paused)) throw new NotOurs();
      graphId = Number(schedule.g_id);
      const [claimed] = await runner.query(sql`
        INSERT INTO "schedule_tick" ("s_id", "tickAt", "outcome", "recordedAt")
        VALUES (${scheduleId}, ${tick}, ${'STARTED'}, ${new Date()})
        ON CONFLICT ("s_id", "tickAt") DO NOTHING
        RETURNING "id"`);
      if (!claimed) throw new NotOurs();
      const tickId = Number(claimed.id);
      await advance(runner, scheduleId, tick);
      const [active] = await runner.query(sql`
        SELECT "id", "state" FROM "pipeline"
        WHERE "scheduleId" = ${scheduleId} AND "state" IN (${[...ACTIVE_PIPELINE_STATES]}) AND ("idempotencyKey" IS NULL OR "idempotencyKey" <> ${key})
        ORDER BY "id" DESC LIMIT 1`);
      const action = overlapAction(String(schedule.overlap) as OverlapPolicy, active !== undefined);
      if (action === 'skip') {
        const reason = `Pipeline ${Number(active!.id)} of this schedule is still ${pipelineStateName(Number(active!.state))} (overlap SKIP).`;
        await runner.execute(sql`UPDATE "schedule_tick" SET "outcome" = ${'SKIPPED'}, "reason" = ${reason} WHERE "id" = ${tickId}`);
        return { outcome: 'SKIPPED' as const, reason };
      }
      const started: Started = await startWithin(
        runner,
        journal,
        { graphId, inputs: JSON.parse(String(schedule.inputs)) as VertexParams[], scheduleId, queue: action === 'queue' },
        key,
      );
      const queued =
        action === 'queue' ? `Queued behind pipeline ${Number(active!.id)} of this schedule, still ${pipelineStateName(Number(active!.state))} (overlap QUEUE).` : null;
      await runner.execute(sql`UPDATE "schedule_tick" SET "p_id" = ${started.pipeline.id}, "reason" = ${queued} WHERE "id" = ${tickId}`);
      return { outcome: 'STARTED' as const, started };
    });
    if (result.outcome === 'SKIPPED') return { ...result, graphId };
    rememberStarted(store, result.started);
    return { outcome: 'STARTED', pipelineId: result.started.pipeline.id, graphId, existing: false };
  } catch (error) {
    if (error instanceof NotOurs) return null;
    if (error instanceof AlreadyStarted) return recordExisting(store, scheduleId, tick, graphId, key);
    if (!(error instanceof DomainError)) throw error;
    const reason = `The start was refused: ${error.message}`;
    const [recorded] = await recordTicks(store, scheduleId, [{ tickAt: tick, outcome: 'FAILED', reason }]);
    return recorded ? { outcome: 'FAILED', reason, graphId } : null;
  }
}

/**
 * The graph already has a pipeline with the tick's key (someone started it with that key by
 * hand): that pipeline is the tick's.
 */
async function recordExisting(store: Store, scheduleId: number, tick: Date, graphId: number, key: string): Promise<TickResult> {
  const pipeline = await store.db.pipeline.findFirst({ where: { graphId, idempotencyKey: key }, select: { id: true } });
  if (!pipeline) return null;
  const recorded = await store.fast.transaction(async (runner) => {
    const [row] = await runner.query(sql`
      INSERT INTO "schedule_tick" ("s_id", "tickAt", "outcome", "p_id", "recordedAt")
      VALUES (${scheduleId}, ${tick}, ${'STARTED'}, ${pipeline.id}, ${new Date()})
      ON CONFLICT ("s_id", "tickAt") DO NOTHING
      RETURNING "id"`);
    await advance(runner, scheduleId, tick);
    return row !== undefined;
  });
  return recorded ? { outcome: 'STARTED', pipelineId: pipeline.id, graphId, existing: true } : null;
}

function isTrue(value: unknown): boolean {
  return value === true || value === 1 || value === '1' || value === 't';
}

/** Keeps the latest `keep` ticks of each schedule; returns how many older ones were deleted. */
export async function pruneTicks(store: Store, keep: number): Promise<number> {
  const schedules = await store.db.scheduleTick.groupBy({ by: ['scheduleId'], _count: { _all: true }, having: { scheduleId: { _count: { gt: keep } } } });
  let deleted = 0;
  for (const { scheduleId } of schedules) {
    const oldestKept = await store.db.scheduleTick.findFirst({ where: { scheduleId }, orderBy: { tickAt: 'desc' }, skip: keep - 1, select: { tickAt: true } });
    if (!oldestKept) continue;
    deleted += (await store.db.scheduleTick.deleteMany({ where: { scheduleId, tickAt: { lt: oldestKept.tickAt } } })).count;
  }
  return deleted;
}

/** The database clock's offset from this process's, and how far the measurement may be off. */
export interface ClockOffset {
  /** How far the database's clock is ahead of this process's, in milliseconds. */
  offsetMs: number;
  /** Half the round trip of the measurement: the true offset lies within offsetMs ± this. */
  uncertaintyMs: number;
}

const CLOCK_SAMPLES = 5;

/**
 * The database clock's offset (PostgreSQL; none on SQLite, whose one process is the clock), so
 * schedulers on several hosts agree on when a tick is due whatever their own clocks say. The
 * database read its clock somewhere within the round trip; of several samples the one with
 * the shortest round trip is kept (as NTP does), since a busy process or server stretches
 * one side of a trip and skews that sample's estimate by up to half of it.
 */
export async function databaseClockOffset(store: Store): Promise<ClockOffset> {
  if (store.fast.provider !== 'postgres') return { offsetMs: 0, uncertaintyMs: 0 };
  let best: ClockOffset | undefined;
  for (let i = 0; i < CLOCK_SAMPLES; i++) {
    const before = Date.now();
    const [row] = await store.fast.transaction((runner) => runner.query(sql`SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS "ms"`));
    const after = Date.now();
    const sample = { offsetMs: Number(row!.ms) - (before + after) / 2, uncertaintyMs: (after - before) / 2 };
    if (!best || sample.uncertaintyMs < best.uncertaintyMs) best = sample;
  }
  return best!;
}
