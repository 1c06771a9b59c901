/**
 * Operator-driven pipeline transitions (SPEC rules 4, 5, 9): start, supply input,
 * cancel, retry. Each validates everything first, then commits one transition.
 */
import { buildDag } from '../engine/dag.ts';
import { LIMITS, optionalText, requireIdempotencyKey, requireName } from '../engine/fields.ts';
import { parseInputSchema, readsOutputs, resolveParams, type InputSchema } from '../engine/inputs.ts';
import { ACTIVE_PIPELINE_STATES, NOT_STARTED, PipelineState, TrackState } from '../engine/states.ts';
import type { RunIf } from '../engine/run-conditions.ts';
import { renderScript } from '../engine/template.ts';
import { cancellationsForCancel, initialStates, rerunVertexIds, retryChanges } from '../engine/transitions.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import type { Pipeline } from '../generated/prisma/client.ts';
import { admission, releaseQueued } from './concurrency.ts';
import { sealedGraphOf, type SealedGraph } from './dag-cache.ts';
import { finishPipeline } from './executions.ts';
import { advancePipeline, handlerTest, hasHandlers } from './run-conditions.ts';
import { applyTrackChanges } from './track-changes.ts';
import { forgetOutputValues, renderReadyTracks } from './render.ts';
import { insertRows, sql, type InsertColumn, type SqlRunner } from './sql.ts';
import { fastTransition, lockPipeline, transition, type Journal, type Store } from './transaction.ts';

export interface VertexParams {
  vertex: string;
  params: Record<string, unknown>;
}

export interface StartInput {
  graphId: number;
  name?: string | null;
  desc?: string | null;
  inputs?: readonly VertexParams[] | null;
  /** SPEC rule 15: a second start of the graph with this key returns the first pipeline. */
  idempotencyKey?: string | null;
  /** The schedule whose tick this start is (SPEC rule 16). */
  scheduleId?: number | null;
  /**
   * Start it QUEUED whatever the graph's limit: a schedule's tick with overlap QUEUE while
   * the schedule's previous run is active. It leaves the queue once no other pipeline of its
   * schedule runs (concurrency.ts).
   */
  queue?: boolean;
}

/** A start committed (or about to commit) in a transaction; see startWithin. */
export interface Started {
  pipeline: Pipeline;
  sealedGraph: SealedGraph;
}

/**
 * Thrown inside a start's transaction when the graph already has a pipeline with the start's
 * idempotency key: the transaction rolls back (nothing of the start is written) and
 * startPipeline returns that pipeline instead.
 */
export class AlreadyStarted extends Error {
  constructor() {
    super('a pipeline with this idempotency key exists');
  }
}

export function pipelineStateName(state: number): string {
  return Object.entries(PipelineState).find(([, code]) => code === state)?.[0] ?? String(state);
}

