/** The progress display without a terminal: the model built from events, and the lines drawn from it. */
import { describe, expect, it } from 'vitest';
import { Progress, type PipelineSnapshot, type ProgressEvent } from '../../src/cli/progress.ts';
import { fit, formatDuration, paint, renderFrame, renderInputWait, renderSummary, renderTransition, sanitize } from '../../src/cli/render.ts';

const T0 = Date.parse('2026-11-27T10:00:00.000Z');
const at = (ms: number) => new Date(T0 + ms).toISOString();
const ANSI = /\x1b\[/;

function snapshot(): PipelineSnapshot {
  const track = (id: number, name: string) => ({
    id, name, state: 'WAITING' as const, attempt: 1, needsInput: false, startedAt: null, finishedAt: null, exitCode: null, reason: null, blockedBy: null,
  });
  return {
    id: 12,
    name: 'web server check',
    state: 'RUNNING',
    createdAt: at(0),
    finishedAt: null,
    graph: {
      id: 3,
      name: 'web server check',
      vertices: [
        { name: 'port-open', inputs: [{ name: 'port', required: false, default: 4000, secret: false }] },
        { name: 'health', inputs: [] },
        { name: 'report', inputs: [{ name: 'operator', required: true, secret: false }, { name: 'note', required: false, default: '', secret: false }] },
      ],
    },
    tracks: [track(31, 'port-open'), track(32, 'health'), track(33, 'report')],
  };
}

let nextId = 100;
function trackEvent(trackId: number, type: string, trackState: ProgressEvent['trackState'], ms: number, extra: Partial<ProgressEvent> = {}): ProgressEvent {
  return {
    id: ++nextId, type, createdAt: at(ms), pipelineState: null, trackId, trackState, attempt: 1, exitCode: null, reason: null,
    track: { id: trackId, name: '', needsInput: false, blockedBy: null }, ...extra,
  };
}
function pipelineEvent(type: string, pipelineState: ProgressEvent['pipelineState'], ms: number, reason: string | null = null): ProgressEvent {
  return { id: ++nextId, type, createdAt: at(ms), pipelineState, trackId: null, trackState: null, attempt: null, exitCode: null, reason, track: null };
}

/** port-open and health running, report waiting for its operator. */
function running(): Progress {
  const p = new Progress(snapshot());
  p.apply(pipelineEvent('pipeline:started', 'RUNNING', 0));
  p.apply(trackEvent(31, 'track:created', 'PENDING', 0));
  p.apply(trackEvent(32, 'track:created', 'PENDING', 0));
  p.apply(trackEvent(33, 'track:created', 'WAITING', 0, { track: { id: 33, name: 'report', needsInput: true, blockedBy: null } }));
  p.apply(trackEvent(31, 'track:claimed', 'RUNNING', 100));
  p.apply(trackEvent(32, 'track:claimed', 'RUNNING', 200));
  return p;
}

describe('Progress', () => {
  it('follows events, ignores repeats (replays, reconnects) and superseded attempts', () => {
    const p = running();
    const claimed = trackEvent(31, 'track:succeeded', 'SUCCEED', 1_100, { exitCode: 0 });
    expect(p.apply(claimed)).toMatchObject({ kind: 'track', previous: 'RUNNING', track: { state: 'SUCCEED', startedAt: T0 + 100, finishedAt: T0 + 1_100 } });
    expect(p.apply(claimed)).toBeUndefined();
    expect(p.apply({ ...trackEvent(32, 'track:failed', 'FAILED', 1_200), attempt: 0 })).toBeUndefined();
    expect(p.counts()).toMatchObject({ SUCCEED: 1, RUNNING: 1, WAITING: 1 });
  });

  it('says which parameters a track waiting for input lacks: as the server says, else required ones and those without a default', () => {
    const p = running();
    expect(p.missingParams(p.track(33)!)).toEqual(['operator']);
    p.apply(trackEvent(33, 'track:ready', 'PENDING', 300, { track: { id: 33, name: 'report', needsInput: true, blockedBy: { missingParams: ['operator', 'note'] } } }));
    expect(p.missingParams(p.track(33)!)).toEqual(['operator', 'note']);
  });

  it('ends with a terminal pipeline event, and a retry resumes it', () => {
    const p = running();
    p.apply(pipelineEvent('pipeline:failed', 'FAILED', 2_000, 'health failed'));
    expect(p.ended).toBe(true);
    p.apply(pipelineEvent('pipeline:retried', 'RUNNING', 3_000));
    expect(p.ended).toBe(false);
  });
});

describe('renderFrame', () => {
  const options = { now: T0 + 2_500, width: 80, height: 24, color: false };

  it('draws the header, the overall bar, a line per running track with its elapsed time, and who waits for input', () => {
    const lines = renderFrame(running(), options);
    expect(lines[0]).toBe('pipeline 12 "web server check"  RUNNING  2.5s');
    expect(lines[1]).toMatch(/^ ░{30} 0\/3 succeeded · 2 running · 1 waiting$/);
    expect(lines.slice(2)).toEqual([
      '  · report    waits for input: operator (finishInput trackId 33)',
      '  ▶ port-open 2.4s',
      '  ▶ health    2.3s',
    ]);
    expect(lines.join('')).not.toMatch(ANSI);
  });

  it('colours by state only when asked', () => {
    const lines = renderFrame(running(), { ...options, color: true });
    expect(lines.join('\n')).toContain('\x1b[36mRUNNING\x1b[39m');
    expect(lines.map((l) => l.replace(/\x1b\[\d+m/g, ''))).toEqual(renderFrame(running(), options));
  });

  it('shows the failed track and its output tail; the bar shows the parts', () => {
    const p = running();
    p.apply(trackEvent(31, 'track:succeeded', 'SUCCEED', 1_000, { exitCode: 0 }));
    p.apply(trackEvent(32, 'track:failed', 'FAILED', 2_000, { exitCode: 7, reason: 'The script exited with code 7.' }));
    p.apply(trackEvent(33, 'track:cancelled', 'CANCELLED', 2_000, { reason: 'upstream health failed' }));
    p.apply(pipelineEvent('pipeline:failed', 'FAILED', 2_000, 'health failed'));
    p.tails.set(32, ['curl: (7) Failed to connect', 'exit 7']);
    const lines = renderFrame(p, options);
    expect(lines[0]).toBe('pipeline 12 "web server check"  FAILED  2.0s');
    expect(lines[1]).toBe(` ${'█'.repeat(10)}${'█'.repeat(10)}${'█'.repeat(10)} 1/3 succeeded · 1 failed · 1 cancelled`);
    expect(lines.slice(2)).toEqual([
      '  ✗ health    FAILED after 1.8s: The script exited with code 7.',
      '── health (track 32) failed; the last 2 line(s) of its output:',
      '  │ curl: (7) Failed to connect',
      '  │ exit 7',
    ]);
  });

  it('never grows wider than the terminal or taller than it', () => {
    const snap = snapshot();
    snap.tracks = Array.from({ length: 50 }, (_, i) => ({ ...snap.tracks[0]!, id: 1_000 + i, name: `step-${i}-with-a-rather-long-name` }));
    const p = new Progress(snap);
    for (const track of snap.tracks) p.apply(trackEvent(track.id, 'track:claimed', 'RUNNING', 10));
    const lines = renderFrame(p, { ...options, width: 40, height: 10 });
    expect(lines).toHaveLength(9);
    expect(lines.at(-1)).toBe('  … and 44 more');
    for (const line of lines) expect([...line].length).toBeLessThanOrEqual(40);
  });

  it('keeps the end of a long tail in view, under its heading', () => {
    const p = running();
    p.apply(trackEvent(32, 'track:failed', 'FAILED', 2_000, { exitCode: 1 }));
    p.tails.set(32, Array.from({ length: 20 }, (_, i) => `line ${i + 1}`));
    const lines = renderFrame(p, { ...options, height: 12 });
    expect(lines).toHaveLength(11);
    expect(lines.some((l) => l.startsWith('── health (track 32) failed'))).toBe(true);
    expect(lines.at(-1)).toBe('  │ line 20');
    expect(lines).not.toContain('  │ line 1');
  });
});

describe('plain lines (not a terminal)', () => {
  it('one line per transition, with the exit and the reason', () => {
    const p = running();
    const t = p.apply(trackEvent(32, 'track:failed', 'FAILED', 1_400, { exitCode: 7, reason: 'The script exited with code 7.' }))!;
    expect(renderTransition(p, t, false)).toMatch(/^\d\d:\d\d:\d\d {2}health {4}FAILED after 1\.2s: The script exited with code 7\.$/);
    const input = p.apply(trackEvent(33, 'track:ready', 'PENDING', 1_500, { track: { id: 33, name: 'report', needsInput: true, blockedBy: null } }))!;
    expect(renderTransition(p, input, false)).toMatch(/report {4}PENDING waits for input: operator \(finishInput trackId 33\)$/);
    const end = p.apply(pipelineEvent('pipeline:failed', 'FAILED', 1_500, 'health failed'))!;
    expect(renderTransition(p, end, false)).toMatch(/pipeline 12 FAILED: health failed$/);
  });

  it('explains how to supply missing input', () => {
    const p = running();
    const lines = renderInputWait(p, [p.track(33)!], false);
    expect(lines[0]).toBe('The run waits for finishInput on 1 track(s):');
    expect(lines[1]).toBe('  report (track 33) needs operator: mutation { finishInput(trackId: 33, params: {operator: "…"}) { __typename } }');
  });

  it('sums up how it ended, with the failing output and how to resume', () => {
    const p = running();
    p.apply(trackEvent(32, 'track:failed', 'FAILED', 1_200, { exitCode: 7 }));
    p.apply(pipelineEvent('pipeline:failed', 'FAILED', 1_300, 'health failed'));
    p.tails.set(32, ['\x1b[31mred\x1b[0m error\ttab']);
    expect(renderSummary(p, { now: T0 + 5_000, color: false })).toEqual([
      'pipeline 12 FAILED after 1.3s: 0/3 succeeded, 1 failed, 1 still running, 1 not started',
      '✗ health (track 32) FAILED: exit 7',
      '── health (track 32) failed; the last 1 line(s) of its output:',
      '  │ red error  tab',
      'Resume it with: pipectl retry 12 --watch',
    ]);
  });
});

describe('helpers', () => {
  it('formats durations', () => {
    expect([450, 12_340, 185_000, 3_725_000].map(formatDuration)).toEqual(['0.5s', '12.3s', '3m05s', '1h02m']);
  });
  it('cuts on visible characters and paints only when asked', () => {
    const segments = fit([{ text: 'abc', style: 'red' }, { text: 'défg' }], 5);
    expect(paint(segments, false)).toBe('abcd…');
    expect(paint(segments, true)).toBe('\x1b[31mabc\x1b[39md…');
  });
  it('strips control sequences a script printed', () => {
    expect(sanitize('\x1b[2J\x1b[Hok\x07\r')).toBe('ok');
  });
});
