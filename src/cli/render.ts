/**
 * The progress display, as pure functions from state to lines: the live frame redrawn on
 * a terminal, the one-line-per-transition log for CI, and the closing summary. Colours
 * are ANSI escapes added only when asked (a TTY without NO_COLOR); widths are measured
 * on the plain text, so a line never wraps and an in-place redraw stays aligned.
 */
import type { PipelineState, Progress, TrackState, TrackView, Transition } from './progress.ts';

export type Style = 'bold' | 'dim' | 'red' | 'green' | 'yellow' | 'blue' | 'magenta' | 'cyan' | 'gray';

const ANSI: Record<Style, [number, number]> = {
  bold: [1, 22],
  dim: [2, 22],
  red: [31, 39],
  green: [32, 39],
  yellow: [33, 39],
  blue: [34, 39],
  magenta: [35, 39],
  cyan: [36, 39],
  gray: [90, 39],
};

/** A piece of a line with its style. */
export interface Segment {
  text: string;
  style?: Style | undefined;
}

const seg = (text: string, style?: Style): Segment => ({ text, style });

/** Cuts segments to `width` visible characters, ending with "…" when cut. */
export function fit(segments: Segment[], width: number): Segment[] {
  const total = segments.reduce((n, s) => n + [...s.text].length, 0);
  if (total <= width) return segments;
  const out: Segment[] = [];
  let left = Math.max(width - 1, 0);
  for (const s of segments) {
    if (left <= 0) break;
    const chars = [...s.text];
    out.push({ text: chars.slice(0, left).join(''), style: s.style });
    left -= Math.min(chars.length, left);
  }
  out.push(seg('…'));
  return out;
}

/** Joins segments into a string, with ANSI colours if `color`. */
export function paint(segments: Segment[], color: boolean): string {
  return segments
    .map((s) => {
      if (!color || !s.style || s.text === '') return s.text;
      const [on, off] = ANSI[s.style];
      return `\x1b[${on}m${s.text}\x1b[${off}m`;
    })
    .join('');
}

/** Removes ANSI escapes and other control characters a script may print (they would break the frame). */
export function sanitize(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, '').replace(/\x1b\][^\x07\x1b]*(\x07|\x1b\\)/g, '').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '').replace(/\t/g, '  ');
}

export const STATE_STYLE: Record<TrackState | PipelineState, Style> = {
  WAITING: 'gray',
  QUEUED: 'gray',
  PENDING: 'blue',
  RUNNING: 'cyan',
  SUCCEED: 'green',
  FINISH: 'green',
  FAILED: 'red',
  CANCELLED: 'yellow',
  SKIPPED: 'dim',
};

const SYMBOL: Record<TrackState, string> = {
  WAITING: '·',
  PENDING: '○',
  RUNNING: '▶',
  SUCCEED: '✓',
  FAILED: '✗',
  CANCELLED: '⊘',
  SKIPPED: '↷',
};

