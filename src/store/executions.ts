/**
 * Executor-driven transitions (SPEC rules 7, 8, 10, 11, 13): claiming ready tracks,
 * recording results, retrying failed attempts, and failing tracks whose executor died.
 * All conditional updates: correct with several executor processes sharing one database.
 *
 * Retries (rule 13): a failed attempt of a vertex with retries left, in a RUNNING pipeline,
 * goes back to PENDING with attempt + 1 and `notBefore` = the end of its delay; the claim
 * skips it until then, so it holds no worker while it waits. The attempt that failed is
 * kept in track_attempt.
 *
 * Fencing: a claim names its executor (`executorId`), and only a registered executor
 * claims (worker-registry.ts). A result is recorded only while the track is RUNNING in the
 * attempt that started it and held by the executor that claimed it, so a worker that was
 * taken for dead, and whose track was settled meanwhile, records nothing when it comes back.
 *
 * This is the hot path, a handful of statements per track, so it runs as plain SQL on
 * the driver adapter (store/sql.ts): no Prisma call may happen inside these transactions.
 * Sealed-graph facts are loaded before a transaction starts, from the cache.
 */
import { afterFailedAttempt, pipelineStateAfterSuccess, promotableSuccessors } from '../engine/transitions.ts';
import { PipelineState, TrackState } from '../engine/states.ts';
import type { InputSchema } from '../engine/inputs.ts';
import type { Flush } from '../engine/output-window.ts';
import type { Outputs } from '../engine/outputs.ts';
import type { SealedGraph } from './dag-cache.ts';
import { writeOutput } from './output.ts';
import { prismaRunner, sql, type SqlRunner } from './sql.ts';
import { releaseQueued } from './concurrency.ts';
import { advancePipeline, handlerTest, hasHandlers } from './run-conditions.ts';
import { renderReadyTracks } from './render.ts';
import { archiveAttempts, failPipelineAfter, NEXT_ATTEMPT } from './track-changes.ts';
import { fastTransition, lockPipeline, type Journal, type Store } from './transaction.ts';

/** A track an executor holds: what it runs and what it needs to record the result. */
export interface ClaimedTrack {
  id: number;
  pipelineId: number;
  vertexId: number;
  graphId: number;
  attempt: number;
  /** The executor that claimed it (the owner its result is fenced by). */
  executorId: string;
  script: string;
  /** Resolved parameters (JSON). */
  input: string;
  vertexName: string;
  timeoutSeconds: number;
  /** The vertex's parameters (for masking secret values). */
  inputs: InputSchema;
}

/** Ask for up to `limit` more tracks for `executorId` in the same transaction. */
export interface ClaimRequest {
  executorId: string;
  limit: number;
}

/**
 * The pipeline states whose PENDING tracks are claimed: RUNNING, and FAILED for its
 * handlers (SPEC rule 19). A failure cancels every other track that had not started, and
 * nothing but a handler becomes PENDING in a failed pipeline afterwards.
 */
const CLAIMABLE_IN = [PipelineState.RUNNING, PipelineState.FAILED];

type ClaimedRow = Pick<ClaimedTrack, 'id' | 'pipelineId' | 'vertexId' | 'attempt' | 'executorId' | 'script' | 'input'>;

/**
 * Claims up to `limit` PENDING tracks that have their inputs and no retry delay still to
 * wait, oldest first. The claim is
 * one conditional `UPDATE ... WHERE state = PENDING`: of executors racing for a track,
 * exactly one gets it back. A short transaction: the script runs after it committed.
 *
 * Only an executor whose row exists claims: one taken for dead (its row deleted) claims
 * nothing until it has registered again. The check takes no lock on that row (a frozen
 * claim would otherwise keep the sweep from ever deleting it); a claim that commits just
 * after its executor's row was deleted leaves an orphan, which the next sweep settles.
 */
