/**
 * The example graph of the README tour: a "web server check" that only touches loopback.
 * It checks this very service: is the port open, does /health answer, then a report that
 * waits for an operator's name.
 *
 *   npx tsx examples/web-server-check.ts [http://127.0.0.1:4000/graphql]
 *
 * builds it through the GraphQL API with typed documents and prints the graph id.
 */
import { print } from 'graphql';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { graphql } from '../src/generated/gql/index.ts';

/** Both checks take the server's address; the defaults are the service's own. */
const SERVER_INPUTS = [
  { name: 'ip', type: 'IP' as const, default: '127.0.0.1', description: 'Address of the server (loopback).' },
  { name: 'port', type: 'INTEGER' as const, default: 4000, description: 'TCP port of the server.' },
];

export const WEB_SERVER_CHECK = {
  name: 'web server check',
  desc: 'Is the web server on loopback up and healthy? Then report.',
  vertices: [
    {
      name: 'port-open',
      script: 'exec 3<>/dev/tcp/{ip}/{port}\necho "port $INPUT_PORT on $INPUT_IP accepts connections"',
      timeoutSeconds: 10,
      inputs: SERVER_INPUTS,
    },
    {
      name: 'health',
      script: 'curl --fail --silent --show-error --max-time 5 "http://$INPUT_IP:$INPUT_PORT/health"\necho',
      timeoutSeconds: 10,
      inputs: SERVER_INPUTS,
    },
    {
      name: 'report',
      script: 'echo "web server check passed; report signed by" {operator}',
      timeoutSeconds: 10,
      inputs: [{ name: 'operator', type: 'STRING' as const, required: true, description: 'Who signs the report.' }],
    },
  ],
  edges: [
    ['port-open', 'health'],
    ['health', 'report'],
  ] as Array<[string, string]>,
};

const CreateExampleGraph = graphql(`
  mutation CreateExampleGraph($name: String!, $desc: String) {
    createGraph(name: $name, desc: $desc) { __typename ... on Graph { id } ... on Error { message field } }
  }
`);
const AddExampleVertex = graphql(`
  mutation AddExampleVertex($graphId: Int!, $input: VertexInput!) {
    addVertex(graphId: $graphId, input: $input) { __typename ... on Vertex { id } ... on Error { message field } }
  }
`);
const AddExampleEdge = graphql(`
  mutation AddExampleEdge($tailId: Int!, $headId: Int!) {
    addEdge(tailId: $tailId, headId: $headId) { __typename ... on Error { message field } }
  }
`);
const CheckExampleGraph = graphql(`
  mutation CheckExampleGraph($id: Int!) {
    checkGraph(id: $id) { __typename ... on Error { message field } }
  }
`);

async function call<R, V>(url: string, document: TypedDocumentNode<R, V>, variables: V): Promise<R> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: print(document), variables }),
  });
  const result = (await response.json()) as { data?: R; errors?: unknown[] };
  if (result.errors) throw new Error(JSON.stringify(result.errors));
  return result.data!;
}

function ok<T extends { __typename?: string; message?: string }>(result: T, what: string): T {
  if ('message' in result && result.message) throw new Error(`${what}: ${result.message}`);
  return result;
}

/** Creates, fills and checks the example graph; returns its id. */
export async function loadWebServerCheck(url: string, name = WEB_SERVER_CHECK.name): Promise<number> {
  const created = ok((await call(url, CreateExampleGraph, { name, desc: WEB_SERVER_CHECK.desc })).createGraph, 'createGraph');
  if (created.__typename !== 'Graph') throw new Error('createGraph failed');
  const ids = new Map<string, number>();
  for (const vertex of WEB_SERVER_CHECK.vertices) {
    const added = ok((await call(url, AddExampleVertex, { graphId: created.id, input: vertex })).addVertex, vertex.name);
    if (added.__typename !== 'Vertex') throw new Error('addVertex failed');
    ids.set(vertex.name, added.id);
  }
  for (const [tail, head] of WEB_SERVER_CHECK.edges) {
    ok((await call(url, AddExampleEdge, { tailId: ids.get(tail)!, headId: ids.get(head)! })).addEdge, `${tail} -> ${head}`);
  }
  ok((await call(url, CheckExampleGraph, { id: created.id })).checkGraph, 'checkGraph');
  return created.id;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const url = process.argv[2] ?? 'http://127.0.0.1:4000/graphql';
  loadWebServerCheck(url).then(
    (id) => console.log(`Loaded "${WEB_SERVER_CHECK.name}" as graph ${id}.`),
    (error: unknown) => {
      console.error(`Could not load the example: ${(error as Error).message}`);
      process.exit(1);
    },
  );
}
