/**
 * Typed documents only the benchmark needs (see codegen.ts); the shared ones live in
 * test/helpers/operations.ts. Lean selections, so a timed mutation measures the engine,
 * not the serialisation of 10,000 tracks in its response.
 */
import { graphql } from '../src/generated/gql/index.ts';

export const BenchStartPipeline = graphql(`
  mutation BenchStartPipeline($graphId: Int!, $name: String) {
    startPipeline(graphId: $graphId, name: $name) {
      __typename
      ... on Pipeline { id state }
      ... on Error { message field }
    }
  }
`);