async function claimInTransaction(runner: SqlRunner, journal: Journal, request: ClaimRequest): Promise<ClaimedRow[]> {
  if (request.limit <= 0) return [];
  // A retry waiting out its delay (notBefore later than now) is not claimed yet.
  const now = new Date();
  const rows =
    runner.provider === 'postgres'
      ? // Competing workers skip each other's rows instead of waiting (SKIP LOCKED); NO KEY
        // UPDATE, not UPDATE, so that event inserts' foreign-key checks on these rows never
        // wait for a claim (see the journal lock in transaction.ts). MATERIALIZED keeps the
        // LIMIT where it is: the planner may otherwise lock more rows than it updates.
        await runner.query(sql`
          WITH ready AS MATERIALIZED (
            SELECT t."id" FROM "track" t JOIN "pipeline" p ON p."id" = t."p_id"
            WHERE t."state" = ${TrackState.PENDING} AND t."script" IS NOT NULL AND p."state" IN (${CLAIMABLE_IN})
              AND (t."notBefore" IS NULL OR t."notBefore" <= ${now})
              AND EXISTS (SELECT 1 FROM "executor" WHERE "id" = ${request.executorId})
            ORDER BY t."id" LIMIT ${request.limit}
            FOR NO KEY UPDATE OF t SKIP LOCKED)
          UPDATE "track" SET "state" = ${TrackState.RUNNING}, "startedAt" = ${now}, "executorId" = ${request.executorId}
          FROM ready WHERE "track"."id" = ready."id" AND "track"."state" = ${TrackState.PENDING}
          RETURNING "track"."id", "p_id", "v_id", "attempt", "script", "input"`)
      : await runner.query(sql`
          UPDATE "track" SET "state" = ${TrackState.RUNNING}, "startedAt" = ${now}, "executorId" = ${request.executorId}
          WHERE "state" = ${TrackState.PENDING} AND "id" IN (
            SELECT t."id" FROM "track" t JOIN "pipeline" p ON p."id" = t."p_id"
            WHERE t."state" = ${TrackState.PENDING} AND t."script" IS NOT NULL AND p."state" IN (${CLAIMABLE_IN})
              AND (t."notBefore" IS NULL OR t."notBefore" <= ${now})
              AND EXISTS (SELECT 1 FROM "executor" WHERE "id" = ${request.executorId})
            ORDER BY t."id" LIMIT ${request.limit})
          RETURNING "id", "p_id", "v_id", "attempt", "script", "input"`);
  const claimed = rows
    .map((r) => ({
      id: Number(r.id),
      pipelineId: Number(r.p_id),
      vertexId: Number(r.v_id),
      attempt: Number(r.attempt),
      executorId: request.executorId,
      script: String(r.script),
      input: r.input === null ? '{}' : String(r.input),
    }))
    .sort((a, b) => a.id - b.id);
  for (const row of claimed) {
    journal.record({ pipelineId: row.pipelineId, trackId: row.id, type: 'track:claimed', trackState: TrackState.RUNNING, attempt: row.attempt });
  }
  return claimed;
}

/** Adds the sealed-graph facts to claimed rows (after commit: it may read the database). */
async function withVertexFacts(store: Store, rows: readonly ClaimedRow[]): Promise<ClaimedTrack[]> {
  const claimed: ClaimedTrack[] = [];
  for (const row of rows) {
    const vertex = await store.dags.vertex(store.db, row.vertexId);
    claimed.push({ ...row, graphId: vertex.graphId, vertexName: vertex.name, timeoutSeconds: vertex.timeoutSeconds, inputs: vertex.inputs });
  }
  return claimed;
}

export async function claimTracks(store: Store, request: ClaimRequest): Promise<ClaimedTrack[]> {
  if (request.limit <= 0) return [];
  const { result } = await fastTransition(store, (runner, journal) => claimInTransaction(runner, journal, request));
  return withVertexFacts(store, result);
}

export interface TrackResult {
  succeeded: boolean;
  exitCode: number | null;
  /** Why it failed, in the operator's words (null on success). */
  reason: string | null;
  /** The stored copy of the whole output (head, marker, tail). */
  output: string;
  /** Output lines not stored yet, written in the same transaction. */
  outputChunks?: Flush;
  /** What a succeeded attempt wrote to $DAGPIPE_OUTPUT (SPEC rule 18), stored with the result. */
  outputs?: Outputs;
}

export interface Completion {
  /** 'stale' when the attempt no longer held the track (cancelled, settled elsewhere): nothing changed. */
  outcome: 'recorded' | 'stale';
  /**
   * Why a stale result was discarded: the track was cancelled while it ran, or it was
   * settled without this result (its executor was taken for dead) or is in a later attempt,
   * or it is gone (its pipeline was deleted once cancelled, while the script was dying).
   */
  discarded?: 'cancelled' | 'superseded' | 'deleted';
  /** Tracks claimed in the same transaction (see `claimNext`). */
  claimed: ClaimedTrack[];
  /** When the attempt failed and is retried: when the retry may be claimed (wake then). */
  retryAt?: Date;
}

/** The running attempt a result is for; `executorId` null only for a claim of unknown owner. */
type HeldTrack = Pick<ClaimedTrack, 'id' | 'attempt' | 'pipelineId' | 'vertexId' | 'graphId' | 'vertexName'> & { executorId: string | null };

