/**
 * The scheduler on a real running service (SPEC rule 16): a per-second schedule starts one
 * pipeline per tick, each with the tick's idempotency key, within moments of its time;
 * pausing stops the ticks, resuming does not run the pause's; SKIP records the ticks that met a
 * running pipeline; a refused start is FAILED with its reason; after downtime (simulated by
 * moving a schedule's past back) only the latest missed tick runs, within the grace, and a long
 * outage writes a bounded number of rows. QUEUE queues a tick that meets a running run, and
 * the runs go one at a time. Several processes racing for ticks are
 * test/faults/scheduler-workers.test.ts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Scheduler, TICK_HISTORY } from '../../src/scheduler/scheduler.ts';
import { databaseClockOffset, pruneTicks } from '../../src/store/schedule-ticks.ts';
import { graphql } from '../../src/generated/gql/index.ts';
import { PipelineState } from '../../src/engine/states.ts';
import { CreateSchedule, DeleteSchedule, ScheduleTicks, UpdateSchedule } from '../helpers/operations.ts';
import { eventually, seedGraph } from '../helpers/seed.ts';
import { startTestApp, type TestApp } from '../helpers/test-app.ts';

const QueuedRun = graphql(`
  query QueuedRun($id: Int!) {
    pipeline(id: $id) { state blockedBy { kind message } }
  }
`);

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t?.stop());

async function schedule(graphId: number, input: Record<string, unknown>) {
  const { createSchedule } = await t.request(CreateSchedule, { graphId, input });
  if (createSchedule.__typename !== 'Schedule') throw new Error(JSON.stringify(createSchedule));
  return createSchedule.id;
}

const ticksOf = async (id: number) => (await t.request(ScheduleTicks, { id, first: 100 })).schedule!.ticks.slice().reverse();

async function pause(id: number) {
  const { updateSchedule } = await t.request(UpdateSchedule, { id, input: { paused: true } });
  expect(updateSchedule).toMatchObject({ __typename: 'Schedule', paused: true, nextRunAt: null });
}

/** Makes a paused schedule due as if no scheduler had run since `since`, and tells the scheduler. */
async function downSince(id: number, since: Date) {
  await t.app.store.db.schedule.update({ where: { id }, data: { paused: false, since, lastTickAt: null } });
  t.app.scheduler!.changed();
}

it('a per-second schedule starts one pipeline per tick, on time; pause stops it, resume does not run the pause', { timeout: 60_000 }, async () => {
  const { graphId } = await seedGraph(t, { vertices: { tick: { script: 'echo "tick $PIPELINE_ID"' } } });
  const id = await schedule(graphId, { name: 'every second', cron: '* * * * * *', overlap: 'ALLOW' });
  const started = await eventually(async () => {
    const ticks = await ticksOf(id);
    return ticks.filter((tick) => tick.outcome === 'STARTED').length >= 4 ? ticks : undefined;
  }, 20_000, 'four ticks');
  expect(started.map((tick) => tick.outcome)).toEqual(started.map(() => 'STARTED'));
  const times = started.map((tick) => Date.parse(tick.tickAt));
  times.slice(1).forEach((time, i) => expect(time - times[i]!).toBe(1000));
  const lateness = started.map((tick) => Date.parse(tick.pipeline!.createdAt) - Date.parse(tick.tickAt));
  console.log(`per-second ticks started ${lateness.join(', ')} ms after their time`);
  for (const [i, tick] of started.entries()) {
    expect(tick.pipeline).toMatchObject({ idempotencyKey: `schedule:${id}:${tick.tickAt}`, schedule: { id } });
    expect(lateness[i]).toBeGreaterThanOrEqual(0);
    expect(lateness[i]).toBeLessThan(1500);
  }
  const pipelines = await t.app.store.db.pipeline.findMany({ where: { scheduleId: id } });
  expect(new Set(pipelines.map((p) => p.idempotencyKey)).size).toBe(pipelines.length);

  await pause(id);
  const pausedAt = Date.now();
  const atPause = (await ticksOf(id)).length;
  await new Promise((resolve) => setTimeout(resolve, 2500));
  expect(await ticksOf(id)).toHaveLength(atPause);
  const { updateSchedule: resumed } = await t.request(UpdateSchedule, { id, input: { paused: false } });
  const resumedAt = Date.now();
  expect(resumed).toMatchObject({ __typename: 'Schedule', paused: false });
  const after = await eventually(async () => {
    const ticks = await ticksOf(id);
    return ticks.length >= atPause + 2 ? ticks : undefined;
  }, 10_000, 'ticks after the resume');
  // Nothing for the pause: no tick between the pause and the resume, none missed.
  const pauseTicks = after.filter((tick) => Date.parse(tick.tickAt) > pausedAt + 1000 && Date.parse(tick.tickAt) < resumedAt - 1000);
  expect(pauseTicks).toEqual([]);
  expect(after.filter((tick) => tick.outcome !== 'STARTED')).toEqual([]);

  // Deleted, the schedule's pipelines stay, without it.
  await t.request(DeleteSchedule, { id });
  const kept = await t.app.store.db.pipeline.findMany({ where: { idempotencyKey: { startsWith: `schedule:${id}:` } } });
  expect(kept.length).toBeGreaterThanOrEqual(6);
  expect(kept.every((p) => p.scheduleId === null)).toBe(true);
  const metrics = await (await fetch(t.url.replace('/graphql', '/metrics'))).text();
  expect(Number(/dagpipe_schedule_ticks_total\{outcome="started"\} (\d+)/.exec(metrics)![1])).toBeGreaterThanOrEqual(6);
});

