/**
 * Loads the README tour's example graph, the definition file examples/web-server-check.yaml,
 * through the GraphQL API (importGraph) and checks it:
 *
 *   PIPECTL_TOKEN=dp_... npx tsx examples/web-server-check.ts [http://127.0.0.1:4000/graphql]
 *
 * The URL defaults to PIPECTL_URL, as for pipectl. The checks look at port 4000 unless
 * the start gives them another (see the comment in the YAML file).
 */
import { readFileSync } from 'node:fs';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import { graphql } from '../src/generated/gql/index.ts';

export const WEB_SERVER_CHECK = new URL('./web-server-check.yaml', import.meta.url);

const ImportExample = graphql(`
  mutation ImportExample($definition: String!, $name: String) {
    importGraph(definition: $definition, name: $name) {
      __typename
      ... on Graph { id name }
      ... on Error { field message }
    }
  }
`);

const CheckExample = graphql(`
  mutation CheckExample($id: Int!) {
    checkGraph(id: $id) {
      __typename
      ... on Graph { id checked }
      ... on Error { field message }
    }
  }
`);

/** With authentication on, the token (an admin's: importGraph defines a graph) comes from PIPECTL_TOKEN. */
async function call<R, V>(url: string, document: TypedDocumentNode<R, V>, variables?: V): Promise<R> {
  const token = process.env.PIPECTL_TOKEN;
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token && { authorization: `Bearer ${token}` }) },
    body: JSON.stringify({ query: print(document), variables }),
  });
  const result = (await response.json()) as { data?: R; errors?: Array<{ message: string }> };
  if (result.errors) throw new Error(result.errors.map((e) => e.message).join('; '));
  return result.data!;
}

/** Imports and checks the example graph (optionally under another name); returns its id. */
export async function loadWebServerCheck(url: string, name?: string): Promise<number> {
  const definition = readFileSync(WEB_SERVER_CHECK, 'utf8');
  const { importGraph } = await call(url, ImportExample, { definition, name });
  if (importGraph.__typename !== 'Graph') throw new Error(`importGraph: ${importGraph.message} (${importGraph.field})`);
  const { checkGraph } = await call(url, CheckExample, { id: importGraph.id });
  if (checkGraph.__typename !== 'Graph') throw new Error(`checkGraph: ${checkGraph.message} (${checkGraph.field})`);
  return importGraph.id;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // The same server as pipectl's: the argument, else PIPECTL_URL, else the default.
  const url = process.argv[2] ?? process.env.PIPECTL_URL ?? 'http://127.0.0.1:4000/graphql';
  loadWebServerCheck(url).then(
    (id) => console.log(`Loaded "web server check" from ${WEB_SERVER_CHECK.pathname} as graph ${id}.`),
    (error: unknown) => {
      console.error(`Could not load the example: ${(error as Error).message}`);
      process.exit(1);
    },
  );
}
