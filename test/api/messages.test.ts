/**
 * Messages that tell the truth, through the real API: what is wrong with a token, which
 * role an operation needs, why a graph does not start, and field descriptions that say
 * what the service does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../../src/auth/tokens.ts';
import { graphql } from '../../src/generated/gql/index.ts';
import { CheckGraph, CloneGraph, CreateGraph, StartPipeline, UpdateVertex } from '../helpers/operations.ts';
import { seedGraph } from '../helpers/seed.ts';
import { httpClient, startTestApp, type TestApp } from '../helpers/test-app.ts';

const Graphs = graphql(`query MessagesGraphs { graphs { id } }`);
const Start = graphql(`
  mutation MessagesStart($graphId: Int!) {
    startPipeline(graphId: $graphId) {
      __typename
      ... on UnauthenticatedError { requiredRole }
      ... on Error { message field }
    }
  }
`);
const VertexIds = graphql(`query MessagesVertexIds($id: Int!) { graph(id: $id) { vertices { id } } }`);
const Describe = graphql(`
  query MessagesDescribe($name: String!) {
    __type(name: $name) { fields { name description } inputFields { name description } }
  }
`);

let t: TestApp;
let admin: ReturnType<typeof httpClient>;
const bearer = (secret: string) => httpClient(t.url, { authorization: `Bearer ${secret}` });

beforeAll(async () => {
  t = await startTestApp({ env: { AUTH: 'on' } });
  admin = bearer((await createToken(t.app.store.db, { name: 'messages-admin', role: 'admin' })).secret);
});
afterAll(() => t?.stop());

describe('a token that is not shaped like one', () => {
  it('is told its length, its wrong character, or that it does not start with dp_', async () => {
    const real = (await createToken(t.app.store.db, { name: 'shape', role: 'viewer' })).secret;
    const messageFor = async (secret: string) => (await bearer(secret).execute(Graphs)).errors?.[0]?.message ?? '';

    const cut = await messageFor(real.slice(0, 20));
    expect(cut).toContain('This token is 20 characters long; dagpipe tokens are "dp_" plus 43 letters, digits, "-" or "_" (46 characters in all).');
    expect(cut).toContain('copied whole');
    expect(cut).not.toContain('they start with');
    expect(await messageFor(`${real}x`)).toContain('This token is 47 characters long');

    const stray = `${real.slice(0, 10)}.${real.slice(11)}`;
    const strayMessage = await messageFor(stray);
    expect(strayMessage).toContain('This token has "." at character 11;');
    // The token is never repeated back.
    expect(strayMessage).not.toContain(real.slice(3, 10));

    expect(await messageFor('ghp_abcdef')).toContain('That is not a dagpipe token: dagpipe tokens are "dp_" plus 43');
    expect(await messageFor(real)).toBe('');
  });
});

describe('without a token', () => {
  it('names the role the operation needs, with the command that creates such a token', async () => {
    const query = (await t.execute(Graphs)).errors?.[0];
    expect(query).toMatchObject({ extensions: { code: 'UNAUTHENTICATED', requiredRole: 'viewer' } });
    expect(query!.message).toContain('graphs needs a token of the viewer role or higher');
    expect(query!.message).toContain('npm run token -- create --role viewer');

    const { graphId } = await seedGraph(admin, { vertices: { A: { script: 'true' } } });
    const start = (await t.request(Start, { graphId })).startPipeline;
    expect(start).toMatchObject({ __typename: 'UnauthenticatedError', requiredRole: 'operator', field: 'authorization' });
    if (start.__typename !== 'UnauthenticatedError') throw new Error();
    expect(start.message).toContain('startPipeline needs a token of the operator role or higher');
    expect(start.message).toContain('npm run token -- create --role operator');
    expect(start.message).not.toContain('--role viewer');

    const define = (await t.request(CreateGraph, { name: 'no-token' })).createGraph;
    expect(define.__typename).toBe('UnauthenticatedError');
    if (define.__typename !== 'UnauthenticatedError') throw new Error();
    expect(define.message).toContain('createGraph needs a token of the admin role:');
    expect(define.message).toContain('npm run token -- create --role admin');

    // A bad token gets what is wrong with it, and the same role-named advice.
    const unknown = (await bearer(`dp_${'x'.repeat(43)}`).request(Start, { graphId })).startPipeline;
    if (unknown.__typename !== 'UnauthenticatedError') throw new Error(JSON.stringify(unknown));
    expect(unknown.message).toContain('This token is not known.');
    expect(unknown.message).toContain('--role operator');
  });

  it('/metrics says a token of any role will do, and how to make one', async () => {
    const response = await fetch(t.url.replace('/graphql', '/metrics'));
    expect(response.status).toBe(401);
    const text = await response.text();
    expect(text).toContain('Any role will do');
    expect(text).toContain('npm run token -- create --role viewer');
  });
});

describe('startPipeline on a graph that is not checked', () => {
  it('says a never-checked graph was never checked, and how to check it', async () => {
    const { graphId } = await seedGraph(admin, { vertices: { A: { script: 'true' } }, check: false });
    const refused = (await admin.request(StartPipeline, { graphId })).startPipeline;
    expect(refused).toMatchObject({ __typename: 'ConflictError', field: 'graphId' });
    if (refused.__typename !== 'ConflictError') throw new Error();
    expect(refused.message).toContain('was never checked');
    expect(refused.message).toContain(`checkGraph(id: ${graphId})`);
    expect(refused.message).toContain('pipectl apply');
    expect(refused.message).not.toContain('changed');
  });

  it('says a graph changed since it was checked has changed, also for an edited clone of a checked graph', async () => {
    const { graphId, ids } = await seedGraph(admin, { vertices: { A: { script: 'true' } } });
    await admin.request(UpdateVertex, { id: ids.A!, input: { script: 'echo edited' } });
    const edited = (await admin.request(StartPipeline, { graphId })).startPipeline;
    if (edited.__typename !== 'ConflictError') throw new Error(JSON.stringify(edited));
    expect(edited.message).toContain('has changed since it was last checked');
    expect(edited.message).toContain(`checkGraph(id: ${graphId})`);

    const rechecked = await admin.request(CheckGraph, { id: graphId });
    expect(rechecked.checkGraph).toMatchObject({ checked: true });
    const copy = (await admin.request(CloneGraph, { id: graphId })).cloneGraph;
    if (copy.__typename !== 'Graph') throw new Error(JSON.stringify(copy));
    expect(copy.checked).toBe(true);
    const { graph } = await admin.request(VertexIds, { id: copy.id });
    await admin.request(UpdateVertex, { id: graph!.vertices[0]!.id, input: { timeoutSeconds: 30 } });
    const clone = (await admin.request(StartPipeline, { graphId: copy.id })).startPipeline;
    if (clone.__typename !== 'ConflictError') throw new Error(JSON.stringify(clone));
    expect(clone.message).toContain('has changed since it was last checked');
  });
});

describe('descriptions', () => {
  const describeType = async (name: string) => {
    const { __type } = await admin.request(Describe, { name });
    return Object.fromEntries([...(__type!.fields ?? []), ...(__type!.inputFields ?? [])].map((f) => [f.name, f.description ?? '']));
  };

  it('say that secret values are masked, and where', async () => {
    for (const type of ['InputParamInput', 'InputParam']) {
      const secret = (await describeType(type)).secret!;
      expect(secret).not.toContain('not implemented');
      expect(secret).toContain('***');
      expect(secret).toContain('Track.script');
      expect(secret).toContain('output');
    }
  });

  it('tell Event.track (the track now) from Event.trackState (its state at the event)', async () => {
    const fields = await describeType('Event');
    expect(fields.track).toMatch(/as it is now.*not as it was at the event/);
    expect(fields.track).toContain('trackState');
    expect(fields.trackState).toContain('as it was at this event');
  });
});
