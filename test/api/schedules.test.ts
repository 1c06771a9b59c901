/**
 * Schedules through the API (SPEC rule 16): create, change, pause, resume, move, delete; every
 * bad input refused with a typed error naming the field and nothing changed; nextRunAt; secret
 * values masked; the operator role; the audit trail. The scheduler's ticks are
 * test/api/scheduler.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../../src/auth/tokens.ts';
import { graphql } from '../../src/generated/gql/index.ts';
import type { ScheduleInput } from '../../src/generated/gql/graphql.ts';
import { CreateSchedule, DeleteSchedule, ScheduleTicks, UpdateSchedule } from '../helpers/operations.ts';
import { seedGraph } from '../helpers/seed.ts';
import { httpClient, startTestApp, type TestApp } from '../helpers/test-app.ts';

const GraphSchedules = graphql(`
  query GraphSchedules($graphId: Int!) {
    graph(id: $graphId) { schedules { id name } }
    schedules(graphId: $graphId) { id name cron graph { id } }
  }
`);

const AllSchedules = graphql(`query AllSchedules { schedules { id } }`);

const ScheduleAudit = graphql(`query ScheduleAudit($action: String) { auditLog(action: $action) { action targetType targetId details } }`);

let t: TestApp;
let graphId: number;
let otherGraphId: number;
beforeAll(async () => {
  t = await startTestApp({ env: { AUTH: 'on' } });
  const admin = (await createToken(t.app.store.db, { name: 'admin', role: 'admin' })).secret;
  Object.assign(t, httpClient(t.url, { authorization: `Bearer ${admin}` }));
  const inputs = [
    { name: 'port', type: 'INTEGER' as const, default: 4000 },
    { name: 'operator', type: 'STRING' as const, required: true },
    { name: 'token', type: 'STRING' as const, secret: true, default: 'x' },
  ];
  graphId = (await seedGraph(t, { vertices: { check: { script: 'echo {port}', inputs }, other: { script: 'true' } } })).graphId;
  otherGraphId = (await seedGraph(t, { vertices: { check: { script: 'echo {port}', inputs } } })).graphId;
});
afterAll(() => t?.stop());

const valid = { cron: '30 2 * * *', inputs: [{ vertex: 'check', params: { operator: 'cron', token: 's3cret' } }] };

async function create(input: Record<string, unknown>, target = graphId) {
  const { createSchedule } = await t.request(CreateSchedule, { graphId: target, input });
  return createSchedule;
}

describe('createSchedule', () => {
  it('creates a schedule with its defaults and says when it runs next', async () => {
    const created = await create({ name: 'nightly', ...valid, timeZone: 'europe/berlin' });
    if (created.__typename !== 'Schedule') throw new Error(JSON.stringify(created));
    expect(created).toMatchObject({ name: 'nightly', cron: '30 2 * * *', timeZone: 'Europe/Berlin', overlap: 'SKIP', misfireGraceSeconds: 300, paused: false, graph: { id: graphId } });
    // 02:30 in Berlin is 00:30 or 01:30 UTC, after now, within a day.
    const next = Date.parse(created.nextRunAt!);
    expect(next).toBeGreaterThan(Date.now());
    expect(next - Date.now()).toBeLessThanOrEqual(24 * 3600_000 + 3600_000);
    expect(new Date(next).getUTCMinutes()).toBe(30);
    // The secret value is stored but never shown.
    expect(created.inputs).toEqual([{ vertex: 'check', params: { operator: 'cron', token: '***' } }]);
    const stored = await t.app.store.db.schedule.findUniqueOrThrow({ where: { id: created.id } });
    expect(JSON.parse(stored.inputs)).toEqual(valid.inputs);
    const listed = await t.request(GraphSchedules, { graphId });
    expect(listed.graph!.schedules.map((s) => s.name)).toContain('nightly');
    expect(listed.schedules.every((s) => s.graph.id === graphId)).toBe(true);
  });

  it.each([
    ['an empty cron expression', { name: 'a', cron: '' }, 'ValidationError', 'cron', /must not be empty.*"30 2 \* \* \*"/],
    ['four fields', { name: 'a', cron: '0 2 * *' }, 'ValidationError', 'cron', /has 4 field\(s\); a cron expression has five/],
    ['an hour out of range', { name: 'a', cron: '0 24 * * *' }, 'ValidationError', 'cron', /Invalid value for hour: 24/],
    ['February 30', { name: 'a', cron: '0 0 30 2 *' }, 'ValidationError', 'cron', /never matches a date/],
    ['an unknown time zone', { name: 'a', cron: '@daily', timeZone: 'Europe/Atlantis' }, 'ValidationError', 'timeZone', /not a time zone.*"Europe\/Berlin"/],
    ['a UTC offset', { name: 'a', cron: '@daily', timeZone: '+02:00' }, 'ValidationError', 'timeZone', /UTC offset/],
    ['no name', { cron: '@daily' }, 'ValidationError', 'name', /must not be empty/],
    ['an unknown vertex', { name: 'a', cron: '@daily', inputs: [{ vertex: 'nope', params: {} }] }, 'ValidationError', 'inputs.0.vertex', /no vertex named "nope"/],
    ['an unknown parameter', { name: 'a', cron: '@daily', inputs: [{ vertex: 'check', params: { operator: 'x', prot: 1 } }] }, 'ValidationError', 'inputs.0.params.prot', /Unknown parameter "prot"/],
    ['a value of the wrong type', { name: 'a', cron: '@daily', inputs: [{ vertex: 'check', params: { operator: 'x', port: 'eighty' } }] }, 'ValidationError', 'inputs.0.params.port', /./],
    ['a required value left out', { name: 'a', cron: '@daily' }, 'ValidationError', 'inputs', /needs a value for operator.*nobody to supply it/],
    ['a negative grace', { name: 'a', ...valid, misfireGraceSeconds: -5 }, 'ValidationError', 'misfireGraceSeconds', /from 0/],
    ['a name taken in the graph', { name: 'nightly', ...valid }, 'ConflictError', 'name', /already has a schedule named "nightly"/],
  ])('refuses %s with a typed error naming the field, creating nothing', async (_what, input, typename, field, message) => {
    const before = await t.app.store.db.schedule.count();
    const result = await create(input);
    expect(result).toMatchObject({ __typename: typename, field });
    if (result.__typename !== 'Schedule') expect(result.message).toMatch(message);
    expect(await t.app.store.db.schedule.count()).toBe(before);
  });

  it('refuses an unknown graph', async () => {
    expect(await create({ name: 'x', cron: '@daily' }, 999_999)).toMatchObject({ __typename: 'NotFoundError', field: 'graphId' });
  });

  it('takes six fields with seconds and @names; the same name in another graph is fine', async () => {
    for (const [name, cron] of [['every second', '* * * * * *'], ['hourly', '@hourly']] as const) {
      const created = await create({ name, cron, paused: true, ...{ inputs: valid.inputs } }, otherGraphId);
      expect(created).toMatchObject({ __typename: 'Schedule', cron, paused: true, nextRunAt: null });
    }
    expect(await create({ name: 'nightly', ...valid }, otherGraphId)).toMatchObject({ __typename: 'Schedule' });
  });
});

describe('updateSchedule and deleteSchedule', () => {
  it('pauses (nextRunAt null) and resumes; changes the cron expression and time zone; refuses bad values, changing nothing', async () => {
    const created = await create({ name: 'to change', ...valid });
    if (created.__typename !== 'Schedule') throw new Error(JSON.stringify(created));
    const paused = (await t.request(UpdateSchedule, { id: created.id, input: { paused: true } })).updateSchedule;
    expect(paused).toMatchObject({ __typename: 'Schedule', paused: true, nextRunAt: null, cron: '30 2 * * *' });
    const resumedAt = Date.now();
    const resumed = (await t.request(UpdateSchedule, { id: created.id, input: { paused: false, cron: '*/15 * * * *', timeZone: 'America/New_York' } })).updateSchedule;
    if (resumed.__typename !== 'Schedule') throw new Error(JSON.stringify(resumed));
    expect(resumed).toMatchObject({ paused: false, cron: '*/15 * * * *', timeZone: 'America/New_York' });
    const next = Date.parse(resumed.nextRunAt!);
    expect(next).toBeGreaterThan(resumedAt - 1000);
    expect(next - resumedAt).toBeLessThanOrEqual(15 * 60_000);
    expect(new Date(next).getUTCMinutes() % 15).toBe(0);
    // Resumed now: the ticks of the pause are not due.
    const row = await t.app.store.db.schedule.findUniqueOrThrow({ where: { id: created.id } });
    expect(row.since.getTime()).toBeGreaterThanOrEqual(resumedAt - 1000);

    const bad: Array<[ScheduleInput, string]> = [
      [{ cron: '* * * * * * *' }, 'cron'],
      [{ timeZone: 'Nowhere/Land' }, 'timeZone'],
      [{ misfireGraceSeconds: 604_801 }, 'misfireGraceSeconds'],
      [{ inputs: [] }, 'inputs'],
      [{ name: 'nightly' }, 'name'],
    ];
    for (const [input, field] of bad) {
      const refused = (await t.request(UpdateSchedule, { id: created.id, input })).updateSchedule;
      expect(refused).toMatchObject({ field });
    }
    expect(await t.app.store.db.schedule.findUniqueOrThrow({ where: { id: created.id } })).toEqual(row);
    expect((await t.request(UpdateSchedule, { id: 999_999, input: { paused: true } })).updateSchedule).toMatchObject({ __typename: 'NotFoundError', field: 'id' });
  });

  it('a secret value shown as *** is written back unchanged; overlap ALLOW and a grace are kept', async () => {
    const created = await create({ name: 'secretive', ...valid });
    if (created.__typename !== 'Schedule') throw new Error(JSON.stringify(created));
    const updated = (await t.request(UpdateSchedule, { id: created.id, input: { inputs: created.inputs as never, overlap: 'ALLOW', misfireGraceSeconds: 0 } })).updateSchedule;
    expect(updated).toMatchObject({ __typename: 'Schedule', overlap: 'ALLOW', misfireGraceSeconds: 0 });
    const stored = await t.app.store.db.schedule.findUniqueOrThrow({ where: { id: created.id } });
    expect(JSON.parse(stored.inputs)).toEqual(valid.inputs);
  });

  it('moves a schedule to another graph, checking its inputs against that graph', async () => {
    const created = await create({ name: 'mover', ...valid });
    if (created.__typename !== 'Schedule') throw new Error(JSON.stringify(created));
    const lone = (await seedGraph(t, { vertices: { single: { script: 'true' } } })).graphId;
    expect((await t.request(UpdateSchedule, { id: created.id, graphId: lone, input: {} })).updateSchedule).toMatchObject({
      __typename: 'ValidationError',
      field: 'inputs.0.vertex',
    });
    const moved = (await t.request(UpdateSchedule, { id: created.id, graphId: otherGraphId, input: {} })).updateSchedule;
    expect(moved).toMatchObject({ __typename: 'Schedule', graph: { id: otherGraphId } });
  });

  it('deletes a schedule; an unknown id is a NotFoundError', async () => {
    const created = await create({ name: 'short-lived', ...valid });
    if (created.__typename !== 'Schedule') throw new Error(JSON.stringify(created));
    expect((await t.request(DeleteSchedule, { id: created.id })).deleteSchedule).toEqual({ __typename: 'Deleted', id: created.id, name: 'short-lived' });
    expect((await t.request(ScheduleTicks, { id: created.id })).schedule).toBeNull();
    expect((await t.request(DeleteSchedule, { id: created.id })).deleteSchedule).toMatchObject({ __typename: 'NotFoundError', field: 'id' });
  });
});