it('the database clock offset is measured within its stated uncertainty (here the server shares this clock: the true offset is 0)', async () => {
  for (let i = 0; i < 20; i++) {
    const { offsetMs, uncertaintyMs } = await databaseClockOffset(t.app.store);
    // Both clocks are read to the millisecond: a rounding's worth either side.
    expect(Math.abs(offsetMs)).toBeLessThanOrEqual(uncertaintyMs + 1);
    if (t.app.store.fast.provider === 'sqlite') expect({ offsetMs, uncertaintyMs }).toEqual({ offsetMs: 0, uncertaintyMs: 0 });
  }
});

it('SKIP: a tick while the previous run is still RUNNING starts nothing and says which run it met', { timeout: 60_000 }, async () => {
  const { graphId } = await seedGraph(t, { vertices: { slow: { script: 'sleep 2.5' } } });
  const id = await schedule(graphId, { name: 'slow every second', cron: '* * * * * *' });
  const ticks = await eventually(async () => {
    const all = await ticksOf(id);
    return all.filter((tick) => tick.outcome === 'STARTED').length >= 2 ? all : undefined;
  }, 30_000, 'two started ticks');
  await pause(id);
  const skipped = ticks.filter((tick) => tick.outcome === 'SKIPPED');
  expect(skipped.length).toBeGreaterThanOrEqual(2);
  const runs = await t.app.store.db.pipeline.findMany({ where: { scheduleId: id }, orderBy: { id: 'asc' } });
  for (const tick of skipped) {
    const [, runId] = /^Pipeline (\d+) of this schedule is still RUNNING \(overlap SKIP\)\.$/.exec(tick.reason!)!;
    const run = runs.find((p) => p.id === Number(runId))!;
    // The run it met had started before the tick and had not ended by then.
    expect(run.createdAt.getTime()).toBeLessThanOrEqual(Date.parse(tick.tickAt) + 1000);
    expect(tick.pipeline).toBeNull();
  }
  // The runs never overlapped: each started after the one before had ended.
  const finished = await eventually(async () => {
    const all = await t.app.store.db.pipeline.findMany({ where: { scheduleId: id }, orderBy: { id: 'asc' } });
    return all.every((p) => p.finishedAt !== null) ? all : undefined;
  }, 15_000, 'the runs to end');
  finished.slice(1).forEach((run, i) => expect(run.createdAt.getTime()).toBeGreaterThanOrEqual(finished[i]!.finishedAt!.getTime()));
});

it('QUEUE: a tick that meets a running run starts its pipeline QUEUED; the runs go one at a time, in order, none lost', { timeout: 60_000 }, async () => {
  const ledger = path.join(t.dir, `queue-ledger-${Date.now()}`);
  const { graphId } = await seedGraph(t, {
    vertices: { slow: { script: `echo "start $PIPELINE_ID" >> ${ledger}; sleep 1.5; echo "end $PIPELINE_ID" >> ${ledger}` } },
  });
  const id = await schedule(graphId, { name: 'queued every second', cron: '* * * * * *', overlap: 'QUEUE' });
  const queuedTick = await eventually(async () => {
    const ticks = await ticksOf(id);
    return ticks.find((tick) => tick.pipeline?.state === 'QUEUED');
  }, 20_000, 'a tick whose pipeline is queued');
  expect(queuedTick.outcome).toBe('STARTED');
  expect(queuedTick.reason).toMatch(/^Queued behind pipeline \d+ of this schedule, still (RUNNING|QUEUED) \(overlap QUEUE\)\.$/);
  const { pipeline } = await t.request(QueuedRun, { id: queuedTick.pipeline!.id });
  if (pipeline!.state === 'QUEUED') {
    expect(pipeline!.blockedBy).toMatchObject({ kind: expect.stringMatching(/^(SCHEDULE_OVERLAP|CONCURRENCY_LIMIT)$/) });
  }
  await new Promise((resolve) => setTimeout(resolve, 2000));
  await pause(id);
  // Every tick's pipeline runs, one at a time, in the order of the ticks.
  const runs = await eventually(async () => {
    const all = await t.app.store.db.pipeline.findMany({ where: { scheduleId: id }, orderBy: { id: 'asc' } });
    return all.every((p) => p.state === PipelineState.FINISH) ? all : undefined;
  }, 40_000, 'every run of the schedule to finish');
  expect(runs.length).toBeGreaterThanOrEqual(3);
  expect(readFileSync(ledger, 'utf8').trim().split('\n')).toEqual(runs.flatMap((p) => [`start ${p.id}`, `end ${p.id}`]));
  const ticks = await ticksOf(id);
  expect(ticks.filter((tick) => tick.outcome === 'SKIPPED')).toEqual([]);
});

