/**
 * Executor-driven transitions (SPEC rules 7, 8, 10): claiming ready tracks, recording
 * results, and failing tracks whose executor died. All conditional updates: correct
 * with several executor processes sharing one database.
 *
 * This is the hot path, a handful of statements per track, so it runs as plain SQL on
 * the driver adapter (store/sql.ts): no Prisma call may happen inside these transactions.
 * Sealed-graph facts are loaded before a transaction starts, from the cache.
 */
import { cancellationsAfterFailure, pipelineStateAfterSuccess, promotableSuccessors } from '../engine/transitions.ts';
import { PipelineState, TrackState } from '../engine/states.ts';
import type { InputSchema } from '../engine/inputs.ts';
import type { Flush } from '../engine/output-window.ts';
import type { SealedGraph } from './dag-cache.ts';
import { writeOutput } from './output.ts';
import { sql, type SqlRunner } from './sql.ts';
import { applyTrackChanges } from './track-changes.ts';
import { fastTransition, lockPipeline, type Journal, type Store } from './transaction.ts';

/** A track an executor holds: what it runs and what it needs to record the result. */
export interface ClaimedTrack {
  id: number;
  pipelineId: number;
  vertexId: number;
  graphId: number;
  attempt: number;
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

type ClaimedRow = Pick<ClaimedTrack, 'id' | 'pipelineId' | 'vertexId' | 'attempt' | 'script' | 'input'>;

/**
 * Claims up to `limit` PENDING tracks that have their inputs, oldest first. The claim is
 * one conditional `UPDATE ... WHERE state = PENDING`: of executors racing for a track,
 * exactly one gets it back. A short transaction: the script runs after it committed.
 */
async function claimInTransaction(runner: SqlRunner, journal: Journal, request: ClaimRequest): Promise<ClaimedRow[]> {
  if (request.limit <= 0) return [];
  const rows =
    runner.provider === 'postgres'
      ? // Competing workers skip each other's rows instead of waiting (SKIP LOCKED); NO KEY
        // UPDATE, not UPDATE, so that event inserts' foreign-key checks on these rows never
        // wait for a claim (see the journal lock in transaction.ts). MATERIALIZED keeps the
        // LIMIT where it is: the planner may otherwise lock more rows than it updates.
        await runner.query(sql`
          WITH ready AS MATERIALIZED (
            SELECT t."id" FROM "track" t JOIN "pipeline" p ON p."id" = t."p_id"
            WHERE t."state" = ${TrackState.PENDING} AND t."script" IS NOT NULL AND p."state" = ${PipelineState.RUNNING}
            ORDER BY t."id" LIMIT ${request.limit}
            FOR NO KEY UPDATE OF t SKIP LOCKED)
          UPDATE "track" SET "state" = ${TrackState.RUNNING}, "startedAt" = ${new Date()}, "executorId" = ${request.executorId}
          FROM ready WHERE "track"."id" = ready."id" AND "track"."state" = ${TrackState.PENDING}
          RETURNING "track"."id", "p_id", "v_id", "attempt", "script", "input"`)
      : await runner.query(sql`
          UPDATE "track" SET "state" = ${TrackState.RUNNING}, "startedAt" = ${new Date()}, "executorId" = ${request.executorId}
          WHERE "state" = ${TrackState.PENDING} AND "id" IN (
            SELECT t."id" FROM "track" t JOIN "pipeline" p ON p."id" = t."p_id"
            WHERE t."state" = ${TrackState.PENDING} AND t."script" IS NOT NULL AND p."state" = ${PipelineState.RUNNING}
            ORDER BY t."id" LIMIT ${request.limit})
          RETURNING "id", "p_id", "v_id", "attempt", "script", "input"`);
  const claimed = rows
    .map((r) => ({
      id: Number(r.id),
      pipelineId: Number(r.p_id),
      vertexId: Number(r.v_id),
      attempt: Number(r.attempt),
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
}

export interface Completion {
  /** 'stale' when the attempt no longer held the track (cancelled, reconciled): nothing changed. */
  outcome: 'recorded' | 'stale';
  /** Tracks claimed in the same transaction (see `claimNext`). */
  claimed: ClaimedTrack[];
}

type HeldTrack = Pick<ClaimedTrack, 'id' | 'attempt' | 'pipelineId' | 'vertexId' | 'graphId' | 'vertexName'>;

/**
 * Records a result, fenced by the attempt: written only if the track is still RUNNING in
 * the attempt that started it. Success promotes ready successors and may finish the
 * pipeline; failure fails the pipeline and cancels every track that can no longer run.
 * With `claimNext`, the freed worker claims its next tracks in the same transaction.
 */
export async function completeTrack(store: Store, track: HeldTrack, result: TrackResult, claimNext?: ClaimRequest): Promise<Completion> {
  const graph = await store.dags.get(store.db, track.graphId);
  const { result: completion } = await fastTransition(store, async (runner, journal) => {
    await lockPipeline(runner, track.pipelineId);
    // Stored with the result, so a subscriber told that the track ended can read all of it.
    if (result.outputChunks) await writeOutput(runner, track.id, track.attempt, result.outputChunks);
    const to = result.succeeded ? TrackState.SUCCEED : TrackState.FAILED;
    const count = await runner.execute(sql`
      UPDATE "track" SET "state" = ${to}, "exitCode" = ${result.exitCode}, "reason" = ${result.reason},
        "output" = ${result.output}, "finishedAt" = ${new Date()}
      WHERE "id" = ${track.id} AND "attempt" = ${track.attempt} AND "state" = ${TrackState.RUNNING}`);
    let outcome: Completion['outcome'] = 'recorded';
    if (count === 0) {
      // Cancelled while running: keep what it printed, change nothing else.
      await runner.execute(sql`
        UPDATE "track" SET "output" = ${result.output}, "exitCode" = ${result.exitCode}
        WHERE "id" = ${track.id} AND "attempt" = ${track.attempt} AND "state" = ${TrackState.CANCELLED} AND "output" = ''`);
      outcome = 'stale';
    } else {
      journal.record({
        pipelineId: track.pipelineId,
        trackId: track.id,
        type: result.succeeded ? 'track:succeeded' : 'track:failed',
        trackState: to,
        attempt: track.attempt,
        exitCode: result.exitCode,
        reason: result.reason,
      });
      if (result.succeeded) await afterSuccess(graph, runner, journal, track);
      else await failPipeline(graph, runner, journal, track);
    }
    const claimed = claimNext ? await claimInTransaction(runner, journal, claimNext) : [];
    return { outcome, claimed };
  });
  return { outcome: completion.outcome, claimed: await withVertexFacts(store, completion.claimed) };
}

async function afterSuccess({ dag }: SealedGraph, runner: SqlRunner, journal: Journal, done: HeldTrack): Promise<void> {
  const successors = dag.successors.get(done.vertexId)!;
  if (successors.length === 0) {
    // Only a sink can be the last track to succeed: anything upstream still has work after it.
    const [row] = await runner.query(sql`
      SELECT COUNT(*) AS "unsucceeded" FROM "track" WHERE "p_id" = ${done.pipelineId} AND "state" <> ${TrackState.SUCCEED}`);
    if (pipelineStateAfterSuccess(Number(row!.unsucceeded)) !== PipelineState.FINISH) return;
    const finished = await runner.execute(sql`
      UPDATE "pipeline" SET "state" = ${PipelineState.FINISH}, "finishedAt" = ${new Date()}
      WHERE "id" = ${done.pipelineId} AND "state" = ${PipelineState.RUNNING}`);
    if (finished === 1) journal.record({ pipelineId: done.pipelineId, type: 'pipeline:finished', pipelineState: PipelineState.FINISH });
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
    RETURNING "id", "attempt"`);
  for (const track of promoted.map((r) => ({ id: Number(r.id), attempt: Number(r.attempt) })).sort((a, b) => a.id - b.id)) {
    journal.record({ pipelineId: done.pipelineId, trackId: track.id, type: 'track:ready', trackState: TrackState.PENDING, attempt: track.attempt });
  }
}

async function failPipeline({ dag }: SealedGraph, runner: SqlRunner, journal: Journal, failed: HeldTrack): Promise<void> {
  const count = await runner.execute(sql`
    UPDATE "pipeline" SET "state" = ${PipelineState.FAILED}, "finishedAt" = ${new Date()}
    WHERE "id" = ${failed.pipelineId} AND "state" = ${PipelineState.RUNNING}`);
  if (count === 0) return; // already failed or cancelled: nothing more to stop
  const waiting = await runner.query(sql`
    SELECT "id", "v_id", "state" FROM "track"
    WHERE "p_id" = ${failed.pipelineId} AND "state" IN (${[TrackState.WAITING, TrackState.PENDING]})`);
  const changes = cancellationsAfterFailure(
    dag,
    { id: failed.id, vertexId: failed.vertexId, name: failed.vertexName, state: TrackState.FAILED },
    waiting.map((t) => ({ id: Number(t.id), vertexId: Number(t.v_id), name: '', state: Number(t.state) as TrackState })),
  );
  await applyTrackChanges(runner, journal, failed.pipelineId, changes, { from: [TrackState.WAITING, TrackState.PENDING] });
  journal.record({
    pipelineId: failed.pipelineId,
    type: 'pipeline:failed',
    pipelineState: PipelineState.FAILED,
    reason: `${failed.vertexName} failed`,
  });
}

/**
 * SPEC rule 10: tracks left RUNNING by executors that are gone fail with a clear reason
 * (retryPipeline resumes them). `alive` lists the executors known to be running.
 */
export async function reconcileOrphans(store: Store, alive: readonly string[]): Promise<number> {
  const orphans = await store.db.track.findMany({
    where: { state: TrackState.RUNNING, OR: [{ executorId: null }, { executorId: { notIn: [...alive] } }] },
    select: { id: true, attempt: true, pipelineId: true, vertexId: true },
  });
  let failed = 0;
  for (const orphan of orphans) {
    const vertex = await store.dags.vertex(store.db, orphan.vertexId);
    const { outcome } = await completeTrack(
      store,
      { ...orphan, graphId: vertex.graphId, vertexName: vertex.name },
      {
        succeeded: false,
        exitCode: null,
        reason: 'The service stopped while this track was running, so its outcome is unknown. Retry the pipeline to run it again.',
        output: '',
      },
    );
    if (outcome === 'recorded') failed++;
  }
  return failed;
}
