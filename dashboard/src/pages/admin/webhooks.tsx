/** Webhooks (admin) and their delivery log. */
export default function Page() {
  return (
    <main>
      <h1>webhooks</h1>
      <p>Not built yet.</p>
    </main>
  );
}
