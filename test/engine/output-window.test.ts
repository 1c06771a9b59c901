import { describe, expect, it } from 'vitest';
import { assemblePage, chunkLines, itemsToText, OutputWindow, truncationMarker, type OutputStream } from '../../src/engine/output-window.ts';

/** Prints lines one at a time, as a slow script does; returns them placed. */
const printAll = (window: OutputWindow, lines: string[], stream: OutputStream = 'stdout') =>
  lines.flatMap((line) => window.append(`${line}\n`, stream === 'stdout' ? 'o' : 'e').flatMap(chunkLines));
/** Prints lines in one batch, as the launcher sends a flood. */
const printBatch = (window: OutputWindow, lines: string[]) => window.append(lines.map((l) => `${l}\n`).join(''), 'o'.repeat(lines.length));
const numbered = (n: number, from = 1) => Array.from({ length: n }, (_, i) => `line ${i + from}`);

/** What a reader gets after the window stored everything (final flush), from `offset`. */
function storedPage(window: OutputWindow, offset: number, limit: number) {
  return assemblePage(window.takeFlush(true).chunks, [], offset, limit);
}

describe('OutputWindow', () => {
  it('gives every line its byte offset, counting multi-byte characters and the newline', () => {
    const window = new OutputWindow(1024);
    const placed = printAll(window, ['ab', 'é', '', 'x']);
    expect(placed.map((l) => l.offset)).toEqual([0, 3, 6, 7]);
    expect(window.size).toBe(9);
  });

  it('keeps everything within the limit, and stores it as one chunk with the streams', () => {
    const window = new OutputWindow(1024);
    window.append('out\n', 'o');
    window.append('err\n', 'e');
    expect(window.toString()).toBe('out\nerr\n');
    expect(window.takeFlush(true).chunks).toEqual([{ offset: 0, bytes: 8, text: 'out\nerr\n', streams: 'oe' }]);
  });

  it('over the limit keeps the first half and the newest lines, with a marker where the middle was', () => {
    const window = new OutputWindow(1024);
    const lines = numbered(500);
    printAll(window, lines);
    const printed = lines.map((l) => `${l}\n`).join('');
    const text = window.toString();
    const marker = `${truncationMarker(window.droppedBytes, 1024)}\n`;
    const [head, tail] = text.split(marker);
    expect(printed.startsWith(head!)).toBe(true);
    expect(printed.endsWith(tail!)).toBe(true);
    expect(Buffer.byteLength(head!)).toBeLessThanOrEqual(512);
    expect(Buffer.byteLength(head!)).toBeGreaterThan(500);
    expect(Buffer.byteLength(tail!)).toBeLessThanOrEqual(512);
    expect(Buffer.byteLength(tail!)).toBeGreaterThan(500);
    expect(window.droppedBytes).toBe(Buffer.byteLength(printed) - Buffer.byteLength(head! + tail!));
  });

  it('once a line missed the head, later short lines go to the tail, never back to the head', () => {
    const window = new OutputWindow(1024);
    printAll(window, ['a'.repeat(500), 'b'.repeat(100), 'c']);
    expect(window.toString()).toMatch(/^a+\nb+\nc\n$/);
    printAll(window, ['d'.repeat(450)]);
    // b fell out of the tail (c and d fit in its 512 bytes); nothing reached the head after a.
    expect(window.toString()).toBe(`${'a'.repeat(500)}\n${truncationMarker(101, 1024)}\nc\n${'d'.repeat(450)}\n`);
    // A line longer than the whole tail is not kept either.
    printAll(window, ['e'.repeat(600)]);
    expect(window.toString()).toBe(`${'a'.repeat(500)}\n${truncationMarker(101 + 2 + 451 + 601, 1024)}\n`);
  });

  it('stores the head as it comes and the tail only at the end', () => {
    const window = new OutputWindow(1024);
    printAll(window, numbered(10));
    const early = window.takeFlush(false);
    expect(early.chunks.map((c) => c.text).join('')).toBe(numbered(10).map((l) => `${l}\n`).join(''));
    window.markStored(early);
    expect(window.headUnstored).toBe(false);
    printAll(window, numbered(400, 11));
    // The head filled up; what is left goes to the tail, which waits for the end.
    const middle = window.takeFlush(false);
    window.markStored(middle);
    expect(window.takeFlush(false).chunks).toEqual([]);
    const last = window.takeFlush(true);
    expect(last.chunks.at(-1)!.text.endsWith('line 410\n')).toBe(true);
    expect(last.chunks.every((c) => c.offset >= middle.upTo)).toBe(true);
  });

  it('lines taken for a flush stay unflushed until it is marked stored', () => {
    const window = new OutputWindow(1024);
    printAll(window, ['one', 'two']);
    const flush = window.takeFlush(false);
    expect(window.unflushed().flatMap(chunkLines).map((l) => l.line)).toEqual(['one', 'two']);
    window.markStored(flush);
    expect(window.unflushed()).toEqual([]);
    window.append('three\n', 'o');
    expect(window.unflushed(0).flatMap(chunkLines).map((l) => l.line)).toEqual(['three']);
    expect(window.unflushed(100)).toEqual([]);
  });

  it('cuts chunks at the chunk size and never across the dropped middle', () => {
    const window = new OutputWindow(4096, 100);
    printAll(window, numbered(1000));
    const { chunks } = window.takeFlush(true);
    for (const chunk of chunks) expect(chunk.bytes <= 100 || chunk.streams.length === 1).toBe(true);
    const gaps = chunks.slice(1).filter((c, i) => c.offset !== chunks[i]!.offset + chunks[i]!.bytes);
    expect(gaps).toHaveLength(1);
  });
});

