/**
 * Schedules (SPEC rule 16): create, change, pause, resume and delete them, and make a graph's
 * schedules match its definition file. Every change validates first and changes nothing on
 * error; after it commits, the schedulers of this process (and on PostgreSQL of every
 * process, by NOTIFY) look at the schedules again, so a new or changed schedule is followed
 * from its next tick. The ticks themselves are store/schedule-ticks.ts.
 */
import {
  DEFAULT_MISFIRE_GRACE_SECONDS,
  DEFAULT_TIME_ZONE,
  nextRunAt,
  parseCron,
  requireMisfireGrace,
  requireOverlap,
  requireTimeZone,
  type OverlapPolicy,
} from '../engine/schedule.ts';
import { LIMITS, requireName } from '../engine/fields.ts';
import { parseInputSchema } from '../engine/inputs.ts';
import { MASK } from '../engine/secrets.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { Prisma, type Schedule } from '../generated/prisma/client.ts';
import { prepareTracks, type VertexParams } from './pipelines.ts';
import { prismaRunner, sql } from './sql.ts';
import { WORK_CHANNEL, type Store, type Tx } from './transaction.ts';

/** The NOTIFY payload on WORK_CHANNEL that says schedules changed (see store/work-listener.ts). */
export const SCHEDULES_HINT = 'schedules';

/** A schedule's settings as createSchedule, updateSchedule and definition files give them. */
export interface ScheduleInput {
  name?: string | null;
  cron?: string | null;
  timeZone?: string | null;
  /** startPipeline's inputs for every run. */
  inputs?: readonly VertexParams[] | null;
  overlap?: string | null;
  misfireGraceSeconds?: number | null;
  paused?: boolean | null;
}

/** What a schedule's inputs are checked against: the graph's vertices. */
export interface ScheduleTarget {
  graphName: string;
  vertices: ReadonlyArray<{ id: number; name: string; input: string; script: string }>;
}

/** The validated settings, ready to store; only those given (all of them when creating). */
export interface ScheduleData {
  name?: string;
  cron?: string;
  timeZone?: string;
  inputs?: string;
  overlap?: OverlapPolicy;
  misfireGraceSeconds?: number;
  paused?: boolean;
}

/** Schedule names are like vertex names: both are keys of the graph's definition file. */
const NAME_LIMIT = LIMITS.vertexName;

/**
 * Validates a schedule's settings. Creating, every setting has its default, and the name and
 * the cron expression are required; updating, only what is given is checked (the cron
 * expression against the time zone it will have, `current`).
 * @throws ValidationError naming the field.
 */
export function validateSchedule(
  input: ScheduleInput,
  target: ScheduleTarget,
  current?: { cron: string; timeZone: string; inputs: string },
  /** Stored inputs whose secret values a *** keeps (by default the current schedule's). */
  storedInputs = current?.inputs,
): ScheduleData {
  const creating = current === undefined;
  const data: ScheduleData = {};
  if (input.name != null || creating) data.name = requireName('name', input.name ?? '', NAME_LIMIT);
  if (input.timeZone != null) data.timeZone = requireTimeZone('timeZone', input.timeZone);
  else if (creating) data.timeZone = DEFAULT_TIME_ZONE;
  if (input.cron != null || creating) data.cron = parseCron('cron', input.cron ?? '', data.timeZone ?? current!.timeZone).cron;
  else if (data.timeZone !== undefined) parseCron('cron', current!.cron, data.timeZone);
  if (input.inputs != null) data.inputs = JSON.stringify(validateInputs(unmasked(input.inputs, target, storedInputs), target));
  else if (creating) data.inputs = JSON.stringify(validateInputs([], target));
  if (input.overlap != null || creating) data.overlap = requireOverlap('overlap', input.overlap ?? 'SKIP');
  if (input.misfireGraceSeconds != null || creating) {
    data.misfireGraceSeconds = requireMisfireGrace('misfireGraceSeconds', input.misfireGraceSeconds ?? DEFAULT_MISFIRE_GRACE_SECONDS);
  }
  if (input.paused != null || creating) data.paused = input.paused ?? false;
  return data;
}

