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

/** (e) What each fan-out subscriber selects: what a UI needs to colour a step. */
export const BenchFanOutTrackUpdated = graphql(`
  subscription BenchFanOutTrackUpdated($pipelineId: Int!, $after: Int) {
    trackUpdated(pipelineId: $pipelineId, after: $after) { id type trackId trackState createdAt }
  }
`);

/** (e) The journal a fan-out run is checked against, and the tracks waiting for input. */
export const BenchFanOutJournal = graphql(`
  query BenchFanOutJournal($id: Int!, $after: Int) {
    pipeline(id: $id) {
      state
      events(after: $after, first: 10000) { id type trackId createdAt }
      tracks { id needsInput }
    }
  }
`);

/** (e) Releases one track held for its input: the fan-out run starts with these. */
export const BenchFinishInput = graphql(`
  mutation BenchFinishInput($trackId: Int!, $params: JSON!) {
    finishInput(trackId: $trackId, params: $params) {
      __typename
      ... on Track { id }
      ... on Error { message field }
    }
  }
`);

/** (h) The same start, asking for every track in the response. */
export const BenchStartPipelineWithTracks = graphql(`
  mutation BenchStartPipelineWithTracks($graphId: Int!, $name: String) {
    startPipeline(graphId: $graphId, name: $name) {
      __typename
      ... on Pipeline { id state tracks { id state } }
      ... on Error { message field }
    }
  }
`);
