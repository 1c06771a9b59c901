/**
 * The output viewer's buffer (dashboard/src/output-buffer.ts), pure: the resume cursor
 * agrees with the service's byte offsets (src/engine/output-window.ts lineBytes) for any
 * text, rows stay within the limits with their numbers, and search keeps up with appends
 * and drops.
 */
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { OutputBuffer, offsetAfter, utf8Length } from '../../dashboard/src/output-buffer.ts';
import { lineBytes } from '../../src/engine/output-window.ts';

it('counts UTF-8 bytes as the service does, lone surrogates included', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary' }), (text) => {
      expect(utf8Length(text)).toBe(Buffer.byteLength(text));
      expect(offsetAfter(text, 7)).toBe(7 + lineBytes(text));
    }),
  );
  expect(utf8Length('\ud800x')).toBe(Buffer.byteLength('\ud800x'));
  expect(utf8Length('é€😀')).toBe(9);
});

it('keeps at most maxLines rows, numbered as printed, and says how many it dropped', () => {
  const buffer = new OutputBuffer({ maxLines: 80, maxChars: 1_000_000 });
  let dropped = 0;
  for (let i = 1; i <= 1000; i += 10) {
    dropped += buffer.append(Array.from({ length: 10 }, (_, j) => ({ line: `line ${i + j}`, offset: 0, stream: 'STDOUT' as const })));
    expect(buffer.length).toBeLessThanOrEqual(80);
  }
  expect(buffer.dropped).toBe(dropped);
  expect(buffer.dropped + buffer.length).toBe(1000);
  expect(buffer.lineCount).toBe(1000);
  const last = buffer.length - 1;
  expect([buffer.number(last), buffer.text(last)]).toEqual([1000, 'line 1000']);
  expect([buffer.number(0), buffer.text(0)]).toEqual([buffer.dropped + 1, `line ${buffer.dropped + 1}`]);
});

it('keeps within maxChars however long the lines', () => {
  const buffer = new OutputBuffer({ maxLines: 1000, maxChars: 10_000 });
  for (let i = 0; i < 50; i++) buffer.append([{ line: 'x'.repeat(1000), offset: i * 1001, stream: 'STDOUT' }]);
  let chars = 0;
  for (let row = 0; row < buffer.length; row++) chars += buffer.text(row).length;
  expect(chars).toBeLessThanOrEqual(10_000);
  expect(buffer.length).toBeGreaterThan(0);
});

it('marks stderr and notices; notices take no line number', () => {
  const buffer = new OutputBuffer();
  buffer.append([
    { line: 'out', offset: 0, stream: 'STDOUT' },
    { line: '[output truncated]', offset: null, stream: 'STDERR' },
    { line: 'err', offset: 100, stream: 'STDERR' },
  ]);
  expect([0, 1, 2].map((row) => [buffer.number(row), buffer.isStderr(row), buffer.isNotice(row)])).toEqual([
    [1, false, false],
    [0, true, true],
    [2, true, false],
  ]);
});

it('finds matches case-insensitively as lines arrive, and forgets those of dropped rows', () => {
  const buffer = new OutputBuffer({ maxLines: 16, maxChars: 1_000_000 });
  buffer.setQuery('AB');
  buffer.append([{ line: 'ab Ab x', offset: 0, stream: 'STDOUT' }]);
  expect(buffer.matches).toEqual([
    { seq: 0, start: 0 },
    { seq: 0, start: 3 },
  ]);
  buffer.append(Array.from({ length: 20 }, (_, i) => ({ line: i % 2 ? 'ab' : 'no', offset: 10 + i, stream: 'STDOUT' as const })));
  expect(buffer.matches.every((m) => m.seq >= buffer.firstSeq)).toBe(true);
  const rows = Array.from({ length: buffer.length }, (_, row) => buffer.text(row));
  expect(buffer.matches.length).toBe(rows.filter((text) => text === 'ab').length);
  expect(buffer.matchesIn('xaBab')).toEqual([1, 3]);
  buffer.setQuery('');
  expect(buffer.matches).toEqual([]);
});