describe('OutputWindow, lines in batches', () => {
  /** Lines of assorted lengths, some with multi-byte characters, some on stderr. */
  function assorted(count: number, seed: number): Array<[OutputStream, string]> {
    let state = seed;
    const next = () => (state = (state * 1103515245 + 12345) % 2147483648) / 2147483648;
    return Array.from({ length: count }, (_, i) => {
      const length = Math.floor(next() * (next() < 0.05 ? 700 : 40));
      const text = Array.from({ length }, () => (next() < 0.1 ? ['é', '😀'][Math.floor(next() * 2)] : 'x')).join('');
      return [next() < 0.2 ? 'stderr' : 'stdout', `${i}:${text}`];
    });
  }

  /** What a window of `limit` bytes keeps, by the rule, line by line: head, dropped bytes, tail. */
  function kept(lines: Array<[OutputStream, string]>, limit: number): string {
    const size = (line: string) => Buffer.byteLength(line) + 1;
    let head = '';
    let headBytes = 0;
    let i = 0;
    for (; i < lines.length && headBytes + size(lines[i]![1]) <= limit / 2; i++) {
      head += `${lines[i]![1]}\n`;
      headBytes += size(lines[i]![1]);
    }
    const tail: string[] = [];
    let tailBytes = 0;
    for (; i < lines.length; i++) {
      tail.push(lines[i]![1]);
      tailBytes += size(lines[i]![1]);
      while (tailBytes > limit / 2 && tail.length > 0) tailBytes -= size(tail.shift()!);
    }
    const printed = lines.reduce((sum, [, line]) => sum + size(line), 0);
    const dropped = printed - headBytes - tailBytes;
    return `${head}${dropped > 0 ? `${truncationMarker(dropped, limit)}\n` : ''}${tail.map((l) => `${l}\n`).join('')}`;
  }

  it('keeps, cuts and gives offsets exactly as line by line, wherever the batches begin and end', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const lines = assorted(400, seed);
      const one = new OutputWindow(4096, 256);
      for (const [stream, line] of lines) one.append(`${line}\n`, stream === 'stdout' ? 'o' : 'e');
      const batched = new OutputWindow(4096, 256);
      const placed = [];
      for (let start = 0; start < lines.length; ) {
        const batch = lines.slice(start, start + 1 + (start % 37));
        placed.push(...batched.append(batch.map(([, l]) => `${l}\n`).join(''), batch.map(([s]) => (s === 'stdout' ? 'o' : 'e')).join('')));
        start += batch.length;
      }
      expect(placed.flatMap(chunkLines).map((l) => [l.stream, l.line])).toEqual(lines);
      for (const piece of placed) expect(piece.bytes <= 256 || piece.streams.length === 1).toBe(true);
      expect(one.toString()).toBe(kept(lines, 4096));
      expect(batched.toString()).toBe(one.toString());
      expect(batched.size).toBe(one.size);
      expect(batched.droppedBytes).toBe(one.droppedBytes);
      expect(batched.unflushed(1000).flatMap(chunkLines).filter((l) => l.offset >= 1000)).toEqual(
        one.unflushed(1000).flatMap(chunkLines).filter((l) => l.offset >= 1000),
      );
      const stored = batched.takeFlush(true).chunks;
      expect(stored.flatMap(chunkLines)).toEqual(one.takeFlush(true).chunks.flatMap(chunkLines));
      for (const chunk of stored) expect(chunk.bytes).toBe(Buffer.byteLength(chunk.text));
    }
  });

  it('a flood in one batch keeps the head and the tail, the marker between', () => {
    const window = new OutputWindow(1024, 100);
    const lines = numbered(1000);
    printBatch(window, lines);
    const [head, tail] = window.toString().split(`${truncationMarker(window.droppedBytes, 1024)}\n`);
    let expectedHead = '';
    for (const line of lines) {
      if (Buffer.byteLength(`${expectedHead}${line}\n`) > 512) break;
      expectedHead += `${line}\n`;
    }
    expect(head).toBe(expectedHead);
    expect(tail!.endsWith('line 1000\n')).toBe(true);
    expect(Buffer.byteLength(head! + tail!) + window.droppedBytes).toBe(window.size);
  });
});

