/**
 * What is kept of a track attempt's output, and how it is cut into stored chunks. Pure.
 *
 * Every line gets a byte offset in the attempt's output as printed (lines counted with
 * their newline), so live lines, stored chunks and `Track.output(offset, limit)` pages
 * share one coordinate system. Within the limit everything is kept; beyond it the head
 * (the first half of the limit) and the tail (the newest lines, the other half) are kept
 * and the middle is dropped, leaving a gap in the offsets that readers show as a
 * truncation marker. The first lines say how a run began, the last ones why it ended.
 *
 * The head is stored as it comes. The tail keeps changing until the attempt ends, so it
 * is stored only then: until that moment readers get it from memory (see unflushed), and
 * what is stored is exactly head, gap, tail, never a half-dropped chunk.
 *
 * Lines travel in pieces of whole lines, in the stored chunks' form (text and one stream
 * character per line), from the launcher to the subscribers: per-line objects are made only
 * for a reader, a page or a delivered line at a time.
 */

import { LineRing } from './line-ring.ts';

export type OutputStream = 'stdout' | 'stderr';

/** One printed line and where it sits in the attempt's output. */
export interface PlacedLine {
  offset: number;
  stream: OutputStream;
  line: string;
}

/** Consecutive kept lines, as stored: `text` is the lines with their newlines. */
export interface OutputChunkData {
  offset: number;
  bytes: number;
  text: string;
  /** One character per line: "o" for stdout, "e" for stderr. */
  streams: string;
}

export interface Flush {
  chunks: OutputChunkData[];
  /** Once written, everything kept from before this offset is stored (see markStored). */
  upTo: number;
}

/** Largest stored chunk, unless a single line is longer. */
export const CHUNK_BYTES = 64 * 1024;
/**
 * Largest piece lines are handed on in (live, and from memory), unless a single line is
 * longer; stored chunks join pieces up to CHUNK_BYTES. A live piece's lines are made into
 * objects, one per line, shared by its subscribers until all of them have sent it: in small
 * pieces that is soon, before V8 would move the objects to its old generation.
 */
export const PIECE_BYTES = 8 * 1024;

export function lineBytes(line: string): number {
  return Buffer.byteLength(line) + 1;
}

/** The visible marker where output was dropped, in stored copies and pages alike. */
export function truncationMarker(droppedBytes: number, limitBytes: number): string {
  return `[output truncated: ${droppedBytes} bytes were not stored here; only the first and last ${Math.floor(limitBytes / 2)} bytes are kept (OUTPUT_LIMIT_BYTES=${limitBytes})]`;
}

export class OutputWindow {
  /** Kept pieces (see append), oldest first. */
  private readonly head: OutputChunkData[] = [];
  private headBytes = 0;
  /** The newest lines, as bytes (see LineRing for why); they end at `printed`. */
  private readonly tail: LineRing;
  /** Once a line missed the head, every later line goes to the tail. */
  private inTail = false;
  /** Bytes printed so far: the offset of the next line. */
  private printed = 0;
  /** Lines before this offset are stored already. */
  private flushedTo = 0;
  private readonly headLimit: number;
  private readonly tailLimit: number;

  private readonly pieceBytes: number;

  constructor(
    readonly limitBytes: number,
    private readonly chunkBytes = CHUNK_BYTES,
  ) {
    this.pieceBytes = Math.min(PIECE_BYTES, chunkBytes);
    this.headLimit = Math.floor(limitBytes / 2);
    this.tailLimit = limitBytes - this.headLimit;
    this.tail = new LineRing(this.tailLimit);
  }

  /**
   * Places lines after the previous ones: `text` is whole lines, each with its newline,
   * and `streams` one character per line ("o" stdout, "e" stderr). Returns them as pieces
   * of at most PIECE_BYTES (a longer line alone), with their offsets.
   *
   * Lines are kept as these pieces (the tail as bytes), never one object per line: a
   * script printing two million lines would otherwise pass two million objects through the
   * heap, each living long enough in the tail to reach V8's old generation, which then
   * grows by hundreds of megabytes before a major collection frees them.
   */
  append(text: string, streams: string): OutputChunkData[] {
    if (text === '') return [];
    const pieces = cutChunks(this.printed, text, streams, this.pieceBytes);
    for (const piece of pieces) {
      this.printed += piece.bytes;
      this.keep(piece);
    }
    return pieces;
  }

  /** Bytes printed so far. */
  get size(): number {
    return this.printed;
  }

  /** Whether some of the head is not stored yet. */
  get headUnstored(): boolean {
    return this.headBytes > this.flushedTo;
  }

