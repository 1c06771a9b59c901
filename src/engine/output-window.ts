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
 */

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

export function lineBytes(line: string): number {
  return Buffer.byteLength(line) + 1;
}

/** The visible marker where output was dropped, in stored copies and pages alike. */
export function truncationMarker(droppedBytes: number, limitBytes: number): string {
  return `[output truncated: ${droppedBytes} bytes were not stored here; only the first and last ${Math.floor(limitBytes / 2)} bytes are kept (OUTPUT_LIMIT_BYTES=${limitBytes})]`;
}

export class OutputWindow {
  private readonly head: PlacedLine[] = [];
  private headBytes = 0;
  private readonly tail: PlacedLine[] = [];
  private tailStart = 0;
  private tailBytes = 0;
  /** Once a line missed the head, every later line goes to the tail. */
  private inTail = false;
  /** Bytes printed so far: the offset of the next line. */
  private printed = 0;
  /** Lines before this offset are stored already. */
  private flushedTo = 0;
  private readonly headLimit: number;
  private readonly tailLimit: number;

  constructor(
    readonly limitBytes: number,
    private readonly chunkBytes = CHUNK_BYTES,
  ) {
    this.headLimit = Math.floor(limitBytes / 2);
    this.tailLimit = limitBytes - this.headLimit;
  }

  /** Places a line after the previous one; returns it with its offset. */
  append(stream: OutputStream, line: string): PlacedLine {
    const placed: PlacedLine = { offset: this.printed, stream, line };
    const size = lineBytes(line);
    this.printed += size;
    if (!this.inTail && this.headBytes + size <= this.headLimit) {
      this.head.push(placed);
      this.headBytes += size;
      return placed;
    }
    this.inTail = true;
    this.tail.push(placed);
    this.tailBytes += size;
    // Keep the newest lines that fit; a single line longer than the tail is dropped too.
    while (this.tailBytes > this.tailLimit && this.tailStart < this.tail.length) {
      this.tailBytes -= lineBytes(this.tail[this.tailStart]!.line);
      this.tailStart++;
    }
    if (this.tailStart > 1024 && this.tailStart * 2 > this.tail.length) {
      this.tail.splice(0, this.tailStart);
      this.tailStart = 0;
    }
    return placed;
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
    return this.printed - this.headBytes - this.tailBytes;
  }

  /** Kept lines not stored yet, from `offset` on: what a reader adds to the stored chunks. */
  unflushed(offset = 0): PlacedLine[] {
    const from = Math.max(offset, this.flushedTo);
    return [...this.head.slice(firstAtOrAfter(this.head, 0, from)), ...this.tail.slice(firstAtOrAfter(this.tail, this.tailStart, from))];
  }

  /**
   * The kept lines to store now, as chunks: the head's, and with `final` (the attempt
   * ended) the tail's too. They count as unflushed until {@link markStored}: a reader
   * meanwhile still gets them.
   */
  takeFlush(final: boolean): Flush {
    const lines = final ? this.unflushed() : this.head.slice(firstAtOrAfter(this.head, 0, this.flushedTo));
    const upTo = final ? this.printed : this.headBytes;
    const chunks: OutputChunkData[] = [];
    let current: OutputChunkData | undefined;
    for (const { offset, stream, line } of lines) {
      const size = lineBytes(line);
      // A chunk holds consecutive lines only: a gap (dropped lines) starts a new one.
      if (!current || current.offset + current.bytes !== offset || current.bytes + size > this.chunkBytes) {
        current = { offset, bytes: 0, text: '', streams: '' };
        chunks.push(current);
      }
      current.bytes += size;
      current.text += `${line}\n`;
      current.streams += stream === 'stdout' ? 'o' : 'e';
    }
    return { chunks, upTo };
  }

  /** Records that a flush was written. */
  markStored(flush: Flush): void {
    this.flushedTo = Math.max(this.flushedTo, flush.upTo);
  }

  /** The whole kept output as one text: head, the marker where lines were dropped, tail. */
  toString(): string {
    const text = (lines: readonly PlacedLine[]) => lines.map((l) => `${l.line}\n`).join('');
    const tail = this.tail.slice(this.tailStart);
    if (this.droppedBytes === 0) return text(this.head) + text(tail);
    return `${text(this.head)}${truncationMarker(this.droppedBytes, this.limitBytes)}\n${text(tail)}`;
  }

  private tailOffset(): number {
    return this.tail[this.tailStart]?.offset ?? this.printed;
  }
}

/** Index of the first line at or after `offset` in lines[start..] (sorted by offset). */
function firstAtOrAfter(lines: readonly PlacedLine[], start: number, offset: number): number {
  let low = start;
  let high = lines.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (lines[middle]!.offset < offset) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** A stored chunk's lines with their offsets. */
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

/** A line of output, or a stand-in for bytes that were dropped. */
export type OutputItem = (PlacedLine & { gap?: undefined }) | { offset: number; gap: number };

/**
 * A page of output from byte `offset` on: the stored chunks (sorted by offset) merged with
 * lines not stored yet, without duplicates, at most about `limitBytes` of lines but always
 * at least one, with a gap item wherever bytes were dropped. An offset inside a line starts
 * at the next one.
 */
export function assemblePage(
  chunks: ReadonlyArray<Pick<OutputChunkData, 'offset' | 'bytes' | 'text' | 'streams'>>,
  pending: readonly PlacedLine[],
  offset: number,
  limitBytes: number,
): { items: OutputItem[]; nextOffset: number } {
  const items: OutputItem[] = [];
  let expected = offset;
  let bytes = 0;
  const add = (line: PlacedLine): boolean => {
    const size = lineBytes(line.line);
    if (line.offset < expected) {
      expected = Math.max(expected, line.offset + size);
      return true;
    }
    if (items.length > 0 && bytes + size > limitBytes) return false;
    if (line.offset > expected) items.push({ offset: expected, gap: line.offset - expected });
    items.push(line);
    expected = line.offset + size;
    bytes += size;
    return true;
  };
  for (const chunk of chunks) {
    if (chunk.offset + chunk.bytes <= expected) continue;
    for (const line of chunkLines(chunk)) if (!add(line)) return { items, nextOffset: expected };
  }
  for (const line of pending) if (!add(line)) break;
  return { items, nextOffset: expected };
}

/** Items as text: lines with their newlines, each gap as the truncation marker. */
export function itemsToText(items: readonly OutputItem[], limitBytes: number): string {
  return items.map((item) => (item.gap !== undefined ? `${truncationMarker(item.gap, limitBytes)}\n` : `${item.line}\n`)).join('');
}
