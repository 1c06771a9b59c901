/**
 * Loads the README tour's example graph (examples/web-server-check.graphql) through the
 * GraphQL API and checks it:
 *
 *   npx tsx examples/web-server-check.ts [http://127.0.0.1:4000/graphql]
 */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import { CheckWebServerCheckDocument, CreateWebServerCheckDocument } from '../src/generated/gql/graphql.ts';

async function call<R, V>(url: string, document: TypedDocumentNode<R, V>, variables?: V): Promise<R> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: print(document), variables }),
  });
  const result = (await response.json()) as { data?: R; errors?: Array<{ message: string }> };
  if (result.errors) throw new Error(result.errors.map((e) => e.message).join('; '));
  return result.data!;
}

/** Creates and checks the example graph; returns its id. */
export async function loadWebServerCheck(url: string): Promise<number> {
  const { createGraph } = await call(url, CreateWebServerCheckDocument);
  if (createGraph.__typename !== 'Graph') throw new Error(`createGraph: ${createGraph.message} (${createGraph.field})`);
  const { checkGraph } = await call(url, CheckWebServerCheckDocument, { id: createGraph.id });
  if (checkGraph.__typename !== 'Graph') throw new Error(`checkGraph: ${checkGraph.message} (${checkGraph.field})`);
  return createGraph.id;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const url = process.argv[2] ?? 'http://127.0.0.1:4000/graphql';
  loadWebServerCheck(url).then(
    (id) => console.log(`Loaded "web server check" as graph ${id}.`),
    (error: unknown) => {
      console.error(`Could not load the example: ${(error as Error).message}`);
      process.exit(1);
    },
  );
}
