/**
 * Every track waiting for input, across all runs, each with its form.
 *
 * Live by polling, politely: no subscription spans runs (pipelineLive, trackUpdated and
 * pipelineUpdated each follow one pipeline), so following each listed run would still miss
 * the next run's waiting step. The list is read again every POLL_MS while the tab is
 * shown (a hidden tab asks nothing, and is read again once shown), never two reads at a
 * time, and at once after this page supplied an input.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { request } from '../api';
import { graphql } from '../generated';
import type { WaitingTracksQuery } from '../generated/graphql';
import { TrackInputForm } from '../input-form';

const WaitingTracks = graphql(`
  query WaitingTracks($first: Int) {
    tracks(states: [WAITING, PENDING], excludePipelineStates: [FINISH, CANCELLED], first: $first) {
      id
      name
      state
      needsInput
      blockedBy {
        kind
        message
        missingParams
      }
      pipeline {
        id
        name
        state
        graph {
          id
          name
        }
      }
    }
  }
`);

export const POLL_MS = 3_000;
/** More waiting steps than this are not one person's list: the page says so. */
const LIMIT = 200;

type Waiting = WaitingTracksQuery['tracks'][number];

export default function WaitingPage() {
  const [tracks, setTracks] = useState<Waiting[]>();
  const [problem, setProblem] = useState<string>();
  const [notice, setNotice] = useState<string>();
  const refresh = useRef<() => void>(() => {});

  useEffect(() => {
    let inFlight = false;
    let again = false;
    let left = false;
    const read = () => {
      if (left) return;
      if (inFlight) {
        again = true;
        return;
      }
      inFlight = true;
      request(WaitingTracks, { first: LIMIT }).then(
        (data) => {
          if (left) return;
          // A track waiting for its predecessors has needsInput too: it is listed, as it
          // can be given its inputs already (finishInput takes them before it starts).
          setTracks(data.tracks.filter((t) => t.needsInput));
          setProblem(undefined);
        },
        (error: unknown) => !left && setProblem(`Could not read the waiting steps: ${error instanceof Error ? error.message : String(error)}. Trying again shortly.`),
      ).finally(() => {
        inFlight = false;
        if (again) {
          again = false;
          read();
        }
      });
    };
    refresh.current = read;
    read();
    const timer = setInterval(() => document.visibilityState === 'visible' && read(), POLL_MS);
    const shown = () => document.visibilityState === 'visible' && read();
    document.addEventListener('visibilitychange', shown);
    return () => {
      left = true;
      clearInterval(timer);
      document.removeEventListener('visibilitychange', shown);
    };
  }, []);

  return (
    <main class="waiting-page">
      <h1>Waiting for input</h1>
      <p class="hint">Steps of running runs that wait for their parameters. The list follows the service every few seconds.</p>
      <p role="status" class="done">
        {notice}
      </p>
      {problem && (
        <p role="alert" class="problem">
          {problem}
        </p>
      )}
      {tracks === undefined ? (
        !problem && <p>Loading…</p>
      ) : tracks.length === 0 ? (
        <p>No step waits for input.</p>
      ) : (
        <ul class="waiting" aria-label="Steps waiting for input">
          {tracks.map((track) => (
            <li key={track.id} data-testid={`waiting-${track.id}`} aria-labelledby={`waiting-${track.id}-title`}>
              <h2 id={`waiting-${track.id}-title`}>
                {track.name} <span class="hint">in</span>{' '}
                <a href={`/runs/${track.pipeline.id}/tracks/${track.id}`}>
                  run #{track.pipeline.id} {track.pipeline.name}
                </a>
              </h2>
              <p class="hint">
                Graph <a href={`/graphs/${track.pipeline.graph.id}`}>{track.pipeline.graph.name}</a>; step {track.state.toLowerCase()}
                {track.blockedBy ? `: ${track.blockedBy.message}` : '.'}
              </p>
              <TrackInputForm
                trackId={track.id}
                onDone={() => {
                  setNotice(`Inputs of ${track.name} in run #${track.pipeline.id} supplied.`);
                  refresh.current();
                }}
              />
            </li>
          ))}
        </ul>
      )}
      {tracks && tracks.length >= LIMIT && <p class="hint">Only the first {LIMIT} are listed: supply some, and the next ones appear.</p>}
    </main>
  );
}