/**
 * The inputs are startPipeline's, checked as a start checks them (vertex names, parameter
 * names and types). A parameter a run would have to wait for is refused: a scheduled run has
 * nobody to supply it with finishInput.
 */
function validateInputs(inputs: readonly VertexParams[], target: ScheduleTarget): VertexParams[] {
  const prepared = prepareTracks(target.graphName, target.vertices, inputs);
  prepared.forEach((track, i) => {
    if (track.missing.length === 0) return;
    const vertex = target.vertices[i]!;
    const index = inputs.findIndex((entry) => entry.vertex === vertex.name);
    const [first] = track.missing;
    const spec = parseInputSchema(vertex.input, 'inputs').find((p) => p.name === first)!;
    throw new ValidationError(
      index < 0 ? 'inputs' : `inputs.${index}.params.${first}`,
      `Vertex "${vertex.name}" needs a value for ${track.missing.join(', ')}${spec.required ? ' (required)' : ' (no default)'}, and a scheduled run has nobody to supply it with finishInput: give it in inputs, e.g. [{vertex: "${vertex.name}", params: {${first}: ...}}].`,
    );
  });
  return inputs.map((entry) => ({ vertex: entry.vertex, params: entry.params }));
}

/**
 * A secret parameter's value given as `***` (as Schedule.inputs and definition files show
 * it) keeps the value stored for it: what was read can be written back unchanged.
 * @throws ValidationError when there is no stored value to keep.
 */
function unmasked(inputs: readonly VertexParams[], target: ScheduleTarget, stored: string | undefined): VertexParams[] {
  const previous = new Map((stored ? (JSON.parse(stored) as VertexParams[]) : []).map((entry) => [entry.vertex, entry.params]));
  return inputs.map((entry, i) => {
    const vertex = target.vertices.find((v) => v.name === entry.vertex);
    if (!vertex || typeof entry.params !== 'object' || entry.params === null) return entry;
    const secret = new Set(parseInputSchema(vertex.input, 'inputs').filter((p) => p.secret).map((p) => p.name));
    const params = { ...entry.params };
    for (const [name, value] of Object.entries(params)) {
      if (value !== MASK || !secret.has(name)) continue;
      const kept = previous.get(entry.vertex)?.[name];
      if (kept === undefined) {
        throw new ValidationError(`inputs.${i}.params.${name}`, `Parameter "${name}" is secret and its value is shown as ${MASK}: give the real value here.`);
      }
      params[name] = kept;
    }
    return { vertex: entry.vertex, params };
  });
}

async function targetOf(tx: Tx, graphId: number, field: string): Promise<ScheduleTarget> {
  const graph = await tx.graph.findUnique({
    where: { id: graphId },
    select: { name: true, vertices: { select: { id: true, name: true, input: true, script: true }, orderBy: { id: 'asc' } } },
  });
  if (!graph) throw new NotFoundError(field, 'graph', graphId);
  return { graphName: graph.name, vertices: graph.vertices };
}

function duplicateName(name: string | undefined, graphName: string) {
  return `Graph "${graphName}" already has a schedule named "${name}". Schedule names are unique within a graph: choose another, or change that one with updateSchedule.`;
}

/** Maps the unique index's race (two creates at once) to the error the check gives. */
async function uniquely<T>(message: () => string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') throw new ConflictError('name', message());
    throw error;
  }
}

/** Tells the schedulers to look again: this process's at once, the others' by NOTIFY (PostgreSQL). */
export async function announceScheduleChange(store: Store): Promise<void> {
  for (const listener of store.scheduleListeners) {
    try {
      listener();
    } catch (error) {
      store.onListenerError?.(error);
    }
  }
  if (store.fast.provider === 'postgres') {
    await prismaRunner(store.db, 'postgres').execute(sql`SELECT pg_notify(${WORK_CHANNEL}, ${SCHEDULES_HINT})`);
  }
}

