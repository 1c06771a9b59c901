/** Schedule (SPEC rule 16): the type, its ticks, its queries and mutations; Graph.schedules and Pipeline.schedule. */
import { OVERLAP_POLICIES, TICK_OUTCOMES } from '../engine/schedule.ts';
import * as schedules from '../store/schedules.ts';
import { builder, OPERATOR_ONLY } from './builder.ts';
import { ALL_ERRORS } from './errors.ts';
import { Deleted } from './graph.ts';
import { VertexParamsInput } from './pipeline.ts';

const ScheduleOverlap = builder.enumType('ScheduleOverlap', {
  description: "What a tick does while the schedule's previous run is still QUEUED or RUNNING.",
  values: {
    SKIP: { value: 'SKIP', description: 'Start nothing; the tick is recorded SKIPPED with the pipeline it waited for (the default).' },
    ALLOW: { value: 'ALLOW', description: 'Start another pipeline anyway: runs of the schedule may overlap.' },
    QUEUE: {
      value: 'QUEUE',
      description: "Start the pipeline QUEUED (SPEC rule 14): it starts once no other run of the schedule is RUNNING, in queue order (its blockedBy is SCHEDULE_OVERLAP meanwhile).",
    },
  } satisfies Record<(typeof OVERLAP_POLICIES)[number], unknown>,
});

const TickOutcome = builder.enumType('ScheduleTickOutcome', {
  description: 'What became of a tick.',
  values: {
    STARTED: { value: 'STARTED', description: 'It started a pipeline (`pipeline`).' },
    SKIPPED: { value: 'SKIPPED', description: "The schedule's previous run was still active (overlap SKIP); `reason` names it." },
    MISSED: {
      value: 'MISSED',
      description: 'No scheduler was running at its time, and it was not the latest tick (or that one was older than misfireGraceSeconds). `count` > 1: an entry for several missed ticks of a long outage.',
    },
    FAILED: { value: 'FAILED', description: "The start was refused (e.g. the graph is not checked); `reason` says why." },
  } satisfies Record<(typeof TICK_OUTCOMES)[number], unknown>,
});

/** What masking needs of the schedule's graph. */
export const SCHEDULE_INPUTS_SELECT = { inputs: true, graph: { select: { vertices: { select: { name: true, input: true } } } } } as const;

export const ScheduleTick = builder.prismaObject('ScheduleTick', {
  description: 'What became of one tick of a schedule.',
  fields: (t) => ({
    id: t.exposeInt('id', { description: 'Unique id.' }),
    tickAt: t.expose('tickAt', { type: 'DateTime', description: 'The tick\'s time (for an entry that counts several missed ticks, the earliest).' }),
    outcome: t.field({ type: TickOutcome, description: 'Started, skipped, missed or failed.', resolve: (tick) => tick.outcome as never }),
    count: t.exposeInt('count', { description: 'How many ticks this entry stands for: 1, or more for the missed ticks of a long outage.' }),
    pipeline: t.relation('pipeline', { nullable: true, description: 'The pipeline it started; null unless STARTED (or once that pipeline was deleted).' }),
    reason: t.exposeString('reason', { nullable: true, description: 'Why it was skipped, missed or failed.' }),
    recordedAt: t.expose('recordedAt', { type: 'DateTime', description: 'When the outcome was recorded.' }),
  }),
});

export const Schedule = builder.prismaObject('Schedule', {
  description: 'Starts its graph on a cron expression in a time zone, with parameter values (SPEC rule 16).',
  fields: (t) => ({
    id: t.exposeInt('id', { description: 'Unique id.' }),
    name: t.exposeString('name', { description: 'Name, unique within its graph.' }),
    graph: t.relation('graph', { description: 'The graph it starts.' }),
    cron: t.exposeString('cron', { description: 'The cron expression: five fields, six with seconds first, or a name such as @hourly.' }),
    timeZone: t.exposeString('timeZone', { description: 'The IANA time zone the expression is read in, e.g. Europe/Berlin.' }),
    inputs: t.field({
      type: 'JSON',
      description: "startPipeline's inputs for every run: [{vertex, params}]. Secret parameters' values show as ***.",
      select: SCHEDULE_INPUTS_SELECT,
      resolve: (schedule) => schedules.maskedScheduleInputs(schedule.inputs, schedule.graph.vertices),
    }),
    overlap: t.field({ type: ScheduleOverlap, description: 'What a tick does while the previous run is still active.', resolve: (s) => s.overlap as never }),
    misfireGraceSeconds: t.exposeInt('misfireGraceSeconds', {
      description: 'After downtime, the latest missed tick still runs if it is at most this old; the others are recorded MISSED.',
    }),
    paused: t.exposeBoolean('paused', { description: 'A paused schedule starts nothing and records no tick; resuming does not run the ticks of the pause.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When it was created.' }),
    lastTickAt: t.expose('lastTickAt', { type: 'DateTime', nullable: true, description: 'The latest tick handled (started, skipped, missed or failed), or null.' }),
    nextRunAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When its next tick is; null while paused.',
      select: { cron: true, timeZone: true, paused: true, since: true, lastTickAt: true },
      resolve: (schedule) => schedules.scheduleNextRunAt(schedule),
    }),
    ticks: t.relation('ticks', {
      description: 'Its recent ticks, newest first (the newest 1000 are kept).',
      args: { first: t.arg.int({ required: false, description: 'At most this many (default 20, at most 100).' }) },
      query: (args) => ({ orderBy: { tickAt: 'desc' }, take: Math.min(Math.max(args.first ?? 20, 0), 100) }),
    }),
  }),
});

