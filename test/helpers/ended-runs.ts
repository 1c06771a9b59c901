/**
 * Ended pipelines written straight to the database, in bulk, as runs of a graph leave them:
 * for retention's tests and benchmark, which need thousands of old runs (running them would
 * take minutes, and their age is set here anyway). Each pipeline has a SUCCEEDed track per
 * vertex of the graph, the journal of such a run (started, per track created, claimed,
 * succeeded, then finished) and a chunk of output per track.
 */
import type { Db } from '../../src/db.ts';
import { PipelineState, TrackState } from '../../src/engine/states.ts';

export interface EndedRuns {
  graphId: number;
  count: number;
  /** When the i-th pipeline ended. */
  finishedAt: (i: number) => Date;
  /** FINISH unless given. */
  state?: PipelineState;
}

/** Rows per createMany: well within SQLite's bind limit, and PostgreSQL's. */
const ROWS = 2000;

async function inChunks<T>(rows: T[], insert: (chunk: T[]) => Promise<unknown>): Promise<void> {
  for (let start = 0; start < rows.length; start += ROWS) await insert(rows.slice(start, start + ROWS));
}

/** Writes the runs; returns the pipelines' ids in order. */
export async function seedEndedRuns(db: Db, runs: EndedRuns): Promise<number[]> {
  const vertices = await db.vertex.findMany({ where: { graphId: runs.graphId }, select: { id: true }, orderBy: { id: 'asc' } });
  await db.graph.update({ where: { id: runs.graphId }, data: { sealed: true } });
  const state = runs.state ?? PipelineState.FINISH;
  const pipelineIds: number[] = [];
  const pipelines = Array.from({ length: runs.count }, (_, i) => {
    const finishedAt = runs.finishedAt(i);
    return { graphId: runs.graphId, name: `ended-${i}`, state, createdAt: new Date(finishedAt.getTime() - 60_000), finishedAt };
  });
  await inChunks(pipelines, async (chunk) => {
    const rows = await db.pipeline.createManyAndReturn({ data: chunk, select: { id: true } });
    pipelineIds.push(...rows.map((r) => r.id).sort((a, b) => a - b));
  });
  const tracks = pipelineIds.flatMap((pipelineId, i) =>
    vertices.map((v) => ({
      pipelineId,
      vertexId: v.id,
      input: '{}',
      script: 'echo done',
      output: 'done\n',
      state: TrackState.SUCCEED,
      exitCode: 0,
      startedAt: pipelines[i]!.createdAt,
      finishedAt: pipelines[i]!.finishedAt,
    })),
  );
  const trackRows: Array<{ id: number; pipelineId: number }> = [];
  await inChunks(tracks, async (chunk) => trackRows.push(...(await db.track.createManyAndReturn({ data: chunk, select: { id: true, pipelineId: true } }))));
  const tracksOf = new Map<number, number[]>();
  for (const row of trackRows.sort((a, b) => a.id - b.id)) tracksOf.set(row.pipelineId, [...(tracksOf.get(row.pipelineId) ?? []), row.id]);
  const events = pipelineIds.flatMap((pipelineId) => {
    const journal: Array<{ pipelineId: number; trackId?: number; type: string; pipelineState?: number; trackState?: number; attempt?: number; exitCode?: number }> = [
      { pipelineId, type: 'pipeline:started', pipelineState: PipelineState.RUNNING },
    ];
    for (const trackId of tracksOf.get(pipelineId) ?? []) {
      journal.push({ pipelineId, trackId, type: 'track:created', trackState: TrackState.PENDING, attempt: 1 });
      journal.push({ pipelineId, trackId, type: 'track:claimed', trackState: TrackState.RUNNING, attempt: 1 });
      journal.push({ pipelineId, trackId, type: 'track:succeeded', trackState: TrackState.SUCCEED, attempt: 1, exitCode: 0 });
    }
    journal.push({ pipelineId, type: 'pipeline:finished', pipelineState: state });
    return journal.map((event, i) => ({ ...event, seq: i + 1 }));
  });
  await inChunks(events, (chunk) => db.event.createMany({ data: chunk }));
  const chunks = trackRows.map((row) => ({ trackId: row.id, attempt: 1, offset: 0, bytes: 5, text: 'done\n', streams: 'o' }));
  await inChunks(chunks, (chunk) => db.outputChunk.createMany({ data: chunk }));
  return pipelineIds;
}
