/**
 * The scheduler (SPEC rule 16): runs beside the executor in every process that has one
 * (ROLE=all and ROLE=worker). Every one of them computes the due ticks of every schedule
 * that is not paused and races for them; a tick is handled once (store/schedule-ticks.ts:
 * the tick's row is the claim, and its pipeline carries the tick's idempotency key), so
 * more processes mean more availability, never a second run.
 *
 * Precision: the scheduler sleeps until the earliest next tick of all schedules, so a tick
 * starts within moments of its time; it also looks again every RELOAD_MS (whatever changed
 * in another process, should its NOTIFY have been lost) and at once when told a schedule
 * changed (in this process, or on PostgreSQL by NOTIFY). "Now" is the database's clock on
 * PostgreSQL (this process's clock plus the offset measured every OFFSET_MS), so schedulers
 * on hosts whose clocks differ agree on when a tick is due; the claim makes a disagreement
 * harmless anyway. It is the earliest the database's clock can read, the offset less its
 * measurement's uncertainty, so a tick never starts before its time (it may start that
 * uncertainty, a few milliseconds, late).
 *
 * Which ticks run and which are missed after downtime is engine/schedule.ts (planTicks).
 * A listener or a start that throws unexpectedly is logged and the scheduler goes on.
 */
import type { Logger } from '../logger.ts';
import { parseCron, planTicks, type CronSchedule, type TickOutcome, type TickPlan } from '../engine/schedule.ts';
import { activeSchedules, databaseClockOffset, handleTick, pruneTicks, recordTicks, type DueSchedule, type TickRecord } from '../store/schedule-ticks.ts';
import type { Store } from '../store/transaction.ts';

/** Told of every tick outcome this process recorded (metrics); `count` ticks at once for a summary of missed ones. */
export interface ScheduleObserver {
  scheduleTick(outcome: TickOutcome, count: number): void;
}

export interface SchedulerOptions {
  /** Milliseconds since the epoch (tests move it); default this process's clock, corrected to the database's. */
  clock?: () => number;
  /** Look at the schedules at least this often (default 5 s). */
  reloadMs?: number;
  observer?: ScheduleObserver;
}

const RELOAD_MS = 5_000;
/** How often the database clock's offset is measured again, and old ticks pruned. */
const OFFSET_MS = 60_000;
/** Ticks kept per schedule (the newest); older ones are deleted. */
export const TICK_HISTORY = 1000;

