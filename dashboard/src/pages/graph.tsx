/** A graph: its definition, its runs (filters, pagination) and schedules, and Start with parameters. */
export default function Page() {
  return (
    <main>
      <h1>graph</h1>
      <p>Not built yet.</p>
    </main>
  );
}