it('a start the service refuses (the graph was never checked) is recorded FAILED with the reason, and counted', { timeout: 30_000 }, async () => {
  const { graphId } = await seedGraph(t, { vertices: { x: { script: 'true' } }, check: false });
  const id = await schedule(graphId, { name: 'unchecked', cron: '* * * * * *' });
  const [failed] = await eventually(async () => {
    const all = await ticksOf(id);
    return all.length > 0 ? all : undefined;
  });
  await pause(id);
  expect(failed).toMatchObject({ outcome: 'FAILED', pipeline: null });
  expect(failed!.reason).toMatch(/^The start was refused: Graph ".*" was never checked/);
  expect(await t.app.store.db.pipeline.count({ where: { graphId } })).toBe(0);
  const metrics = await (await fetch(t.url.replace('/graphql', '/metrics'))).text();
  expect(Number(/dagpipe_schedule_ticks_total\{outcome="failed"\} (\d+)/.exec(metrics)![1])).toBeGreaterThanOrEqual(1);
});

/** A cron expression for the minute `minutesAgo` before now, every hour (UTC). */
const hourlyAt = (minutesAgo: number) => `${(((new Date().getUTCMinutes() - minutesAgo) % 60) + 60) % 60} * * * *`;

it('after downtime only the latest missed tick runs when it is within misfireGraceSeconds; the others are MISSED', { timeout: 30_000 }, async () => {
  const { graphId } = await seedGraph(t, { vertices: { x: { script: 'true' } } });
  // The latest tick 2 to 3 minutes ago (within the 300 s grace), down for 3 hours before it.
  const id = await schedule(graphId, { name: 'after downtime', cron: hourlyAt(2), paused: true });
  await downSince(id, new Date(Date.now() - 3 * 3600_000 - 5 * 60_000));
  const ticks = await eventually(async () => {
    const all = await ticksOf(id);
    return all.some((tick) => tick.outcome === 'STARTED') ? all : undefined;
  });
  expect(ticks.map((tick) => tick.outcome)).toEqual(['MISSED', 'MISSED', 'MISSED', 'STARTED']);
  expect(ticks.slice(0, 3).every((tick) => /after downtime only the latest missed tick runs/.test(tick.reason!))).toBe(true);
  ticks.slice(1).forEach((tick, i) => expect(Date.parse(tick.tickAt) - Date.parse(ticks[i]!.tickAt)).toBe(3600_000));
  expect(Date.now() - Date.parse(ticks[3]!.tickAt)).toBeLessThan(4 * 60_000);
});

it('after downtime nothing runs when the latest missed tick is older than misfireGraceSeconds', { timeout: 30_000 }, async () => {
  const { graphId } = await seedGraph(t, { vertices: { x: { script: 'true' } } });
  const id = await schedule(graphId, { name: 'too late', cron: hourlyAt(30), misfireGraceSeconds: 300, paused: true });
  await downSince(id, new Date(Date.now() - 2 * 3600_000 - 60_000));
  const ticks = await eventually(async () => {
    const all = await ticksOf(id);
    return all.length >= 2 ? all : undefined;
  });
  await new Promise((resolve) => setTimeout(resolve, 500));
  expect((await ticksOf(id)).map((tick) => tick.outcome)).toEqual(['MISSED', 'MISSED']);
  expect(ticks[1]!.reason).toMatch(/older than misfireGraceSeconds \(300 s\), so none ran/);
  expect(await t.app.store.db.pipeline.count({ where: { graphId } })).toBe(0);
});

