/** Seed factories: build graphs through the real API. */
import { expect } from 'vitest';
import type { VertexInput } from '../../src/generated/gql/graphql.ts';
import { AddEdge, AddVertex, CheckGraph, CreateGraph } from './operations.ts';
import type { GraphQLClient } from './test-app.ts';

export interface GraphSpec {
  name?: string;
  vertices: Record<string, Omit<VertexInput, 'name'>>;
  /** [tail, head] pairs by vertex name. */
  edges?: Array<[string, string]>;
  /** Run checkGraph at the end (default true). */
  check?: boolean;
  /** SPEC rule 14 (default: no limit). */
  maxConcurrentPipelines?: number;
}

let counter = 0;

export async function seedGraph(t: GraphQLClient, spec: GraphSpec) {
  const created = await t.request(CreateGraph, {
    name: spec.name ?? `graph-${process.pid}-${++counter}`,
    maxConcurrentPipelines: spec.maxConcurrentPipelines ?? null,
  });
  if (created.createGraph.__typename !== 'Graph') throw new Error(JSON.stringify(created));
  const graphId = created.createGraph.id;
  const ids: Record<string, number> = {};
  for (const [name, input] of Object.entries(spec.vertices)) {
    const added = await t.request(AddVertex, { graphId, input: { name, ...input } });
    if (added.addVertex.__typename !== 'Vertex') throw new Error(JSON.stringify(added));
    ids[name] = added.addVertex.id;
  }
  for (const [tail, head] of spec.edges ?? []) {
    const edge = await t.request(AddEdge, { tailId: ids[tail]!, headId: ids[head]! });
    if (edge.addEdge.__typename !== 'Edge') throw new Error(JSON.stringify(edge));
  }
  if (spec.check !== false) {
    const checked = await t.request(CheckGraph, { id: graphId });
    expect(checked.checkGraph).toMatchObject({ __typename: 'Graph', checked: true });
  }
  return { graphId, ids };
}

/** The SPEC seed scenario: A -> B, A -> C, B -> D, C -> D, and isolated E. */
export function seedScenario(scripts: Partial<Record<'A' | 'B' | 'C' | 'D' | 'E', string>> = {}): GraphSpec {
  const vertex = (name: 'A' | 'B' | 'C' | 'D' | 'E') => ({ script: scripts[name] ?? `echo ${name}` });
  return {
    vertices: { A: vertex('A'), B: vertex('B'), C: vertex('C'), D: vertex('D'), E: vertex('E') },
    edges: [
      ['A', 'B'],
      ['A', 'C'],
      ['B', 'D'],
      ['C', 'D'],
    ],
  };
}

/** Polls until `check` returns a value (not undefined) or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 15_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
