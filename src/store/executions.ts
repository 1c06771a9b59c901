/**
 * Executor-driven transitions (SPEC rules 7, 8, 10): claiming ready tracks, recording
 * results, and failing tracks whose executor died. All conditional updates: correct
 * with several executor processes sharing one database.
 *
 * This is the hot path, a handful of statements per track: vertex facts come from the
 * sealed-graph cache, the pipeline state is checked inside the updates themselves, and
 * the per-track statements are plain SQL (portable: double-quoted names, RETURNING), as
 * Prisma's query compiler costs about three times what SQLite spends on them.
 */
import { Prisma } from '../generated/prisma/client.ts';
import { cancellationsAfterFailure, pipelineStateAfterSuccess, promotableSuccessors } from '../engine/transitions.ts';
import { PipelineState, TrackState } from '../engine/states.ts';
import { applyTrackChanges } from './track-changes.ts';
import { transition, type Journal, type Store, type Tx } from './transaction.ts';

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
}

/** Ask for up to `limit` more tracks for `executorId` in the same transaction. */
export interface ClaimRequest {
  executorId: string;
  limit: number;
}

/**
 * Claims up to `limit` PENDING tracks that have their inputs. The claim is one
 * conditional `UPDATE ... WHERE state = PENDING`: of executors racing for a track,
 * exactly one gets it back.
 */
async function claimInTransaction(store: Store, tx: Tx, journal: Journal, request: ClaimRequest): Promise<ClaimedTrack[]> {
  if (request.limit <= 0) return [];
  // Oldest ready tracks of running pipelines. On PostgreSQL the subquery would add
  // FOR UPDATE SKIP LOCKED so that competing executors skip each other's rows.
  const rows = await tx.$queryRaw<Array<{ id: number; pipelineId: number; vertexId: number; attempt: number; script: string; input: string | null }>>`
    UPDATE "track" SET "state" = ${TrackState.RUNNING}, "startedAt" = ${new Date()}, "executorId" = ${request.executorId}
    WHERE "state" = ${TrackState.PENDING} AND "id" IN (
      SELECT t."id" FROM "track" t JOIN "pipeline" p ON p."id" = t."p_id"
      WHERE t."state" = ${TrackState.PENDING} AND t."script" IS NOT NULL AND p."state" = ${PipelineState.RUNNING}
      ORDER BY t."id" LIMIT ${request.limit})
    RETURNING "id", "p_id" AS "pipelineId", "v_id" AS "vertexId", "attempt", "script", "input"`;
  const claimed: ClaimedTrack[] = [];
  for (const row of rows.sort((a, b) => a.id - b.id)) {
    const vertex = await store.dags.vertex(tx, row.vertexId);
    journal.record({ pipelineId: row.pipelineId, trackId: row.id, type: 'track:claimed', trackState: TrackState.RUNNING, attempt: row.attempt });
    claimed.push({
      ...row,
      script: row.script!,
      input: row.input ?? '{}',
      graphId: vertex.graphId,
      vertexName: vertex.name,
      timeoutSeconds: vertex.timeoutSeconds,
    });
  }
  return claimed;
}

export async function claimTracks(store: Store, request: ClaimRequest): Promise<ClaimedTrack[]> {
  if (request.limit <= 0) return [];
  const { result } = await transition(store, (tx, journal) => claimInTransaction(store, tx, journal, request));
  return result;
}

export interface TrackResult {
  succeeded: boolean;
  exitCode: number | null;
  /** Why it failed, in the operator's words (null on success). */
  reason: string | null;
  output: string;
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
  const { result: completion } = await transition(store, async (tx, journal) => {
    const to = result.succeeded ? TrackState.SUCCEED : TrackState.FAILED;
    const count = await tx.$executeRaw`
      UPDATE "track" SET "state" = ${to}, "exitCode" = ${result.exitCode}, "reason" = ${result.reason},
        "output" = ${result.output}, "finishedAt" = ${new Date()}
      WHERE "id" = ${track.id} AND "attempt" = ${track.attempt} AND "state" = ${TrackState.RUNNING}`;
    let outcome: Completion['outcome'] = 'recorded';
    if (count === 0) {
      // Cancelled while running: keep what it printed, change nothing else.
      await tx.track.updateMany({
        where: { id: track.id, attempt: track.attempt, state: TrackState.CANCELLED, output: '' },
        data: { output: result.output, exitCode: result.exitCode },
      });
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
      if (result.succeeded) await afterSuccess(store, tx, journal, track);
      else await failPipeline(store, tx, journal, track);
    }
    const claimed = claimNext ? await claimInTransaction(store, tx, journal, claimNext) : [];
    return { outcome, claimed };
  });
  return completion;
}