it('a per-second schedule down for a day writes a bounded number of tick rows', { timeout: 30_000 }, async () => {
  const { graphId } = await seedGraph(t, { vertices: { x: { script: 'true' } } });
  const id = await schedule(graphId, { name: 'down a day', cron: '* * * * * *', overlap: 'ALLOW', paused: true });
  await downSince(id, new Date(Date.now() - 24 * 3600_000));
  await eventually(async () => ((await ticksOf(id)).some((tick) => tick.outcome === 'STARTED') ? true : undefined));
  await pause(id);
  const rows = await t.app.store.db.scheduleTick.findMany({ where: { scheduleId: id }, orderBy: { tickAt: 'asc' } });
  const missed = rows.filter((row) => row.outcome === 'MISSED');
  expect(missed.length).toBeLessThanOrEqual(11);
  expect(missed[0]).toMatchObject({ count: expect.any(Number) });
  expect(missed[0]!.count).toBeGreaterThan(1000);
  expect(missed[0]!.reason).toMatch(/^At least \d+ ticks from .* were missed/);
  // The on-time ticks of the moment it came back ran; everything before was missed.
  expect(rows.length).toBeLessThan(40);
});

it('on an injected clock, the scheduler starts Berlin\'s daily 02:30 at 03:00 CEST on the spring day and once on the autumn day', { timeout: 30_000 }, async () => {
  const { graphId } = await seedGraph(t, { vertices: { x: { script: 'true' } } });
  const id = await schedule(graphId, { name: 'berlin 02:30', cron: '30 2 * * *', timeZone: 'Europe/Berlin', overlap: 'ALLOW', paused: true });
  await t.app.scheduler!.stop();
  let now = Date.parse('2026-03-29T00:59:59Z');
  const scheduler = new Scheduler(t.app.store, pino({ level: 'silent' }), { clock: () => now });
  const at = async (iso: string) => {
    now = Date.parse(iso);
    scheduler.changed();
    await scheduler.idle();
    return (await ticksOf(id)).map((tick) => [tick.tickAt, tick.outcome, tick.pipeline?.idempotencyKey]);
  };
  try {
    await t.app.store.db.schedule.update({ where: { id }, data: { paused: false, since: new Date('2026-03-28T12:00:00Z') } });
    await scheduler.start();
    await scheduler.idle();
    expect(await ticksOf(id)).toEqual([]);
    // 02:30 does not exist that night: the tick is at 03:00 CEST, 01:00 UTC.
    const key = (iso: string) => `schedule:${id}:${iso}`;
    expect(await at('2026-03-29T01:00:00.200Z')).toEqual([['2026-03-29T01:00:00.000Z', 'STARTED', key('2026-03-29T01:00:00.000Z')]]);
    expect(await at('2026-03-29T23:00:00Z')).toHaveLength(1);
    expect(await at('2026-03-30T00:30:00.200Z')).toHaveLength(2);

    // Autumn, from the day before: 02:30 CEST (00:30 UTC) runs, 02:30 CET an hour later does not.
    await t.app.store.db.schedule.update({ where: { id }, data: { lastTickAt: new Date('2026-10-24T00:30:00Z') } });
    const first = await at('2026-10-25T00:30:00.200Z');
    expect(first.at(-1)).toEqual(['2026-10-25T00:30:00.000Z', 'STARTED', key('2026-10-25T00:30:00.000Z')]);
    expect(await at('2026-10-25T01:30:00.200Z')).toEqual(first);
    const next = await at('2026-10-26T01:30:00.200Z');
    expect(next.slice(first.length)).toEqual([['2026-10-26T01:30:00.000Z', 'STARTED', key('2026-10-26T01:30:00.000Z')]]);
    expect(next.every(([, outcome]) => outcome === 'STARTED')).toBe(true);
  } finally {
    await scheduler.stop();
    await pause(id);
    await t.app.scheduler!.start();
  }
});

it('keeps the newest 1000 ticks of a schedule', async () => {
  const { graphId } = await seedGraph(t, { vertices: { x: { script: 'true' } } });
  const id = await schedule(graphId, { name: 'long history', cron: '* * * * * *', paused: true });
  const start = Date.parse('2026-01-01T00:00:00Z');
  await t.app.store.db.scheduleTick.createMany({
    data: Array.from({ length: TICK_HISTORY + 5 }, (_, i) => ({ scheduleId: id, tickAt: new Date(start + i * 1000), outcome: 'MISSED', reason: 'test' })),
  });
  expect(await pruneTicks(t.app.store, TICK_HISTORY)).toBe(5);
  const kept = await t.app.store.db.scheduleTick.findMany({ where: { scheduleId: id }, orderBy: { tickAt: 'asc' } });
  expect(kept).toHaveLength(TICK_HISTORY);
  expect(kept[0]!.tickAt).toEqual(new Date(start + 5000));
  expect(await pruneTicks(t.app.store, TICK_HISTORY)).toBe(0);
});
