/**
 * A run, live: the DAG coloured by state, the timeline, the tracks with why each waits, the
 * selected track's panel (attempts, output, its input form), cancel, retry and re-run.
 *
 * Everything comes from one pipelineLive subscription on the shared connection: a snapshot,
 * then events, folded by run-state.ts once per animation frame. The cursor (the last event
 * id received) is kept outside the render, so that a reconnect re-subscribes with `after`
 * and the service sends exactly the events missed while the connection was down.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { useRoute } from 'preact-iso';
import { request } from '../api';
import { Dag } from '../dag';
import { useFrameBatcher } from '../frame';
import type { PipelineState, TrackState } from '../generated/graphql';
import { TrackInputForm } from '../input-form';
import { subscribe } from '../live';
import { TrackOutput } from '../output';
import { CancelRunDocument, PipelineLiveDocument, RetryRunDocument, RunBlockedDocument } from '../run-documents';
import { applyBlocked, applyMessages, hasEnded, movesBlockedBy, statesByName, type LiveMessage, type RunView, type TrackRow } from '../run-state';
import { Timeline } from '../timeline';
import { Action } from '../viewer';

/** The states in words, for the legend and the rows (the state names stay visible too). */
const STATE_WORDS: Record<TrackState, string> = {
  WAITING: 'waiting for its predecessors',
  PENDING: 'ready, waiting for input or a worker',
  RUNNING: 'running',
  SUCCEED: 'succeeded',
  FAILED: 'failed',
  CANCELLED: 'cancelled',
  SKIPPED: 'skipped',
};

function ended(state: PipelineState): string | undefined {
  return hasEnded(state) ? `The run has ended (${state}).` : undefined;
}

function retryUnavailable(state: PipelineState): string | undefined {
  if (state === 'FAILED' || state === 'CANCELLED') return undefined;
  if (state === 'FINISH') return 'Every track succeeded: re-run it from a step instead.';
  return `Only a failed or cancelled run can be retried; this one is ${state}.`;
}

function rerunUnavailable(state: PipelineState, selected: TrackRow | undefined): string | undefined {
  if (!hasEnded(state)) return `The run is ${state}: re-run from a step once it has ended.`;
  if (!selected) return 'Select a track below to re-run from its step.';
  if (selected.state === 'RUNNING') return `${selected.name} is still running: wait for it to end.`;
  return undefined;
}

/** The result of a mutation in words: the typed error's message, or nothing on success. */
type Outcome = { __typename: string; message?: string; field?: string };
function problemOf(outcome: Outcome): string | undefined {
  if (outcome.__typename === 'Pipeline') return undefined;
  return outcome.message ?? `The service refused it (${outcome.__typename}).`;
}

export default function RunPage() {
  const { params } = useRoute();
  const pipelineId = Number(params.id);
  const selectedId = params.trackId === undefined ? undefined : Number(params.trackId);
  const [view, setView] = useState<RunView>();
  const [problem, setProblem] = useState<string>();
  const cursor = useRef<number | undefined>(undefined);
  const refreshBlocked = useRef<() => void>(() => {});
  const batcher = useFrameBatcher<LiveMessage>((batch) => {
    setView((current) => applyMessages(current, batch));
    // A snapshot comes without why its tracks wait: read it now, as after events that change it.
    if (batch.some((message) => message.snapshot || movesBlockedBy(message))) refreshBlocked.current();
  });

  useEffect(() => {
    if (!Number.isInteger(pipelineId)) return;
    cursor.current = undefined;
    setView(undefined);
    setProblem(undefined);
    // One read in flight at most; events during it ask for one more after it.
    let alive = true;
    let reading = false;
    let again = false;
    const read = () => {
      if (reading) return void (again = true);
      reading = true;
      request(RunBlockedDocument, { id: pipelineId })
        .then(
          ({ pipeline }) => alive && pipeline && setView((current) => current && applyBlocked(current, pipeline)),
          // Unreachable now (the connection is down): the events replayed on reconnect read again.
          () => undefined,
        )
        .finally(() => {
          reading = false;
          if (alive && again) {
            again = false;
            read();
          }
        });
    };
    refreshBlocked.current = read;
    const unsubscribe = subscribe(PipelineLiveDocument, () => ({ pipelineId, ...(cursor.current !== undefined && { after: cursor.current }) }), {
      next: ({ pipelineLive: message }) => {
        if (message.snapshot) cursor.current = Math.max(cursor.current ?? 0, message.snapshot.cursor);
        if (message.event) cursor.current = Math.max(cursor.current ?? 0, message.event.id);
        batcher.push(message);
      },
      error: setProblem,
    });
    return () => {
      alive = false;
      refreshBlocked.current = () => {};
      unsubscribe();
      batcher.cancel();
    };
  }, [pipelineId]);

  if (!Number.isInteger(pipelineId))
    return (
      <main>
        <h1>Run</h1>
        <p role="alert" class="problem">
          This address names no run. <a href="/">Go to the graphs.</a>
        </p>
      </main>
    );
  if (!view)
    return (
      <main>
        <h1>Run {pipelineId}</h1>
        {problem ? (
          <p role="alert" class="problem">
            {problem}
          </p>
        ) : (
          <p>Loading…</p>
        )}
      </main>
    );
  return <Run view={view} selectedId={selectedId} problem={problem} />;
}