async function afterSuccess(store: Store, tx: Tx, journal: Journal, done: HeldTrack): Promise<void> {
  const { dag } = await store.dags.get(tx, done.graphId);
  const successors = dag.successors.get(done.vertexId)!;
  if (successors.length === 0) {
    // Only a sink can be the last track to succeed: anything upstream still has work after it.
    const unsucceeded = await tx.track.count({ where: { pipelineId: done.pipelineId, state: { not: TrackState.SUCCEED } } });
    if (pipelineStateAfterSuccess(unsucceeded) !== PipelineState.FINISH) return;
    const { count } = await tx.pipeline.updateMany({
      where: { id: done.pipelineId, state: PipelineState.RUNNING },
      data: { state: PipelineState.FINISH, finishedAt: new Date() },
    });
    if (count === 1) journal.record({ pipelineId: done.pipelineId, type: 'pipeline:finished', pipelineState: PipelineState.FINISH });
    return;
  }
  // Successors with other predecessors need those predecessors' states; a successor whose
  // only predecessor is this track is ready as soon as it is WAITING.
  const joins = successors.filter((s) => dag.predecessors.get(s)!.length > 1);
  let stateOf = (vertexId: number): TrackState | undefined => (vertexId === done.vertexId ? TrackState.SUCCEED : TrackState.WAITING);
  if (joins.length > 0) {
    const neighbourhood = new Set(joins.flatMap((s) => dag.predecessors.get(s)!));
    neighbourhood.delete(done.vertexId);
    const rows = await tx.$queryRaw<Array<{ vertexId: number; state: number }>>`
      SELECT "v_id" AS "vertexId", "state" FROM "track"
      WHERE "p_id" = ${done.pipelineId} AND "v_id" IN (${Prisma.join([...neighbourhood])})`;
    const known = new Map(rows.map((r) => [r.vertexId, r.state as TrackState]));
    const assumeWaiting = stateOf;
    stateOf = (vertexId) => known.get(vertexId) ?? assumeWaiting(vertexId);
  }
  const ready = promotableSuccessors(dag, done.vertexId, stateOf);
  if (ready.length === 0) return;
  // "still WAITING" and "the pipeline still runs" are checked by the update itself: a failed
  // or cancelled pipeline starts nothing new (SPEC rule 8).
  const promoted = await tx.$queryRaw<Array<{ id: number; attempt: number }>>`
    UPDATE "track" SET "state" = ${TrackState.PENDING}
    WHERE "p_id" = ${done.pipelineId} AND "v_id" IN (${Prisma.join(ready)}) AND "state" = ${TrackState.WAITING}
      AND EXISTS (SELECT 1 FROM "pipeline" WHERE "id" = ${done.pipelineId} AND "state" = ${PipelineState.RUNNING})
    RETURNING "id", "attempt"`;
  for (const track of promoted.sort((a, b) => a.id - b.id)) {
    journal.record({ pipelineId: done.pipelineId, trackId: track.id, type: 'track:ready', trackState: TrackState.PENDING, attempt: track.attempt });
  }
}

async function failPipeline(store: Store, tx: Tx, journal: Journal, failed: HeldTrack): Promise<void> {
  const { count } = await tx.pipeline.updateMany({
    where: { id: failed.pipelineId, state: PipelineState.RUNNING },
    data: { state: PipelineState.FAILED, finishedAt: new Date() },
  });
  if (count === 0) return; // already failed or cancelled: nothing more to stop
  const { dag } = await store.dags.get(tx, failed.graphId);
  const waiting = await tx.track.findMany({
    where: { pipelineId: failed.pipelineId, state: { in: [TrackState.WAITING, TrackState.PENDING] } },
    select: { id: true, vertexId: true, state: true },
  });
  const changes = cancellationsAfterFailure(
    dag,
    { id: failed.id, vertexId: failed.vertexId, name: failed.vertexName, state: TrackState.FAILED },
    waiting.map((t) => ({ ...t, name: '', state: t.state as TrackState })),
  );
  await applyTrackChanges(tx, journal, failed.pipelineId, changes, { from: [TrackState.WAITING, TrackState.PENDING] });
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
