/**
 * The dashboard: sign in with an API token, then the graphs with their DAG drawn. It speaks
 * only the public GraphQL API (src/api.ts), like pipectl.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, request, session } from './api';
import { Dag } from './dag';
import { graphql } from './generated';
import type { GraphsQuery } from './generated/graphql';
import './style.css';

const Graphs = graphql(`
  query Graphs {
    graphs {
      id
      name
      desc
      checked
      vertices {
        name
      }
      edges {
        tail {
          name
        }
        head {
          name
        }
      }
    }
  }
`);

function SignIn({ problem, onSignIn }: { problem?: string; onSignIn: (token: string) => void }) {
  const [token, setToken] = useState('');
  return (
    <main>
      <h1>dagpipe</h1>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          onSignIn(token);
        }}
      >
        <label for="token">API token</label>
        <input id="token" name="token" type="password" autocomplete="off" required value={token} onInput={(e) => setToken(e.currentTarget.value)} aria-describedby={problem ? 'token-problem' : undefined} />
        {problem && (
          <p id="token-problem" role="alert" class="problem">
            {problem}
          </p>
        )}
        <p class="hint">
          Create one with <code>npm run token -- create --role viewer</code>. It is kept for this browser tab only.
        </p>
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
}

function GraphList({ graphs }: { graphs: GraphsQuery['graphs'] }) {
  if (graphs.length === 0) return <p>No graphs yet. Import one with <code>pipectl import</code> or the importGraph mutation.</p>;
  return (
    <ul class="graphs">
      {graphs.map((graph) => (
        <li key={graph.id}>
          <h2>{graph.name}</h2>
          {graph.desc && <p>{graph.desc}</p>}
          <Dag label={`The DAG of ${graph.name}`} vertices={graph.vertices} edges={graph.edges} />
        </li>
      ))}
    </ul>
  );
}

function App() {
  const [signedIn, setSignedIn] = useState(session.token() !== null);
  const [problem, setProblem] = useState<string>();
  const [graphs, setGraphs] = useState<GraphsQuery['graphs']>();
  useEffect(() => {
    if (!signedIn) return;
    request(Graphs).then(
      (data) => setGraphs(data.graphs),
      (error: unknown) => {
        if (error instanceof ApiError && error.code === 'UNAUTHENTICATED') {
          session.signOut();
          setSignedIn(false);
        }
        setProblem(error instanceof Error ? error.message : String(error));
      },
    );
  }, [signedIn]);
  if (!signedIn)
    return (
      <SignIn
        problem={problem}
        onSignIn={(token) => {
          session.signIn(token);
          setProblem(undefined);
          setSignedIn(true);
        }}
      />
    );
  return (
    <>
      <header>
        <span class="brand">dagpipe</span>
        <button
          type="button"
          onClick={() => {
            session.signOut();
            setGraphs(undefined);
            setSignedIn(false);
          }}
        >
          Sign out
        </button>
      </header>
      <main>
        <h1>Graphs</h1>
        {problem && <p role="alert" class="problem">{problem}</p>}
        {graphs ? <GraphList graphs={graphs} /> : !problem && <p>Loading…</p>}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
