/** One track's output on a page of its own (to read or search a long log). */
export default function Page() {
  return (
    <main>
      <h1>track</h1>
      <p>Not built yet.</p>
    </main>
  );
}
