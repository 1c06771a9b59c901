/**
 * Concurrency limits in the database (SPEC rule 14; the decisions are engine/concurrency.ts).
 *
 * Every transaction that starts, queues, ends or re-limits a pipeline of a graph with a limit
 * holds that graph's row lock while it counts (FOR NO KEY UPDATE on PostgreSQL: a start
 * already takes it when it seals the graph), so two processes never both take the last slot,
 * and a pipeline queued while another ends is released by whichever commits second. Lock
 * order: a pipeline's transition lock, then the graph row, then the journal locks (taken
 * last by every transaction, see transaction.ts); the release never takes the transition
 * lock of the pipeline it starts, so no two of these wait for each other in a circle.
 * SQLite runs one transaction at a time: no lock is needed.
 */
import { mustQueue, readyOnRelease, releasable, type GraphLoad } from '../engine/concurrency.ts';
import { PipelineState, TrackState } from '../engine/states.ts';
import type { SealedGraph } from './dag-cache.ts';
import { sql, type SqlRunner } from './sql.ts';
import { prismaRunner } from './sql.ts';
import { fastTransition, type Journal, type Store } from './transaction.ts';

/** The graph's limit and its RUNNING and QUEUED pipelines, counted under the graph's row lock. */
export async function graphLoad(runner: SqlRunner, graphId: number): Promise<GraphLoad> {
  const [graph] = await runner.query(
    runner.provider === 'postgres'
      ? sql`SELECT "maxConcurrentPipelines" FROM "graph" WHERE "id" = ${graphId} FOR NO KEY UPDATE`
      : sql`SELECT "maxConcurrentPipelines" FROM "graph" WHERE "id" = ${graphId}`,
  );
  const limit = graph?.maxConcurrentPipelines == null ? null : Number(graph.maxConcurrentPipelines);
  const counts = await runner.query(sql`
    SELECT "state", COUNT(*) AS "n" FROM "pipeline"
    WHERE "g_id" = ${graphId} AND "state" IN (${[PipelineState.RUNNING, PipelineState.QUEUED]}) GROUP BY "state"`);
  const count = (state: PipelineState) => Number(counts.find((r) => Number(r.state) === state)?.n ?? 0);
  return { limit, running: count(PipelineState.RUNNING), queued: count(PipelineState.QUEUED) };
}

/**
 * Whether a pipeline of the graph that is about to run (a start, a retry) must queue. Only
 * the limit is read without a lock when there is none: with no limit nothing queues.
 */
export async function admission(runner: SqlRunner, graphId: number): Promise<PipelineState> {
  const [graph] = await runner.query(sql`SELECT "maxConcurrentPipelines" FROM "graph" WHERE "id" = ${graphId}`);
  if (graph?.maxConcurrentPipelines == null) return PipelineState.RUNNING;
  return mustQueue(await graphLoad(runner, graphId)) ? PipelineState.QUEUED : PipelineState.RUNNING;
}

/**
 * Starts as many of the graph's queued pipelines as its limit allows now, oldest first:
 * each becomes RUNNING and its ready tracks PENDING (engine readyOnRelease), with the events
 * that say so. Called in the transaction that ended a pipeline or changed the limit, and by
 * the workers' periodic sweep (executor.ts) as a safety net. Returns the pipelines started.
 */
export async function releaseQueued(
  runner: SqlRunner,
  journal: Journal,
  graphId: number,
  sealedGraph: () => Promise<SealedGraph>,
): Promise<number[]> {
  // One unlocked look first: without a limit nothing queues, so most graphs stop here. A
  // queue left when the limit was removed starts whole.
  const [look] = await runner.query(sql`
    SELECT "maxConcurrentPipelines" AS "limit",
      EXISTS (SELECT 1 FROM "pipeline" WHERE "g_id" = ${graphId} AND "state" = ${PipelineState.QUEUED}) AS "queued"
    FROM "graph" WHERE "id" = ${graphId}`);
  if (!look || (look.limit == null && !truthy(look.queued))) return [];
  const load = await graphLoad(runner, graphId);
  const slots = releasable(load);
  if (slots === 0) return [];
  const next = await runner.query(sql`
    SELECT "id" FROM "pipeline" WHERE "g_id" = ${graphId} AND "state" = ${PipelineState.QUEUED}
    ORDER BY "queuedAt", "id" LIMIT ${slots}`);
  const started: number[] = [];
  let running = load.running;
  for (const pipelineId of next.map((r) => Number(r.id))) {
    const updated = await runner.execute(sql`
      UPDATE "pipeline" SET "state" = ${PipelineState.RUNNING}, "queuedAt" = NULL
      WHERE "id" = ${pipelineId} AND "state" = ${PipelineState.QUEUED}`);
    if (updated === 0) continue; // cancelled meanwhile
    running++;
    journal.record({
      pipelineId,
      type: 'pipeline:started',
      pipelineState: PipelineState.RUNNING,
      reason:
        load.limit === null
          ? 'started from the queue: the graph no longer has a concurrency limit'
          : `started from the queue: ${running} of the graph's at most ${load.limit} pipelines (maxConcurrentPipelines) now run`,
    });
    const tracks = await runner.query(sql`SELECT "v_id", "state" FROM "track" WHERE "p_id" = ${pipelineId}`);
    const stateOf = new Map(tracks.map((t) => [Number(t.v_id), Number(t.state) as TrackState]));
    const ready = readyOnRelease((await sealedGraph()).dag, (vertexId) => stateOf.get(vertexId));
    if (ready.length > 0) {
      const promoted = await runner.query(sql`
        UPDATE "track" SET "state" = ${TrackState.PENDING}
        WHERE "p_id" = ${pipelineId} AND "v_id" IN (${ready}) AND "state" = ${TrackState.WAITING}
        RETURNING "id", "attempt", "script" IS NULL AS "needsInput"`);
      for (const track of promoted.map((r) => ({ id: Number(r.id), attempt: Number(r.attempt), needsInput: truthy(r.needsInput) })).sort((a, b) => a.id - b.id)) {
        journal.record({ pipelineId, trackId: track.id, type: 'track:ready', trackState: TrackState.PENDING, attempt: track.attempt, needsInput: track.needsInput });
      }
    }
    started.push(pipelineId);
  }
  return started;
}

/** EXISTS comes back as a boolean on PostgreSQL and as 0 or 1 on SQLite. */
function truthy(value: unknown): boolean {
  return value === true || Number(value) === 1;
}

/**
 * The safety net of the workers' periodic sweep on PostgreSQL: releases what the graphs'
 * limits allow of every queue. A pipeline that ended while its graph's limit was being set
 * read no limit and released nothing, and a start that counted it still running queued
 * behind it; nothing else would start that one until another pipeline of the graph ended.
 */
export async function releaseStalledQueues(store: Store): Promise<number[]> {
  const rows = await prismaRunner(store.db, store.fast.provider).query(sql`
    SELECT DISTINCT "g_id" FROM "pipeline" WHERE "state" = ${PipelineState.QUEUED}`);
  const started: number[] = [];
  for (const graphId of rows.map((r) => Number(r.g_id))) {
    // Loaded before the transaction: the hot path's transactions make no Prisma call.
    const graph = await store.dags.get(store.db, graphId);
    const { result } = await fastTransition(store, (runner, journal) => releaseQueued(runner, journal, graphId, async () => graph));
    started.push(...result);
  }
  return started;
}
