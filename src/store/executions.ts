/**
 * Executor-driven transitions (SPEC rules 7, 8, 10): claiming ready tracks, recording
 * results, and failing tracks whose executor died. All conditional updates: correct
 * with several executor processes sharing one database.
 */
import { cancellationsAfterFailure, pipelineStateAfterSuccess, promotableSuccessors } from '../engine/transitions.ts';
import { PipelineState, TrackState } from '../engine/states.ts';
import { applyTrackChanges } from './track-changes.ts';
import { transition, type Journal, type Store, type Tx } from './transaction.ts';

export interface ClaimedTrack {
  id: number;
  pipelineId: number;
  attempt: number;
  script: string;
  /** Resolved parameters (JSON). */
  input: string;
  vertexName: string;
  timeoutSeconds: number;
}

/**
 * Claims up to `limit` PENDING tracks that have their inputs, oldest first. Each claim is
 * `UPDATE ... WHERE state = PENDING AND attempt = n`: of two executors racing for a
 * track, exactly one sees its update count 1.
 */
export async function claimTracks(store: Store, executorId: string, limit: number): Promise<ClaimedTrack[]> {
  if (limit <= 0) return [];
  const candidates = await store.db.track.findMany({
    where: { state: TrackState.PENDING, script: { not: null }, pipeline: { state: PipelineState.RUNNING } },
    orderBy: { id: 'asc' },
    take: limit,
    select: {
      id: true,
      pipelineId: true,
      attempt: true,
      script: true,
      input: true,
      vertex: { select: { name: true, timeoutSeconds: true } },
    },
  });
  if (candidates.length === 0) return [];
  const { result } = await transition(store, async (tx, journal) => {
    const claimed: ClaimedTrack[] = [];
    const startedAt = new Date();
    for (const c of candidates) {
      const { count } = await tx.track.updateMany({
        where: { id: c.id, state: TrackState.PENDING, attempt: c.attempt },
        data: { state: TrackState.RUNNING, startedAt, executorId },
      });
      if (count === 0) continue;
      journal.record({ pipelineId: c.pipelineId, trackId: c.id, type: 'track:claimed', trackState: TrackState.RUNNING, attempt: c.attempt });
      claimed.push({
        id: c.id,
        pipelineId: c.pipelineId,
        attempt: c.attempt,
        script: c.script!,
        input: c.input ?? '{}',
        vertexName: c.vertex.name,
        timeoutSeconds: c.vertex.timeoutSeconds,
      });
    }
    return claimed;
  });
  return result;
}

export interface TrackResult {
  succeeded: boolean;
  exitCode: number | null;
  /** Why it failed, in the operator's words (null on success). */
  reason: string | null;
  output: string;
}

export type CompletionOutcome = 'recorded' | 'stale';

/**
 * Records a result, fenced by the attempt: written only if the track is still RUNNING in
 * the attempt that started it. Success promotes ready successors and may finish the
 * pipeline; failure fails the pipeline and cancels every track that can no longer run.
 */
export async function completeTrack(
  store: Store,
  track: { id: number; attempt: number },
  result: TrackResult,
): Promise<CompletionOutcome> {
  const { result: outcome } = await transition(store, async (tx, journal) => {
    const to = result.succeeded ? TrackState.SUCCEED : TrackState.FAILED;
    const [row] = await tx.track.updateManyAndReturn({
      where: { id: track.id, attempt: track.attempt, state: TrackState.RUNNING },
      data: { state: to, exitCode: result.exitCode, reason: result.reason, output: result.output, finishedAt: new Date() },
      select: { id: true, pipelineId: true, vertexId: true, vertex: { select: { name: true } } },
    });
    if (!row) {
      // Cancelled while running: keep what it printed, change nothing else.
      await tx.track.updateMany({
        where: { id: track.id, attempt: track.attempt, state: TrackState.CANCELLED, output: '' },
        data: { output: result.output, exitCode: result.exitCode },
      });
      return 'stale' as const;
    }
    journal.record({
      pipelineId: row.pipelineId,
      trackId: row.id,
      type: result.succeeded ? 'track:succeeded' : 'track:failed',
      trackState: to,
      attempt: track.attempt,
      exitCode: result.exitCode,
      reason: result.reason,
    });
    const failed = { id: row.id, pipelineId: row.pipelineId, vertexId: row.vertexId, name: row.vertex.name };
    if (result.succeeded) await afterSuccess(store, tx, journal, failed);
    else await failPipeline(store, tx, journal, failed);
    return 'recorded' as const;
  });
  return outcome;
}

