/**
 * Authentication and roles: tokens over HTTP, SSE and graphql-ws; viewer, operator and
 * admin enforced on every field with typed errors; revocation; the audit trail.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { print } from 'graphql';
import { createClient as createSseClient } from 'graphql-sse';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createToken } from '../../src/auth/tokens.ts';
import { graphql } from '../../src/generated/gql/index.ts';
import { CreateGraph, StartPipeline } from '../helpers/operations.ts';
import { seedGraph } from '../helpers/seed.ts';
import { httpClient, startTestApp, type TestApp } from '../helpers/test-app.ts';

const run = promisify(execFile);

const Graphs = graphql(`query AuthGraphs { graphs { id name } }`);
const Viewer = graphql(`query AuthViewer { viewer { name role } }`);
const Tokens = graphql(`query AuthTokens { tokens { id name role prefix revokedAt } }`);
const Audit = graphql(`query AuthAudit($action: String) { auditLog(action: $action) { actor tokenId action targetType targetId details } }`);
const NewToken = graphql(`
  mutation AuthCreateToken($name: String!, $role: Role!) {
    createToken(name: $name, role: $role) {
      __typename
      ... on CreatedToken { id secret role }
      ... on Error { message field }
    }
  }
`);
const Revoke = graphql(`
  mutation AuthRevoke($id: Int!) {
    revokeToken(id: $id) {
      __typename
      ... on Token { id revokedAt }
      ... on Error { message field }
    }
  }
`);
const StartChecked = graphql(`
  mutation AuthStart($graphId: Int!) {
    startPipeline(graphId: $graphId) {
      __typename
      ... on Pipeline { id }
      ... on ForbiddenError { role requiredRole message field }
      ... on Error { message field }
    }
  }
`);
const CreateChecked = graphql(`
  mutation AuthCreateGraph($name: String!) {
    createGraph(name: $name) {
      __typename
      ... on Graph { id }
      ... on ForbiddenError { role requiredRole message }
      ... on Error { message field }
    }
  }
`);

let t: TestApp;
const secrets: Record<'viewer' | 'operator' | 'admin', string> = { viewer: '', operator: '', admin: '' };
const as = (secret: string) => httpClient(t.url, { authorization: `Bearer ${secret}` });

beforeAll(async () => {
  t = await startTestApp({ env: { AUTH: 'on' } });
  for (const role of ['viewer', 'operator', 'admin'] as const) {
    secrets[role] = (await createToken(t.app.store.db, { name: `${role}-alice`, role })).secret;
  }
});
afterAll(() => t?.stop());

describe('without a token', () => {
  it('queries fail with UNAUTHENTICATED naming the header, mutations return UnauthenticatedError, nothing changes', async () => {
    const query = await t.execute(Graphs);
    expect(query.data ?? null).toBeNull();
    expect(query.errors?.[0]).toMatchObject({ extensions: { code: 'UNAUTHENTICATED', field: 'authorization' } });
    expect(query.errors?.[0]!.message).toContain('Authorization: Bearer');
    const before = await t.app.store.db.graph.count();
    const mutation = await t.request(CreateGraph, { name: 'nope' });
    expect(mutation.createGraph).toMatchObject({ __typename: 'UnauthenticatedError', field: 'authorization' });
    expect(await t.app.store.db.graph.count()).toBe(before);
  });

  it('a malformed, unknown or revoked token is refused saying which', async () => {
    expect((await httpClient(t.url, { authorization: 'Basic abc' }).execute(Graphs)).errors?.[0]!.message).toContain('"Bearer <token>"');
    expect((await as('dp_' + 'x'.repeat(43)).execute(Graphs)).errors?.[0]!.message).toContain('not known');
    const doomed = await createToken(t.app.store.db, { name: 'doomed', role: 'viewer' });
    expect((await as(doomed.secret).execute(Graphs)).errors).toBeUndefined();
    const revoked = await as(secrets.admin).request(Revoke, { id: doomed.id });
    expect(revoked.revokeToken).toMatchObject({ __typename: 'Token', id: doomed.id });
    const refused = await as(doomed.secret).execute(Graphs);
    expect(refused.errors?.[0]).toMatchObject({ extensions: { code: 'UNAUTHENTICATED' } });
    expect(refused.errors?.[0]!.message).toContain('revoked');
  });

  it('graphql-ws closes the connection with 4403; SSE gets the error; /metrics answers 401', async () => {
    const closed = await new Promise<number>((resolve) => {
      const client = createClient({ url: t.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false, onNonLazyError: () => {}, on: { closed: (e) => resolve((e as CloseEvent).code) } });
      client.subscribe({ query: 'subscription { trackOutput(trackId: 1) { line } }' }, { next() {}, error() {}, complete() {} });
    });
    expect(closed).toBe(4403);
    const sse = createSseClient({ url: t.url, retryAttempts: 0 });
    const error = await new Promise<unknown>((resolve) => {
      sse.subscribe({ query: 'subscription { pipelineUpdated(pipelineId: 1) { id } }' }, { next: (v) => resolve(v.errors), error: resolve, complete() {} });
    });
    expect(JSON.stringify(error)).toContain('UNAUTHENTICATED');
    sse.dispose();
    expect((await fetch(t.url.replace('/graphql', '/metrics'))).status).toBe(401);
    const metrics = await fetch(t.url.replace('/graphql', '/metrics'), { headers: { authorization: `Bearer ${secrets.viewer}` } });
    expect(metrics.status).toBe(200);
  });
});

describe('roles', () => {
  it('viewer names the caller and its role, for a UI to show only what it may do; without a token it is UNAUTHENTICATED', async () => {
    for (const role of ['viewer', 'operator', 'admin'] as const) {
      expect((await as(secrets[role]).request(Viewer)).viewer).toEqual({ name: `${role}-alice`, role });
    }
    const anonymous = await httpClient(t.url).execute(Viewer);
    expect(anonymous.data).toBeNull();
    expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('a viewer reads and subscribes, but may not start, define, or see tokens and the audit trail', async () => {
    const viewer = as(secrets.viewer);
    expect((await viewer.execute(Graphs)).errors).toBeUndefined();
    const { graphId } = await seedGraph(as(secrets.admin), { vertices: { A: { script: 'true' } } });
    const run = await as(secrets.admin).request(StartChecked, { graphId });
    if (run.startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(run));
    const pipelineId = run.startPipeline.id;
    expect((await viewer.request(StartChecked, { graphId })).startPipeline).toMatchObject({
      __typename: 'ForbiddenError',
      role: 'viewer',
      requiredRole: 'operator',
      message: expect.stringContaining('startPipeline needs the operator role or higher'),
    });
    expect((await viewer.request(CreateChecked, { name: 'x' })).createGraph).toMatchObject({ __typename: 'ForbiddenError', requiredRole: 'admin' });
    for (const result of [await viewer.execute(Tokens, {}), await viewer.execute(Audit, {})]) {
      expect(result.errors?.[0]).toMatchObject({ extensions: { code: 'FORBIDDEN', field: 'authorization' } });
    }
    // graphql-ws with the token in connectionParams.
    const client = createClient({
      url: t.wsUrl,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      connectionParams: { authorization: `Bearer ${secrets.viewer}` },
    });
    const first = await new Promise<unknown>((resolve, reject) => {
      client.subscribe({ query: print(graphql(`subscription AuthWatch($id: Int!) { pipelineUpdated(pipelineId: $id, after: 0) { type } }`)), variables: { id: pipelineId } }, { next: resolve, error: reject, complete() {} });
    });
    await client.dispose();
    expect(JSON.stringify(first)).not.toContain('errors');
    // SSE with the token in the Authorization header, as GraphiQL sends it.
    const sse = createSseClient({ url: t.url, retryAttempts: 0, headers: { authorization: `Bearer ${secrets.viewer}` } });
    const overSse = await new Promise<unknown>((resolve, reject) => {
      sse.subscribe({ query: `subscription { pipelineUpdated(pipelineId: ${pipelineId}, after: 0) { type } }` }, { next: resolve, error: reject, complete() {} });
    });
    sse.dispose();
    expect(overSse).toEqual({ data: { pipelineUpdated: { type: 'pipeline:started' } } });
  });

  it('an operator starts pipelines but may not change graphs; an admin may; every change is in the audit trail', async () => {
    const admin = as(secrets.admin);
    const operator = as(secrets.operator);
    const { graphId } = await seedGraph(admin, { vertices: { A: { script: 'true' } } });
    const started = await operator.request(StartChecked, { graphId });
    expect(started.startPipeline.__typename).toBe('Pipeline');
    expect((await operator.request(CreateChecked, { name: 'by-operator' })).createGraph).toMatchObject({
      __typename: 'ForbiddenError',
      role: 'operator',
      requiredRole: 'admin',
    });
    const created = await admin.request(NewToken, { name: 'ci-nightly', role: 'operator' });
    if (created.createToken.__typename !== 'CreatedToken') throw new Error(JSON.stringify(created));
    expect(created.createToken.secret).toMatch(/^dp_/);
    expect((await as(created.createToken.secret).execute(Graphs)).errors).toBeUndefined();
    // Only the hash is stored.
    const stored = await t.app.store.db.apiToken.findUniqueOrThrow({ where: { id: created.createToken.id } });
    expect(JSON.stringify(stored)).not.toContain(created.createToken.secret);

    const audit = (await admin.request(Audit, {})).auditLog;
    const pipelineId = started.startPipeline.__typename === 'Pipeline' ? started.startPipeline.id : 0;
    expect(audit).toContainEqual(expect.objectContaining({ actor: 'operator-alice', action: 'startPipeline', targetType: 'pipeline', targetId: pipelineId }));
    expect(audit).toContainEqual(expect.objectContaining({ actor: 'admin-alice', action: 'createGraph', targetType: 'graph', targetId: graphId }));
    expect(audit).toContainEqual(expect.objectContaining({ actor: 'admin-alice', action: 'createToken', details: { name: 'ci-nightly', role: 'operator' } }));
    expect(JSON.stringify(audit)).not.toContain(created.createToken.secret);
    // Refused calls are not recorded as changes.
    expect(audit.filter((e) => e.actor === 'operator-alice' && e.action === 'createGraph')).toEqual([]);
  });

  it('npm run token creates a working token from the shell, lists it, and revokes it', async () => {
    const env = { ...process.env, DATABASE_URL: t.databaseUrl };
    const created = await run(process.execPath, ['dist/token-cli.js', 'create', '--role', 'viewer', '--name', 'from-shell'], { env });
    const secret = /(dp_[A-Za-z0-9_-]{43})/.exec(created.stdout)![1]!;
    expect((await as(secret).execute(Graphs)).errors).toBeUndefined();
    const listed = await run(process.execPath, ['dist/token-cli.js', 'list'], { env });
    expect(listed.stdout).toMatch(/\tviewer\tfrom-shell\t/);
    expect(listed.stdout).not.toContain(secret);
    const id = /^(\d+)\tviewer\tfrom-shell/m.exec(listed.stdout)![1]!;
    await run(process.execPath, ['dist/token-cli.js', 'revoke', id], { env });
    expect((await as(secret).execute(Graphs)).errors?.[0]!.message).toContain('revoked');
  }, 60_000);
});

describe('token input', () => {
  it('refuses an empty, multi-line or broken-Unicode token name and an unknown role, naming the field', async () => {
    const admin = as(secrets.admin);
    for (const name of ['  ', 'two\nlines', 'half \ud800 pair', 'x'.repeat(101)]) {
      const result = await admin.request(NewToken, { name, role: 'viewer' });
      expect(result.createToken).toMatchObject({ __typename: 'ValidationError', field: 'name' });
    }
    const wrongRole = await admin.execute(NewToken, { name: 'x', role: 'root' as never });
    expect(wrongRole.errors?.[0]!.message).toContain('Role');
  });
});
