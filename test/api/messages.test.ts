/**
 * Messages that tell the truth, through the real API: why a graph does not start, and
 * field descriptions that say what the service does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../../src/auth/tokens.ts';
import { graphql } from '../../src/generated/gql/index.ts';
import { CheckGraph, CloneGraph, StartPipeline, UpdateVertex } from '../helpers/operations.ts';
import { seedGraph } from '../helpers/seed.ts';
import { httpClient, startTestApp, type TestApp } from '../helpers/test-app.ts';

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
