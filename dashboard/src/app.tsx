/**
 * The dashboard's shell: sign-in with an API token, then the pages under one header with the
 * navigation the role allows and the live connection's state. Pages other than the graphs
 * are loaded when first opened, so the first page's JavaScript stays small.
 */
import { useEffect, useState } from 'preact/hooks';
import { ErrorBoundary, lazy, LocationProvider, Route, Router } from 'preact-iso';
import { ApiError, request, session } from './api';
import { closeLive, connectionState, watchConnection, type ConnectionState } from './live';
import GraphsPage from './pages/graphs';
import { allows, ViewerContext, ViewerDocument, type Viewer } from './viewer';

const GraphPage = lazy(() => import('./pages/graph'));
const RunPage = lazy(() => import('./pages/run'));
const TrackPage = lazy(() => import('./pages/track'));
const WaitingPage = lazy(() => import('./pages/waiting'));
const TokensPage = lazy(() => import('./pages/admin/tokens'));
const WebhooksPage = lazy(() => import('./pages/admin/webhooks'));
const AuditPage = lazy(() => import('./pages/admin/audit'));

/** The lazy page of a path (the routes below), for loading it early. */
function preloadFor(path: string) {
  if (path.startsWith('/runs/')) return RunPage;
  if (path.startsWith('/graphs/')) return GraphPage;
  if (path.startsWith('/tracks/')) return TrackPage;
  if (path === '/waiting') return WaitingPage;
  return undefined;
}

function SignIn({ problem, onSignIn }: { problem?: string | undefined; onSignIn: (token: string) => void }) {
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

/** Says so while the live connection is down, and that it is being retried. */
function ConnectionBanner() {
  const [state, setState] = useState<ConnectionState>(connectionState());
  useEffect(() => watchConnection(setState), []);
  if (state === 'lost')
    return (
      <p role="status" class="banner lost">
        Connection lost, reconnecting… Live views resume where they stopped.
      </p>
    );
  if (state === 'refused')
    return (
      <p role="alert" class="banner lost">
        The service refused the live connection: the token is no longer valid. Sign out and sign in with a valid token.
      </p>
    );
  return null;
}

function Shell({ viewer, onSignOut }: { viewer: Viewer; onSignOut: () => void }) {
  const admin = allows(viewer.role, 'admin');
  return (
    <ViewerContext.Provider value={viewer}>
      <header>
        <nav aria-label="Pages">
          <a class="brand" href="/">
            dagpipe
          </a>
          <a href="/">Graphs</a>
          <a href="/waiting">Waiting for input</a>
          {admin && <a href="/admin/tokens">Tokens</a>}
          {admin && <a href="/admin/webhooks">Webhooks</a>}
          {admin && <a href="/admin/audit">Audit log</a>}
        </nav>
        <span class="who">
          {viewer.name} ({viewer.role}){' '}
          {session.token() === null ? (
            <span class="hint-dark">authentication is off</span>
          ) : (
            <button type="button" onClick={onSignOut}>
              Sign out
            </button>
          )}
        </span>
      </header>
      <ConnectionBanner />
      <ErrorBoundary>
        <Router>
          <Route path="/" component={GraphsPage} />
          <Route path="/graphs/:id" component={GraphPage} />
          <Route path="/runs/:id" component={RunPage} />
          <Route path="/runs/:id/tracks/:trackId" component={RunPage} />
          <Route path="/tracks/:id" component={TrackPage} />
          <Route path="/waiting" component={WaitingPage} />
          <Route path="/admin/tokens" component={TokensPage} />
          <Route path="/admin/webhooks" component={WebhooksPage} />
          <Route path="/admin/webhooks/:id" component={WebhooksPage} />
          <Route path="/admin/audit" component={AuditPage} />
          <Route default component={NotFound} />
        </Router>
      </ErrorBoundary>
    </ViewerContext.Provider>
  );
}

function NotFound() {
  return (
    <main>
      <h1>Not found</h1>
      <p>
        The dashboard has no page at this address. <a href="/">Go to the graphs.</a>
      </p>
    </main>
  );
}

export function App() {
  const [viewer, setViewer] = useState<Viewer>();
  const [problem, setProblem] = useState<string>();
  const [checking, setChecking] = useState(true);

  // Asked also without a token: a service with AUTH=off answers as the anonymous admin, and
  // the sign-in form would only be in the way. Without a token, a refusal is no problem
  // to show: it is the reason for the form.
  const check = () => {
    setChecking(true);
    const withToken = session.token() !== null;
    request(ViewerDocument).then(
      (data) => {
        setViewer(data.viewer);
        setChecking(false);
      },
      (error: unknown) => {
        const refused = error instanceof ApiError && error.code === 'UNAUTHENTICATED';
        if (refused) session.signOut();
        if (withToken || !refused) setProblem(error instanceof Error ? error.message : String(error));
        setChecking(false);
      },
    );
  };
  useEffect(check, []);
  // The page the address names loads while the service is asked who we are, not after.
  useEffect(() => void preloadFor(location.pathname)?.preload(), []);

  const signOut = () => {
    session.signOut();
    closeLive();
    setViewer(undefined);
    setProblem(undefined);
  };

  if (viewer)
    return (
      <LocationProvider>
        <Shell viewer={viewer} onSignOut={signOut} />
      </LocationProvider>
    );
  if (checking)
    return (
      <main>
        <p>Signing in…</p>
      </main>
    );
  return (
    <SignIn
      problem={problem}
      onSignIn={(token) => {
        session.signIn(token);
        setProblem(undefined);
        check();
      }}
    />
  );
}