interface FinishedTrack {
  id: number;
  pipelineId: number;
  vertexId: number;
  name: string;
}

async function afterSuccess(store: Store, tx: Tx, journal: Journal, done: FinishedTrack): Promise<void> {
  const pipeline = await tx.pipeline.findUniqueOrThrow({ where: { id: done.pipelineId }, select: { state: true, graphId: true } });
  // A failed or cancelled pipeline starts nothing new (SPEC rule 8); the result is still kept.
  if (pipeline.state !== PipelineState.RUNNING) return;
  const dag = await store.dags.get(tx, pipeline.graphId);
  const successors = dag.successors.get(done.vertexId)!;
  if (successors.length > 0) {
    const neighbourhood = new Set(successors.flatMap((s) => [s, ...dag.predecessors.get(s)!]));
    const rows = await tx.track.findMany({
      where: { pipelineId: done.pipelineId, vertexId: { in: [...neighbourhood] } },
      select: { id: true, vertexId: true, state: true },
    });
    const byVertex = new Map(rows.map((r) => [r.vertexId, r]));
    const ready = promotableSuccessors(dag, done.vertexId, (v) => byVertex.get(v)?.state as TrackState | undefined);
    await applyTrackChanges(
      tx,
      journal,
      done.pipelineId,
      ready.map((v) => ({ trackId: byVertex.get(v)!.id, to: TrackState.PENDING })),
      { from: [TrackState.WAITING] },
    );
  }
  const unsucceeded = await tx.track.count({ where: { pipelineId: done.pipelineId, state: { not: TrackState.SUCCEED } } });
  if (pipelineStateAfterSuccess(unsucceeded) === PipelineState.FINISH) {
    const { count } = await tx.pipeline.updateMany({
      where: { id: done.pipelineId, state: PipelineState.RUNNING },
      data: { state: PipelineState.FINISH, finishedAt: new Date() },
    });
    if (count === 1) journal.record({ pipelineId: done.pipelineId, type: 'pipeline:finished', pipelineState: PipelineState.FINISH });
  }
}

async function failPipeline(store: Store, tx: Tx, journal: Journal, failed: FinishedTrack): Promise<void> {
  const updated = await tx.pipeline.updateManyAndReturn({
    where: { id: failed.pipelineId, state: PipelineState.RUNNING },
    data: { state: PipelineState.FAILED, finishedAt: new Date() },
    select: { graphId: true },
  });
  if (updated.length === 0) return; // already failed or cancelled: nothing more to stop
  const dag = await store.dags.get(tx, updated[0]!.graphId);
  const waiting = await tx.track.findMany({
    where: { pipelineId: failed.pipelineId, state: { in: [TrackState.WAITING, TrackState.PENDING] } },
    select: { id: true, vertexId: true, state: true },
  });
  const changes = cancellationsAfterFailure(
    dag,
    { ...failed, state: TrackState.FAILED },
    waiting.map((t) => ({ ...t, name: '', state: t.state as TrackState })),
  );
  await applyTrackChanges(tx, journal, failed.pipelineId, changes, { from: [TrackState.WAITING, TrackState.PENDING] });
  journal.record({
    pipelineId: failed.pipelineId,
    type: 'pipeline:failed',
    pipelineState: PipelineState.FAILED,
    reason: `${failed.name} failed`,
  });
}

/**
 * SPEC rule 10: tracks left RUNNING by executors that are gone fail with a clear reason
 * (retryPipeline resumes them). `alive` lists the executors known to be running.
 */
export async function reconcileOrphans(store: Store, alive: readonly string[]): Promise<number> {
  const orphans = await store.db.track.findMany({
    where: { state: TrackState.RUNNING, OR: [{ executorId: null }, { executorId: { notIn: [...alive] } }] },
    select: { id: true, attempt: true },
  });
  let failed = 0;
  for (const orphan of orphans) {
    const outcome = await completeTrack(store, orphan, {
      succeeded: false,
      exitCode: null,
      reason:
        'The service stopped while this track was running, so its outcome is unknown. Retry the pipeline to run it again.',
      output: '',
    });
    if (outcome === 'recorded') failed++;
  }
  return failed;
}
