/**
 * Schedules (SPEC rule 16), pure: a cron expression read in an IANA time zone (croner does
 * the calendar arithmetic), and which ticks are due at a given moment. No clock is read
 * here: the caller passes `now`, so tests can stand at any instant (a daylight-saving
 * change, the end of an outage) without waiting.
 *
 * Ticks after `after` (the latest tick handled, or the moment the schedule was created,
 * resumed, or given a new cron expression or time zone) and at most `now` are due:
 * - a due tick at most ON_TIME_SECONDS old is on time: the scheduler woke a little late
 *   (a busy event loop, a slow database), which is not downtime, so every such tick runs;
 * - otherwise the ticks passed while no scheduler ran: only the latest runs, and only if it
 *   is at most misfireGraceSeconds old; the others are missed. The missed ticks of a long
 *   outage are not listed one by one: the latest MAX_LISTED_MISSED are, and one entry counts
 *   those before them (a per-second schedule down for a day would otherwise write 86,400
 *   rows), counting at most MAX_COUNTED_MISSED of them (enumerating a tick costs tens of
 *   microseconds).
 *
 * Daylight saving: croner works in the schedule's zone. A time that does not exist (the
 * spring gap) runs at the first time after the gap; a time that occurs twice (autumn) runs
 * once, at its first occurrence; expressions with a wildcard or a step in the second,
 * minute or hour field (`*\/15 * * * *`, `0 * * * *`) follow real time, so an hourly
 * schedule runs once per real hour, 23 times on the spring day and 25 on the autumn one.
 */
import { Cron } from 'croner';
import { ValidationError } from '../errors.ts';

export const OVERLAP_POLICIES = ['SKIP', 'ALLOW', 'QUEUE'] as const;
/** What a tick does while the schedule's previous run is still QUEUED or RUNNING. */
export type OverlapPolicy = (typeof OVERLAP_POLICIES)[number];

export const TICK_OUTCOMES = ['STARTED', 'SKIPPED', 'MISSED', 'FAILED'] as const;
export type TickOutcome = (typeof TICK_OUTCOMES)[number];

export const DEFAULT_TIME_ZONE = 'UTC';
export const DEFAULT_MISFIRE_GRACE_SECONDS = 300;
export const MAX_MISFIRE_GRACE_SECONDS = 7 * 24 * 3600;
/** A due tick at most this old is on time (see above): it runs, whatever the grace. */
export const ON_TIME_SECONDS = 5;
/** Missed ticks listed one by one; those before them are counted in one entry. */
export const MAX_LISTED_MISSED = 10;
/** Missed ticks counted one by one at most; beyond, the count says "at least". */
export const MAX_COUNTED_MISSED = 1000;

const CRON_EXAMPLES =
  'e.g. "30 2 * * *" (02:30 every day), "*/15 * * * *" (every 15 minutes), "0 9 * * MON-FRI" (09:00 on weekdays), ' +
  '"*/10 * * * * *" (six fields, seconds first: every 10 seconds) or a name: @hourly, @daily, @weekly, @monthly, @yearly';

/** A parsed cron expression in its time zone. */
export interface CronSchedule {
  readonly cron: string;
  readonly timeZone: string;
  /** The first tick strictly after `after`, or null if there is none. */
  next(after: Date): Date | null;
  /** Up to `n` ticks at or before `at`, newest first. */
  previous(n: number, at: Date): Date[];
}

/**
 * An IANA time zone name, as the runtime's time zone database knows it, in its canonical
 * spelling ("europe/berlin" becomes "Europe/Berlin"). UTC offsets such as "+01:00" are
 * refused: an offset does not follow daylight saving.
 * @throws ValidationError naming `field`.
 */
