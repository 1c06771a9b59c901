/**
 * Operator-driven pipeline transitions (SPEC rules 4, 5, 9): start, supply input,
 * cancel, retry. Each validates everything first, then commits one transition.
 */
import { buildDag } from '../engine/dag.ts';
import { LIMITS, optionalText, requireName } from '../engine/fields.ts';
import { parseInputSchema, resolveParams } from '../engine/inputs.ts';
import { NOT_STARTED, PipelineState, TrackState } from '../engine/states.ts';
import { renderScript } from '../engine/template.ts';
import { cancellationsForCancel, initialStates, retryChanges } from '../engine/transitions.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { applyTrackChanges } from './track-changes.ts';
import { lockPipeline, transition, type Store } from './transaction.ts';

export interface VertexParams {
  vertex: string;
  params: Record<string, unknown>;
}

export interface StartInput {
  graphId: number;
  name?: string | null;
  desc?: string | null;
  inputs?: readonly VertexParams[] | null;
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
 */
export async function startPipeline(store: Store, input: StartInput) {
  const { result } = await transition(store, async (tx, journal) => {
    const found = await tx.graph.findUnique({ where: { id: input.graphId }, select: { id: true, name: true, desc: true, checkedAt: true } });
    if (!found) throw new NotFoundError('graphId', 'graph', input.graphId);
    const sealed = await tx.graph.updateMany({ where: { id: found.id, checked: true }, data: { sealed: true } });
    if (sealed.count === 0) {
      const check = `checkGraph(id: ${found.id})`;
      throw new ConflictError(
        'graphId',
        found.checkedAt === null
          ? `Graph "${found.name}" was never checked, and only a checked graph starts. Run the mutation ${check}, which makes sure it can run (or says what is wrong), then start it. (pipectl apply <file> imports a definition file and checks it in one go.)`
          : `Graph "${found.name}" has changed since it was last checked. Run the mutation ${check} again, then start it.`,
      );
    }
    const [vertices, edges] = await Promise.all([
      tx.vertex.findMany({ where: { graphId: found.id }, orderBy: { id: 'asc' } }),
      tx.edge.findMany({ where: { graphId: found.id }, select: { tailId: true, headId: true } }),
    ]);
    if (vertices.length === 0) throw new ConflictError('graphId', `Graph "${found.name}" has no vertices. Add one and run checkGraph.`);
    const name = input.name != null ? requireName('name', input.name, LIMITS.pipelineName) : found.name;
    const desc = input.desc !== undefined ? optionalText('desc', input.desc, LIMITS.pipelineDesc) : found.desc;
    const prepared = prepareTracks(found.name, vertices, input.inputs ?? []);
    const states = initialStates(
      buildDag(
        vertices.map((v) => v.id),
        edges,
      ),
    );
    const pipeline = await tx.pipeline.create({ data: { graphId: found.id, name, desc, state: PipelineState.RUNNING } });
    const tracks = await tx.track.createManyAndReturn({
      data: prepared.map((t) => ({ ...t, pipelineId: pipeline.id, state: states.get(t.vertexId)! })),
      select: { id: true, state: true },
    });
    journal.record({ pipelineId: pipeline.id, type: 'pipeline:started', pipelineState: PipelineState.RUNNING });
    for (const track of tracks.sort((a, b) => a.id - b.id)) {
      journal.record({ pipelineId: pipeline.id, trackId: track.id, type: 'track:created', trackState: track.state, attempt: 1 });
    }
    return pipeline;
  });
  return result;
}

/** Resolves each vertex's parameters from the given values (SPEC rule 5). */
function prepareTracks(
  graphName: string,
  vertices: ReadonlyArray<{ id: number; name: string; input: string; script: string }>,
  inputs: readonly VertexParams[],
) {
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
    // Unresolved tracks wait for finishInput.
    return missing.length === 0
      ? { vertexId: vertex.id, input: JSON.stringify(values), script: renderScript(vertex.script, values) }
      : { vertexId: vertex.id, input: null, script: null };
  });
}