export async function createSchedule(store: Store, graphId: number, input: ScheduleInput): Promise<Schedule> {
  let graphName = '';
  const schedule = await uniquely(
    () => duplicateName(input.name?.trim(), graphName),
    () =>
      store.db.$transaction(async (tx) => {
        const target = await targetOf(tx, graphId, 'graphId');
        graphName = target.graphName;
        const data = validateSchedule(input, target);
        if (await tx.schedule.findUnique({ where: { graphId_name: { graphId, name: data.name! } }, select: { id: true } })) {
          throw new ConflictError('name', duplicateName(data.name, graphName));
        }
        const now = new Date();
        return tx.schedule.create({ data: { ...(data as Required<ScheduleData>), graphId, createdAt: now, since: now } });
      }),
  );
  await announceScheduleChange(store);
  return schedule;
}

/**
 * Changes a schedule; `graphId` moves it to another graph (a new version of its graph, say),
 * whose vertices its inputs are checked against. Resuming it (paused: false) and changing
 * its cron expression or time zone make only later ticks due: the ticks before are neither
 * run nor missed.
 */
export async function updateSchedule(store: Store, id: number, input: ScheduleInput, graphId?: number | null): Promise<Schedule> {
  let graphName = '';
  const schedule = await uniquely(
    () => duplicateName(input.name?.trim(), graphName),
    () =>
      store.db.$transaction(async (tx) => {
        const current = await tx.schedule.findUnique({ where: { id } });
        if (!current) throw new NotFoundError('id', 'schedule', id);
        const target = await targetOf(tx, graphId ?? current.graphId, 'graphId');
        graphName = target.graphName;
        // Moved: its inputs must fit the new graph's vertices.
        const moved = graphId != null && graphId !== current.graphId;
        const given = moved && input.inputs == null ? { ...input, inputs: JSON.parse(current.inputs) as VertexParams[] } : input;
        const data = validateSchedule(given, target, current);
        const name = data.name ?? current.name;
        if ((moved || name !== current.name) && (await tx.schedule.findUnique({ where: { graphId_name: { graphId: graphId ?? current.graphId, name } } }))) {
          throw new ConflictError('name', duplicateName(name, graphName));
        }
        return tx.schedule.update({ where: { id }, data: { ...data, ...(moved && { graphId }), ...sinceFor(current, data) } });
      }),
  );
  await announceScheduleChange(store);
  return schedule;
}

/** A new `since` when the change makes earlier ticks moot: resumed, or another cron expression or time zone. */
function sinceFor(current: Pick<Schedule, 'paused' | 'cron' | 'timeZone'>, data: ScheduleData): { since?: Date } {
  const resumed = current.paused && data.paused === false;
  const retimed = (data.cron !== undefined && data.cron !== current.cron) || (data.timeZone !== undefined && data.timeZone !== current.timeZone);
  return resumed || retimed ? { since: new Date() } : {};
}

/** Deletes a schedule and its ticks; the pipelines it started stay (their `schedule` becomes null). */
export async function deleteSchedule(store: Store, id: number): Promise<Schedule> {
  const schedule = await store.db.$transaction(async (tx) => {
    const found = await tx.schedule.findUnique({ where: { id } });
    if (!found) throw new NotFoundError('id', 'schedule', id);
    await tx.schedule.delete({ where: { id } });
    return found;
  });
  await announceScheduleChange(store);
  return schedule;
}

/** The schedule's next tick, as Schedule.nextRunAt shows it: null while paused. */
export function scheduleNextRunAt(schedule: Pick<Schedule, 'cron' | 'timeZone' | 'paused' | 'since' | 'lastTickAt'>, now = new Date()): Date | null {
  if (schedule.paused) return null;
  const after = schedule.lastTickAt && schedule.lastTickAt > schedule.since ? schedule.lastTickAt : schedule.since;
  try {
    return nextRunAt(parseCron('cron', schedule.cron, schedule.timeZone), after, now);
  } catch {
    // Stored before a change of the cron syntax: the scheduler reports it; nothing will run.
    return null;
  }
}

/** A schedule as a definition file has it: by name, with its settings. */
export interface ScheduleDefinition extends ScheduleInput {
  name: string;
}

/**
 * The schedules of a definition, validated against the graph's vertices (field paths
 * "schedules.<i>...."), with names given once.
 */