export function requireTimeZone(field: string, value: string): string {
  const name = value.trim();
  const hint = 'Use an IANA time zone name, e.g. "UTC", "Europe/Berlin" or "America/New_York".';
  if (name === '') throw new ValidationError(field, `${field} must not be empty. ${hint}`);
  if (/^[+-]|^(UTC|GMT)[+-]/i.test(name)) {
    throw new ValidationError(field, `${field} "${name}" is a UTC offset, which does not follow daylight saving. ${hint}`);
  }
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    throw new ValidationError(field, `${field} "${name}" is not a time zone this service knows. ${hint}`);
  }
}

/**
 * Parses a cron expression: five fields (minute hour day-of-month month day-of-week), six
 * with seconds first, or a name (@hourly, @daily, @midnight, @weekly, @monthly, @yearly,
 * @annually). The time zone must be valid already (requireTimeZone).
 * @throws ValidationError naming `field` with what is wrong and an example.
 */
export function parseCron(field: string, cron: string, timeZone: string): CronSchedule {
  const text = cron.trim().replace(/\s+/g, ' ');
  if (text === '') throw new ValidationError(field, `${field} must not be empty: give a cron expression, ${CRON_EXAMPLES}.`);
  const fields = text.split(' ');
  if (!text.startsWith('@') && fields.length !== 5 && fields.length !== 6) {
    throw new ValidationError(
      field,
      `${field} "${text}" has ${fields.length} field(s); a cron expression has five (minute hour day-of-month month day-of-week) or six (seconds first), ${CRON_EXAMPLES}.`,
    );
  }
  let job: Cron;
  try {
    // "no-wildcard": a time given by values (lists and ranges too, "30 2,14 * * *") runs
    // once when daylight saving repeats it; croner's default would run a list twice.
    job = new Cron(text, { timezone: timeZone, mode: '5-or-6-parts', fixedTimeRule: 'no-wildcard', paused: true });
  } catch (error) {
    const why = (error as Error).message.replace(/^CronPattern: /, '');
    throw new ValidationError(field, `${field} "${text}" is not a valid cron expression: ${why}. Write it as ${CRON_EXAMPLES}.`);
  }
  // croner rejects nothing that can never match (February 30): such a schedule would never run.
  if (job.nextRun(new Date(0)) === null) {
    throw new ValidationError(field, `${field} "${text}" never matches a date (is the day of the month one the month does not have?). Write it as ${CRON_EXAMPLES}.`);
  }
  return {
    cron: text,
    timeZone,
    next: (after) => job.nextRun(after),
    // croner's previousRuns counts a run in the reference's own second only if it is earlier.
    previous: (n, at) => job.previousRuns(n, new Date(at.getTime() + 1)),
  };
}

/** A whole number of seconds from 0 to MAX_MISFIRE_GRACE_SECONDS. */
export function requireMisfireGrace(field: string, seconds: number): number {
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > MAX_MISFIRE_GRACE_SECONDS) {
    throw new ValidationError(
      field,
      `${field} must be a whole number of seconds from 0 (after downtime, run no missed tick) to ${MAX_MISFIRE_GRACE_SECONDS} (a week); got ${seconds}.`,
    );
  }
  return seconds;
}

/** @throws ValidationError naming `field` for a policy that does not exist. */
export function requireOverlap(field: string, policy: string): OverlapPolicy {
  if (!(OVERLAP_POLICIES as readonly string[]).includes(policy)) {
    throw new ValidationError(
      field,
      `${field} must be SKIP (skip a tick while the previous run is active), ALLOW (start it anyway) or QUEUE (start it QUEUED, to run when the previous one ends); got "${policy}".`,
    );
  }
  return policy as OverlapPolicy;
}

/**
 * What a due tick does, given the schedule's policy and whether its previous run is still
 * active: QUEUE starts the pipeline QUEUED (SPEC rule 14), to leave the queue once no other
 * run of the schedule is RUNNING.
 */
export function overlapAction(policy: OverlapPolicy, previousActive: boolean): 'start' | 'skip' | 'queue' {
  if (!previousActive || policy === 'ALLOW') return 'start';
  return policy === 'QUEUE' ? 'queue' : 'skip';
}

