/**
 * Deleting ended pipelines (SPEC rule 17), in SQL: one at a time by an admin
 * (deletePipeline) and in batches by retention (RETENTION_DAYS; src/retention.ts runs it).
 * Both go through {@link deletePipelines}.
 *
 * What goes with a pipeline. Its foreign keys all cascade (ON DELETE CASCADE): track.p_id
 * and event.p_id to the pipeline; event.t_id, output_chunk.t_id and track_attempt.t_id to
 * the track. The rows are deleted here explicitly all the same, children first, one
 * set-based statement per table: a cascade works row by row (on PostgreSQL one trigger
 * query per deleted parent row and child table), and is left with nothing to find. Every
 * referencing column is indexed (event.t_id since the retention migration), or each of
 * those lookups would scan its table.
 *
 * What stays: the graph (pipeline.g_id is ON DELETE RESTRICT, which stops deleting a graph
 * that has pipelines, not the other way; deleteGraph works once they are gone), the audit
 * trail (no foreign key: it is the record of what happened, deletions included), and the
 * working directories, which are files: src/retention.ts removes them after the commit.
 *
 * Only ended pipelines (FINISH, FAILED, CANCELLED), never QUEUED or RUNNING ones, and none
 * with a track still WAITING, PENDING or RUNNING: a FAILED pipeline's tracks that were
 * running when it failed finish and have their results recorded (SPEC rule 8).
 */
import { THIS_PROCESS } from './worker-registry.ts';
import { isTerminalPipelineState, NOT_STARTED, PipelineState, TrackState } from '../engine/states.ts';
import { ConflictError, NotFoundError } from '../errors.ts';
import { pipelineStateName } from './pipelines.ts';
import { prismaRunner, rawSql, sql, type SqlRunner } from './sql.ts';
import type { Store } from './transaction.ts';

/** What a deleted pipeline was (deletePipeline returns it). */
export interface DeletedPipeline {
  id: number;
  graphId: number;
  name: string;
  state: number;
}

/** An audit entry written in the deletion's transaction. */
export interface AuditDraft {
  actor: string;
  action: string;
  targetType: string;
  targetId: number | null;
  details: Record<string, unknown>;
}

const ENDED: readonly PipelineState[] = [PipelineState.FINISH, PipelineState.FAILED, PipelineState.CANCELLED];
const UNFINISHED_TRACKS: readonly TrackState[] = [...NOT_STARTED, TrackState.RUNNING];

/**
 * A batch's tracks at most, per pipeline it may hold (RETENTION_BATCH_SIZE): 5,000 for the
 * default 100. Pipelines differ by orders of magnitude, and a transaction is kept short by
 * what it deletes, not by how many pipelines that is. A bigger pipeline is deleted alone.
 */
export const TRACKS_PER_BATCHED_PIPELINE = 50;

/**
 * Deletes, in one transaction, the pipelines `pick` chose (and locked, on PostgreSQL) in
 * that transaction, with everything of theirs (see the module comment), and writes
 * `audit(ids)`'s entry in the same transaction when there is one. After the commit, their
 * subscribers are told (pubsub.ts, PipelineDeleted). Returns the ids deleted.
 */
export async function deletePipelines(
  store: Store,
  pick: (runner: SqlRunner) => Promise<number[]>,
  audit?: (ids: readonly number[]) => AuditDraft,
): Promise<number[]> {
  const deleted = await store.fast.transaction(async (runner) => {
    const ids = await pick(runner);
    if (ids.length === 0) return [];
    const tracks = sql`SELECT "id" FROM "track" WHERE "p_id" IN (${ids})`;
    await runner.execute(sql`DELETE FROM "output_chunk" WHERE "t_id" IN (${tracks})`);
    await runner.execute(sql`DELETE FROM "track_attempt" WHERE "t_id" IN (${tracks})`);
    await runner.execute(sql`DELETE FROM "event" WHERE "p_id" IN (${ids})`);
    await runner.execute(sql`DELETE FROM "track" WHERE "p_id" IN (${ids})`);
    const rows = await runner.query(sql`DELETE FROM "pipeline" WHERE "id" IN (${ids}) RETURNING "id"`);
    const gone = rows.map((r) => Number(r.id)).sort((a, b) => a - b);
    if (audit && gone.length > 0) await insertAudit(runner, audit(gone));
    return gone;
  });
  for (const pipelineId of deleted) store.bus.publish('pipeline:event', pipelineId, { pipelineId, deleted: true });
  return deleted;
}

async function insertAudit(runner: SqlRunner, entry: AuditDraft): Promise<void> {
  await runner.execute(sql`
    INSERT INTO "audit_entry" ("at", "actor", "tokenId", "action", "targetType", "targetId", "details")
    VALUES (${new Date()}, ${entry.actor}, ${null}, ${entry.action}, ${entry.targetType}, ${entry.targetId}, ${JSON.stringify(entry.details)})`);
}

/** Row locks on PostgreSQL; SQLite runs one transaction at a time. */
function lockClause(runner: SqlRunner, skipLocked: boolean) {
  if (runner.provider !== 'postgres') return rawSql('');
  return rawSql(skipLocked ? 'FOR UPDATE SKIP LOCKED' : 'FOR UPDATE');
}

/**
 * deletePipeline: one ended pipeline, refused with a typed error naming `id` (and nothing
 * changed) when it does not exist, has not ended, or still has tracks running.
 */
