import { describe, expect, it } from 'vitest';
import { LineRing } from '../../src/engine/line-ring.ts';
import { chunkLines } from '../../src/engine/output-window.ts';

const piece = (lines: string[], stream = 'o') => {
  const text = lines.map((l) => `${l}\n`).join('');
  return { text, bytes: Buffer.byteLength(text), streams: stream.repeat(lines.length) };
};

describe('LineRing', () => {
  it('keeps the newest lines across wrap-arounds, a multi-byte character straddling the end of the buffer', () => {
    const ring = new LineRing(64);
    const all: string[] = [];
    for (let i = 0; i < 200; i++) {
      const line = i % 3 === 0 ? `é${i}😀` : `line ${i}`;
      all.push(line);
      const next = piece([line], i % 2 ? 'e' : 'o');
      ring.dropOldest(ring.bytes + next.bytes - ring.capacity);
      ring.append(next);
      expect(ring.bytes).toBeLessThanOrEqual(64);
      const text = ring.toString();
      expect(all.map((l) => `${l}\n`).join('').endsWith(text)).toBe(true);
      expect(text.startsWith(`${all.at(-text.split('\n').length + 1)}\n`)).toBe(true);
    }
  });

  it('gives its lines as pieces from a byte on, with offsets and streams', () => {
    const ring = new LineRing(1024);
    ring.append(piece(['one', 'two'], 'o'));
    ring.append(piece(['three'], 'e'));
    expect(ring.pieces(100, 0, 1024)).toEqual([{ offset: 100, bytes: 14, text: 'one\ntwo\nthree\n', streams: 'ooe' }]);
    // From inside "two": that line on; pieces of at most 6 bytes, a longer line alone.
    expect(ring.pieces(100, 5, 6).flatMap(chunkLines)).toEqual([
      { offset: 104, stream: 'stdout', line: 'two' },
      { offset: 108, stream: 'stderr', line: 'three' },
    ]);
    expect(ring.dropOldest(1)).toBe(4);
    expect(ring.pieces(104, 0, 1024)).toEqual([{ offset: 104, bytes: 10, text: 'two\nthree\n', streams: 'oe' }]);
  });
});
