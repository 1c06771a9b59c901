/** A track's output, live from trackOutput: a virtual list with line numbers, follow mode, search, download and its attempts. */
export function TrackOutput({ trackId }: { trackId: number }) {
  return <p data-track={trackId}>Output: not built yet.</p>;
}
