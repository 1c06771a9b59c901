/** API tokens (admin): list, create, revoke. */
export default function Page() {
  return (
    <main>
      <h1>tokens</h1>
      <p>Not built yet.</p>
    </main>
  );
}