function Run({ view, selectedId, problem }: { view: RunView; selectedId: number | undefined; problem: string | undefined }) {
  const states = useMemo(() => statesByName(view), [view.tracks]);
  const tracks = [...view.tracks.values()];
  const selected = selectedId === undefined ? undefined : view.tracks.get(selectedId);
  return (
    <main class="run">
      <h1>
        Run {view.name} <span class="run-id">#{view.id}</span>
      </h1>
      <p class="run-summary">
        <strong data-testid="pipeline-state" class={`pipeline-state pipeline-${view.state}`}>
          {view.state}
        </strong>{' '}
        started {new Date(view.createdAt).toLocaleString()}
        {view.finishedAt && `, ended ${new Date(view.finishedAt).toLocaleString()}`}. Graph <a href={`/graphs/${view.graph.id}`}>{view.graph.name}</a>.
      </p>
      {view.desc && <p>{view.desc}</p>}
      {view.blockedBy && (
        <p class="blocked" data-testid="pipeline-blocked">
          {view.blockedBy.message}
        </p>
      )}
      {problem && (
        <p role="alert" class="problem">
          {problem}
        </p>
      )}
      <RunActions view={view} selected={selected} />
      <section aria-labelledby="dag-heading">
        <h2 id="dag-heading">DAG</h2>
        <div class="dag-scroll">
          <Dag label={`The DAG of run ${view.name}`} vertices={view.graph.vertices} edges={view.graph.edges} stateOf={(name) => states.get(name)} />
        </div>
        <Legend />
      </section>
      <section aria-labelledby="timeline-heading">
        <h2 id="timeline-heading">Timeline</h2>
        <Timeline view={view} />
      </section>
      <div class="run-tracks">
        <section aria-labelledby="tracks-heading">
          <h2 id="tracks-heading">Tracks</h2>
          <TrackList runId={view.id} tracks={tracks} selectedId={selectedId} />
        </section>
        {selectedId !== undefined && (
          <section aria-labelledby="track-heading" class="track-panel">
            {selected ? <TrackPanel view={view} track={selected} /> : <p role="alert" class="problem">This run has no track {selectedId}.</p>}
          </section>
        )}
      </div>
    </main>
  );
}

function Legend() {
  return (
    <ul class="legend" aria-label="Colours of the track states">
      {(Object.keys(STATE_WORDS) as TrackState[]).map((state) => (
        <li key={state}>
          <span class={`swatch state-${state}`} aria-hidden="true" /> {state}: {STATE_WORDS[state]}
        </li>
      ))}
    </ul>
  );
}

