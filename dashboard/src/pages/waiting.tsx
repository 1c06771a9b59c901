/** Tracks waiting for input across all runs, each with its form. */
export default function Page() {
  return (
    <main>
      <h1>waiting</h1>
      <p>Not built yet.</p>
    </main>
  );
}