export async function deleteEndedPipeline(store: Store, pipelineId: number): Promise<DeletedPipeline> {
  let found: DeletedPipeline | undefined;
  await deletePipelines(store, async (runner) => {
    // Locked until the commit: a retry (which sets RUNNING) waits for it, then finds nothing.
    const [row] = await runner.query(sql`
      SELECT "id", "g_id", "name", "state" FROM "pipeline" WHERE "id" = ${pipelineId} ${lockClause(runner, false)}`);
    if (!row) throw new NotFoundError('id', 'pipeline', pipelineId);
    const pipeline = { id: Number(row.id), graphId: Number(row.g_id), name: String(row.name), state: Number(row.state) };
    if (!isTerminalPipelineState(pipeline.state)) {
      throw new ConflictError(
        'id',
        `Pipeline ${pipelineId} is ${pipelineStateName(pipeline.state)}; only an ended pipeline (FINISH, FAILED or CANCELLED) can be deleted. Cancel it first (cancelPipeline), or wait until it finishes, then delete it.`,
      );
    }
    const unfinished = await runner.query(sql`
      SELECT v."name" FROM "track" t JOIN "vertex" v ON v."id" = t."v_id"
      WHERE t."p_id" = ${pipelineId} AND t."state" IN (${UNFINISHED_TRACKS}) ORDER BY t."id" LIMIT 5`);
    if (unfinished.length > 0) {
      throw new ConflictError(
        'id',
        `Pipeline ${pipelineId} is ${pipelineStateName(pipeline.state)}, but some of its tracks have not ended (${unfinished.map((r) => String(r.name)).join(', ')}): tracks that were running when it failed run to their end, and their results are recorded. Delete it once they have ended.`,
      );
    }
    found = pipeline;
    return [pipelineId];
  });
  return found!;
}

export interface ExpiredBatch {
  /** Pipelines that ended before this are deleted. */
  finishedBefore: Date;
  /** At most this many (and at most TRACKS_PER_BATCHED_PIPELINE times as many tracks, unless one pipeline has more). */
  limit: number;
  /** RETENTION_DAYS, for the audit entry. */
  retentionDays: number;
}

/**
 * Retention: one batch of the pipelines that ended before `finishedBefore`, oldest first,
 * in one short transaction, with one audit entry naming them (actor "retention", this
 * process). On PostgreSQL the batch's pipelines are locked with SKIP LOCKED: workers running
 * retention at once take different pipelines, and never wait for each other. Returns the ids
 * deleted; fewer than `limit` when that was all there was (or the batch hit the track cap).
 */
export async function deleteExpiredBatch(store: Store, batch: ExpiredBatch): Promise<number[]> {
  return deletePipelines(
    store,
    async (runner) => {
      const rows = await runner.query(sql`
        SELECT "id" FROM "pipeline" p
        WHERE p."finishedAt" < ${batch.finishedBefore} AND p."state" IN (${ENDED})
          AND NOT EXISTS (SELECT 1 FROM "track" t WHERE t."p_id" = p."id" AND t."state" IN (${UNFINISHED_TRACKS}))
        ORDER BY p."finishedAt", p."id" LIMIT ${batch.limit}
        ${lockClause(runner, true)}`);
      return withinTrackCap(runner, rows.map((r) => Number(r.id)), batch.limit * TRACKS_PER_BATCHED_PIPELINE);
    },
    (ids) => ({
      actor: 'retention',
      action: 'retention',
      targetType: 'pipeline',
      targetId: null,
      details: {
        reason: `ended more than RETENTION_DAYS=${batch.retentionDays} days ago`,
        retentionDays: batch.retentionDays,
        finishedBefore: batch.finishedBefore.toISOString(),
        pipelineIds: ids,
        worker: THIS_PROCESS,
      },
    }),
  );
}

/** The first of `ids` (in order) whose tracks add up to `maxTracks` at most; always the first. */
async function withinTrackCap(runner: SqlRunner, ids: readonly number[], maxTracks: number): Promise<number[]> {
  if (ids.length <= 1) return [...ids];
  const counts = new Map(
    (await runner.query(sql`SELECT "p_id", COUNT(*) AS "n" FROM "track" WHERE "p_id" IN (${ids}) GROUP BY "p_id"`)).map((r) => [
      Number(r.p_id),
      Number(r.n),
    ]),
  );
  const kept: number[] = [];
  let tracks = 0;
  for (const id of ids) {
    tracks += counts.get(id) ?? 0;
    if (kept.length > 0 && tracks > maxTracks) break;
    kept.push(id);
  }
  return kept;
}

/**
 * Of the pipeline ids `ids` (of working directories found on disk), those whose pipeline is
 * gone: deleted, since ids are never reused (SQLite's AUTOINCREMENT, PostgreSQL's sequence).
 * An id above the last one handed out is not counted gone: its pipeline may be created yet
 * (a working directory left by an earlier database).
 */
export async function deletedPipelineIds(store: Store, ids: readonly number[]): Promise<number[]> {
  if (ids.length === 0) return [];
  const runner = prismaRunner(store.db, store.fast.provider);
  // The last id handed out, first: a pipeline created after this read has a greater one.
  const [last] = await runner.query(
    runner.provider === 'postgres'
      ? sql`SELECT CASE WHEN "is_called" THEN "last_value" ELSE 0 END AS "id" FROM "pipeline_id_seq"`
      : sql`SELECT "seq" AS "id" FROM "sqlite_sequence" WHERE "name" = 'pipeline'`,
  );
  const newest = last?.id == null ? 0 : Number(last.id);
  const candidates = ids.filter((id) => id <= newest);
  const existing = new Set<number>();
  // Bounded statements: SQLite's bind limit, and the size of one query.
  for (let start = 0; start < candidates.length; start += 1000) {
    const chunk = candidates.slice(start, start + 1000);
    for (const row of await runner.query(sql`SELECT "id" FROM "pipeline" WHERE "id" IN (${chunk})`)) existing.add(Number(row.id));
  }
  return candidates.filter((id) => !existing.has(id));
}