/** 0.4s, 12.3s, 3m05s, 1h02m. */
export function formatDuration(ms: number): string {
  const s = Math.max(ms, 0) / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** HH:MM:SS in local time. */
export function clock(at: number): string {
  const d = new Date(at);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

export interface FrameOptions {
  /** Epoch ms, for elapsed times. */
  now: number;
  /** Terminal columns. */
  width: number;
  /** Terminal rows: the frame never grows taller, so the redraw never scrolls. */
  height: number;
  color: boolean;
}

function nameWidth(progress: Progress): number {
  return Math.min(Math.max(...progress.tracks.map((t) => [...t.name].length), 4), 24);
}

function pad(text: string, width: number): string {
  const length = [...text].length;
  return length >= width ? text : text + ' '.repeat(width - length);
}

/** Why a track failed or was cancelled: the server's reason, else the exit code. */
function failure(track: TrackView): string {
  if (track.reason) return sanitize(track.reason);
  return track.state === 'FAILED' && track.exitCode !== null ? `exit ${track.exitCode}` : '';
}

/** The header: which pipeline, its state and how long it has run. */
function header(progress: Progress, now: number): Segment[] {
  const elapsed = (progress.finishedAt ?? now) - progress.createdAt;
  const named = progress.name === progress.graphName ? `"${progress.name}"` : `"${progress.name}" (graph "${progress.graphName}")`;
  return [
    seg(`pipeline ${progress.id} `, 'bold'),
    seg(`${named}  `),
    seg(progress.state, STATE_STYLE[progress.state]),
    seg(`  ${formatDuration(elapsed)}`, 'dim'),
  ];
}

/** The overall bar: succeeded, failed and cancelled tracks as coloured parts of the whole. */
export function bar(progress: Progress, width = 30): Segment[] {
  const counts = progress.counts();
  const total = progress.tracks.length || 1;
  const cells = (n: number) => Math.round((n / total) * width);
  const ok = cells(counts.SUCCEED);
  const failed = Math.min(cells(counts.FAILED) || (counts.FAILED > 0 ? 1 : 0), width - ok);
  const cancelled = Math.min(cells(counts.CANCELLED) || (counts.CANCELLED > 0 ? 1 : 0), width - ok - failed);
  const rest = width - ok - failed - cancelled;
  return [seg('█'.repeat(ok), 'green'), seg('█'.repeat(failed), 'red'), seg('█'.repeat(cancelled), 'yellow'), seg('░'.repeat(rest), 'gray')];
}

function countsLine(progress: Progress): Segment[] {
  const counts = progress.counts();
  const parts: Segment[] = [seg(` ${counts.SUCCEED}/${progress.tracks.length} succeeded`)];
  const more: Array<[number, string, Style]> = [
    [counts.RUNNING, 'running', 'cyan'],
    [counts.PENDING, 'pending', 'blue'],
    [counts.WAITING, 'waiting', 'gray'],
    [counts.FAILED, 'failed', 'red'],
    [counts.CANCELLED, 'cancelled', 'yellow'],
    [counts.SKIPPED, 'skipped', 'dim'],
  ];
  for (const [n, word, style] of more) if (n > 0) parts.push(seg(' · '), seg(`${n} ${word}`, style));
  return parts;
}

function inputHint(progress: Progress, track: TrackView): string {
  const params = progress.missingParams(track);
  return `waits for input${params.length ? `: ${params.join(', ')}` : ''} (finishInput trackId ${track.id})`;
}

function trackLine(progress: Progress, track: TrackView, now: number, width: number): Segment[] {
  const parts: Segment[] = [seg(`  ${SYMBOL[track.state]} `, STATE_STYLE[track.state]), seg(pad(track.name, width), 'bold'), seg(' ')];
  if (track.state === 'RUNNING') {
    parts.push(seg(formatDuration(now - (track.startedAt ?? now))));
  } else if (track.needsInput && (track.state === 'PENDING' || track.state === 'WAITING')) {
    parts.push(seg(inputHint(progress, track), 'magenta'));
  } else {
    parts.push(seg(track.state, STATE_STYLE[track.state]));
    if (track.startedAt !== null && track.finishedAt !== null) parts.push(seg(` after ${formatDuration(track.finishedAt - track.startedAt)}`, 'dim'));
    const why = failure(track);
    if (why) parts.push(seg(`: ${why}`));
  }
  if (track.attempt > 1) parts.push(seg(`  attempt ${track.attempt}`, 'dim'));
  return parts;
}

/** The failed tracks' output tails, each under a heading. */
function tails(progress: Progress): Segment[][] {
  const lines: Segment[][] = [];
  for (const track of progress.tracks) {
    const tail = progress.tails.get(track.id);
    if (track.state !== 'FAILED' || !tail) continue;
    lines.push([seg(`── ${track.name} (track ${track.id}) failed`, 'red'), seg(tail.length ? `; the last ${tail.length} line(s) of its output:` : '; it printed nothing.', 'dim')]);
    for (const line of tail) lines.push([seg('  │ ', 'red'), seg(sanitize(line))]);
  }
  return lines;
}

/**
 * The live frame: header, overall bar, a line per running track (and per track that waits
 * for input or failed), then the failed tracks' output tails. At most `height - 1` lines.
 */
export function renderFrame(progress: Progress, options: FrameOptions): string[] {
  const width = Math.max(options.width, 20);
  const names = nameWidth(progress);
  const top: Segment[][] = [header(progress, options.now), [seg(' '), ...bar(progress, Math.min(30, Math.max(width - 40, 10))), ...countsLine(progress)]];
  const running = progress.tracks.filter((t) => t.state === 'RUNNING');
  const waiting = progress.tracks.filter((t) => t.needsInput && (t.state === 'PENDING' || t.state === 'WAITING'));
  const failed = progress.tracks.filter((t) => t.state === 'FAILED');
  const tailLines = tails(progress);
  const candidates = [...failed, ...waiting, ...running];
  const budget = Math.max(options.height - 1 - top.length, 3);
  // The failure's output matters most, but the track lines keep at least half the room.
  const tailRoom = Math.min(tailLines.length, Math.max(budget - candidates.length, Math.floor(budget / 2)));
  const listRoom = budget - tailRoom;
  const listed: Segment[][] = [];
  for (const [i, track] of candidates.entries()) {
    if (i === listRoom - 1 && candidates.length > listRoom) {
      listed.push([seg(`  … and ${candidates.length - i} more`, 'dim')]);
      break;
    }
    listed.push(trackLine(progress, track, options.now, names));
  }
  // Cut from the top of the tail, keeping its heading: the last lines say why it failed.
  const shownTail = tailLines.length <= tailRoom ? tailLines : tailRoom < 2 ? tailLines.slice(0, tailRoom) : [tailLines[0]!, ...tailLines.slice(tailLines.length - tailRoom + 1)];
  return [...top, ...listed, ...shownTail].map((line) => paint(fit(line, width), options.color));
}

/** One plain line per transition, e.g. "12:00:02  C          FAILED exit 3 after 0.4s". */
export function renderTransition(progress: Progress, transition: Transition, color: boolean): string {
  const width = nameWidth(progress);
  if (transition.kind === 'pipeline') {
    const parts = [seg(`${clock(transition.at)}  `, 'dim'), seg(`pipeline ${progress.id} `, 'bold'), seg(transition.state, STATE_STYLE[transition.state])];
    if (transition.reason) parts.push(seg(`: ${sanitize(transition.reason)}`));
    return paint(parts, color);
  }
  const track = transition.track;
  const parts: Segment[] = [seg(`${clock(transition.at)}  `, 'dim'), seg(pad(track.name, width), 'bold'), seg(' '), seg(track.state, STATE_STYLE[track.state])];
  if (track.startedAt !== null && track.finishedAt !== null && track.state !== 'CANCELLED') parts.push(seg(` after ${formatDuration(track.finishedAt - track.startedAt)}`));
  const why = failure(track);
  if (why) parts.push(seg(`: ${why}`));
  if (track.attempt > 1 && (track.state === 'RUNNING' || track.state === 'PENDING' || track.state === 'WAITING')) parts.push(seg(` (attempt ${track.attempt})`, 'dim'));
  if (track.needsInput && (track.state === 'PENDING' || track.state === 'WAITING')) parts.push(seg(` ${inputHint(progress, track)}`, 'magenta'));
  return paint(parts, color);
}

/** Said once when tracks wait for finishInput and nobody is there to be asked. */
export function renderInputWait(progress: Progress, waiting: TrackView[], color: boolean): string[] {
  if (waiting.length === 0) return [];
  const lines = [paint([seg(`The run waits for finishInput on ${waiting.length} track(s):`, 'magenta')], color)];
  for (const track of waiting) {
    const params = progress.missingParams(track);
    const example = `{${params.map((p) => `${p}: "…"`).join(', ')}}`;
    lines.push(
      paint([seg(`  ${track.name} (track ${track.id}) needs ${params.join(', ') || 'its parameters'}: `), seg(`mutation { finishInput(trackId: ${track.id}, params: ${example}) { __typename } }`, 'dim')], color),
    );
  }
  lines.push(paint([seg('  (or start the graph again with --input vertex.param=value)', 'dim')], color));
  return lines;
}

/** The closing summary: how it ended, then each failed track and its output tail. */
export function renderSummary(progress: Progress, options: { now: number; color: boolean }): string[] {
  const counts = progress.counts();
  const elapsed = (progress.finishedAt ?? options.now) - progress.createdAt;
  const parts: Segment[] = [
    seg(`pipeline ${progress.id} `, 'bold'),
    seg(progress.state, STATE_STYLE[progress.state]),
    seg(` after ${formatDuration(elapsed)}: ${counts.SUCCEED}/${progress.tracks.length} succeeded`),
  ];
  if (counts.FAILED) parts.push(seg(`, ${counts.FAILED} failed`, 'red'));
  if (counts.CANCELLED) parts.push(seg(`, ${counts.CANCELLED} cancelled`, 'yellow'));
  // After a failure, tracks already running finish on their own; say so.
  if (counts.RUNNING) parts.push(seg(`, ${counts.RUNNING} still running`, 'cyan'));
  if (counts.PENDING + counts.WAITING) parts.push(seg(`, ${counts.PENDING + counts.WAITING} not started`, 'gray'));
  const lines = [paint(parts, options.color)];
  for (const track of progress.tracks.filter((t) => t.state === 'FAILED')) {
    const why = failure(track);
    lines.push(paint([seg(`✗ ${track.name} (track ${track.id}) FAILED`, 'red'), seg(why ? `: ${why}` : '')], options.color));
  }
  for (const line of tails(progress)) lines.push(paint(line, options.color));
  if (progress.state === 'FAILED' || progress.state === 'CANCELLED') {
    lines.push(paint([seg(`Resume it with: pipectl retry ${progress.id} --watch`, 'dim')], options.color));
  }
  return lines;
}
