/**
 * Run conditions in the database (SPEC rule 19; the decisions are engine/run-conditions.ts):
 * reads a pipeline's track states, asks the engine what its WAITING tracks become, and
 * applies that with the events that announce it, in the caller's transaction.
 *
 * Graphs without handlers (every vertex runIf SUCCESS, the seed's rule) never come here:
 * the executor's fast path promotes successors from their neighbourhood alone.
 */
import { decideSuccessors, decideWaiting, isHandler, type Decision, type PipelineView } from '../engine/run-conditions.ts';
import { PipelineState, TrackState } from '../engine/states.ts';
import type { SealedGraph } from './dag-cache.ts';
import { renderReadyTracks } from './render.ts';
import { sql, type SqlRunner } from './sql.ts';
import type { Journal } from './transaction.ts';

const handlersOf = new WeakMap<SealedGraph, boolean>();

/** Whether any vertex of the graph is a handler (runIf FAILURE or ALWAYS). */
export function hasHandlers(graph: SealedGraph): boolean {
  let known = handlersOf.get(graph);
  if (known === undefined) {
    known = [...graph.vertices.values()].some((v) => isHandler(v.runIf));
    handlersOf.set(graph, known);
  }
  return known;
}

export function handlerTest(graph: SealedGraph): (vertexId: number) => boolean {
  return (vertexId) => isHandler(graph.vertices.get(vertexId)?.runIf ?? 'SUCCESS');
}

/** The pipeline's track states by vertex. */
export async function trackStates(runner: SqlRunner, pipelineId: number): Promise<Map<number, TrackState>> {
  const rows = await runner.query(sql`SELECT "v_id", "state" FROM "track" WHERE "p_id" = ${pipelineId}`);
  return new Map(rows.map((r) => [Number(r.v_id), Number(r.state) as TrackState]));
}

function viewOf(graph: SealedGraph, states: ReadonlyMap<number, TrackState>, failed: boolean): PipelineView {
  return {
    dag: graph.dag,
    runIf: (vertexId) => graph.vertices.get(vertexId)?.runIf ?? 'SUCCESS',
    name: (vertexId) => graph.vertices.get(vertexId)?.name ?? String(vertexId),
    stateOf: (vertexId) => states.get(vertexId),
    failed,
  };
}

/**
 * Applies decisions: WAITING -> PENDING (track:ready; one that reads step outputs is
 * rendered now, render.ts) or SKIPPED (track:skipped, with its reason).
 * @returns whether the pipeline failed now (a ready track's step outputs did not fit its inputs).
 */
async function applyDecisions(
  runner: SqlRunner,
  journal: Journal,
  graph: SealedGraph,
  pipelineId: number,
  decisions: readonly Decision[],
): Promise<boolean> {
  const ready = decisions.filter((d) => d.to === TrackState.PENDING).map((d) => d.vertexId);
  if (ready.length > 0) {
    const promoted = await runner.query(sql`
      UPDATE "track" SET "state" = ${TrackState.PENDING}
      WHERE "p_id" = ${pipelineId} AND "v_id" IN (${ready}) AND "state" = ${TrackState.WAITING}
      RETURNING "id", "v_id", "attempt", "input" IS NULL AS "needsInput"`);
    const readied = promoted
      .map((r) => ({ id: Number(r.id), vertexId: Number(r.v_id), attempt: Number(r.attempt), needsInput: Number(r.needsInput) === 1 }))
      .sort((a, b) => a.id - b.id);
    for (const track of readied) {
      // needsInput: it waits for finishInput (a webhook's track:needs-input, SPEC rule 20).
      journal.record({ pipelineId, trackId: track.id, type: 'track:ready', trackState: TrackState.PENDING, attempt: track.attempt, needsInput: track.needsInput });
    }
    // A failure here fails the pipeline; the skips below (WAITING only) then change nothing.
    if (await renderReadyTracks(runner, journal, pipelineId, graph, readied)) return true;
  }
  // In decision order: a skip's reason may name a track skipped just before it.
  const now = new Date();
  for (const skip of decisions.filter((d) => d.to === TrackState.SKIPPED)) {
    const [track] = await runner.query(sql`
      UPDATE "track" SET "state" = ${TrackState.SKIPPED}, "reason" = ${skip.reason ?? null}, "finishedAt" = ${now}
      WHERE "p_id" = ${pipelineId} AND "v_id" = ${skip.vertexId} AND "state" = ${TrackState.WAITING}
      RETURNING "id", "attempt"`);
    if (track) {
      journal.record({
        pipelineId,
        trackId: Number(track.id),
        type: 'track:skipped',
        trackState: TrackState.SKIPPED,
        attempt: Number(track.attempt),
        reason: skip.reason ?? null,
      });
    }
  }
  return false;
}

/**
 * After the tracks of `changed` ended (or, with `changed` null, after any change, e.g. a
 * retry or a failure's cancellations): decides the pipeline's WAITING tracks by their
 * conditions and applies that. A RUNNING pipeline whose tracks then all SUCCEED or were
 * SKIPPED finishes (returned true: the caller records it and frees its slot).
 */
export async function advancePipeline(
  runner: SqlRunner,
  journal: Journal,
  graph: SealedGraph,
  pipelineId: number,
  changed: readonly number[] | null,
): Promise<{ finished: boolean; failed: boolean }> {
  const [pipeline] = await runner.query(sql`SELECT "state" FROM "pipeline" WHERE "id" = ${pipelineId}`);
  const state = Number(pipeline?.state) as PipelineState;
  // Queued, cancelled or finished pipelines decide nothing; a FAILED one only its handlers.
  if (state !== PipelineState.RUNNING && state !== PipelineState.FAILED) return { finished: false, failed: false };
  const states = await trackStates(runner, pipelineId);
  const view = viewOf(graph, states, state === PipelineState.FAILED);
  const waiting = [...states].filter(([, s]) => s === TrackState.WAITING).map(([v]) => v);
  const decisions = changed === null ? decideWaiting(view, waiting) : decideSuccessors(view, changed);
  if (await applyDecisions(runner, journal, graph, pipelineId, decisions)) return { finished: false, failed: true };
  for (const d of decisions) states.set(d.vertexId, d.to);
  const done = [...states.values()].every((s) => s === TrackState.SUCCEED || s === TrackState.SKIPPED);
  return { finished: state === PipelineState.RUNNING && done, failed: false };
}

/**
 * A queued pipeline leaving the queue: what of it is ready now, by the conditions (failed: false).
 * @returns whether it failed at once (see applyDecisions).
 */
export async function releaseDecisions(runner: SqlRunner, journal: Journal, graph: SealedGraph, pipelineId: number): Promise<boolean> {
  const states = await trackStates(runner, pipelineId);
  const waiting = [...states].filter(([, s]) => s === TrackState.WAITING).map(([v]) => v);
  return applyDecisions(runner, journal, graph, pipelineId, decideWaiting(viewOf(graph, states, false), waiting));
}
