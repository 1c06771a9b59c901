/**
 * A script attempt's output file (SPEC rule 18) on a real file system: created empty for
 * the script's user, read back only while it is a plain file of that user, and never more
 * of it than the limit.
 */
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createOutputFile, readOutputFile } from '../../src/executor/output-file.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'dagpipe-output-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = () => path.join(dir, `out-${++n}`);
const me = process.getuid?.();
const asRoot = me === 0;

describe('createOutputFile', () => {
  it('creates an empty file only its owner may read and write, emptying one that was there', () => {
    const file = fresh();
    writeFileSync(file, 'left over');
    createOutputFile(file);
    expect(readFileSync(file, 'utf8')).toBe('');
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it.runIf(asRoot)("gives it to the script's user", () => {
    const file = fresh();
    createOutputFile(file, { uid: 65534, gid: 65534 });
    expect(statSync(file)).toMatchObject({ uid: 65534, gid: 65534 });
  });

  it('does not follow a symbolic link in its place', () => {
    const target = fresh();
    writeFileSync(target, 'keep me');
    const link = fresh();
    symlinkSync(target, link);
    expect(() => createOutputFile(link)).toThrow(/ELOOP/);
    expect(readFileSync(target, 'utf8')).toBe('keep me');
  });
});

describe('readOutputFile', () => {
  it('reads the text a script wrote; a file it removed holds nothing', () => {
    const file = fresh();
    writeFileSync(file, 'a=1\nb<<E\nx\nE\n');
    expect(readOutputFile(file, me)).toEqual({ text: 'a=1\nb<<E\nx\nE\n' });
    expect(readOutputFile(fresh(), me)).toEqual({ text: '' });
  });

  it('reads at most the limit: a larger file is reported by its size', () => {
    const file = fresh();
    writeFileSync(file, 'a=12345\n');
    expect(readOutputFile(file, me, 8)).toEqual({ text: 'a=12345\n' });
    expect(readOutputFile(file, me, 7)).toEqual({ tooLarge: 8 });
    const huge = fresh();
    writeFileSync(huge, '');
    truncateSync(huge, 2 ** 40);
    expect(readOutputFile(huge, me)).toEqual({ tooLarge: 2 ** 40 });
  });

  it.runIf(asRoot)("refuses another user's file in its place", () => {
    const file = fresh();
    writeFileSync(file, 'secret=of root\n');
    expect(readOutputFile(file, 65534)).toEqual({ problem: "the script put another user's file in its place. Write to the file itself." });
    chownSync(file, 65534, 65534);
    expect(readOutputFile(file, 65534)).toEqual({ text: 'secret=of root\n' });
  });

  it('refuses a symbolic link, a directory, and bytes that are not UTF-8', () => {
    const target = fresh();
    writeFileSync(target, 'a=1\n');
    const link = fresh();
    symlinkSync(target, link);
    expect(readOutputFile(link, me)).toMatchObject({ problem: expect.stringContaining('symbolic link') });
    const folder = fresh();
    mkdirSync(folder);
    expect(readOutputFile(folder, me)).toMatchObject({ problem: expect.stringContaining('other than a plain file') });
    const binary = fresh();
    writeFileSync(binary, Buffer.from([0x61, 0x3d, 0xff, 0x0a]));
    expect(readOutputFile(binary, me)).toMatchObject({ problem: expect.stringContaining('not UTF-8') });
  });
});