  /** Bytes printed but not kept. */
  get droppedBytes(): number {
    return this.printed - this.headBytes - this.tail.bytes;
  }

  /**
   * Kept pieces not stored yet that reach past `offset`: what a reader adds to the stored
   * chunks (the first may begin before `offset`; readers skip what they have).
   */
  unflushed(offset = 0): OutputChunkData[] {
    return this.kept(Math.max(offset, this.flushedTo));
  }

  /** All kept pieces, stored or not, that reach past `offset` (the first may begin before it). */
  kept(offset = 0): OutputChunkData[] {
    const tailStart = this.printed - this.tail.bytes;
    return [...this.head.slice(firstEndingAfter(this.head, 0, offset)), ...this.tail.pieces(tailStart, offset - tailStart, this.pieceBytes)];
  }

  /**
   * The kept lines to store now, as chunks: the head's, and with `final` (the attempt
   * ended) the tail's too. They count as unflushed until {@link markStored}: a reader
   * meanwhile still gets them.
   */
  takeFlush(final: boolean): Flush {
    const pieces = final ? this.unflushed() : this.head.slice(firstEndingAfter(this.head, 0, this.flushedTo));
    const upTo = final ? this.printed : this.headBytes;
    const chunks: OutputChunkData[] = [];
    let current: OutputChunkData | undefined;
    for (const piece of pieces) {
      // A chunk holds consecutive lines only: a gap (dropped lines) starts a new one.
      if (current && current.offset + current.bytes === piece.offset && current.bytes + piece.bytes <= this.chunkBytes) {
        current.bytes += piece.bytes;
        current.text += piece.text;
        current.streams += piece.streams;
      } else {
        current = { ...piece };
        chunks.push(current);
      }
    }
    return { chunks, upTo };
  }

  /** Records that a flush was written. */
  markStored(flush: Flush): void {
    this.flushedTo = Math.max(this.flushedTo, flush.upTo);
  }

  /** The whole kept output as one text: head, the marker where lines were dropped, tail. */
  toString(): string {
    const head = this.head.map((p) => p.text).join('');
    if (this.droppedBytes === 0) return head + this.tail.toString();
    return `${head}${truncationMarker(this.droppedBytes, this.limitBytes)}\n${this.tail.toString()}`;
  }

  private keep(piece: OutputChunkData): void {
    if (!this.inTail) {
      const room = this.headLimit - this.headBytes;
      if (piece.bytes <= room) {
        this.head.push(piece);
        this.headBytes += piece.bytes;
        return;
      }
      const fit = linesPrefix(piece, room, false);
      if (fit.lines > 0) {
        const [front, back] = splitChunk(piece, fit);
        this.head.push(front);
        this.headBytes += front.bytes;
        piece = back;
      }
      this.inTail = true;
    }
    // Keep the newest lines that fit (a single line longer than the tail is dropped too).
    if (piece.bytes > this.tailLimit) {
      // Its own first lines go: everything before them too.
      this.tail.clear();
      const drop = linesPrefix(piece, piece.bytes - this.tailLimit, true);
      if (drop.lines === piece.streams.length) return;
      piece = splitChunk(piece, drop)[1];
    } else {
      this.tail.dropOldest(this.tail.bytes + piece.bytes - this.tailLimit);
    }
    this.tail.append(piece);
  }
}

