/**
 * The newest lines of an output in bounded memory outside the JavaScript heap: their bytes
 * and one stream character per line, each in a ring buffer that grows up to the capacity
 * as it fills. Pure.
 *
 * Why not strings: every byte a flood prints passes through the tail of its output window.
 * Held there as strings, each piece lived long enough to survive two minor collections and
 * was promoted to V8's old generation, where the whole flood piled up until a major
 * collection. In a buffer the bytes are copied once, in place, and nothing is promoted.
 */
import type { OutputChunkData } from './output-window.ts';

const NEWLINE = 0x0a;

/** Bytes in a ring, oldest first. */
class ByteRing {
  private buffer = Buffer.alloc(0);
  private start = 0;
  length = 0;

  constructor(private readonly capacity: number) {}

  /** Appends `text` (`bytes` long in `encoding`); the caller keeps the length within the capacity. */
  write(text: string, bytes: number, encoding: 'latin1' | 'utf8'): void {
    this.reserve(bytes);
    const end = (this.start + this.length) % this.buffer.length;
    const room = this.buffer.length - end;
    if (bytes <= room) {
      this.buffer.write(text, end, bytes, encoding);
    } else if (encoding === 'latin1') {
      // One byte per character: the text splits where the buffer wraps.
      this.buffer.write(text, end, room, encoding);
      this.buffer.write(text.slice(room), 0, bytes - room, encoding);
    } else {
      // A character may straddle the wrap: encode first (rare, non-ASCII output only).
      const encoded = Buffer.from(text, encoding);
      encoded.copy(this.buffer, end, 0, room);
      encoded.copy(this.buffer, 0, room);
    }
    this.length += bytes;
  }

  drop(bytes: number): void {
    this.length -= bytes;
    this.start = this.length === 0 ? 0 : (this.start + bytes) % this.buffer.length;
  }

  /** Position (from the oldest byte) of the first `value` at or after `from`, or -1. */
  indexOf(value: number, from: number): number {
    if (from >= this.length) return -1;
    const size = this.buffer.length;
    const end = this.start + this.length;
    // Searched in the whole buffer, without a view per call; a find past the held bytes
    // (left over from before) does not count.
    if (this.start + from < size) {
      const found = this.buffer.indexOf(value, this.start + from);
      if (found !== -1 && found < Math.min(end, size)) return found - this.start;
      if (end <= size) return -1;
      from = size - this.start;
    }
    const found = this.buffer.indexOf(value, this.start + from - size);
    return found !== -1 && found < end - size ? found + size - this.start : -1;
  }

  toString(encoding: 'latin1' | 'utf8', from: number, to: number): string {
    const size = this.buffer.length;
    const a = this.start + from;
    const b = this.start + to;
    if (b <= size) return this.buffer.toString(encoding, a, b);
    if (a >= size) return this.buffer.toString(encoding, a - size, b - size);
    return Buffer.concat([this.buffer.subarray(a), this.buffer.subarray(0, b - size)]).toString(encoding);
  }

  /** Room for `bytes` more: the buffer doubles (up to the capacity), keeping the order. */
  private reserve(bytes: number): void {
    const needed = this.length + bytes;
    if (needed <= this.buffer.length) return;
    const next = Buffer.allocUnsafe(Math.min(this.capacity, Math.max(needed, this.buffer.length * 2, 4096)));
    if (this.length > 0) {
      const size = this.buffer.length;
      const first = Math.min(this.start + this.length, size);
      this.buffer.copy(next, 0, this.start, first);
      if (first - this.start < this.length) this.buffer.copy(next, first - this.start, 0, this.length - (first - this.start));
    }
    this.buffer = next;
    this.start = 0;
  }
}

/** Whole lines, each with its newline, in at most `capacity` bytes. */
export class LineRing {
  private readonly text: ByteRing;
  private readonly streams: ByteRing;

  constructor(readonly capacity: number) {
    this.text = new ByteRing(capacity);
    // A line is at least its newline: never more lines than bytes.
    this.streams = new ByteRing(capacity);
  }

  /** Bytes held. */
  get bytes(): number {
    return this.text.length;
  }

  /** Appends lines; the caller has made room (see dropOldest). */
  append(piece: Pick<OutputChunkData, 'text' | 'bytes' | 'streams'>): void {
    this.text.write(piece.text, piece.bytes, piece.bytes === piece.text.length ? 'latin1' : 'utf8');
    this.streams.write(piece.streams, piece.streams.length, 'latin1');
  }

  /** Drops the fewest oldest lines that make at least `bytes` bytes; returns how many bytes went. */
  dropOldest(bytes: number): number {
    if (bytes <= 0) return 0;
    if (bytes >= this.text.length) return this.clear();
    const end = this.text.indexOf(NEWLINE, bytes - 1) + 1;
    this.streams.drop(this.linesBefore(end));
    this.text.drop(end);
    return end;
  }

  clear(): number {
    const dropped = this.text.length;
    this.text.drop(dropped);
    this.streams.drop(this.streams.length);
    return dropped;
  }

  /**
   * The lines held from byte `from` on (the line it falls in included) as pieces of at most
   * `maxBytes` unless a line is longer, with offsets counted from `offset` for the oldest byte.
   */
  pieces(offset: number, from: number, maxBytes: number): OutputChunkData[] {
    const pieces: OutputChunkData[] = [];
    let start = from <= 0 ? 0 : this.lineStartAt(from);
    let line = this.linesBefore(start);
    while (start < this.text.length) {
      let end = start;
      let lines = 0;
      // Whole lines up to maxBytes, at least one.
      for (;;) {
        const next = this.text.indexOf(NEWLINE, end) + 1;
        if (lines > 0 && next - start > maxBytes) break;
        end = next;
        lines++;
        if (end >= this.text.length) break;
      }
      const text = this.text.toString('utf8', start, end);
      pieces.push({ offset: offset + start, bytes: end - start, text, streams: this.streams.toString('latin1', line, line + lines) });
      start = end;
      line += lines;
    }
    return pieces;
  }

  toString(): string {
    return this.text.toString('utf8', 0, this.text.length);
  }

  /** Where the line holding byte `at` begins. */
  private lineStartAt(at: number): number {
    let start = 0;
    for (let end = this.text.indexOf(NEWLINE, 0) + 1; end > 0 && end <= at; end = this.text.indexOf(NEWLINE, end) + 1) start = end;
    return start;
  }

  /** Lines that end at or before byte `at` (a line boundary). */
  private linesBefore(at: number): number {
    let lines = 0;
    for (let end = this.text.indexOf(NEWLINE, 0) + 1; end > 0 && end <= at; end = this.text.indexOf(NEWLINE, end) + 1) lines++;
    return lines;
  }
}