/** Missed ticks counted in one entry rather than listed. */
export interface EarlierMissed {
  /** The earliest of them (the entry's tick time) and the latest. */
  first: Date;
  last: Date;
  count: number;
  /** More were missed than were counted (MAX_COUNTED_MISSED). */
  atLeast: boolean;
}

export interface TickPlan {
  /** Ticks to start now, oldest first. */
  run: Date[];
  /** Missed ticks to record one by one, oldest first. */
  missed: Date[];
  /** Missed ticks before those, recorded as one entry; null when there are none. */
  earlierMissed: EarlierMissed | null;
  /** The first tick after `now` (and after `after`): when to look again. Null: none ever. */
  next: Date | null;
}

export interface TickPlanInput {
  schedule: CronSchedule;
  /** Exclusive: the latest tick handled, or when the schedule became due (created, resumed, changed). */
  after: Date;
  now: Date;
  misfireGraceSeconds: number;
}

/** Which due ticks to start, which were missed, and when the next one is (see the module doc). */
export function planTicks({ schedule, after, now, misfireGraceSeconds }: TickPlanInput): TickPlan {
  const from = after.getTime();
  const next = schedule.next(new Date(Math.max(now.getTime(), from)));
  if (from >= now.getTime()) return { run: [], missed: [], earlierMissed: null, next };
  // The newest ticks first: more than can run or be listed tells whether older ones exist.
  const window = MAX_LISTED_MISSED + ON_TIME_SECONDS + 2;
  const recent = schedule
    .previous(window, now)
    .filter((tick) => tick.getTime() > from)
    .reverse();
  if (recent.length === 0) return { run: [], missed: [], earlierMissed: null, next };
  const age = (tick: Date) => now.getTime() - tick.getTime();
  const onTime = recent.filter((tick) => age(tick) <= ON_TIME_SECONDS * 1000);
  let run: Date[];
  let late: Date[];
  if (onTime.length > 0) {
    run = onTime;
    late = recent.slice(0, recent.length - onTime.length);
  } else {
    const latest = recent.at(-1)!;
    run = age(latest) <= misfireGraceSeconds * 1000 ? [latest] : [];
    late = run.length > 0 ? recent.slice(0, -1) : recent;
  }
  const missed = late.slice(-MAX_LISTED_MISSED);
  const unlisted = late.slice(0, late.length - missed.length);
  // Only a full window can have had ticks before it.
  const older = recent.length === window ? olderTicks(schedule, new Date(from), recent[0]!) : null;
  const count = (older?.count ?? 0) + unlisted.length;
  const earlierMissed =
    count === 0 ? null : { first: older?.first ?? unlisted[0]!, last: unlisted.at(-1) ?? older!.last, count, atLeast: older?.atLeast ?? false };
  return { run, missed, earlierMissed, next };
}

/** The ticks after `after` and before `before`: the first, the last, and how many (up to MAX_COUNTED_MISSED). */
function olderTicks(schedule: CronSchedule, after: Date, before: Date): { first: Date; last: Date; count: number; atLeast: boolean } | null {
  const first = schedule.next(after);
  if (first === null || first >= before) return null;
  const [last] = schedule.previous(1, new Date(before.getTime() - 1));
  let count = 0;
  for (let tick: Date | null = first; tick !== null && tick < before; tick = schedule.next(tick)) {
    if (++count >= MAX_COUNTED_MISSED) {
      const following = schedule.next(tick);
      return { first, last: last!, count, atLeast: following !== null && following < before };
    }
  }
  return { first, last: last!, count, atLeast: false };
}

/** The schedule's next tick as the API shows it: after `now` and after the latest handled. */
export function nextRunAt(schedule: CronSchedule, after: Date, now: Date): Date | null {
  return schedule.next(new Date(Math.max(now.getTime(), after.getTime())));
}

/** The idempotency key of a tick's pipeline (SPEC rule 16): one pipeline per tick, whoever starts it. */
export function tickIdempotencyKey(scheduleId: number, tick: Date): string {
  return `schedule:${scheduleId}:${tick.toISOString()}`;
}
