/** The script runner with real bash processes. */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startScript, type OutputSink } from '../../src/executor/run-script.ts';
import { failureReason } from '../../src/executor/executor.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'dagpipe-run-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The lines of whole-line texts, checking each text's count. */
function splitLines(text: string, count: number): string[] {
  expect(text.endsWith('\n')).toBe(true);
  const lines = text.slice(0, -1).split('\n');
  expect(lines).toHaveLength(count);
  return lines;
}

async function run(script: string, options: { timeoutMs?: number; env?: Record<string, string>; killGraceMs?: number } = {}) {
  const lines: Array<[string, string]> = [];
  const sink: OutputSink = (stream, text, count) => lines.push(...splitLines(text, count).map((line): [string, string] => [stream, line]));
  const cwd = path.join(dir, `run-${Math.random().toString(36).slice(2)}`);
  const running = await startScript(
    { script, cwd, env: { PATH: process.env.PATH!, ...options.env }, timeoutMs: options.timeoutMs ?? 10_000, killGraceMs: options.killGraceMs ?? 500 },
    sink,
  );
  return { running, lines, cwd, outcome: await running.done };
}

describe('startScript', () => {
  it('runs bash with -e and pipefail: a failing line or pipe stage fails the script', async () => {
    expect((await run('false; echo not reached')).outcome.exitCode).toBe(1);
    expect((await run('false | true')).outcome.exitCode).toBe(1);
    const ok = await run('for i in 1 2; do\n  echo "line $i"\ndone');
    expect(ok.outcome.exitCode).toBe(0);
    expect(ok.lines).toEqual([['stdout', 'line 1'], ['stdout', 'line 2']]);
  });

  it('keeps stdout and stderr apart and in order', async () => {
    const { lines } = await run('echo one; sleep 0.05; echo two >&2; sleep 0.05; echo three');
    expect(lines).toEqual([['stdout', 'one'], ['stderr', 'two'], ['stdout', 'three']]);
  });

  it('runs in its own working directory with only the given environment', async () => {
    const { lines, cwd } = await run('pwd; echo "${SECRET_THING:-unset} $INPUT_X"', { env: { INPUT_X: 'x y' } });
    expect(lines).toEqual([['stdout', cwd], ['stdout', 'unset x y']]);
    expect(existsSync(cwd)).toBe(true);
  });

  it('kills the whole process group on timeout, even children that ignore SIGTERM', async () => {
    const marker = path.join(dir, 'timeout-survivor');
    const { outcome } = await run(`(trap '' TERM; sleep 2; touch ${marker}) & sleep 30`, { timeoutMs: 300, killGraceMs: 300 });
    expect(outcome.timedOut).toBe(true);
    expect(outcome.durationMs).toBeLessThan(2000);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(existsSync(marker)).toBe(false);
    expect(failureReason(outcome, 1)).toContain('Timed out after 1 s');
  });

  it('leaves no background process behind after a normal exit', async () => {
    const marker = path.join(dir, 'orphan');
    const { outcome } = await run(`(sleep 1; touch ${marker}) & echo done`);
    expect(outcome.exitCode).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(existsSync(marker)).toBe(false);
  });

  it('kill() stops the group and reports why', async () => {
    const lines: Array<[string, string]> = [];
    const running = await startScript({ script: 'echo up; sleep 30', cwd: path.join(dir, 'k'), env: { PATH: process.env.PATH! }, timeoutMs: 60_000 }, (s, text, count) =>
      lines.push(...splitLines(text, count).map((l): [string, string] => [s, l])),
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    running.kill('cancelled by an operator');
    const outcome = await running.done;
    expect(outcome.killedBecause).toBe('cancelled by an operator');
    expect(outcome.exitCode).toBeNull();
    expect(failureReason(outcome, 10)).toBe('Stopped: cancelled by an operator.');
  });
});

describe('LineSplitter', () => {
  it('splits chunks into lines, across chunk boundaries, and cuts endless lines', async () => {
    const { LineSplitter, MAX_LINE_LENGTH } = await import('../../src/executor/run-script.ts');
    const lines: string[] = [];
    const splitter = new LineSplitter((text, count) => lines.push(...splitLines(text, count)));
    splitter.push('one\ntw');
    splitter.push('o\r\n\nthree');
    splitter.push('x'.repeat(MAX_LINE_LENGTH * 2 + 5));
    splitter.end();
    expect(lines.slice(0, 3)).toEqual(['one', 'two', '']);
    expect(lines.slice(3).map((l) => l.length)).toEqual([MAX_LINE_LENGTH, MAX_LINE_LENGTH, 10]);
    expect(lines[3]!.startsWith('three')).toBe(true);
  });

  it('passes whole lines on together, cutting a long one among them, one carriage return removed per line', async () => {
    const { LineSplitter, MAX_LINE_LENGTH } = await import('../../src/executor/run-script.ts');
    const texts: Array<[string, number]> = [];
    const splitter = new LineSplitter((text, count) => texts.push([text, count]));
    splitter.push(`a\n${'y'.repeat(MAX_LINE_LENGTH + 3)}\r\nb\r\r\nc`);
    splitter.end();
    expect(texts).toEqual([
      [`a\n${'y'.repeat(MAX_LINE_LENGTH)}\nyyy\nb\r\n`, 4],
      ['c\n', 1],
    ]);
  });

  it('keeps the launcher small when a script prints one huge line', async () => {
    const { outcome, lines } = await run(`head -c 3000000 /dev/zero | tr '\\0' a; echo; echo done`);
    expect(outcome.exitCode).toBe(0);
    expect(lines.every(([, line]) => line.length <= 64 * 1024)).toBe(true);
    expect(lines.map(([, line]) => line.length).reduce((a, b) => a + b, 0)).toBe(3_000_000 + 4);
    expect(lines.at(-1)).toEqual(['stdout', 'done']);
  });
});