export function validateScheduleDefinitions(
  definitions: readonly ScheduleDefinition[],
  target: ScheduleTarget,
  /** The graph's schedules' stored inputs by name, for secret values given as ***. */
  storedInputs: ReadonlyMap<string, string> = new Map(),
): ScheduleData[] {
  const seen = new Set<string>();
  return definitions.map((definition, i) => {
    let data: ScheduleData;
    try {
      data = validateSchedule(definition, target, undefined, storedInputs.get(definition.name.trim()));
    } catch (error) {
      if (error instanceof ValidationError) throw new ValidationError(`schedules.${i}.${error.field}`, error.message);
      throw error;
    }
    if (seen.has(data.name!)) throw new ConflictError(`schedules.${i}.name`, `The schedule "${data.name}" is given twice. Schedule names are unique within a graph.`);
    seen.add(data.name!);
    return data;
  });
}

/**
 * Makes a graph's schedules those of its definition, by name: new ones are created, the
 * others changed to match (a schedule the file does not say is paused keeps its pause), and
 * those the file no longer has are deleted. Inside the caller's transaction; validated first
 * (validateScheduleDefinitions). Returns the names created, changed and deleted.
 */
export async function syncSchedules(
  tx: Tx,
  graphId: number,
  definitions: readonly ScheduleDefinition[],
  validated: readonly ScheduleData[],
): Promise<{ created: string[]; updated: string[]; deleted: string[] }> {
  const existing = new Map((await tx.schedule.findMany({ where: { graphId } })).map((s) => [s.name, s]));
  const result = { created: [] as string[], updated: [] as string[], deleted: [] as string[] };
  const now = new Date();
  for (const [i, data] of validated.entries()) {
    const current = existing.get(data.name!);
    existing.delete(data.name!);
    if (!current) {
      await tx.schedule.create({ data: { ...(data as Required<ScheduleData>), graphId, createdAt: now, since: now } });
      result.created.push(data.name!);
      continue;
    }
    const change: ScheduleData = { ...data };
    if (definitions[i]!.paused == null) delete change.paused;
    const differs = (Object.keys(change) as Array<keyof ScheduleData>).some((key) => change[key] !== current[key]);
    if (!differs) continue;
    await tx.schedule.update({ where: { id: current.id }, data: { ...change, ...sinceFor(current, change) } });
    result.updated.push(data.name!);
  }
  for (const stale of existing.values()) {
    await tx.schedule.delete({ where: { id: stale.id } });
    result.deleted.push(stale.name);
  }
  return result;
}

/**
 * A schedule's stored inputs with the values of secret parameters as `***` (what the API and
 * definition files show: schedules are read by every viewer).
 */
export function maskedScheduleInputs(stored: string, vertices: ReadonlyArray<{ name: string; input: string }>): VertexParams[] {
  const secret = new Map(vertices.map((v) => [v.name, new Set(parseInputSchema(v.input, 'inputs').filter((p) => p.secret).map((p) => p.name))]));
  return (JSON.parse(stored) as VertexParams[]).map((entry) => ({
    vertex: entry.vertex,
    params: Object.fromEntries(Object.entries(entry.params).map(([name, value]) => [name, secret.get(entry.vertex)?.has(name) ? MASK : value])),
  }));
}

/**
 * A stored schedule as its graph's definition prints it: the settings that are not the
 * default (the time zone always), secret values masked.
 */
export function scheduleDefinition(
  schedule: Pick<Schedule, 'name' | 'cron' | 'timeZone' | 'inputs' | 'overlap' | 'misfireGraceSeconds' | 'paused'>,
  vertices: ReadonlyArray<{ name: string; input: string }>,
) {
  const inputs = maskedScheduleInputs(schedule.inputs, vertices);
  return {
    name: schedule.name,
    cron: schedule.cron,
    timeZone: schedule.timeZone,
    ...(inputs.length > 0 && { inputs }),
    ...(schedule.overlap !== 'SKIP' && { overlap: schedule.overlap }),
    ...(schedule.misfireGraceSeconds !== DEFAULT_MISFIRE_GRACE_SECONDS && { misfireGraceSeconds: schedule.misfireGraceSeconds }),
    ...(schedule.paused && { paused: true }),
  };
}