builder.prismaObjectField('Graph', 'schedules', (t) =>
  t.relation('schedules', { description: 'The schedules that start this graph, by name.', query: { orderBy: { name: 'asc' } } }),
);

builder.prismaObjectField('Pipeline', 'schedule', (t) =>
  t.relation('schedule', { nullable: true, description: 'The schedule whose tick started it; null if it was started otherwise (or that schedule was deleted).' }),
);

builder.queryFields((t) => ({
  schedules: t.prismaField({
    type: ['Schedule'],
    description: 'Schedules, by graph and name; with graphId, only that graph\'s.',
    args: { graphId: t.arg.int({ required: false, description: 'Only the schedules of this graph.' }) },
    resolve: (query, _root, args, ctx) =>
      ctx.db.schedule.findMany({ ...query, where: args.graphId != null ? { graphId: args.graphId } : {}, orderBy: [{ graphId: 'asc' }, { name: 'asc' }] }),
  }),
  schedule: t.prismaField({
    type: 'Schedule',
    nullable: true,
    description: 'One schedule by id, or null.',
    args: { id: t.arg.int({ description: 'The schedule id.' }) },
    resolve: (query, _root, args, ctx) => ctx.db.schedule.findUnique({ ...query, where: { id: args.id } }),
  }),
}));

const ScheduleFields = builder.inputType('ScheduleInput', {
  description: 'The settings of a schedule; on update, omitted fields keep their value.',
  fields: (t) => ({
    name: t.string({ required: false, description: 'Name, unique within the graph, 1 to 48 characters (required to create).' }),
    cron: t.string({
      required: false,
      description:
        'Required to create. Five fields (minute hour day-of-month month day-of-week), e.g. "30 2 * * *" for 02:30 daily; six with seconds first ("*/10 * * * * *"); or @hourly, @daily, @weekly, @monthly, @yearly.',
    }),
    timeZone: t.string({ required: false, description: 'IANA time zone the expression is read in (default UTC), e.g. Europe/Berlin.' }),
    inputs: t.field({
      type: [VertexParamsInput],
      required: false,
      description: "startPipeline's parameter values per vertex for every run (replaces all). Every parameter a run would wait for must be given: nobody is there to supply it.",
    }),
    overlap: t.field({ type: ScheduleOverlap, required: false, description: 'While the previous run is active: SKIP (default) or ALLOW.' }),
    misfireGraceSeconds: t.int({ required: false, description: 'After downtime, the latest missed tick runs if at most this old (default 300, 0 to 604800).' }),
    paused: t.boolean({ required: false, description: 'true pauses it, false resumes it (default false).' }),
  }),
});

type ScheduleFieldsShape = typeof ScheduleFields.$inferInput;

function toInput(input: ScheduleFieldsShape): schedules.ScheduleInput {
  return { ...input, inputs: input.inputs?.map((i) => ({ vertex: i.vertex, params: i.params as Record<string, unknown> })) };
}

builder.mutationFields((t) => ({
  createSchedule: t.field({
    ...OPERATOR_ONLY,
    type: Schedule,
    description: 'Creates a schedule that starts the graph on its cron expression (role operator, as starting a pipeline). Its first tick is the first after now.',
    errors: { types: [...ALL_ERRORS], directResult: true },
    args: {
      graphId: t.arg.int({ description: 'The graph to start.' }),
      input: t.arg({ type: ScheduleFields, description: 'Its settings: name and cron are required.' }),
    },
    resolve: (_root, args, ctx) => schedules.createSchedule(ctx.store, args.graphId, toInput(args.input)),
  }),
  updateSchedule: t.field({
    ...OPERATOR_ONLY,
    type: Schedule,
    description:
      'Changes a schedule: pause it (paused: true), resume it (paused: false; the ticks of the pause are not run), change its settings, or move it to another graph (graphId, e.g. a new version made with cloneGraph). A new cron expression or time zone applies from the next tick.',
    errors: { types: [...ALL_ERRORS], directResult: true },
    args: {
      id: t.arg.int({ description: 'The schedule.' }),
      graphId: t.arg.int({ required: false, description: 'Start this graph from now on instead.' }),
      input: t.arg({ type: ScheduleFields, description: 'The settings to change.' }),
    },
    resolve: (_root, args, ctx) => schedules.updateSchedule(ctx.store, args.id, toInput(args.input), args.graphId),
  }),
  deleteSchedule: t.field({
    ...OPERATOR_ONLY,
    type: Deleted,
    description: 'Deletes a schedule and its ticks; the pipelines it started stay (their schedule is null). Returns what was deleted.',
    errors: { types: [...ALL_ERRORS], directResult: true },
    args: { id: t.arg.int({ description: 'The schedule.' }) },
    resolve: (_root, args, ctx) => schedules.deleteSchedule(ctx.store, args.id),
  }),
}));
