/**
 * The GraphQL operations pipectl sends, as typed documents (see codegen.ts: `npm run
 * generate` turns them into types). Every name starts with "Cli" so they cannot collide
 * with the tests' documents in the one generated module.
 */
import { graphql } from '../generated/gql/index.ts';

export const CliGraphs = graphql(`
  query CliGraphs {
    graphs {
      id name desc checked sealed
      vertices { id }
      pipelines(first: 1) { id state createdAt }
    }
  }
`);

/** Names and ids only: resolving a graph given by name. */
export const CliGraphNames = graphql(`
  query CliGraphNames {
    graphs { id name sealed checked }
  }
`);

/** What start needs: the vertices and their declared parameters (for --input and prompts). */
export const CliGraphForStart = graphql(`
  query CliGraphForStart($id: Int!) {
    graph(id: $id) {
      id name checked sealed
      vertices {
        id name
        inputs { name type required default choices pattern secret description from }
      }
    }
  }
`);

export const CliImportGraph = graphql(`
  mutation CliImportGraph($definition: String!, $format: DefinitionFormat, $name: String, $updateSchedules: Boolean) {
    importGraph(definition: $definition, format: $format, name: $name, updateSchedules: $updateSchedules) {
      __typename
      ... on Graph { id name vertices { id } edges { id } schedules { id name cron timeZone paused nextRunAt } }
      ... on CycleError { path }
      ... on Error { message field }
    }
  }
`);

export const CliCheckGraph = graphql(`
  mutation CliCheckGraph($id: Int!) {
    checkGraph(id: $id) {
      __typename
      ... on Graph { id checked }
      ... on CycleError { path }
      ... on Error { message field }
    }
  }
`);

export const CliStartPipeline = graphql(`
  mutation CliStartPipeline($graphId: Int!, $name: String, $inputs: [VertexParams!], $idempotencyKey: String) {
    startPipeline(graphId: $graphId, name: $name, inputs: $inputs, idempotencyKey: $idempotencyKey) {
      __typename
      ... on Pipeline { id name state idempotencyKey tracks { id name state needsInput blockedBy { missingParams } } }
      ... on Error { message field }
    }
  }
`);

export const CliCancelPipeline = graphql(`
  mutation CliCancelPipeline($id: Int!) {
    cancelPipeline(id: $id) {
      __typename
      ... on Pipeline { id name state }
      ... on Error { message field }
    }
  }
`);

/** Before a retry: what it will put back into play, and the journal's end (pages of ids). */
export const CliRetryPlan = graphql(`
  query CliRetryPlan($id: Int!, $after: Int!, $first: Int!) {
    pipeline(id: $id) {
      id state
      tracks { id name attempt }
      events(after: $after, first: $first) { id }
    }
  }
`);

export const CliRetryPipeline = graphql(`
  mutation CliRetryPipeline($id: Int!, $from: [String!]) {
    retryPipeline(id: $id, from: $from) {
      __typename
      ... on Pipeline { id name state tracks { id name attempt } }
      ... on Error { message field }
    }
  }
`);

/** One transition, as both subscriptions and the journal deliver it. */
export const CliEventFields = graphql(`
  fragment CliEventFields on Event {
    id type createdAt
    pipelineState
    trackId trackState attempt exitCode reason
    track { id name needsInput blockedBy { missingParams } }
  }
`);

/** The pipeline watch starts from: its tracks (names, order) and what their vertices declare. */
export const CliPipelineSnapshot = graphql(`
  query CliPipelineSnapshot($id: Int!) {
    pipeline(id: $id) {
      id name state createdAt finishedAt
      graph {
        id name
        vertices { name runIf inputs { name required default secret from } }
      }
      tracks { id name state attempt needsInput startedAt finishedAt exitCode reason blockedBy { missingParams } }
    }
  }
`);

/** The journal after a cursor: closes any gap between the two subscriptions at the end. */
export const CliPipelineJournal = graphql(`
  query CliPipelineJournal($id: Int!, $after: Int!, $first: Int!) {
    pipeline(id: $id) {
      id state
      events(after: $after, first: $first) { ...CliEventFields }
    }
  }
`);

export const CliTrackUpdated = graphql(`
  subscription CliTrackUpdated($pipelineId: Int!, $after: Int) {
    trackUpdated(pipelineId: $pipelineId, after: $after) { ...CliEventFields }
  }
`);

export const CliPipelineUpdated = graphql(`
  subscription CliPipelineUpdated($pipelineId: Int!, $after: Int) {
    pipelineUpdated(pipelineId: $pipelineId, after: $after) { ...CliEventFields }
  }
`);

/** A track as logs sees it (the output API is used only by output.ts). */
export const CliTrackInfo = graphql(`
  query CliTrackInfo($id: Int!) {
    track(id: $id) { id name state attempt pipeline { id } }
  }
`);

/** One page of an attempt's output from a byte offset (limit: about that many bytes). */
export const CliOutputPage = graphql(`
  query CliOutputPage($id: Int!, $offset: Int, $limit: Int, $attempt: Int) {
    track(id: $id) {
      id
      output(offset: $offset, limit: $limit, attempt: $attempt) {
        attempt offset nextOffset size complete truncated
        lines { line offset }
      }
    }
  }
`);

/** The stored lines of the current attempt from a byte offset, then live ones. */
export const CliTrackOutput = graphql(`
  subscription CliTrackOutput($trackId: Int!, $offset: Int) {
    trackOutput(trackId: $trackId, offset: $offset) { attempt line offset }
  }
`);

/** Schedules as `pipectl schedules` lists them, with their latest tick. */
export const CliSchedules = graphql(`
  query CliSchedules($graphId: Int) {
    schedules(graphId: $graphId) {
      id name cron timeZone paused nextRunAt
      graph { id name }
      ticks(first: 1) { outcome tickAt reason pipeline { id } }
    }
  }
`);

export const CliPauseSchedule = graphql(`
  mutation CliPauseSchedule($id: Int!, $paused: Boolean!) {
    updateSchedule(id: $id, input: { paused: $paused }) {
      __typename
      ... on Schedule { id name paused nextRunAt timeZone graph { id name } }
      ... on Error { message field }
    }
  }
`);
