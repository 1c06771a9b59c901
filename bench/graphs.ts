/**
 * Layered graphs for the benchmark: layers of `width` vertices, every vertex of a layer
 * joined to every vertex of the next. Built through the GraphQL API (many aliased
 * mutations per request) or, for the large one, directly with the Prisma client.
 */
import type { Db } from '../src/db.ts';
import { CheckGraph, CreateGraph } from '../test/helpers/operations.ts';
import type { GraphQLClient } from './client.ts';

export interface LayeredShape {
  vertices: number;
  width: number;
}

export interface BuiltGraph {
  graphId: number;
  vertexCount: number;
  edgeCount: number;
}

/** Vertex names and edges (as vertex indexes) of a layered shape, in layer order. */
export function layeredShape({ vertices, width }: LayeredShape) {
  const names = Array.from({ length: vertices }, (_, i) => `L${String(Math.floor(i / width)).padStart(5, '0')}-${i % width}`);
  const edges: Array<[number, number]> = [];
  for (let start = 0; start + width < vertices; start += width) {
    const nextEnd = Math.min(start + 2 * width, vertices);
    for (let tail = start; tail < start + width; tail++) {
      for (let head = start + width; head < nextEnd; head++) edges.push([tail, head]);
    }
  }
  return { names, edges };
}

type Outcome = { __typename: string; id?: number; message?: string };

/** Sends `items` as aliased mutations, `perRequest` to a request, in order; returns results in order. */
async function batched<T>(
  client: GraphQLClient,
  items: readonly T[],
  perRequest: number,
  typename: string,
  field: (item: T) => string,
): Promise<Outcome[]> {
  const results: Outcome[] = [];
  for (let i = 0; i < items.length; i += perRequest) {
    const chunk = items.slice(i, i + perRequest);
    const body = chunk.map((item, k) => `m${k}: ${field(item)} { __typename ... on ${typename} { id } ... on Error { message } }`);
    const data = await client.requestRaw<Record<string, Outcome>>(`mutation {\n${body.join('\n')}\n}`);
    chunk.forEach((_, k) => results.push(data[`m${k}`]!));
  }
  return results;
}

function expectIds(outcomes: readonly Outcome[], typename: string, what: string): number[] {
  return outcomes.map((o, i) => {
    if (o.__typename !== typename || o.id === undefined) throw new Error(`${what} #${i} failed: ${JSON.stringify(o)}`);
    return o.id;
  });
}

/** createGraph, addVertex for each vertex, addEdge for each edge, checkGraph: all over HTTP. */
export async function buildLayeredGraphViaApi(
  client: GraphQLClient,
  name: string,
  shape: LayeredShape,
  script = 'true',
): Promise<BuiltGraph> {
  const created = await client.request(CreateGraph, { name });
  if (created.createGraph.__typename !== 'Graph') throw new Error(`createGraph failed: ${JSON.stringify(created.createGraph)}`);
  const graphId = created.createGraph.id;
  const { names, edges } = layeredShape(shape);

  const vertexIds = expectIds(
    await batched(client, names, 250, 'Vertex', (n) => `addVertex(graphId: ${graphId}, input: { name: ${JSON.stringify(n)}, script: ${JSON.stringify(script)} })`),
    'Vertex',
    'addVertex',
  );
  expectIds(
    await batched(client, edges, 500, 'Edge', ([t, h]) => `addEdge(tailId: ${vertexIds[t]}, headId: ${vertexIds[h]})`),
    'Edge',
    'addEdge',
  );
  const checked = await client.request(CheckGraph, { id: graphId });
  if (checked.checkGraph.__typename !== 'Graph' || !checked.checkGraph.checked) {
    throw new Error(`checkGraph failed: ${JSON.stringify(checked.checkGraph)}`);
  }
  return { graphId, vertexCount: names.length, edgeCount: edges.length };
}

/** The same shape written straight to the database, marked checked; for graphs too big to build by API. */
export async function buildLayeredGraphWithPrisma(db: Db, name: string, shape: LayeredShape, script = 'true'): Promise<BuiltGraph> {
  const { names, edges } = layeredShape(shape);
  return db.$transaction(
    async (tx) => {
      const graph = await tx.graph.create({ data: { name, checked: true } });
      const ids: number[] = [];
      for (let i = 0; i < names.length; i += 2000) {
        const rows = await tx.vertex.createManyAndReturn({
          data: names.slice(i, i + 2000).map((n) => ({ graphId: graph.id, name: n, script })),
          select: { id: true, name: true },
        });
        const byName = new Map(rows.map((r) => [r.name, r.id]));
        for (const n of names.slice(i, i + 2000)) ids.push(byName.get(n)!);
      }
      for (let i = 0; i < edges.length; i += 5000) {
        await tx.edge.createMany({
          data: edges.slice(i, i + 5000).map(([t, h]) => ({ graphId: graph.id, tailId: ids[t]!, headId: ids[h]! })),
        });
      }
      return { graphId: graph.id, vertexCount: names.length, edgeCount: edges.length };
    },
    { timeout: 120_000 },
  );
}
