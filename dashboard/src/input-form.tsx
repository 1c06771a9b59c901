/** The form for a track's parameters, generated from its input schema; submitting runs finishInput. */
export function TrackInputForm({ trackId }: { trackId: number; onDone?: () => void }) {
  return <p data-track={trackId}>Input form: not built yet.</p>;
}
