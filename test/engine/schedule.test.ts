/**
 * The schedule core (src/engine/schedule.ts) on an injected clock: exact UTC tick times across
 * Europe/Berlin's daylight-saving changes of 2026 (spring 2026-03-29 02:00 -> 03:00, autumn
 * 2026-10-25 03:00 -> 02:00), misfires after downtime, and the validation messages.
 */
import { describe, expect, it } from 'vitest';
import {
  MAX_COUNTED_MISSED,
  MAX_LISTED_MISSED,
  overlapAction,
  parseCron,
  planTicks,
  requireMisfireGrace,
  requireOverlap,
  requireTimeZone,
  tickIdempotencyKey,
  type CronSchedule,
} from '../../src/engine/schedule.ts';
import { ValidationError } from '../../src/errors.ts';

const at = (iso: string) => new Date(iso);
const iso = (dates: Date[]) => dates.map((d) => d.toISOString());

/** Every tick after `from` up to `to`, as the scheduler would meet them one by one. */
function ticksBetween(schedule: CronSchedule, from: string, to: string): string[] {
  const out: string[] = [];
  for (let tick = schedule.next(at(from)); tick !== null && tick <= at(to); tick = schedule.next(tick)) out.push(tick.toISOString());
  return out;
}

/**
 * A scheduler on a clock that jumps from tick to tick: at each tick it plans with the latest
 * tick handled, as the real one does. What it starts must be every tick exactly once.
 */
function runOnClock(schedule: CronSchedule, from: string, to: string): string[] {
  const started: string[] = [];
  let after = at(from);
  let now = schedule.next(after)!;
  while (now <= at(to)) {
    const plan = planTicks({ schedule, after, now, misfireGraceSeconds: 300 });
    expect(plan.missed).toEqual([]);
    started.push(...iso(plan.run));
    after = plan.run.at(-1) ?? after;
    now = plan.next!;
  }
  return started;
}

const berlin = (cron: string) => parseCron('cron', cron, 'Europe/Berlin');

