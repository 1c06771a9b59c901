/**
 * Resolving and rendering a track at the moment it becomes ready (SPEC rules 5, 6, 18).
 *
 * A track whose inputs are all given or defaulted is rendered when its pipeline starts (or
 * at finishInput). One with an input that reads a step output (`from`) cannot be: the value
 * exists only once that ancestor succeeded. Its track keeps the given values in `input` and
 * no script until it becomes PENDING, and every transition that makes such a track PENDING
 * (a promotion after success, a release from the queue, a retry or re-run, finishInput)
 * calls renderReadyTracks in the same transaction: the outputs are read, converted to the
 * inputs' types and quoted into the script (rule 6), or the track fails with the reason,
 * and its pipeline with it (rule 8; no automatic retry: the outputs it read will not
 * change). The claim takes only tracks with a script, so none runs before this.
 *
 * Graphs without `from` inputs pay nothing: the sealed graph says which vertices read
 * outputs, and only those tracks are looked at.
 */
import { parseFromReference, readsOutputs, resolveFromOutputs, type InputSchema, type ParamValue } from '../engine/inputs.ts';
import type { Outputs } from '../engine/outputs.ts';
import { TrackState } from '../engine/states.ts';
import { renderScript } from '../engine/template.ts';
import type { SealedGraph } from './dag-cache.ts';
import { sql, type SqlRunner } from './sql.ts';
import { failPipelineAfter } from './track-changes.ts';
import type { Journal } from './transaction.ts';

export interface TrackOfVertex {
  id: number;
  vertexId: number;
}

/** The tracks of vertices with an input that reads a step output. */
function outputReaders(graph: SealedGraph, tracks: readonly TrackOfVertex[]): TrackOfVertex[] {
  return tracks.filter((t) => {
    const vertex = graph.vertices.get(t.vertexId);
    return vertex !== undefined && readsOutputs(vertex.inputs);
  });
}

/** The given values of a track without those of its `from` inputs (read anew from the outputs). */
function givenValues(schema: InputSchema, input: string): Record<string, ParamValue> {
  const fromOutputs = new Set(schema.filter((s) => s.from !== undefined).map((s) => s.name));
  return Object.fromEntries(Object.entries(JSON.parse(input) as Record<string, ParamValue>).filter(([name]) => !fromOutputs.has(name)));
}

/**
 * Renders those of `tracks` that are PENDING, have their given inputs and read step
 * outputs, from the outputs of their pipeline's tracks now. A track whose inputs do not
 * resolve fails with the reason, and the pipeline fails with it.
 * @returns whether the pipeline failed now (a slot of its graph is free: see releaseQueued).
 */
export async function renderReadyTracks(
  runner: SqlRunner,
  journal: Journal,
  pipelineId: number,
  graph: SealedGraph,
  tracks: readonly TrackOfVertex[],
): Promise<boolean> {
  const readers = outputReaders(graph, tracks);
  if (readers.length === 0) return false;
  const rows = await runner.query(sql`
    SELECT t."id", t."v_id", t."attempt", t."input", v."script" FROM "track" t JOIN "vertex" v ON v."id" = t."v_id"
    WHERE t."id" IN (${readers.map((t) => t.id)}) AND t."state" = ${TrackState.PENDING} AND t."input" IS NOT NULL
    ORDER BY t."id"`);
  if (rows.length === 0) return false;
  const vertexIdOf = new Map([...graph.vertices].map(([id, vertex]) => [vertex.name, id]));
  const sources = new Set<number>();
  for (const row of rows) {
    for (const spec of graph.vertices.get(Number(row.v_id))!.inputs) {
      const source = spec.from === undefined ? undefined : vertexIdOf.get(parseFromReference(spec.from)!.vertex);
      if (source !== undefined) sources.add(source);
    }
  }
  const outputRows =
    sources.size === 0 ? [] : await runner.query(sql`SELECT "v_id", "outputs" FROM "track" WHERE "p_id" = ${pipelineId} AND "v_id" IN (${[...sources]})`);
  const outputsOf = new Map(outputRows.map((r) => [Number(r.v_id), r.outputs === null ? undefined : (JSON.parse(String(r.outputs)) as Outputs)]));
  for (const row of rows) {
    const track = { id: Number(row.id), vertexId: Number(row.v_id), attempt: Number(row.attempt) };
    const vertex = graph.vertices.get(track.vertexId)!;
    const resolved = resolveFromOutputs(vertex.name, vertex.inputs, givenValues(vertex.inputs, String(row.input)), (name) => {
      const source = vertexIdOf.get(name);
      return source === undefined ? undefined : outputsOf.get(source);
    });
    const held = sql`"id" = ${track.id} AND "attempt" = ${track.attempt} AND "state" = ${TrackState.PENDING}`;
    if (resolved.ok) {
      await runner.execute(sql`
        UPDATE "track" SET "input" = ${JSON.stringify(resolved.values)}, "script" = ${renderScript(String(row.script), resolved.values)}
        WHERE ${held}`);
      continue;
    }
    const failed = await runner.execute(sql`
      UPDATE "track" SET "state" = ${TrackState.FAILED}, "reason" = ${resolved.reason}, "finishedAt" = ${new Date()} WHERE ${held}`);
    if (failed === 0) continue;
    journal.record({ pipelineId, trackId: track.id, type: 'track:failed', trackState: TrackState.FAILED, attempt: track.attempt, reason: resolved.reason });
    // The others of `rows` are cancelled with the rest of the pipeline.
    return failPipelineAfter(graph, runner, journal, { ...track, pipelineId, vertexName: vertex.name });
  }
  return false;
}

/**
 * An operator's retry or re-run (SPEC rules 9, 17) puts tracks back into play: those that
 * read step outputs forget the values they read and their script, to be rendered from the
 * outputs as they are when they become ready again (renderReadyTracks). (An automatic retry
 * keeps its script: nothing upstream ran again meanwhile.)
 */
export async function forgetOutputValues(runner: SqlRunner, graph: SealedGraph, tracks: readonly TrackOfVertex[]): Promise<void> {
  const readers = outputReaders(graph, tracks);
  if (readers.length === 0) return;
  const rows = await runner.query(sql`SELECT "id", "v_id", "input" FROM "track" WHERE "id" IN (${readers.map((t) => t.id)}) AND "input" IS NOT NULL`);
  for (const row of rows) {
    const given = givenValues(graph.vertices.get(Number(row.v_id))!.inputs, String(row.input));
    await runner.execute(sql`UPDATE "track" SET "input" = ${JSON.stringify(given)}, "script" = NULL WHERE "id" = ${Number(row.id)}`);
  }
}
