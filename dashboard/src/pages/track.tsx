/** One track's output on a page of its own (to read or search a long log): its name, run, state and output. */
import { useState } from 'preact/hooks';
import { useRoute } from 'preact-iso';
import { TrackOutput, type TrackInfo } from '../output';

export default function TrackPage() {
  const { params } = useRoute();
  const trackId = Number(params.id);
  const [track, setTrack] = useState<TrackInfo>();
  if (!Number.isInteger(trackId) || trackId < 1)
    return (
      <main>
        <h1>Track</h1>
        <p role="alert" class="problem">
          “{params.id}” is not a track id: a track's address is /tracks/ and its number. <a href="/">Go to the graphs.</a>
        </p>
      </main>
    );
  return (
    <main class="track-page">
      <div class="track-head">
        <h1>{track ? track.name : `Track ${trackId}`}</h1>
        {track && (
          <p>
            In run <a href={`/runs/${track.pipeline.id}/tracks/${track.id}`}>{track.pipeline.name}</a>{' '}
            <span class={`state state-${track.state}`} data-testid="track-state">
              {track.state}
            </span>
            {track.reason && <span class="reason"> {track.reason}</span>}
          </p>
        )}
      </div>
      <TrackOutput key={trackId} trackId={trackId} onTrack={setTrack} />
    </main>
  );
}
