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
import { mustQueue, releasable, type GraphLoad } from '../engine/concurrency.ts';
import { PipelineState } from '../engine/states.ts';
import { releaseDecisions } from './run-conditions.ts';
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
 * each becomes RUNNING and its ready tracks PENDING (by their run conditions), with the events
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
  // In queue order. A pipeline a schedule queued behind its previous run (overlap QUEUE,
  // SPEC rule 16) waits while another run of that schedule is RUNNING, and lets the ones
  // behind it pass meanwhile.
  const next = await runner.query(sql`
    SELECT p."id", p."scheduleId",
      EXISTS (SELECT 1 FROM "schedule" s JOIN "pipeline" o ON o."scheduleId" = s."id"
              WHERE s."id" = p."scheduleId" AND s."overlap" = ${'QUEUE'} AND o."state" = ${PipelineState.RUNNING} AND o."id" <> p."id") AS "behindSchedule"
    FROM "pipeline" p WHERE p."g_id" = ${graphId} AND p."state" = ${PipelineState.QUEUED}
    ORDER BY p."queuedAt", p."id"`);
  const started: number[] = [];
  const serialised = new Set<number>();
  let running = load.running;
  let failedAtStart = false;
  for (const candidate of next) {
    if (started.length === slots) break;
    const pipelineId = Number(candidate.id);
    const scheduleId = candidate.scheduleId == null ? null : Number(candidate.scheduleId);
    if (truthy(candidate.behindSchedule) || (scheduleId !== null && serialised.has(scheduleId))) continue;
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
    // A ready track that reads step outputs (rule 18) may fail at once, and its pipeline.
    if (await releaseDecisions(runner, journal, await sealedGraph(), pipelineId)) failedAtStart = true;
    started.push(pipelineId);
    // One run of a QUEUE schedule at a time, also among the ones this release starts.
    if (scheduleId !== null && (await queuesBySchedule(runner, scheduleId))) serialised.add(scheduleId);
  }
  // A pipeline that failed as it started freed its slot again: the next in the queue takes it.
  if (failedAtStart) started.push(...(await releaseQueued(runner, journal, graphId, sealedGraph)));
  return started;
}

/** Whether the schedule runs one pipeline at a time (overlap QUEUE). */
async function queuesBySchedule(runner: SqlRunner, scheduleId: number): Promise<boolean> {
  const [schedule] = await runner.query(sql`SELECT "overlap" FROM "schedule" WHERE "id" = ${scheduleId}`);
  return schedule?.overlap === 'QUEUE';
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