function TrackList({ runId, tracks, selectedId }: { runId: number; tracks: TrackRow[]; selectedId: number | undefined }) {
  return (
    <ul class="track-list">
      {tracks.map((track) => (
        <li key={track.id} data-testid={`track-${track.name}`} data-state={track.state} class={track.id === selectedId ? 'selected' : undefined}>
          <a href={`/runs/${runId}/tracks/${track.id}`} aria-current={track.id === selectedId ? 'page' : undefined}>
            {track.name}
          </a>{' '}
          <span class={`state-badge state-${track.state}`}>{track.state}</span>
          {track.attempt > 1 && <span class="attempt"> attempt {track.attempt}</span>}
          {track.blockedBy && <span class="track-blocked"> {track.blockedBy.message}</span>}
          {!track.blockedBy && track.reason && <span class="track-blocked"> {track.reason}</span>}
        </li>
      ))}
    </ul>
  );
}

function TrackPanel({ view, track }: { view: RunView; track: TrackRow }) {
  const attempts = view.attempts.get(track.id) ?? [];
  return (
    <>
      <h2 id="track-heading">
        Track {track.name} <span class={`state-badge state-${track.state}`}>{track.state}</span>
      </h2>
      <dl class="track-facts">
        <dt>Attempt</dt>
        <dd>{track.attempt}</dd>
        {track.exitCode !== null && (
          <>
            <dt>Exit code</dt>
            <dd>{track.exitCode}</dd>
          </>
        )}
        {track.reason && (
          <>
            <dt>Reason</dt>
            <dd>{track.reason}</dd>
          </>
        )}
        {track.blockedBy && (
          <>
            <dt>Why it waits</dt>
            <dd>{track.blockedBy.message}</dd>
          </>
        )}
      </dl>
      {attempts.length > 0 && (
        <table class="attempts">
          <caption>Attempts of {track.name}</caption>
          <thead>
            <tr>
              <th scope="col">Attempt</th>
              <th scope="col">State</th>
              <th scope="col">Started</th>
              <th scope="col">Ended</th>
              <th scope="col">Exit code</th>
              <th scope="col">Reason</th>
            </tr>
          </thead>
          <tbody>
            {attempts.map((row) => (
              <tr key={row.attempt}>
                <td>{row.attempt}</td>
                <td>{row.state}</td>
                <td>{row.startedAt ? new Date(row.startedAt).toLocaleTimeString() : '–'}</td>
                <td>{row.finishedAt ? new Date(row.finishedAt).toLocaleTimeString() : '–'}</td>
                <td>{row.exitCode ?? '–'}</td>
                <td>{row.reason ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {track.needsInput && <TrackInputForm trackId={track.id} />}
      <p>
        <a href={`/tracks/${track.id}`}>Open the output of {track.name} on its own page</a>
      </p>
      <TrackOutput trackId={track.id} />
    </>
  );
}

function RunActions({ view, selected }: { view: RunView; selected: TrackRow | undefined }) {
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string>();
  const act = (work: () => Promise<Outcome>) => {
    setBusy(true);
    setProblem(undefined);
    work().then(
      (outcome) => {
        setProblem(problemOf(outcome));
        setBusy(false);
      },
      (error: unknown) => {
        setProblem(error instanceof Error ? error.message : String(error));
        setBusy(false);
      },
    );
  };
  return (
    <div class="run-actions">
      <Action need="operator" id="cancel-run" busy={busy} unavailable={ended(view.state)} onClick={() => act(async () => (await request(CancelRunDocument, { id: view.id })).cancelPipeline)}>
        Cancel
      </Action>
      <Action need="operator" id="retry-run" busy={busy} unavailable={retryUnavailable(view.state)} onClick={() => act(async () => (await request(RetryRunDocument, { id: view.id })).retryPipeline)}>
        Retry
      </Action>
      <Action
        need="operator"
        id="rerun-from"
        busy={busy}
        unavailable={rerunUnavailable(view.state, selected)}
        onClick={() => selected && act(async () => (await request(RetryRunDocument, { id: view.id, from: [selected.name] })).retryPipeline)}
      >
        {selected ? `Re-run from ${selected.name}` : 'Re-run from the selected step'}
      </Action>
      {problem && (
        <p role="alert" class="problem">
          {problem}
        </p>
      )}
    </div>
  );
}
