/** The audit log (admin), filtered and paged. */
export default function Page() {
  return (
    <main>
      <h1>audit</h1>
      <p>Not built yet.</p>
    </main>
  );
}
