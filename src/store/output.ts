/**
 * Track output in the database: chunks written as a track prints (engine/output-window.ts
 * decides what is kept and cuts the chunks), and pages read back by byte offset for
 * `Track.output` and for replaying `trackOutput`, many tracks in one go.
 */
import { assemblePage, type Flush, type OutputChunkData, type OutputItem } from '../engine/output-window.ts';
import { joinSql, sql, type SqlRunner } from './sql.ts';

/** Chunks per INSERT: 6 values each. */
const CHUNKS_PER_STATEMENT = 500;
/** Chunks read per track for one page; a page of many tiny chunks ends early and the reader goes on. */
const CHUNKS_PER_PAGE = 1000;

/** Writes the chunks of a flush of one attempt. */
export async function writeOutput(runner: SqlRunner, trackId: number, attempt: number, flush: Flush): Promise<void> {
  // A result write retried after its commit went through must not fail on its own chunks.
  for (let start = 0; start < flush.chunks.length; start += CHUNKS_PER_STATEMENT) {
    const rows = flush.chunks.slice(start, start + CHUNKS_PER_STATEMENT);
    await runner.execute(sql`
      INSERT INTO "output_chunk" ("t_id", "attempt", "offset", "bytes", "text", "streams")
      VALUES ${joinSql(rows.map((c) => sql`(${trackId}, ${attempt}, ${c.offset}, ${c.bytes}, ${c.text}, ${c.streams})`))}
      ON CONFLICT DO NOTHING`);
  }
}

export interface OutputRequest {
  trackId: number;
  attempt: number;
  offset: number;
  limitBytes: number;
}

export interface OutputSlice {
  items: OutputItem[];
  /** Where the next page starts. */
  nextOffset: number;
  /** Bytes printed so far by the attempt (stored or about to be). */
  size: number;
  /** Bytes of it that were dropped over the limit. */
  droppedBytes: number;
}

/**
 * Pages of output for several attempts with two queries. `pendingOf` gives the lines of
 * a running attempt not stored yet (pieces in the chunks' form); it is called before
 * anything is read, so a line is always either among them or already stored.
 */
export async function readOutput(
  runner: SqlRunner,
  requests: readonly OutputRequest[],
  pendingOf: (request: OutputRequest) => readonly OutputChunkData[] = () => [],
): Promise<OutputSlice[]> {
  if (requests.length === 0) return [];
  const pending = requests.map(pendingOf);
  // Comparisons, not `IN (VALUES ...)`: PostgreSQL would type the VALUES' parameters as text.
  const attempts = joinSql(requests.map((r) => sql`("t_id" = ${r.trackId} AND "attempt" = ${r.attempt})`), ' OR ');
  const from = Math.min(...requests.map((r) => r.offset));
  // The sizes first, then the chunks, one after the other: on PostgreSQL each statement
  // sees the commits made before it began, so chunks read second hold at least what the
  // sizes counted. Read at once, a chunk committed in between could count in the size and
  // be missing from the text (a page claiming more than it shows).
  const sizes = await runner.query(sql`
      SELECT "t_id", "attempt", MAX("offset" + "bytes") AS "end", SUM("bytes") AS "stored"
      FROM "output_chunk" WHERE (${attempts}) GROUP BY "t_id", "attempt"`);
  const chunks = await runner.query(sql`
      SELECT "t_id", "attempt", "offset", "bytes", "text", "streams" FROM (
        SELECT c.*, ROW_NUMBER() OVER (PARTITION BY "t_id", "attempt" ORDER BY "offset") AS "n"
        FROM "output_chunk" c
        WHERE (${attempts}) AND "offset" + "bytes" > ${from}
      ) AS page WHERE "n" <= ${CHUNKS_PER_PAGE} ORDER BY "t_id", "attempt", "offset"`);
  const key = (trackId: unknown, attempt: unknown) => `${Number(trackId)}:${Number(attempt)}`;
  const chunksOf = new Map<string, Array<{ offset: number; bytes: number; text: string; streams: string }>>();
  for (const c of chunks) {
    const group = chunksOf.get(key(c.t_id, c.attempt)) ?? [];
    group.push({ offset: Number(c.offset), bytes: Number(c.bytes), text: String(c.text), streams: String(c.streams) });
    chunksOf.set(key(c.t_id, c.attempt), group);
  }
  const sizeOf = new Map(sizes.map((s) => [key(s.t_id, s.attempt), { end: Number(s.end), stored: Number(s.stored) }]));
  return requests.map((request, i) => {
    const stored = sizeOf.get(key(request.trackId, request.attempt)) ?? { end: 0, stored: 0 };
    const waiting = pending[i]!;
    const newest = waiting.at(-1);
    const size = Math.max(stored.end, newest ? newest.offset + newest.bytes : 0);
    const storedOrWaiting = stored.stored + waiting.reduce((sum, c) => sum + Math.max(0, c.offset + c.bytes - Math.max(c.offset, stored.end)), 0);
    const page = assemblePage(chunksOf.get(key(request.trackId, request.attempt)) ?? [], waiting, request.offset, request.limitBytes);
    return { ...page, size, droppedBytes: size - storedOrWaiting };
  });
}
