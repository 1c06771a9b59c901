/**
 * SPEC rule 4 at scale: starting a 10,000-vertex graph commits, in one transaction, every
 * track in its initial state and the journal announcing it (pipeline:started, then one
 * track:created per track), numbered 1..10,001 without a gap. The writes go out in several
 * statements on SQLite (bind limit) and as arrays on PostgreSQL: each row must still land
 * once, in order.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from '../../src/generated/gql/index.ts';
import { CheckGraph, PipelineDetail } from '../helpers/operations.ts';
import { startTestApp, type TestApp } from '../helpers/test-app.ts';

const VERTICES = 10_000;

const CreateBigGraph = graphql(`
  mutation CreateBigGraph($name: String!, $vertices: [VertexInput!], $edges: [EdgeByName!]) {
    createGraph(name: $name, vertices: $vertices, edges: $edges) {
      __typename
      ... on Graph { id }
      ... on Error { message field }
    }
  }
`);

const StartBigPipeline = graphql(`
  mutation StartBigPipeline($graphId: Int!) {
    startPipeline(graphId: $graphId) {
      __typename
      ... on Pipeline { id state }
      ... on Error { message field }
    }
  }
`);

const BigPipeline = graphql(`
  query BigPipeline($id: Int!, $after: Int) {
    pipeline(id: $id) {
      state
      tracks { id name state needsInput attempt script }
      events(after: $after, first: 10000) { id seq type trackId trackState pipelineState attempt }
    }
  }
`);

const BigGraphSealed = graphql(`
  query BigGraphSealed($id: Int!) {
    graph(id: $id) { sealed }
  }
`);

const name = (i: number) => `v${String(i).padStart(5, '0')}`;

/**
 * Vertex i runs after i - 100 and, every third one, after i - 99 too; the first 100 and
 * every thousandth from 500 on have no predecessor. Starts need an input nobody gives
 * (so they stay PENDING and nothing runs); the others render from a default.
 */
function shape() {
  const edges: Array<{ tail: string; head: string }> = [];
  const starts = new Set<string>();
  for (let i = 0; i < VERTICES; i++) {
    if (i < 100 || i % 1000 === 500) {
      starts.add(name(i));
      continue;
    }
    edges.push({ tail: name(i - 100), head: name(i) });
    if (i % 3 === 0) edges.push({ tail: name(i - 99), head: name(i) });
  }
  const vertices = Array.from({ length: VERTICES }, (_, i) =>
    starts.has(name(i))
      ? { name: name(i), script: 'ping -c 1 {host}', inputs: [{ name: 'host', type: 'IP' as const, required: true }] }
      : { name: name(i), script: 'echo {greeting}', inputs: [{ name: 'greeting', type: 'STRING' as const, default: `hello ${i}` }] },
  );
  return { vertices, edges, starts };
}

let t: TestApp;
beforeAll(async () => {
  // Reading 10,000 tracks and events in one query is what this test does on purpose.
  t = await startTestApp({ env: { MAX_QUERY_COST: '100000000' } });
});
afterAll(() => t?.stop());

describe('startPipeline on 10,000 vertices', () => {
  it('commits every track in its initial state and every event, numbered 1..10,001', { timeout: 120_000 }, async () => {
    const { vertices, edges, starts } = shape();
    const created = await t.request(CreateBigGraph, { name: 'big-start', vertices, edges });
    if (created.createGraph.__typename !== 'Graph') throw new Error(JSON.stringify(created.createGraph));
    const graphId = created.createGraph.id;
    const checked = await t.request(CheckGraph, { id: graphId });
    expect(checked.checkGraph).toMatchObject({ __typename: 'Graph', checked: true });

    const started = await t.request(StartBigPipeline, { graphId });
    if (started.startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(started.startPipeline));
    expect(started.startPipeline.state).toBe('RUNNING');
    const id = started.startPipeline.id;

    const first = (await t.request(BigPipeline, { id })).pipeline!;
    const rest = (await t.request(BigPipeline, { id, after: first.events.at(-1)!.id })).pipeline!;
    const events = [...first.events, ...rest.events];
    const tracks = first.tracks;

    // One track per vertex, each in the state its predecessors give it.
    expect(first.state).toBe('RUNNING');
    expect(tracks).toHaveLength(VERTICES);
    expect(new Set(tracks.map((track) => track.name)).size).toBe(VERTICES);
    for (const track of tracks) {
      const start = starts.has(track.name);
      expect({ name: track.name, state: track.state, needsInput: track.needsInput, attempt: track.attempt }).toEqual({
        name: track.name,
        state: start ? 'PENDING' : 'WAITING',
        needsInput: start,
        attempt: 1,
      });
      if (start) expect(track.script).toBeNull();
      else expect(track.script).toBe(`echo 'hello ${Number(track.name.slice(1))}'`);
    }

    // The journal: pipeline:started, then track:created for each track in id order, with
    // positions 1..10,001 and ids growing in the same order.
    expect(events).toHaveLength(VERTICES + 1);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: VERTICES + 1 }, (_, i) => i + 1));
    expect(events.every((e, i) => i === 0 || e.id > events[i - 1]!.id)).toBe(true);
    expect(events[0]).toMatchObject({ type: 'pipeline:started', pipelineState: 'RUNNING', trackId: null });
    const stateOf = new Map(tracks.map((track) => [track.id, track.state]));
    const trackIds = [...stateOf.keys()].sort((a, b) => a - b);
    expect(events.slice(1).map((e) => e.trackId)).toEqual(trackIds);
    for (const event of events.slice(1)) {
      expect(event).toMatchObject({ type: 'track:created', trackState: stateOf.get(event.trackId!), attempt: 1, pipelineState: null });
    }

    expect((await t.request(BigGraphSealed, { id: graphId })).graph).toEqual({ sealed: true });
  });

  it('keeps every character of scripts and values as written (PostgreSQL binds them in arrays)', async () => {
    const value = `He said "hi", {x} \\ back\\slash\nNULL 'q' é`;
    const script = `printf '%s' {v} # a,b {c} "NULL" \\ end`;
    const created = await t.request(CreateBigGraph, {
      name: 'hostile-text',
      vertices: [
        { name: 'plain', script, inputs: [{ name: 'v', type: 'STRING', default: value }] },
        { name: 'NULL', script: 'NULL', inputs: [{ name: 'w', type: 'STRING', required: true }] },
      ],
    });
    if (created.createGraph.__typename !== 'Graph') throw new Error(JSON.stringify(created.createGraph));
    await t.request(CheckGraph, { id: created.createGraph.id });
    const started = await t.request(StartBigPipeline, { graphId: created.createGraph.id });
    if (started.startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(started.startPipeline));
    const { tracks } = (await t.request(PipelineDetail, { id: started.startPipeline.id })).pipeline!;
    const byName = new Map(tracks.map((track) => [track.name, track]));
    expect(byName.get('plain')!.input).toEqual({ v: value });
    expect(byName.get('plain')!.script).toBe(`printf '%s' '${value.replaceAll("'", `'\\''`)}' # a,b {c} "NULL" \\ end`);
    expect(byName.get('NULL')).toMatchObject({ input: null, script: null, needsInput: true });
  });
});