describe('assemblePage', () => {
  const window = new OutputWindow(1024, 64);
  printAll(window, numbered(20));
  const chunks = window.takeFlush(true).chunks;
  const full = numbered(20).map((l) => `${l}\n`).join('');

  it('pages of any size, followed by nextOffset, give back exactly what was printed', () => {
    for (const limit of [1, 7, 30, 100, 10_000]) {
      let offset = 0;
      let text = '';
      for (let guard = 0; guard < 100 && offset < Buffer.byteLength(full); guard++) {
        const page = assemblePage(chunks, [], offset, limit);
        text += itemsToText(page.items, 1024);
        offset = page.nextOffset;
      }
      expect(text).toBe(full);
    }
  });

  it('an offset inside a line starts at the next line', () => {
    const page = assemblePage(chunks, [], 2, 10_000);
    expect(itemsToText(page.items, 1024).startsWith('line 2\n')).toBe(true);
  });

  it('holds runs of lines with their offsets, cut at the limit, at least one line', () => {
    const page = assemblePage(chunks, [], 0, 20);
    expect(page.items).toEqual([{ offset: 0, bytes: 14, text: 'line 1\nline 2\n', streams: 'oo' }]);
    expect(page.nextOffset).toBe(14);
    const one = assemblePage(chunks, [], 3, 1);
    expect(one.items.flatMap((i) => (i.gap === undefined ? chunkLines(i) : []))).toEqual([{ offset: 7, stream: 'stdout', line: 'line 2' }]);
  });

  it('merges lines not stored yet without duplicating those that are', () => {
    const live = new OutputWindow(1024);
    printAll(live, numbered(5));
    const flush = live.takeFlush(false);
    printAll(live, numbered(3, 6));
    // A reader that took the pending lines before the flush landed sees both copies of 1-5.
    const page = assemblePage(flush.chunks, live.unflushed(), 0, 10_000);
    expect(page.items.flatMap((i) => (i.gap === undefined ? chunkLines(i).map((l) => l.line) : ['gap']))).toEqual(numbered(8));
  });

  it('marks the dropped middle as a gap of the right size', () => {
    const big = new OutputWindow(1024);
    printAll(big, numbered(500));
    const page = storedPage(big, 0, 1_000_000);
    const gaps = page.items.filter((i) => i.gap !== undefined);
    expect(gaps).toEqual([expect.objectContaining({ gap: big.droppedBytes })]);
    expect(page.nextOffset).toBe(big.size);
  });

  it('an offset inside the dropped middle starts with the gap, then the tail', () => {
    const big = new OutputWindow(1024);
    printAll(big, numbered(500));
    const page = storedPage(big, 2000, 1_000_000);
    expect(page.items[0]).toMatchObject({ offset: 2000 });
    expect(page.items[0]!.gap).toBeGreaterThan(0);
    expect(itemsToText(page.items, 1024).endsWith('line 500\n')).toBe(true);
  });
});