export class Scheduler {
  private stopped = true;
  private timer: NodeJS.Timeout | undefined;
  private maintenanceTimer: NodeJS.Timeout | undefined;
  private passing: Promise<void> | undefined;
  private maintaining: Promise<void> | undefined;
  private again = false;
  /** The database clock's offset less its uncertainty: the earliest the database's clock can read. */
  private offsetMs = 0;
  /** Parsed expressions by "cron\ntime zone"; a bad one (stored before a syntax change) is reported once. */
  private readonly parsed = new Map<string, CronSchedule | Error>();

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    private readonly options: SchedulerOptions = {},
  ) {}

  private now(): number {
    return this.options.clock ? this.options.clock() : Date.now() + this.offsetMs;
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.maintain();
    this.maintenanceTimer = setInterval(() => void this.maintain(), OFFSET_MS);
    this.changed();
  }

  /** A schedule changed: look at them all again now. */
  changed(): void {
    if (this.stopped) return;
    if (this.passing) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.again = false;
    this.passing = this.pass().finally(() => {
      this.passing = undefined;
      if (this.again) this.changed();
    });
  }

  /** Resolves once no pass is running (after changed(), the pass it started has ended). */
  async idle(): Promise<void> {
    while (this.passing) await this.passing;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.maintenanceTimer);
    await Promise.all([this.passing, this.maintaining]);
  }

  private maintain(): Promise<void> {
    this.maintaining ??= this.measureAndPrune().finally(() => (this.maintaining = undefined));
    return this.maintaining;
  }

  private async measureAndPrune(): Promise<void> {
    try {
      if (!this.options.clock) {
        const { offsetMs, uncertaintyMs } = await databaseClockOffset(this.store);
        this.offsetMs = offsetMs - uncertaintyMs;
      }
      const pruned = await pruneTicks(this.store, TICK_HISTORY);
      if (pruned > 0) this.log.debug({ pruned }, 'old schedule ticks deleted');
    } catch (error) {
      this.log.warn({ err: error }, 'schedule maintenance failed (database clock offset, old ticks); trying again later');
    }
  }

  private async pass(): Promise<void> {
    let wakeAt = this.now() + (this.options.reloadMs ?? RELOAD_MS);
    try {
      for (const schedule of await activeSchedules(this.store)) {
        if (this.stopped) return;
        const next = await this.handle(schedule);
        if (next !== null) wakeAt = Math.min(wakeAt, next.getTime());
      }
    } catch (error) {
      this.log.error({ err: error }, 'the scheduler could not look at the schedules; trying again shortly');
      wakeAt = Math.min(wakeAt, this.now() + 1000);
    }
    if (this.stopped) return;
    this.timer = setTimeout(() => this.changed(), Math.max(wakeAt - this.now(), 0));
  }

  /** Handles a schedule's due ticks; returns when its next tick is. */
  private async handle(schedule: DueSchedule): Promise<Date | null> {
    const cron = this.cronOf(schedule);
    if (cron === undefined) return null;
    const after = schedule.lastTickAt && schedule.lastTickAt > schedule.since ? schedule.lastTickAt : schedule.since;
    const now = new Date(this.now());
    const plan = planTicks({ schedule: cron, after, now, misfireGraceSeconds: schedule.misfireGraceSeconds });
    const log = this.log.child({ scheduleId: schedule.id, schedule: schedule.name, graphId: schedule.graphId });
    try {
      await this.recordMissed(schedule, plan, log);
      for (const tick of plan.run) await this.startTick(schedule, tick, log);
    } catch (error) {
      log.error({ err: error }, 'a schedule tick could not be handled; it is tried again shortly');
      return new Date(now.getTime() + 1000);
    }
    return plan.next;
  }

  private cronOf(schedule: DueSchedule): CronSchedule | undefined {
    const key = `${schedule.cron}\n${schedule.timeZone}`;
    let parsed = this.parsed.get(key);
    if (parsed === undefined) {
      try {
        parsed = parseCron('cron', schedule.cron, schedule.timeZone);
      } catch (error) {
        parsed = error as Error;
        this.log.warn({ scheduleId: schedule.id, cron: schedule.cron, timeZone: schedule.timeZone, err: error }, 'a schedule cannot run: its cron expression or time zone is no longer valid; change it with updateSchedule');
      }
      this.parsed.set(key, parsed);
    }
    return parsed instanceof Error ? undefined : parsed;
  }

  private async recordMissed(schedule: DueSchedule, plan: TickPlan, log: Logger): Promise<void> {
    if (plan.missed.length === 0 && plan.earlierMissed === null) return;
    const why =
      plan.run.length > 0
        ? `No scheduler was running at this tick's time; after downtime only the latest missed tick runs (${plan.run[0]!.toISOString()}).`
        : `No scheduler was running at this tick's time; when one was again, the latest missed tick was older than misfireGraceSeconds (${schedule.misfireGraceSeconds} s), so none ran.`;
    const records: TickRecord[] = plan.missed.map((tickAt) => ({ tickAt, outcome: 'MISSED', reason: why }));
    const earlier = plan.earlierMissed;
    if (earlier) {
      records.unshift({
        tickAt: earlier.first,
        outcome: 'MISSED',
        count: earlier.count,
        reason: `${earlier.atLeast ? 'At least ' : ''}${earlier.count} ticks from ${earlier.first.toISOString()} to ${earlier.last.toISOString()} were missed (no scheduler was running); they are counted in this one entry rather than listed.`,
      });
    }
    const recorded = await recordTicks(this.store, schedule.id, records);
    const count = recorded.reduce((n, r) => n + (r.count ?? 1), 0);
    if (count === 0) return;
    this.options.observer?.scheduleTick('MISSED', count);
    log.warn({ missed: count, first: recorded[0]!.tickAt.toISOString(), last: recorded.at(-1)!.tickAt.toISOString() }, 'schedule ticks missed while no scheduler was running');
  }

  private async startTick(schedule: DueSchedule, tick: Date, log: Logger): Promise<void> {
    const result = await handleTick(this.store, schedule.id, tick);
    if (result === null) return;
    this.options.observer?.scheduleTick(result.outcome, 1);
    const fields = { tick: tick.toISOString(), graphId: result.graphId, lateMs: Math.round(this.now() - tick.getTime()) };
    if (result.outcome === 'STARTED') log.info({ ...fields, pipelineId: result.pipelineId }, 'schedule tick started a pipeline');
    else if (result.outcome === 'SKIPPED') log.info({ ...fields, reason: result.reason }, 'schedule tick skipped');
    // The operator's graph problem, not the service's fault.
    else log.warn({ ...fields, reason: result.reason }, 'schedule tick could not start its graph');
  }
}