/** Index of the first piece in pieces[start..] (sorted by offset) that ends after `offset`. */
function firstEndingAfter(pieces: readonly OutputChunkData[], start: number, offset: number): number {
  let low = start;
  let high = pieces.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    const piece = pieces[middle]!;
    if (piece.offset + piece.bytes <= offset) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** The first lines of a chunk: `chars` characters of its text, `lines` lines, `bytes` bytes. */
interface LinesPrefix {
  chars: number;
  lines: number;
  bytes: number;
}

/**
 * The longest run of a chunk's first lines within `bytes` or, `covering`, the shortest
 * one of at least `bytes`. Walks the lines without allocating.
 */
function linesPrefix(chunk: OutputChunkData, bytes: number, covering: boolean): LinesPrefix {
  const { text } = chunk;
  const ascii = chunk.bytes === text.length;
  const prefix: LinesPrefix = { chars: 0, lines: 0, bytes: 0 };
  while (prefix.chars < text.length && !(covering && prefix.bytes >= bytes)) {
    const end = text.indexOf('\n', prefix.chars) + 1;
    const size = ascii ? end - prefix.chars : utf8Length(text, prefix.chars, end);
    if (!covering && prefix.bytes + size > bytes) break;
    prefix.chars = end;
    prefix.lines++;
    prefix.bytes += size;
  }
  return prefix;
}

/** A chunk cut after its first lines: the two parts. */
function splitChunk(chunk: OutputChunkData, at: LinesPrefix): [OutputChunkData, OutputChunkData] {
  return [
    { offset: chunk.offset, bytes: at.bytes, text: chunk.text.slice(0, at.chars), streams: chunk.streams.slice(0, at.lines) },
    {
      offset: chunk.offset + at.bytes,
      bytes: chunk.bytes - at.bytes,
      text: chunk.text.slice(at.chars),
      streams: chunk.streams.slice(at.lines),
    },
  ];
}

/** Lines (each with its newline) from `offset` on, cut into chunks of at most `maxBytes` unless one line is longer. */
function cutChunks(offset: number, text: string, streams: string, maxBytes: number): OutputChunkData[] {
  const chunks: OutputChunkData[] = [];
  let rest: OutputChunkData = { offset, bytes: Buffer.byteLength(text), text, streams };
  while (rest.bytes > maxBytes) {
    const within = linesPrefix(rest, maxBytes, false);
    const [front, back] = splitChunk(rest, within.lines > 0 ? within : linesPrefix(rest, 1, true));
    chunks.push(front);
    rest = back;
  }
  chunks.push(rest);
  return chunks;
}

/** UTF-8 length of text[from, to) without allocating (what Buffer.byteLength would say). */
function utf8Length(text: string, from: number, to: number): number {
  let bytes = to - from;
  for (let i = from; i < to; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) continue;
    if (code < 0x800) {
      bytes += 1;
    } else if (code >= 0xd800 && code <= 0xdbff && i + 1 < to && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 2; // a surrogate pair: two code units, four bytes
      i++;
    } else {
      bytes += 2;
    }
  }
  return bytes;
}

/** A chunk's lines with their offsets. */
export function chunkLines(chunk: Pick<OutputChunkData, 'offset' | 'text' | 'streams'>): PlacedLine[] {
  const lines = chunk.text.split('\n');
  lines.pop(); // the text ends with a newline
  let offset = chunk.offset;
  return lines.map((line, i) => {
    const placed: PlacedLine = { offset, stream: chunk.streams[i] === 'e' ? 'stderr' : 'stdout', line };
    offset += lineBytes(line);
    return placed;
  });
}

/**
 * Consecutive lines of output (a piece of a chunk), or a stand-in for bytes that were
 * dropped. Pages hold runs of lines, not a line each: the text of a page is then its runs
 * joined, and per-line objects are made only for those who ask for lines.
 */
export type OutputItem = (OutputChunkData & { gap?: undefined }) | { offset: number; gap: number };

/**
 * A page of output from byte `offset` on: the stored chunks (sorted by offset) merged with
 * the pieces not stored yet, without duplicates, at most about `limitBytes` of lines but
 * always at least one, with a gap item wherever bytes were dropped. An offset inside a line
 * starts at the next one.
 */
export function assemblePage(
  chunks: readonly OutputChunkData[],
  pending: readonly OutputChunkData[],
  offset: number,
  limitBytes: number,
): { items: OutputItem[]; nextOffset: number } {
  const items: OutputItem[] = [];
  let expected = offset;
  let bytes = 0;
  for (const source of [chunks, pending]) {
    for (let run of source) {
      if (run.offset + run.bytes <= expected) continue;
      if (run.offset < expected) {
        // Lines beginning before `expected` are there already (or cut by the offset).
        const skip = linesPrefix(run, expected - run.offset, true);
        expected = run.offset + skip.bytes;
        if (skip.lines === run.streams.length) continue;
        run = splitChunk(run, skip)[1];
      }
      let take = run.bytes <= limitBytes - bytes ? undefined : linesPrefix(run, limitBytes - bytes, false);
      if (take?.lines === 0) {
        if (bytes > 0) return { items, nextOffset: expected };
        take = linesPrefix(run, 1, true);
      }
      if (run.offset > expected) items.push({ offset: expected, gap: run.offset - expected });
      const kept = take === undefined ? run : splitChunk(run, take)[0];
      items.push(kept);
      bytes += kept.bytes;
      expected = kept.offset + kept.bytes;
      if (take !== undefined) return { items, nextOffset: expected };
    }
  }
  return { items, nextOffset: expected };
}

/** Items as text: lines with their newlines, each gap as the truncation marker. */
export function itemsToText(items: readonly OutputItem[], limitBytes: number): string {
  return items.map((item) => (item.gap !== undefined ? `${truncationMarker(item.gap, limitBytes)}\n` : item.text)).join('');
}