function trackStateLabel(state: number): string {
  return Object.entries(TrackState).find(([, code]) => code === state)?.[0] ?? String(state);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * SPEC rule 4: one transaction seals the graph, reads the definition it sealed, and
 * creates the pipeline and its tracks; bad input rolls all of it back.
 *
 * Plain SQL on the driver adapter (store/sql.ts), the tracks in as few statements as the
 * database allows (insertRows): a start copies the whole graph, and on 10,000 vertices
 * Prisma's createManyAndReturn alone took most of a second.
 */
export async function startPipeline(store: Store, input: StartInput): Promise<Pipeline> {
  const key = input.idempotencyKey == null ? null : requireIdempotencyKey('idempotencyKey', input.idempotencyKey);
  try {
    return await startOnce(store, input, key);
  } catch (error) {
    if (!(error instanceof AlreadyStarted)) throw error;
    // Read after the rollback: the pipeline with the key has committed (on PostgreSQL, the
    // INSERT that collided with it waited for that commit).
    const existing = await store.db.pipeline.findFirst({ where: { graphId: input.graphId, idempotencyKey: key } });
    if (!existing) throw new Error(`pipeline of graph ${input.graphId} with idempotency key vanished after a collision`);
    return existing;
  }
}

/**
 * SPEC rule 15: a start with an idempotency key looks for the graph's pipeline with that key
 * first and, when there is one, writes nothing (AlreadyStarted). Callers racing past that
 * look meet at the unique index on (graph, key): each INSERT but the first does nothing, and
 * its transaction is rolled back the same way. The look first keeps a repeated start from
 * writing at all (not even the graph's seal, which it already has).
 */
async function startOnce(store: Store, input: StartInput, key: string | null): Promise<Pipeline> {
  const { result } = await fastTransition(store, (runner, journal) => startWithin(runner, journal, input, key));
  rememberStarted(store, result);
  return result.pipeline;
}

/** After a start committed: its graph is sealed now, and the executor this start woke needs it next. */
export function rememberStarted(store: Store, started: Started): void {
  store.dags.remember(started.pipeline.graphId, started.sealedGraph);
}

/**
 * The start itself, inside the caller's transaction (startPipeline's own, or a schedule tick's,
 * which records the tick in the same one). `key` is already validated.
 * @throws AlreadyStarted when the graph has a pipeline with the key (roll back, then read it).
 */
export async function startWithin(runner: SqlRunner, journal: Journal, input: StartInput, key: string | null): Promise<Started> {
  const [found] = await runner.query(sql`SELECT "id", "name", "desc", "checkedAt" FROM "graph" WHERE "id" = ${input.graphId}`);
  if (!found) throw new NotFoundError('graphId', 'graph', input.graphId);
  const graph = { id: Number(found.id), name: String(found.name), desc: found.desc === null ? null : String(found.desc) };
  if (key !== null) {
    const [existing] = await runner.query(sql`SELECT "id" FROM "pipeline" WHERE "g_id" = ${graph.id} AND "idempotencyKey" = ${key}`);
    if (existing) throw new AlreadyStarted();
  }
  const sealed = await runner.execute(sql`UPDATE "graph" SET "sealed" = TRUE WHERE "id" = ${graph.id} AND "checked" = TRUE`);
  if (sealed === 0) {
    const check = `checkGraph(id: ${graph.id})`;
    throw new ConflictError(
      'graphId',
      found.checkedAt === null
        ? `Graph "${graph.name}" was never checked, and only a checked graph starts. Run the mutation ${check}, which makes sure it can run (or says what is wrong), then start it. (pipectl apply <file> imports a definition file and checks it in one go.)`
        : `Graph "${graph.name}" has changed since it was last checked. Run the mutation ${check} again, then start it.`,
    );
  }
  const vertices = (
    await runner.query(sql`
      SELECT "id", "name", "input", "script", "timeoutSeconds", "retries", "retryDelaySeconds", "retryBackoff", "runIf"
      FROM "vertex" WHERE "g_id" = ${graph.id} ORDER BY "id"`)
  ).map((r) => ({
    id: Number(r.id),
    name: String(r.name),
    input: String(r.input),
    script: String(r.script),
    timeoutSeconds: Number(r.timeoutSeconds),
    retry: { retries: Number(r.retries), retryDelaySeconds: Number(r.retryDelaySeconds), retryBackoff: Number(r.retryBackoff) },
    runIf: String(r.runIf) as RunIf,
  }));
  const edges = (await runner.query(sql`SELECT "tail", "head" FROM "edge" WHERE "g_id" = ${graph.id}`)).map((r) => ({
    tailId: Number(r.tail),
    headId: Number(r.head),
  }));
  if (vertices.length === 0) throw new ConflictError('graphId', `Graph "${graph.name}" has no vertices. Add one and run checkGraph.`);
  const name = input.name != null ? requireName('name', input.name, LIMITS.pipelineName) : graph.name;
  const desc = input.desc !== undefined ? optionalText('desc', input.desc, LIMITS.pipelineDesc) : graph.desc;
  const prepared = prepareTracks(graph.name, vertices, input.inputs ?? []);
  const dag = buildDag(
    vertices.map((v) => v.id),
    edges,
  );
  // SPEC rule 14: beyond the graph's limit the pipeline queues, every track WAITING. The
  // graph's row is locked already (the seal above), so racing starts count one at a time.
  const state = input.queue ? PipelineState.QUEUED : await admission(runner, graph.id);
  const states = state === PipelineState.QUEUED ? new Map(dag.vertexIds.map((id) => [id, TrackState.WAITING])) : initialStates(dag);
  const createdAt = new Date();
  const queuedAt = state === PipelineState.QUEUED ? createdAt : null;
  const scheduleId = input.scheduleId ?? null;
  const [row] = await runner.query(sql`
    INSERT INTO "pipeline" ("g_id", "name", "desc", "state", "createdAt", "idempotencyKey", "queuedAt", "scheduleId")
    VALUES (${graph.id}, ${name}, ${desc}, ${state}, ${createdAt}, ${key}, ${queuedAt}, ${scheduleId})
    ON CONFLICT ("g_id", "idempotencyKey") DO NOTHING
    RETURNING "id"`);
  // No row: a racing start with the same key committed first (NULL keys never collide).
  if (!row) throw new AlreadyStarted();
  const pipeline: Pipeline = {
    id: Number(row.id),
    graphId: graph.id,
    name,
    desc,
    state,
    createdAt,
    finishedAt: null,
    idempotencyKey: key,
    queuedAt,
    scheduleId,
  };
  const tracks = await insertTracks(
    runner,
    prepared.map((t) => ({ vertexId: t.vertexId, input: t.input, script: t.script, pipelineId: pipeline.id, state: states.get(t.vertexId)! })),
  );
  journal.record(
    state === PipelineState.QUEUED
      ? {
          pipelineId: pipeline.id,
          type: 'pipeline:queued',
          pipelineState: state,
          reason: input.queue ? "its schedule's previous run is still active (overlap QUEUE)" : 'the graph runs maxConcurrentPipelines pipelines already',
        }
      : { pipelineId: pipeline.id, type: 'pipeline:started', pipelineState: state },
  );
  for (const track of tracks) {
    journal.record({ pipelineId: pipeline.id, trackId: track.id, type: 'track:created', trackState: track.state, attempt: 1, needsInput: track.needsInput });
  }
  const sealedGraph = sealedGraphOf(
    dag,
    vertices.map(
      (v, i) =>
        [v.id, { graphId: graph.id, name: v.name, timeoutSeconds: v.timeoutSeconds, inputs: prepared[i]!.inputs, retry: v.retry, runIf: v.runIf }] as const,
    ),
  );
  return { pipeline, sealedGraph };
}

interface NewTrack {
  pipelineId: number;
  vertexId: number;
  input: string | null;
  script: string | null;
  state: TrackState;
}

const TRACK_COLUMNS: readonly InsertColumn[] = [
  { name: 'p_id', type: 'integer' },
  { name: 'v_id', type: 'integer' },
  { name: 'input', type: 'text' },
  { name: 'script', type: 'text' },
  { name: 'state', type: 'integer' },
];

/** Inserts the tracks; returns their ids and states (and whether they lack their inputs) in id order. */
async function insertTracks(runner: SqlRunner, tracks: readonly NewTrack[]): Promise<Array<{ id: number; state: TrackState; needsInput: boolean }>> {
  const byVertex = new Map(tracks.map((t) => [t.vertexId, t]));
  const rows = await insertRows(
    runner,
    'track',
    TRACK_COLUMNS,
    tracks.map((t) => [t.pipelineId, t.vertexId, t.input, t.script, t.state]),
    '"id", "v_id"',
  );
  // Each returned row says which vertex it copies.
  return rows
    .map((r) => {
      const track = byVertex.get(Number(r.v_id))!;
      return { id: Number(r.id), state: track.state, needsInput: track.input === null };
    })
    .sort((a, b) => a.id - b.id);
}

/**
 * Resolves each vertex's parameters from the given values (SPEC rule 5), in vertex order;
 * `missing` names those left for finishInput (the track is then not rendered yet).
 */
export function prepareTracks(
  graphName: string,
  vertices: ReadonlyArray<{ id: number; name: string; input: string; script: string }>,
  inputs: readonly VertexParams[],
): Array<{ vertexId: number; inputs: InputSchema; input: string | null; script: string | null; missing: string[] }> {
  const byName = new Map(vertices.map((v) => [v.name, v]));
  const given = new Map<number, { params: Record<string, unknown>; field: string }>();
  inputs.forEach((entry, i) => {
    const vertex = byName.get(entry.vertex);
    if (!vertex) throw new ValidationError(`inputs.${i}.vertex`, `Graph "${graphName}" has no vertex named "${entry.vertex}".`);
    if (given.has(vertex.id)) throw new ValidationError(`inputs.${i}.vertex`, `Inputs for "${entry.vertex}" are given twice.`);
    if (!isRecord(entry.params)) throw new ValidationError(`inputs.${i}.params`, 'params must be an object of parameter name -> value.');
    given.set(vertex.id, { params: entry.params, field: `inputs.${i}.params` });
  });
  return vertices.map((vertex) => {
    const entry = given.get(vertex.id);
    const schema = parseInputSchema(vertex.input, `vertices.${vertex.name}.inputs`);
    const { values, missing } = resolveParams(schema, entry?.params ?? {}, entry?.field ?? `inputs.${vertex.name}`);
    // Unresolved tracks wait for finishInput; those that read step outputs are rendered
    // when they become ready (render.ts), with the given values kept until then.
    if (missing.length > 0) return { vertexId: vertex.id, inputs: schema, input: null, script: null, missing };
    const script = readsOutputs(schema) ? null : renderScript(vertex.script, values);
    return { vertexId: vertex.id, inputs: schema, input: JSON.stringify(values), script, missing };
  });
}

/**
 * SPEC rule 5: supplies a not-yet-started track's parameters and renders its script. A
 * track that reads step outputs (rule 18) keeps them until it is ready; if it is ready
 * already, it is rendered now from its ancestors' outputs, or fails with the reason.
 */
export async function finishInput(store: Store, trackId: number, params: unknown) {
  const track = await store.db.track.findUnique({
    where: { id: trackId },
    include: { vertex: true, pipeline: { select: { state: true, graphId: true } } },
  });
  if (!track) throw new NotFoundError('trackId', 'track', trackId);
  // A failed pipeline still runs its handlers (SPEC rule 19): the only tracks in it not started.
  if (![...ACTIVE_PIPELINE_STATES, PipelineState.FAILED].includes(track.pipeline.state as PipelineState)) {
    throw new ConflictError(
      'trackId',
      `The pipeline is ${pipelineStateName(track.pipeline.state)}; inputs can be supplied only while it runs or is queued. Retry it first.`,
    );
  }
  const startedMeanwhile = () => new ConflictError('trackId', `Track "${track.vertex.name}" started meanwhile; its inputs can no longer change.`);
  if (!NOT_STARTED.includes(track.state as TrackState)) {
    throw new ConflictError(
      'trackId',
      `Track "${track.vertex.name}" is ${trackStateLabel(track.state)}; inputs can be supplied only before it starts.`,
    );
  }
  if (!isRecord(params)) throw new ValidationError('params', 'params must be an object of parameter name -> value.');
  const schema = parseInputSchema(track.vertex.input, 'params');
  const { values, missing } = resolveParams(schema, params, 'params');
  if (missing.length > 0) {
    const spec = schema.find((s) => s.name === missing[0])!;
    throw new ValidationError(
      `params.${spec.name}`,
      `Parameter "${spec.name}" needs a value${spec.required ? ' (it is required)' : ' (it has no default)'}.`,
    );
  }
  const { result } = await transition(store, async (tx, journal, sql) => {
    if (!readsOutputs(schema)) {
      const updated = await tx.track.updateManyAndReturn({
        where: { id: trackId, attempt: track.attempt, state: { in: [...NOT_STARTED] } },
        data: { input: JSON.stringify(values), script: renderScript(track.vertex.script, values) },
      });
      const row = updated[0];
      if (!row) throw startedMeanwhile();
      journal.record({ pipelineId: row.pipelineId, trackId, type: 'track:input', trackState: row.state, attempt: row.attempt });
      return row;
    }
    // Serialised with the promotions of this pipeline's tracks. A release from the queue does
    // not take this lock: the update is conditional on the state it read, and reads again.
    await lockPipeline(sql, track.pipelineId);
    let state: TrackState | undefined;
    while (state === undefined) {
      const now = await tx.track.findUniqueOrThrow({ where: { id: trackId }, select: { state: true, attempt: true } });
      if (now.attempt !== track.attempt || !NOT_STARTED.includes(now.state as TrackState)) throw startedMeanwhile();
      const { count } = await tx.track.updateMany({
        where: { id: trackId, attempt: track.attempt, state: now.state },
        data: { input: JSON.stringify(values), script: null },
      });
      if (count === 1) state = now.state as TrackState;
    }
    journal.record({ pipelineId: track.pipelineId, trackId, type: 'track:input', trackState: state, attempt: track.attempt });
    if (state === TrackState.PENDING) {
      const graph = await store.dags.get(tx, track.pipeline.graphId);
      if (await renderReadyTracks(sql, journal, track.pipelineId, graph, [{ id: trackId, vertexId: track.vertexId }])) {
        await releaseQueued(sql, journal, track.pipeline.graphId, async () => graph);
      }
    }
    return tx.track.findUniqueOrThrow({ where: { id: trackId } });
  });
  return result;
}

async function pipelineOrThrow(store: Store, pipelineId: number) {
  const pipeline = await store.db.pipeline.findUnique({ where: { id: pipelineId } });
  if (!pipeline) throw new NotFoundError('id', 'pipeline', pipelineId);
  return pipeline;
}

/**
 * SPEC rule 9: the pipeline and every unfinished track become CANCELLED; running ones are
 * killed. A QUEUED pipeline (rule 14) leaves the queue the same way. Cancelling a running
 * pipeline frees a slot of its graph: the next queued one starts in the same transaction.
 */
export async function cancelPipeline(store: Store, pipelineId: number) {
  const pipeline = await pipelineOrThrow(store, pipelineId);
  const { result } = await transition(store, async (tx, journal, sql) => {
    await lockPipeline(sql, pipelineId);
    const updated = await tx.pipeline.updateManyAndReturn({
      where: { id: pipelineId, state: { in: [...ACTIVE_PIPELINE_STATES] } },
      data: { state: PipelineState.CANCELLED, finishedAt: new Date(), queuedAt: null },
    });
    // A FAILED pipeline whose handlers (SPEC rule 19) still wait or run: they are cancelled,
    // and the pipeline stays FAILED, which its failure decided.
    const failed = updated.length === 0 ? await tx.pipeline.findUnique({ where: { id: pipelineId } }) : null;
    const handlersLeft =
      failed?.state === PipelineState.FAILED &&
      (await tx.track.count({ where: { pipelineId, state: { in: [TrackState.WAITING, TrackState.PENDING, TrackState.RUNNING] } } })) > 0;
    if (updated.length === 0 && !handlersLeft) {
      throw new ConflictError(
        'id',
        `Pipeline ${pipelineId} is already ${pipelineStateName(failed?.state ?? pipeline.state)}; only a RUNNING or QUEUED pipeline (or a FAILED one whose handlers still run) can be cancelled.`,
      );
    }
    const tracks = await tx.track.findMany({
      where: { pipelineId, state: { in: [TrackState.WAITING, TrackState.PENDING, TrackState.RUNNING] } },
      select: { id: true, vertexId: true, state: true, vertex: { select: { name: true } } },
    });
    const changes = cancellationsForCancel(
      tracks.map((t) => ({ id: t.id, vertexId: t.vertexId, name: t.vertex.name, state: t.state as TrackState })),
      'cancelled by an operator',
    );
    await applyTrackChanges(sql, journal, pipelineId, changes, {
      from: [TrackState.WAITING, TrackState.PENDING, TrackState.RUNNING],
    });
    if (handlersLeft) return failed!;
    journal.record({ pipelineId, type: 'pipeline:cancelled', pipelineState: PipelineState.CANCELLED, reason: 'cancelled by an operator' });
    await releaseQueued(sql, journal, pipeline.graphId, () => store.dags.get(tx, pipeline.graphId));
    return updated[0]!;
  });
  return result;
}

/**
 * SPEC rule 9: a FAILED or CANCELLED pipeline's failed and cancelled tracks back into play
 * with attempt + 1. With `from` (vertex names), SPEC rule 17: an ended pipeline, FINISH
 * included, re-runs those vertices and all their descendants too (see retryChanges).
 */
export async function retryPipeline(store: Store, pipelineId: number, from?: readonly string[] | null) {
  const pipeline = await pipelineOrThrow(store, pipelineId);
  const retriable: PipelineState[] = [PipelineState.FAILED, PipelineState.CANCELLED];
  if (from != null) retriable.push(PipelineState.FINISH);
  const { result } = await transition(store, async (tx, journal, sql) => {
    await lockPipeline(sql, pipelineId);
    const graph = await store.dags.get(tx, pipeline.graphId);
    const { dag, vertices } = graph;
    const rerun = from == null ? [] : rerunVertexIds(from, [...vertices].map(([id, v]) => ({ id, name: v.name })));
    // SPEC rule 14: a retry counts against the graph's limit as a start does; beyond it the
    // pipeline queues (at the back) with everything it re-runs WAITING.
    const state = await admission(sql, pipeline.graphId);
    const updated = await tx.pipeline.updateManyAndReturn({
      where: { id: pipelineId, state: { in: retriable } },
      data: { state, finishedAt: null, queuedAt: state === PipelineState.QUEUED ? new Date() : null },
    });
    if (updated.length === 0) {
      const current = await tx.pipeline.findUnique({ where: { id: pipelineId }, select: { state: true } });
      // Deleted (deletePipeline, retention) since it was read above.
      if (!current) throw new NotFoundError('id', 'pipeline', pipelineId);
      const now = current.state;
      throw new ConflictError(
        'id',
        from == null
          ? `Pipeline ${pipelineId} is ${pipelineStateName(now)}; only a FAILED or CANCELLED pipeline can be retried (a FINISH one can be re-run from a step with from).`
          : `Pipeline ${pipelineId} is ${pipelineStateName(now)}; only an ended pipeline (FINISH, FAILED or CANCELLED) can be re-run from a step.`,
      );
    }
    const tracks = await tx.track.findMany({ where: { pipelineId }, select: { id: true, vertexId: true, state: true }, orderBy: { id: 'asc' } });
    const vertexOf = new Map(tracks.map((t) => [t.id, t.vertexId]));
    const planned = retryChanges(
      dag,
      tracks.map((t) => ({ ...t, name: vertices.get(t.vertexId)?.name ?? '', state: t.state as TrackState })),
      rerun,
      handlerTest(graph),
    );
    // Queued: nothing is ready before the pipeline leaves the queue (releaseQueued decides then).
    const changes = state === PipelineState.QUEUED ? planned.map((c) => ({ ...c, to: TrackState.WAITING })) : planned;
    await applyTrackChanges(sql, journal, pipelineId, changes, {
      // A re-run also takes succeeded tracks; a plain retry only failed and cancelled ones.
      // Handlers below what failed go back too, whatever they ended as (SPEC rule 19).
      from: [TrackState.SUCCEED, TrackState.FAILED, TrackState.CANCELLED, TrackState.SKIPPED],
      retry: true,
    });
    // Tracks that read step outputs read them anew (SPEC rule 18): a re-run may have changed them.
    const back = changes.map((c) => ({ id: c.trackId, vertexId: vertexOf.get(c.trackId)!, to: c.to }));
    await forgetOutputValues(sql, graph, back);
    journal.record({
      pipelineId,
      type: 'pipeline:retried',
      pipelineState: state,
      reason:
        [from == null ? null : `re-run from ${rerun.map((id) => vertices.get(id)!.name).join(', ')}`, state === PipelineState.QUEUED ? 'queued: the graph runs maxConcurrentPipelines pipelines already' : null]
          .filter((part) => part !== null)
          .join('; ') || null,
    });
    const ready = back.filter((t) => t.to === TrackState.PENDING);
    if (await renderReadyTracks(sql, journal, pipelineId, graph, ready)) {
      // It failed at once (an output it reads does not fit): its slot is free again.
      await releaseQueued(sql, journal, pipeline.graphId, async () => graph);
      return tx.pipeline.findUniqueOrThrow({ where: { id: pipelineId } });
    }
    // Handlers back in play wait for their condition: decided now, those whose predecessors ended.
    if (state === PipelineState.RUNNING && hasHandlers(graph)) {
      const advanced = await advancePipeline(sql, journal, graph, pipelineId, null);
      if (advanced.finished) await finishPipeline(sql, journal, graph, pipeline.graphId, pipelineId);
      if (advanced.failed) {
        await releaseQueued(sql, journal, pipeline.graphId, async () => graph);
        return tx.pipeline.findUniqueOrThrow({ where: { id: pipelineId } });
      }
    }
    return updated[0]!;
  });
  return result;
}
