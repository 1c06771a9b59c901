/**
 * The run's timeline: one row per track, one bar per attempt from its start to its end;
 * a running attempt's bar grows with the clock (ticked once a second while any runs, so an
 * idle page does no work).
 */
import { useEffect, useState } from 'preact/hooks';
import type { RunView } from './run-state';

const TICK_MS = 1_000;

function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

export function Timeline({ view }: { view: RunView }) {
  const running = [...view.tracks.values()].some((track) => track.state === 'RUNNING');
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    setNow(Date.now());
    if (!running) return;
    const timer = setInterval(() => setNow(Date.now()), TICK_MS);
    return () => clearInterval(timer);
  }, [running, view]);

  const start = Date.parse(view.createdAt);
  let end = view.finishedAt ? Date.parse(view.finishedAt) : now;
  for (const rows of view.attempts.values()) {
    for (const row of rows) if (row.finishedAt) end = Math.max(end, Date.parse(row.finishedAt));
  }
  const span = Math.max(end - start, 1);
  const percent = (at: number) => `${(Math.min(Math.max(at - start, 0), span) / span) * 100}%`;

  return (
    <ol class="timeline" aria-label="Timeline of the tracks">
      {[...view.tracks.values()].map((track) => {
        const bars = (view.attempts.get(track.id) ?? []).filter((row) => row.startedAt);
        return (
          <li key={track.id} data-testid={`timeline-${track.name}`}>
            <span class="timeline-name">{track.name}</span>
            <span class="timeline-lane">
              {bars.map((row) => {
                const from = Date.parse(row.startedAt!);
                const to = row.finishedAt ? Date.parse(row.finishedAt) : now;
                const label = `${track.name}, attempt ${row.attempt}: ${row.state}, ${row.finishedAt ? seconds(to - from) : `running for ${seconds(now - from)}`}`;
                return (
                  <span
                    key={row.attempt}
                    data-testid={`bar-${track.name}-${row.attempt}`}
                    class={`bar state-${row.state}`}
                    style={{ left: percent(from), width: `max(2px, calc(${percent(to)} - ${percent(from)}))` }}
                    title={label}
                  >
                    <span class="visually-hidden">{label}</span>
                  </span>
                );
              })}
              {bars.length === 0 && <span class="visually-hidden">{track.name}: not started</span>}
            </span>
          </li>
        );
      })}
    </ol>
  );
}