/** The decision about a failed attempt (see afterFailedAttempt), once recorded. */
type FailureOutcome = { retryAt: Date } | undefined;

/**
 * Records a result, fenced by the attempt and the owner: written only if the track is
 * still RUNNING in the attempt that started it, held by the executor that claimed it.
 * Success promotes ready successors and may finish the pipeline; a failure with retries
 * left puts the track back to PENDING for its next attempt after the delay (SPEC rule 13),
 * the last failure fails the pipeline and cancels every track that can no longer run.
 * With `claimNext`, the freed worker claims its next tracks in the same transaction.
 */
export async function completeTrack(store: Store, track: HeldTrack, result: TrackResult, claimNext?: ClaimRequest): Promise<Completion> {
  const graph = await store.dags.get(store.db, track.graphId);
  const { result: completion } = await fastTransition(store, async (runner, journal) => {
    await lockPipeline(runner, track.pipelineId);
    const to = result.succeeded ? TrackState.SUCCEED : TrackState.FAILED;
    const heldBy = sql`"id" = ${track.id} AND "attempt" = ${track.attempt} AND "executorId" ${track.executorId === null ? sql`IS NULL` : sql`= ${track.executorId}`}`;
    const recorded = await runner.query(sql`
      UPDATE "track" SET "state" = ${to}, "exitCode" = ${result.exitCode}, "reason" = ${result.reason},
        "output" = ${result.output}, "outputs" = ${result.succeeded && result.outputs ? JSON.stringify(result.outputs) : null}, "finishedAt" = ${new Date()}
      WHERE ${heldBy} AND "state" = ${TrackState.RUNNING}
      RETURNING "retryCount"`);
    let outcome: Completion['outcome'] = 'recorded';
    let discarded: Completion['discarded'];
    let retried: FailureOutcome;
    if (recorded.length > 0) {
      // Stored with the result, so a subscriber told that the track ended can read all of it.
      if (result.outputChunks) await writeOutput(runner, track.id, track.attempt, result.outputChunks);
      if (result.succeeded) {
        journal.record({
          pipelineId: track.pipelineId,
          trackId: track.id,
          type: 'track:succeeded',
          trackState: to,
          attempt: track.attempt,
          exitCode: result.exitCode,
        });
        await afterSuccess(graph, runner, journal, track);
      } else {
        retried = await afterFailure(graph, runner, journal, track, result, Number(recorded[0]!.retryCount));
      }
    } else {
      // Cancelled while running: keep what it printed, change nothing else.
      const kept = await runner.query(sql`
        UPDATE "track" SET "output" = CASE WHEN "output" = '' THEN ${result.output} ELSE "output" END,
          "exitCode" = CASE WHEN "output" = '' THEN ${result.exitCode} ELSE "exitCode" END
        WHERE ${heldBy} AND "state" = ${TrackState.CANCELLED}
        RETURNING "id"`);
      outcome = 'stale';
      discarded =
        kept.length === 1 ? 'cancelled' : (await runner.query(sql`SELECT "id" FROM "track" WHERE "id" = ${track.id}`)).length === 1 ? 'superseded' : 'deleted';
      // The stale attempt's output stays readable (Track.output(attempt:)), unless its track is gone.
      if (result.outputChunks && discarded !== 'deleted') await writeOutput(runner, track.id, track.attempt, result.outputChunks);
    }
    const claimed = claimNext ? await claimInTransaction(runner, journal, claimNext) : [];
    return { outcome, discarded, claimed, retried };
  });
  return {
    outcome: completion.outcome,
    ...(completion.discarded && { discarded: completion.discarded }),
    claimed: await withVertexFacts(store, completion.claimed),
    ...(completion.retried && { retryAt: completion.retried.retryAt }),
  };
}

/**
 * A failed attempt, recorded FAILED: retried when the vertex has retries left and the
 * pipeline still runs (it goes on to its next attempt, PENDING until the delay is over,
 * the failed one archived), else the failure of the track and its pipeline (SPEC rule 8).
 */