/** SPEC rule 5: supplies a not-yet-started track's parameters and renders its script. */
export async function finishInput(store: Store, trackId: number, params: unknown) {
  const track = await store.db.track.findUnique({
    where: { id: trackId },
    include: { vertex: true, pipeline: { select: { state: true } } },
  });
  if (!track) throw new NotFoundError('trackId', 'track', trackId);
  if (track.pipeline.state !== PipelineState.RUNNING) {
    throw new ConflictError(
      'trackId',
      `The pipeline is ${pipelineStateName(track.pipeline.state)}; inputs can be supplied only while it runs. Retry it first.`,
    );
  }
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
  const { result } = await transition(store, async (tx, journal) => {
    const updated = await tx.track.updateManyAndReturn({
      where: { id: trackId, attempt: track.attempt, state: { in: [...NOT_STARTED] } },
      data: { input: JSON.stringify(values), script: renderScript(track.vertex.script, values) },
    });
    const row = updated[0];
    if (!row) throw new ConflictError('trackId', `Track "${track.vertex.name}" started meanwhile; its inputs can no longer change.`);
    journal.record({ pipelineId: row.pipelineId, trackId, type: 'track:input', trackState: row.state, attempt: row.attempt });
    return row;
  });
  return result;
}

async function pipelineOrThrow(store: Store, pipelineId: number) {
  const pipeline = await store.db.pipeline.findUnique({ where: { id: pipelineId } });
  if (!pipeline) throw new NotFoundError('id', 'pipeline', pipelineId);
  return pipeline;
}

/** SPEC rule 9: the pipeline and every unfinished track become CANCELLED; running ones are killed. */
export async function cancelPipeline(store: Store, pipelineId: number) {
  const pipeline = await pipelineOrThrow(store, pipelineId);
  const { result } = await transition(store, async (tx, journal, sql) => {
    await lockPipeline(sql, pipelineId);
    const updated = await tx.pipeline.updateManyAndReturn({
      where: { id: pipelineId, state: PipelineState.RUNNING },
      data: { state: PipelineState.CANCELLED, finishedAt: new Date() },
    });
    if (updated.length === 0) {
      throw new ConflictError('id', `Pipeline ${pipelineId} is already ${pipelineStateName(pipeline.state)}; only a RUNNING pipeline can be cancelled.`);
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
    journal.record({ pipelineId, type: 'pipeline:cancelled', pipelineState: PipelineState.CANCELLED, reason: 'cancelled by an operator' });
    return updated[0]!;
  });
  return result;
}

/** SPEC rule 9: failed and cancelled tracks back into play with attempt + 1. */
export async function retryPipeline(store: Store, pipelineId: number) {
  const pipeline = await pipelineOrThrow(store, pipelineId);
  const { result } = await transition(store, async (tx, journal, sql) => {
    await lockPipeline(sql, pipelineId);
    const updated = await tx.pipeline.updateManyAndReturn({
      where: { id: pipelineId, state: { in: [PipelineState.FAILED, PipelineState.CANCELLED] } },
      data: { state: PipelineState.RUNNING, finishedAt: null },
    });
    if (updated.length === 0) {
      throw new ConflictError(
        'id',
        `Pipeline ${pipelineId} is ${pipelineStateName(pipeline.state)}; only a FAILED or CANCELLED pipeline can be retried.`,
      );
    }
    const tracks = await tx.track.findMany({ where: { pipelineId }, select: { id: true, vertexId: true, state: true } });
    const { dag } = await store.dags.get(tx, pipeline.graphId);
    const changes = retryChanges(
      dag,
      tracks.map((t) => ({ ...t, name: '', state: t.state as TrackState })),
    );
    await applyTrackChanges(sql, journal, pipelineId, changes, {
      from: [TrackState.FAILED, TrackState.CANCELLED],
      retry: true,
    });
    journal.record({ pipelineId, type: 'pipeline:retried', pipelineState: PipelineState.RUNNING });
    return updated[0]!;
  });
  return result;
}
