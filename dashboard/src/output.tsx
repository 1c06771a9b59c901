/**
 * A track's output: live lines in a virtual list with line numbers, follow mode, search,
 * download, and the track's attempts.
 *
 * Where the lines come from (schema.graphql):
 * - The current attempt, running or ended, from `trackOutput(trackId, offset: 0)`: its docs
 *   give it as the way to read "first the stored lines ... then live ones, with no gap and no
 *   duplicate", and for a track that succeeded already "its stored lines from offset, then
 *   complete". One subscription then serves both, and there is no moment between reading
 *   stored pages and subscribing in which a line could fall. The cursor (the byte after the
 *   last line received) is what live.ts sends again on a reconnect.
 * - An earlier attempt from `Track.output(attempt:)` pages, as Track.attempts' docs say: the
 *   subscription only ever follows the current attempt.
 * - The download from `Track.output` pages too (their `text`, exactly what was stored).
 *
 * The list draws only the rows in view. Rows have one fixed height (no wrapping; long lines
 * scroll sideways), so a row's place is its index times that height: that is all the
 * virtualizer needs, in a few lines here, where a library's worth is measuring rows of
 * varying heights (which Airflow's log view found broke scrolling: apache/airflow#51788).
 */
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { request } from './api';
import { useFrameBatcher } from './frame';
import { graphql } from './generated';
import type { TrackOutputTrackQuery, TrackState } from './generated/graphql';
import { subscribe } from './live';
import { DEFAULT_LIMITS, offsetAfter, OutputBuffer, type IncomingLine, type Match, type OutputLimits } from './output-buffer';

const TrackOutputTrack = graphql(`
  query TrackOutputTrack($id: Int!) {
    track(id: $id) {
      id
      name
      state
      attempt
      reason
      attempts {
        attempt
        state
        exitCode
      }
      pipeline {
        id
        name
        cursor
      }
    }
  }
`);

const TrackOutputLines = graphql(`
  subscription TrackOutputLines($trackId: Int!, $offset: Int) {
    trackOutput(trackId: $trackId, offset: $offset) {
      attempt
      line
      offset
      stream
    }
  }
`);

const TrackOutputEvents = graphql(`
  subscription TrackOutputEvents($pipelineId: Int!, $after: Int) {
    trackUpdated(pipelineId: $pipelineId, after: $after) {
      id
      trackId
    }
  }
`);

const TrackOutputAttemptPage = graphql(`
  query TrackOutputAttemptPage($id: Int!, $attempt: Int, $offset: Int) {
    track(id: $id) {
      output(attempt: $attempt, offset: $offset) {
        lines {
          line
          offset
          stream
        }
        nextOffset
        size
      }
    }
  }
`);

const TrackOutputText = graphql(`
  query TrackOutputText($id: Int!, $attempt: Int, $offset: Int) {
    track(id: $id) {
      output(attempt: $attempt, offset: $offset) {
        text
        nextOffset
        size
      }
    }
  }
`);

export type TrackInfo = NonNullable<TrackOutputTrackQuery['track']>;

/** Row height in pixels; the stylesheet's `.output-line` has the same. */
const ROW = 18;
/** Rows drawn beyond each edge of the view, so a quick scroll does not show blanks. */
const OVERSCAN = 20;
/** Longer lines are cut in the view (the download has them whole): one row must stay cheap to draw. */
const MAX_SHOWN_CHARS = 10_000;

const problemOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** A download of `text` as `name`, through a Blob: the page itself makes the file. */
function saveText(text: string, name: string) {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/plain;charset=utf-8' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Reads every page of an attempt's output, handing each page's result to `take`. */
async function readPages<Page extends { nextOffset: number; size: number }>(
  read: (offset: number) => Promise<Page | undefined>,
  take: (page: Page) => void,
  cancelled: () => boolean,
) {
  for (let offset = 0; ; ) {
    const page = await read(offset);
    if (!page || cancelled()) return;
    take(page);
    // A running attempt's size grows: stop at what was printed when the page was read.
    if (page.nextOffset <= offset || page.nextOffset >= page.size) return;
    offset = page.nextOffset;
  }
}

export interface TrackOutputProps {
  trackId: number;
  /** Called with the track whenever it is read again (its state and attempts changed). */
  onTrack?: (track: TrackInfo) => void;
  /** How much output to keep in memory (default: 100,000 lines, 32 M characters). */
  limits?: OutputLimits;
}


/** How an ended track's state reads after "the track". */
const ENDED: Partial<Record<TrackState, string>> = { SUCCEED: 'succeeded', FAILED: 'failed', CANCELLED: 'was cancelled', SKIPPED: 'was skipped' };

/** A track's output, live from trackOutput: a virtual list with line numbers, follow mode, search, download and its attempts. */
export function TrackOutput({ trackId, onTrack, limits = DEFAULT_LIMITS }: TrackOutputProps) {
  const [track, setTrack] = useState<TrackInfo>();
  const [problem, setProblem] = useState<string>();
  /** The attempt chosen, or undefined: the current one, live. */
  const [chosen, setChosen] = useState<number>();
  const [, setVersion] = useState(0);
  const redraw = () => setVersion((v) => v + 1);
  const [query, setQuery] = useState('');
  const [matchIndex, setMatchIndex] = useState(0);

  const buffer = useRef(new OutputBuffer(limits));
  /** Bumped with every new buffer: the list starts afresh (at the top, following). */
  const [generation, setGeneration] = useState(0);
  /** The attempt whose lines the buffer holds. */
  const shown = useRef(0);
  /** Bumped to subscribe again from offset 0 (a new attempt noticed by the track's events). */
  const [restart, setRestart] = useState(0);
  const list = useRef<ListControl>({});

  const current = track?.attempt ?? 0;
  const live = chosen === undefined || chosen === current;
  const liveRef = useRef(live);
  liveRef.current = live;
  const viewing = live ? Math.max(current, shown.current) : chosen!;

  const onTrackRef = useRef(onTrack);
  onTrackRef.current = onTrack;
  const reload = () =>
    request(TrackOutputTrack, { id: trackId }).then(
      (data) => {
        if (!data.track) return setProblem(`No track with id ${trackId} exists (its run may have been deleted).`);
        setTrack(data.track);
        onTrackRef.current?.(data.track);
        if (liveRef.current) {
          // The subscription serves the current attempt: until its first line, that is this one.
          if (shown.current === 0) shown.current = data.track.attempt;
          // A new attempt the live lines have not shown yet: a re-run of a succeeded track
          // comes after its stream completed, so subscribe again (from its start).
          else if (data.track.attempt > shown.current) setRestart((r) => r + 1);
        }
      },
      (error: unknown) => setProblem(problemOf(error)),
    );
  useEffect(() => {
    void reload();
  }, [trackId]);

  // The track's events (state, retries) over the shared connection: each one for this track
  // reads the track again.
  const pipelineId = track?.pipeline.id;
  const eventCursor = useRef(0);
  useEffect(() => {
    if (pipelineId === undefined) return;
    eventCursor.current = track!.pipeline.cursor;
    let queued: number | undefined;
    const unsubscribe = subscribe(TrackOutputEvents, () => ({ pipelineId, after: eventCursor.current }), {
      next: ({ trackUpdated: event }) => {
        eventCursor.current = Math.max(eventCursor.current, event.id);
        // One read for a burst of events (claimed, then succeeded, in the same moment).
        if (event.trackId === trackId) queued ??= requestAnimationFrame(() => {
          queued = undefined;
          void reload();
        });
      },
      error: setProblem,
    });
    return () => {
      if (queued !== undefined) cancelAnimationFrame(queued);
      unsubscribe();
    };
  }, [pipelineId, trackId]);

  const queryRef = useRef(query);
  queryRef.current = query;
  const reset = (attempt: number) => {
    buffer.current = new OutputBuffer(limits);
    buffer.current.setQuery(queryRef.current);
    shown.current = attempt;
    setMatchIndex(0);
    setGeneration((g) => g + 1);
  };

  const take = (lines: readonly IncomingLine[]) => {
    const dropped = buffer.current.append(lines);
    list.current.appended?.(dropped);
    redraw();
  };
  // Live lines are applied once per frame: 1,000 lines a second cost one draw per frame.
  const batcher = useFrameBatcher<IncomingLine>(take);

  // The current attempt, live, from its first line.
  useEffect(() => {
    if (!live) return;
    batcher.cancel();
    reset(current);
    /** The byte after the last line received: live.ts reads it at every (re)subscribe. */
    let offset = 0;
    let stale = false;
    const unsubscribe = subscribe(TrackOutputLines, () => ({ trackId, offset }), {
      next: ({ trackOutput: line }) => {
        if (stale || line.attempt < shown.current) return; // a superseded attempt's last lines
        if (line.attempt > shown.current) {
          // A retry: its lines (offsets from 0 again) replace the last attempt's.
          const resumedInside = shown.current > 0 && line.offset !== null && line.offset > 0;
          batcher.cancel();
          reset(line.attempt);
          offset = 0;
          void reload();
          if (resumedInside) {
            // Resumed across a retry: the service replayed the new attempt from the old
            // attempt's cursor. Read the new one from its start instead.
            stale = true;
            setRestart((r) => r + 1);
            return;
          }
        }
        if (line.offset !== null) {
          if (line.offset < offset) return; // had it already
          offset = offsetAfter(line.line, line.offset);
        }
        batcher.push(line);
      },
      error: setProblem,
    });
    return () => {
      stale = true;
      unsubscribe();
    };
  }, [live, trackId, restart]);

  // An earlier attempt, read page by page.
  useEffect(() => {
    if (live) return;
    batcher.cancel();
    reset(viewing);
    let cancelled = false;
    readPages(
      (offset) => request(TrackOutputAttemptPage, { id: trackId, attempt: viewing, offset }).then((data) => data.track?.output),
      (page) => take(page.lines),
      () => cancelled,
    ).catch((error: unknown) => setProblem(problemOf(error)));
    return () => {
      cancelled = true;
    };
  }, [live, viewing, trackId]);

  // Search: matches are found as lines arrive (OutputBuffer), the view moves to the chosen one.
  useEffect(() => {
    buffer.current.setQuery(query);
    setMatchIndex(0);
    if (query) list.current.reveal?.(buffer.current.matches[0]);
    redraw();
  }, [query]);
  const b = buffer.current;
  const matches = b.matches;
  const at = Math.min(matchIndex, matches.length - 1);
  const step = (by: number) => {
    if (matches.length === 0) return;
    const next = (at + by + matches.length) % matches.length;
    setMatchIndex(next);
    list.current.reveal?.(matches[next]);
  };

  const [downloading, setDownloading] = useState(false);
  const download = async () => {
    setDownloading(true);
    setProblem(undefined);
    try {
      const parts: string[] = [];
      await readPages(
        (offset) => request(TrackOutputText, { id: trackId, attempt: viewing, offset }).then((data) => data.track?.output),
        (page) => parts.push(page.text),
        () => false,
      );
      saveText(parts.join(''), `${track?.name ?? 'track'}-${trackId}-attempt-${viewing}.txt`);
    } catch (error) {
      setProblem(`The download failed: ${problemOf(error)} Try again.`);
    } finally {
      setDownloading(false);
    }
  };

  const id = `output-${trackId}`;
  const ended = track !== undefined && live ? ENDED[track.state] : undefined;
  return (
    <section class="track-output" aria-label={`Output of ${track?.name ?? `track ${trackId}`}`}>
      <div class="output-tools">
        {track && track.attempts.length > 0 && (
          <label>
            Attempt{' '}
            <select value={String(viewing)} onChange={(e) => setChosen(Number(e.currentTarget.value) === current ? undefined : Number(e.currentTarget.value))}>
              {track.attempts.map((a) => (
                <option key={a.attempt} value={String(a.attempt)}>
                  {a.attempt} {a.attempt === current ? `(current, ${a.state})` : `(${a.state}${a.exitCode != null ? `, exit ${a.exitCode}` : ''})`}
                </option>
              ))}
            </select>
          </label>
        )}
        <form
          role="search"
          class="output-search"
          onSubmit={(e) => {
            e.preventDefault();
            step(1);
          }}
        >
          <label for={`${id}-search`}>Search the output</label>
          <input
            id={`${id}-search`}
            type="search"
            value={query}
            onInput={(e) => setQuery(e.currentTarget.value)}
            onKeyDown={(e) => {
              if (e.key === 'Enter' && e.shiftKey) {
                e.preventDefault();
                step(-1);
              }
            }}
            aria-describedby={`${id}-count`}
          />
          <button type="button" onClick={() => step(-1)} disabled={matches.length === 0}>
            Previous match
          </button>
          <button type="submit" disabled={matches.length === 0}>
            Next match
          </button>
          <span id={`${id}-count`} class="match-count" role="status">
            {query ? (matches.length === 0 ? 'No matches' : `${at + 1} of ${matches.length} matches`) : ''}
          </span>
        </form>
        <button type="button" onClick={() => void download()} disabled={downloading || viewing === 0}>
          {downloading ? 'Preparing the download…' : 'Download'}
        </button>
      </div>
      {problem && (
        <p role="alert" class="problem">
          {problem}
        </p>
      )}
      {b.dropped > 0 && (
        <p class="output-dropped">
          {b.dropped.toLocaleString('en')} earlier lines are not kept here (this view keeps the last {limits.maxLines.toLocaleString('en')}): download the whole output to read them.
        </p>
      )}
      <OutputList key={generation} control={list.current} buffer={b} label={`Lines of attempt ${viewing}`} current={matches[at]} follows={live} />
      <p class="output-summary">
        {b.lineCount.toLocaleString('en')} lines{ended ? `; the track ${ended}` : ''}
        {!live && ' (an earlier attempt)'}
      </p>
    </section>
  );
}

interface ListControl {
  /** Rows were appended and `dropped` removed from the top: follow, or keep the view where it was. */
  appended?(dropped: number): void;
  /** Scrolls to a match (and stops following). */
  reveal?(match: Match | undefined): void;
}

function OutputList({ control, buffer, label, current, follows }: { control: ListControl; buffer: OutputBuffer; label: string; current: Match | undefined; follows: boolean }) {
  const box = useRef<HTMLDivElement>(null);
  const [top, setTop] = useState(0);
  const [height, setHeight] = useState(400);
  const [follow, setFollow] = useState(follows);
  const followRef = useRef(follow);
  followRef.current = follow;
  /** Where the view must move at the next layout (a match revealed, rows dropped above it). */
  const pending = useRef<number | undefined>(undefined);

  useEffect(() => {
    const el = box.current!;
    setHeight(el.clientHeight);
    const observer = new ResizeObserver(() => setHeight(el.clientHeight));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);

  control.appended = (dropped) => {
    if (!followRef.current && dropped > 0 && box.current) pending.current = Math.max(0, box.current.scrollTop - dropped * ROW);
  };
  control.reveal = (match) => {
    if (!match || !box.current) return;
    setFollow(false);
    pending.current = Math.max(0, (match.seq - buffer.firstSeq) * ROW - box.current.clientHeight / 2);
    setTop(pending.current);
  };

  const total = buffer.length * ROW;
  // Following, the view is the bottom: drawn there at once, not one frame late.
  const viewTop = follow ? Math.max(0, total - height) : top;
  useLayoutEffect(() => {
    const el = box.current!;
    const want = follow ? el.scrollHeight - el.clientHeight : pending.current;
    pending.current = undefined;
    if (want !== undefined && Math.abs(el.scrollTop - want) >= 1) el.scrollTop = want;
    if (!follow && Math.abs(top - el.scrollTop) >= 1) setTop(el.scrollTop);
    // The chosen match may lie beyond the right edge of a long line.
    el.querySelector('mark.current')?.scrollIntoView({ block: 'nearest', inline: 'nearest' });
  });

  const onScroll = () => {
    const el = box.current!;
    const atBottom = el.scrollTop + el.clientHeight >= el.scrollHeight - ROW / 2;
    if (follow && !atBottom && el.scrollTop < viewTop - 1) setFollow(false);
    else if (!follow && atBottom && follows) setFollow(true);
    setTop(el.scrollTop);
  };

  const first = Math.max(0, Math.floor(viewTop / ROW) - OVERSCAN);
  const last = Math.min(buffer.length, Math.ceil((viewTop + height) / ROW) + OVERSCAN);
  const rows = [];
  // Keyed by their place in the window, not by line: a scroll then rewrites the text of the
  // rows there are, instead of removing every row that left and creating one for each that came.
  for (let row = first; row < last; row++) rows.push(<Row key={row - first} buffer={buffer} row={row} current={current} />);

  return (
    <div class="output-view">
      <div ref={box} class="output-lines" role="region" aria-label={label} tabIndex={0} onScroll={onScroll} data-testid="output-lines">
        <div class="output-spacer" style={{ height: `${total}px` }}>
          <div class="output-window" style={{ transform: `translateY(${first * ROW}px)` }}>
            {rows}
          </div>
        </div>
        {buffer.length === 0 && <p class="output-empty">No output yet.</p>}
      </div>
      {follows && (
        <button type="button" class="output-follow" aria-pressed={follow} onClick={() => setFollow(!follow)}>
          {follow ? 'Following new lines' : 'Follow new lines'}
        </button>
      )}
    </div>
  );
}

function Row({ buffer, row, current }: { buffer: OutputBuffer; row: number; current: Match | undefined }) {
  const full = buffer.text(row);
  const text = full.length > MAX_SHOWN_CHARS ? full.slice(0, MAX_SHOWN_CHARS) : full;
  const notice = buffer.isNotice(row);
  const stderr = buffer.isStderr(row) && !notice;
  const seq = buffer.firstSeq + row;
  const n = buffer.number(row);
  const parts = [];
  let at = 0;
  for (const start of buffer.matchesIn(text)) {
    parts.push(text.slice(at, start));
    const chosen = current !== undefined && current.seq === seq && current.start === start;
    parts.push(
      <mark key={start} class={chosen ? 'current' : undefined}>
        {text.slice(start, start + buffer.queryLength)}
      </mark>,
    );
    at = start + buffer.queryLength;
  }
  parts.push(text.slice(at));
  return (
    <div class={`output-line${stderr ? ' stderr' : ''}${notice ? ' notice' : ''}`} style={{ height: `${ROW}px` }} data-n={n || undefined}>
      <span class="n">{n || ''}</span>
      {stderr && <span class="visually-hidden">stderr: </span>}
      {notice && <span class="visually-hidden">notice from the service: </span>}
      <span class="text">
        {parts}
        {text.length < full.length && <span class="cut"> … {(full.length - text.length).toLocaleString('en')} more characters: download the output to read them</span>}
      </span>
    </div>
  );
}