async function afterFailure(
  graph: SealedGraph,
  runner: SqlRunner,
  journal: Journal,
  track: HeldTrack,
  result: TrackResult,
  retriesTaken: number,
): Promise<FailureOutcome> {
  const policy = graph.vertices.get(track.vertexId)!.retry;
  const [pipeline] = await runner.query(sql`SELECT "state" FROM "pipeline" WHERE "id" = ${track.pipelineId}`);
  // A handler runs in a failed pipeline and retries there as it would in a running one.
  const pipelineState = Number(pipeline!.state) as PipelineState;
  const runsOn = pipelineState === PipelineState.FAILED && handlerTest(graph)(track.vertexId) ? PipelineState.RUNNING : pipelineState;
  const decision = afterFailedAttempt(policy, retriesTaken, runsOn);
  if (!decision.retry) {
    journal.record({
      pipelineId: track.pipelineId,
      trackId: track.id,
      type: 'track:failed',
      trackState: TrackState.FAILED,
      attempt: track.attempt,
      exitCode: result.exitCode,
      reason: result.reason,
    });
    await failPipeline(graph, runner, journal, track);
    return undefined;
  }
  const retryAt = new Date(Date.now() + decision.delaySeconds * 1000);
  await archiveAttempts(runner, [track.id], [TrackState.FAILED]);
  await runner.execute(sql`
    UPDATE "track" SET "state" = ${TrackState.PENDING}, ${NEXT_ATTEMPT}, "notBefore" = ${retryAt}, "retryCount" = "retryCount" + 1
    WHERE "id" = ${track.id} AND "attempt" = ${track.attempt} AND "state" = ${TrackState.FAILED}`);
  journal.record({
    pipelineId: track.pipelineId,
    trackId: track.id,
    type: 'track:retrying',
    trackState: TrackState.PENDING,
    attempt: track.attempt + 1,
    // It ran, so it has its inputs.
    needsInput: false,
    exitCode: result.exitCode,
    reason: `Attempt ${track.attempt} failed: ${result.reason ?? 'unknown reason'} Retry ${decision.retryNumber} of ${policy.retries} starts at ${retryAt.toISOString()} (after ${decision.delaySeconds} s).`,
  });
  return { retryAt };
}

/**
 * A RUNNING pipeline all of whose tracks succeeded (or were skipped) is FINISH; its slot is
 * free, so the graph's next queued pipeline starts (SPEC rule 14).
 */
export async function finishPipeline(runner: SqlRunner, journal: Journal, graph: SealedGraph, graphId: number, pipelineId: number): Promise<void> {
  const finished = await runner.execute(sql`
    UPDATE "pipeline" SET "state" = ${PipelineState.FINISH}, "finishedAt" = ${new Date()}
    WHERE "id" = ${pipelineId} AND "state" = ${PipelineState.RUNNING}`);
  if (finished === 0) return;
  journal.record({ pipelineId, type: 'pipeline:finished', pipelineState: PipelineState.FINISH });
  await releaseQueued(runner, journal, graphId, async () => graph);
}

async function afterSuccess(graph: SealedGraph, runner: SqlRunner, journal: Journal, done: HeldTrack): Promise<void> {
  if (hasHandlers(graph)) {
    // Conditions may skip tracks anywhere below: decided from the whole pipeline.
    const { finished, failed } = await advancePipeline(runner, journal, graph, done.pipelineId, [done.vertexId]);
    if (finished) await finishPipeline(runner, journal, graph, done.graphId, done.pipelineId);
    // A ready track's step outputs did not fit its inputs: the pipeline failed, its slot is free.
    if (failed) await releaseQueued(runner, journal, done.graphId, async () => graph);
    return;
  }
  const { dag } = graph;
  const successors = dag.successors.get(done.vertexId)!;
  if (successors.length === 0) {
    // Only a sink can be the last track to succeed: anything upstream still has work after it.
    const [row] = await runner.query(sql`
      SELECT COUNT(*) AS "unsucceeded" FROM "track" WHERE "p_id" = ${done.pipelineId} AND "state" <> ${TrackState.SUCCEED}`);
    if (pipelineStateAfterSuccess(Number(row!.unsucceeded)) !== PipelineState.FINISH) return;
    await finishPipeline(runner, journal, graph, done.graphId, done.pipelineId);
    return;
  }
  // Successors with other predecessors need those predecessors' states; a successor whose
  // only predecessor is this track is ready as soon as it is WAITING (the update checks).
  const joins = successors.filter((s) => dag.predecessors.get(s)!.length > 1);
  const known = new Map<number, TrackState>([[done.vertexId, TrackState.SUCCEED]]);
  if (joins.length > 0) {
    const neighbourhood = [...new Set(joins.flatMap((s) => dag.predecessors.get(s)!))].filter((v) => v !== done.vertexId);
    const rows = await runner.query(sql`
      SELECT "v_id", "state" FROM "track" WHERE "p_id" = ${done.pipelineId} AND "v_id" IN (${neighbourhood})`);
    for (const row of rows) known.set(Number(row.v_id), Number(row.state) as TrackState);
  }
  const ready = promotableSuccessors(dag, done.vertexId, (vertexId) => known.get(vertexId) ?? TrackState.WAITING);
  if (ready.length === 0) return;
  // A failed or cancelled pipeline starts nothing new (SPEC rule 8): checked by the update.
  const promoted = await runner.query(sql`
    UPDATE "track" SET "state" = ${TrackState.PENDING}
    WHERE "p_id" = ${done.pipelineId} AND "v_id" IN (${ready}) AND "state" = ${TrackState.WAITING}
      AND EXISTS (SELECT 1 FROM "pipeline" WHERE "id" = ${done.pipelineId} AND "state" = ${PipelineState.RUNNING})
    RETURNING "id", "v_id", "attempt", "input" IS NULL AS "needsInput"`);
  const tracks = promoted
    .map((r) => ({ id: Number(r.id), vertexId: Number(r.v_id), attempt: Number(r.attempt), needsInput: Number(r.needsInput) === 1 }))
    .sort((a, b) => a.id - b.id);
  for (const track of tracks) {
    journal.record({ pipelineId: done.pipelineId, trackId: track.id, type: 'track:ready', trackState: TrackState.PENDING, attempt: track.attempt, needsInput: track.needsInput });
  }
  // Tracks that read step outputs (SPEC rule 18) are rendered now that their values are known.
  if (await renderReadyTracks(runner, journal, done.pipelineId, graph, tracks)) {
    await releaseQueued(runner, journal, done.graphId, async () => graph);
  }
}

