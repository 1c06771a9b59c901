/** A run, live: the DAG coloured by state, the timeline, the selected track's output, cancel, retry and re-run. */
export default function Page() {
  return (
    <main>
      <h1>run</h1>
      <p>Not built yet.</p>
    </main>
  );
}