function fieldError(work: () => unknown): ValidationError {
  try {
    work();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error('expected a ValidationError');
}

describe('daylight saving in Europe/Berlin', () => {
  it('daily 02:30: the spring day (02:30 does not exist) runs once, at 03:00 CEST; the autumn day (02:30 twice) runs once, at the first', () => {
    const daily = berlin('30 2 * * *');
    expect(ticksBetween(daily, '2026-03-27T12:00:00Z', '2026-03-31T12:00:00Z')).toEqual([
      '2026-03-28T01:30:00.000Z', // 02:30 CET
      '2026-03-29T01:00:00.000Z', // 03:00 CEST, the first time after the gap
      '2026-03-30T00:30:00.000Z', // 02:30 CEST
      '2026-03-31T00:30:00.000Z',
    ]);
    expect(ticksBetween(daily, '2026-10-23T12:00:00Z', '2026-10-27T12:00:00Z')).toEqual([
      '2026-10-24T00:30:00.000Z', // 02:30 CEST
      '2026-10-25T00:30:00.000Z', // 02:30 CEST, the first of the two
      '2026-10-26T01:30:00.000Z', // 02:30 CET
      '2026-10-27T01:30:00.000Z',
    ]);
  });

  it('a list of fixed times also runs once on the repeated hour', () => {
    expect(ticksBetween(berlin('30 2,14 * * *'), '2026-10-24T12:00:00Z', '2026-10-26T02:00:00Z')).toEqual([
      '2026-10-24T12:30:00.000Z',
      '2026-10-25T00:30:00.000Z',
      '2026-10-25T13:30:00.000Z',
      '2026-10-26T01:30:00.000Z',
    ]);
  });

  it.each(['0 * * * *', '@hourly'])('%s runs once per real hour: 23 times on the spring day, 25 on the autumn day', (cron) => {
    const hourly = berlin(cron);
    // 2026-03-29 00:00 CET is 2026-03-28T23:00Z; 24:00 CEST is 22:00Z.
    const spring = ticksBetween(hourly, '2026-03-28T22:59:59Z', '2026-03-29T21:59:59Z');
    expect(spring).toHaveLength(23);
    expect(spring.slice(0, 4)).toEqual(['2026-03-28T23:00:00.000Z', '2026-03-29T00:00:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-29T02:00:00.000Z']);
    const autumn = ticksBetween(hourly, '2026-10-24T21:59:59Z', '2026-10-25T22:59:59Z');
    expect(autumn).toHaveLength(25);
    expect(autumn.slice(0, 5)).toEqual([
      '2026-10-24T22:00:00.000Z', // 00:00 CEST
      '2026-10-24T23:00:00.000Z', // 01:00 CEST
      '2026-10-25T00:00:00.000Z', // 02:00 CEST
      '2026-10-25T01:00:00.000Z', // 02:00 CET
      '2026-10-25T02:00:00.000Z', // 03:00 CET
    ]);
    // No hour of real time without a tick, and none with two.
    for (const ticks of [spring, autumn]) {
      for (let i = 1; i < ticks.length; i++) expect(Date.parse(ticks[i]!) - Date.parse(ticks[i - 1]!)).toBe(3600_000);
    }
  });

  it('*/15 runs every 15 real minutes through both changes', () => {
    const quarter = berlin('*/15 * * * *');
    const spring = ticksBetween(quarter, '2026-03-29T00:44:59Z', '2026-03-29T01:15:00Z');
    expect(spring).toEqual(['2026-03-29T00:45:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-29T01:15:00.000Z']); // 01:45 CET, 03:00 CEST, 03:15 CEST
    const autumn = ticksBetween(quarter, '2026-10-24T23:59:59Z', '2026-10-25T02:00:00Z');
    expect(autumn).toHaveLength(9);
    for (let i = 1; i < autumn.length; i++) expect(Date.parse(autumn[i]!) - Date.parse(autumn[i - 1]!)).toBe(900_000);
  });

  it('a scheduler on an injected clock starts each tick exactly once across both changes', () => {
    for (const cron of ['30 2 * * *', '0 * * * *', '*/15 * * * *']) {
      for (const [from, to] of [
        ['2026-03-28T00:00:00Z', '2026-03-30T00:00:00Z'],
        ['2026-10-24T00:00:00Z', '2026-10-26T00:00:00Z'],
      ] as const) {
        const started = runOnClock(berlin(cron), from, to);
        expect(started).toEqual(ticksBetween(berlin(cron), from, to));
        expect(new Set(started).size).toBe(started.length);
      }
    }
  });
});

describe('planTicks', () => {
  const hourly = parseCron('cron', '0 * * * *', 'UTC');
  const perSecond = parseCron('cron', '* * * * * *', 'UTC');

  it('runs a tick that is due now, and says when the next one is', () => {
    const plan = planTicks({ schedule: hourly, after: at('2026-12-02T09:30:00Z'), now: at('2026-12-02T10:00:00.004Z'), misfireGraceSeconds: 300 });
    expect(plan).toEqual({ run: [at('2026-12-02T10:00:00Z')], missed: [], earlierMissed: null, next: at('2026-12-02T11:00:00Z') });
  });

  it('runs nothing before the first tick, and nothing twice', () => {
    expect(planTicks({ schedule: hourly, after: at('2026-12-02T09:30:00Z'), now: at('2026-12-02T09:59:59.999Z'), misfireGraceSeconds: 300 }).run).toEqual([]);
    const handled = planTicks({ schedule: hourly, after: at('2026-12-02T10:00:00Z'), now: at('2026-12-02T10:00:01Z'), misfireGraceSeconds: 300 });
    expect(handled).toMatchObject({ run: [], missed: [], earlierMissed: null, next: at('2026-12-02T11:00:00Z') });
  });

  it('after downtime, runs only the latest missed tick when it is within the grace; the others are missed', () => {
    // Down from 07:30 to 10:04: 08:00, 09:00 and 10:00 passed; 10:00 is 240 s old.
    const plan = planTicks({ schedule: hourly, after: at('2026-12-02T07:30:00Z'), now: at('2026-12-02T10:04:00Z'), misfireGraceSeconds: 300 });
    expect(iso(plan.run)).toEqual(['2026-12-02T10:00:00.000Z']);
    expect(iso(plan.missed)).toEqual(['2026-12-02T08:00:00.000Z', '2026-12-02T09:00:00.000Z']);
    expect(plan.earlierMissed).toBeNull();
  });

  it('after downtime, runs nothing when the latest missed tick is older than the grace', () => {
    const plan = planTicks({ schedule: hourly, after: at('2026-12-02T07:30:00Z'), now: at('2026-12-02T10:06:00Z'), misfireGraceSeconds: 300 });
    expect(plan.run).toEqual([]);
    expect(iso(plan.missed)).toEqual(['2026-12-02T08:00:00.000Z', '2026-12-02T09:00:00.000Z', '2026-12-02T10:00:00.000Z']);
    expect(planTicks({ schedule: hourly, after: at('2026-12-02T09:30:00Z'), now: at('2026-12-02T10:00:06Z'), misfireGraceSeconds: 0 }).run).toEqual([]);
  });

  it('a tick a few seconds late is on time, not missed, whatever the grace', () => {
    const plan = planTicks({ schedule: perSecond, after: at('2026-12-02T10:00:00Z'), now: at('2026-12-02T10:00:03.200Z'), misfireGraceSeconds: 0 });
    expect(iso(plan.run)).toEqual(['2026-12-02T10:00:01.000Z', '2026-12-02T10:00:02.000Z', '2026-12-02T10:00:03.000Z']);
    expect(plan.missed).toEqual([]);
  });

  it('a long outage of a per-second schedule lists the latest missed ticks and counts the rest in one entry', () => {
    // A day down: 86,400 ticks passed; the last 6 are on time (at most 5 s old). One unlisted tick
    // is in the window read back from now, the counted ones before it stop at the cap.
    const plan = planTicks({ schedule: perSecond, after: at('2026-12-01T10:00:00Z'), now: at('2026-12-02T10:00:00Z'), misfireGraceSeconds: 300 });
    expect(iso(plan.run)).toEqual(['55', '56', '57', '58', '59'].map((s) => `2026-12-02T09:59:${s}.000Z`).concat('2026-12-02T10:00:00.000Z'));
    expect(plan.missed).toHaveLength(MAX_LISTED_MISSED);
    expect(plan.missed.at(-1)).toEqual(at('2026-12-02T09:59:54Z'));
    expect(plan.earlierMissed).toEqual({ first: at('2026-12-01T10:00:01Z'), last: at('2026-12-02T09:59:44Z'), count: MAX_COUNTED_MISSED + 1, atLeast: true });
  });

  it('a shorter outage counts the unlisted missed ticks exactly', () => {
    // 100 s down, grace 0: the 6 on-time ticks run, 94 missed, 10 of them listed.
    const plan = planTicks({ schedule: perSecond, after: at('2026-12-02T10:00:00Z'), now: at('2026-12-02T10:01:40Z'), misfireGraceSeconds: 0 });
    expect(plan.run).toHaveLength(6);
    expect(plan.missed).toHaveLength(MAX_LISTED_MISSED);
    expect(plan.earlierMissed).toEqual({ first: at('2026-12-02T10:00:01Z'), last: at('2026-12-02T10:01:24Z'), count: 84, atLeast: false });
    const all = plan.earlierMissed!.count + plan.missed.length + plan.run.length;
    expect(all).toBe(100);
  });

  it('an hourly schedule down for a year lists 10 missed ticks and counts at most a thousand more', () => {
    const plan = planTicks({ schedule: hourly, after: at('2025-12-02T10:30:00Z'), now: at('2026-12-02T10:30:00Z'), misfireGraceSeconds: 300 });
    expect(plan.run).toEqual([]);
    expect(plan.missed).toHaveLength(MAX_LISTED_MISSED);
    expect(plan.earlierMissed).toMatchObject({ first: at('2025-12-02T11:00:00Z'), last: at('2026-12-02T00:00:00Z'), atLeast: true });
  });
});

describe('validation', () => {
  it.each([
    ['', /must not be empty/],
    ['* * *', /has 3 field\(s\); a cron expression has five/],
    ['* * * * * * *', /has 7 field\(s\)/],
    ['61 * * * *', /Invalid value for minute: 61/],
    ['* 25 * * *', /Invalid value for hour: 25/],
    ['@reboot', /@reboot is not supported/],
    ['0 0 30 2 *', /never matches a date/],
    ['*/0 * * * *', /illegal stepping/],
  ])('refuses the cron expression "%s", naming the field, with an example', (cron, message) => {
    const error = fieldError(() => parseCron('cron', cron, 'UTC'));
    expect(error.field).toBe('cron');
    expect(error.message).toMatch(message);
    expect(error.message).toContain('"30 2 * * *"');
  });

  it('accepts five fields, six with seconds, and names', () => {
    for (const cron of ['30 2 * * *', '0 9 * * MON-FRI', '*/10 * * * * *', '@hourly', '@daily', '@weekly', '@monthly', '@yearly', '@midnight']) {
      expect(parseCron('cron', cron, 'UTC').next(at('2026-01-01T00:00:00Z'))).toBeInstanceOf(Date);
    }
    expect(parseCron('cron', '  30   2 * * * ', 'UTC').cron).toBe('30 2 * * *');
  });

  it('takes IANA time zones in their canonical spelling and refuses offsets and unknown names', () => {
    expect(requireTimeZone('timeZone', 'europe/berlin')).toBe('Europe/Berlin');
    expect(requireTimeZone('timeZone', 'UTC')).toBe('UTC');
    for (const bad of ['+01:00', 'UTC+1', 'Mars/Olympus', '']) {
      const error = fieldError(() => requireTimeZone('timeZone', bad));
      expect(error.field).toBe('timeZone');
      expect(error.message).toContain('"Europe/Berlin"');
    }
  });

  it('overlap: SKIP skips, ALLOW starts, QUEUE queues a tick that meets an active previous run', () => {
    expect(requireOverlap('overlap', 'SKIP')).toBe('SKIP');
    expect(requireOverlap('overlap', 'ALLOW')).toBe('ALLOW');
    expect(requireOverlap('overlap', 'QUEUE')).toBe('QUEUE');
    expect(fieldError(() => requireOverlap('overlap', 'sometimes')).message).toMatch(/must be SKIP .*, ALLOW .* or QUEUE .*; got "sometimes"/);
    expect(overlapAction('SKIP', true)).toBe('skip');
    expect(overlapAction('SKIP', false)).toBe('start');
    expect(overlapAction('ALLOW', true)).toBe('start');
    expect(overlapAction('QUEUE', true)).toBe('queue');
    expect(overlapAction('QUEUE', false)).toBe('start');
  });

  it('misfireGraceSeconds is 0 to a week', () => {
    expect(requireMisfireGrace('misfireGraceSeconds', 0)).toBe(0);
    expect(fieldError(() => requireMisfireGrace('misfireGraceSeconds', -1)).field).toBe('misfireGraceSeconds');
    expect(fieldError(() => requireMisfireGrace('misfireGraceSeconds', 1.5)).message).toMatch(/whole number/);
  });

  it('a tick\'s idempotency key names the schedule and the tick in UTC', () => {
    expect(tickIdempotencyKey(7, at('2026-03-29T01:00:00Z'))).toBe('schedule:7:2026-03-29T01:00:00.000Z');
  });
});