async function failPipeline(graph: SealedGraph, runner: SqlRunner, journal: Journal, failed: HeldTrack): Promise<void> {
  if (await failPipelineAfter(graph, runner, journal, failed)) await releaseQueued(runner, journal, failed.graphId, async () => graph);
}

/** Why a track left RUNNING by a process that stopped failed (SPEC rule 10). */
export const STOPPED_REASON = 'The service stopped while this track was running, so its outcome is unknown. Retry the pipeline to run it again.';

/** Why a track whose worker was taken for dead failed (SPEC rule 11). */
export const WORKER_LOST_REASON =
  'The worker running this track stopped sending heartbeats (it died, hung or lost the database), so its outcome is unknown. Retry the pipeline to run it again.';

/**
 * SPEC rules 10 and 11: tracks left RUNNING by executors that are gone (no row in
 * `executor`, see worker-registry.ts) fail with a clear reason, through the ordinary result
 * path (the pipeline fails, what can no longer run is cancelled; retryPipeline resumes
 * them), each in its own short transaction fenced by attempt and owner: of several
 * executors settling the same orphan, one records it. `reasonOf` gives the reason for an
 * owner, e.g. one this caller found dead and removed itself. An attempt lost this way is a
 * failed attempt: retried when its vertex has retries left (SPEC rule 13), and then
 * `onRetry` is told when the retry may start.
 */
export async function settleOrphans(
  store: Store,
  reasonOf: (executorId: string | null) => string,
  onRetry?: (at: Date) => void,
): Promise<number> {
  const orphans = await prismaRunner(store.db, store.fast.provider).query(sql`
    SELECT t."id", t."attempt", t."p_id", t."v_id", t."executorId" FROM "track" t
    WHERE t."state" = ${TrackState.RUNNING}
      AND (t."executorId" IS NULL OR NOT EXISTS (SELECT 1 FROM "executor" e WHERE e."id" = t."executorId"))
    ORDER BY t."id"`);
  let failed = 0;
  for (const row of orphans) {
    const orphan = {
      id: Number(row.id),
      attempt: Number(row.attempt),
      pipelineId: Number(row.p_id),
      vertexId: Number(row.v_id),
      executorId: row.executorId === null ? null : String(row.executorId),
    };
    const vertex = await store.dags.vertex(store.db, orphan.vertexId);
    const { outcome, retryAt } = await completeTrack(
      store,
      { ...orphan, graphId: vertex.graphId, vertexName: vertex.name },
      { succeeded: false, exitCode: null, reason: reasonOf(orphan.executorId), output: '' },
    );
    if (outcome === 'recorded') failed++;
    if (retryAt) onRetry?.(retryAt);
  }
  return failed;
}

/** The attempts an executor holds RUNNING now, as "trackId:attempt". */
export async function heldAttempts(store: Store, executorId: string): Promise<Set<string>> {
  const rows = await prismaRunner(store.db, store.fast.provider).query(sql`
    SELECT "id", "attempt" FROM "track" WHERE "state" = ${TrackState.RUNNING} AND "executorId" = ${executorId}`);
  return new Set(rows.map((r) => `${Number(r.id)}:${Number(r.attempt)}`));
}