describe('authorization and audit', () => {
  it('operators manage schedules, viewers only read them; every change is audited', async () => {
    const db = t.app.store.db;
    const viewer = httpClient(t.url, { authorization: `Bearer ${(await createToken(db, { name: 'watcher', role: 'viewer' })).secret}` });
    const operator = httpClient(t.url, { authorization: `Bearer ${(await createToken(db, { name: 'ops', role: 'operator' })).secret}` });
    const refused = (await viewer.request(CreateSchedule, { graphId, input: { name: 'v', ...valid } })).createSchedule;
    expect(refused).toMatchObject({ __typename: 'ForbiddenError', field: 'authorization' });
    expect((await viewer.request(AllSchedules, {})).schedules.length).toBeGreaterThan(0);
    const created = (await operator.request(CreateSchedule, { graphId, input: { name: 'by operator', ...valid } })).createSchedule;
    if (created.__typename !== 'Schedule') throw new Error(JSON.stringify(created));
    await operator.request(UpdateSchedule, { id: created.id, input: { paused: true } });
    await operator.request(DeleteSchedule, { id: created.id });
    for (const action of ['createSchedule', 'updateSchedule', 'deleteSchedule']) {
      const entries = (await t.request(ScheduleAudit, { action })).auditLog.filter((e) => e.targetId === created.id);
      expect(entries).toHaveLength(1);
      expect(entries[0]!.targetType).toBe('schedule');
    }
    // Parameter values stay out of the audit trail (they may be secret).
    const [createdEntry] = (await t.request(ScheduleAudit, { action: 'createSchedule' })).auditLog.filter((e) => e.targetId === created.id);
    expect(JSON.stringify(createdEntry!.details)).not.toContain('s3cret');
  });
});
