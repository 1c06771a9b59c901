/** Typed GraphQL documents shared by the tests and the benchmark (see codegen.ts). */
import { graphql } from '../../src/generated/gql/index.ts';

export const CreateGraph = graphql(`
  mutation CreateGraph($name: String!, $desc: String, $maxConcurrentPipelines: Int) {
    createGraph(name: $name, desc: $desc, maxConcurrentPipelines: $maxConcurrentPipelines) {
      __typename
      ... on Graph { id name desc checked sealed maxConcurrentPipelines }
      ... on Error { message field }
    }
  }
`);

export const CreateWholeGraph = graphql(`
  mutation CreateWholeGraph($name: String!, $vertices: [VertexInput!], $edges: [EdgeByName!]) {
    createGraph(name: $name, vertices: $vertices, edges: $edges) {
      __typename
      ... on Graph { id name vertices { name successors { name } } }
      ... on CycleError { path }
      ... on Error { message field }
    }
  }
`);

export const UpdateGraph = graphql(`
  mutation UpdateGraph($id: Int!, $input: GraphInput!) {
    updateGraph(id: $id, input: $input) {
      __typename
      ... on Graph { id name desc checked sealed maxConcurrentPipelines }
      ... on Error { message field }
    }
  }
`);

export const DeleteGraph = graphql(`
  mutation DeleteGraph($id: Int!) {
    deleteGraph(id: $id) {
      __typename
      ... on Deleted { id name }
      ... on Error { message field }
    }
  }
`);

export const CloneGraph = graphql(`
  mutation CloneGraph($id: Int!, $name: String) {
    cloneGraph(id: $id, name: $name) {
      __typename
      ... on Graph { id name checked sealed vertices { name } edges { tail { name } head { name } } }
      ... on Error { message field }
    }
  }
`);

export const AddVertex = graphql(`
  mutation AddVertex($graphId: Int!, $input: VertexInput!) {
    addVertex(graphId: $graphId, input: $input) {
      __typename
      ... on Vertex { id name script timeoutSeconds retries retryDelaySeconds retryBackoff inputs { name type required default choices pattern secret } }
      ... on Error { message field }
    }
  }
`);

export const UpdateVertex = graphql(`
  mutation UpdateVertex($id: Int!, $input: VertexInput!) {
    updateVertex(id: $id, input: $input) {
      __typename
      ... on Vertex { id name script timeoutSeconds retries retryDelaySeconds retryBackoff }
      ... on Error { message field }
    }
  }
`);

export const DeleteVertex = graphql(`
  mutation DeleteVertex($id: Int!) {
    deleteVertex(id: $id) {
      __typename
      ... on Deleted { id name }
      ... on Error { message field }
    }
  }
`);

export const AddEdge = graphql(`
  mutation AddEdge($tailId: Int!, $headId: Int!) {
    addEdge(tailId: $tailId, headId: $headId) {
      __typename
      ... on Edge { id tail { name } head { name } }
      ... on CycleError { path }
      ... on Error { message field }
    }
  }
`);

export const DeleteEdge = graphql(`
  mutation DeleteEdge($id: Int!) {
    deleteEdge(id: $id) {
      __typename
      ... on Deleted { id }
      ... on Error { message field }
    }
  }
`);

export const CheckGraph = graphql(`
  mutation CheckGraph($id: Int!) {
    checkGraph(id: $id) {
      __typename
      ... on Graph { id checked }
      ... on CycleError { path }
      ... on Error { message field }
    }
  }
`);

export const StartPipeline = graphql(`
  mutation StartPipeline($graphId: Int!, $name: String, $inputs: [VertexParams!]) {
    startPipeline(graphId: $graphId, name: $name, inputs: $inputs) {
      __typename
      ... on Pipeline { id name state tracks { id name state needsInput } }
      ... on Error { message field }
    }
  }
`);

export const FinishInput = graphql(`
  mutation FinishInput($trackId: Int!, $params: JSON!) {
    finishInput(trackId: $trackId, params: $params) {
      __typename
      ... on Track { id state needsInput input script }
      ... on Error { message field }
    }
  }
`);

export const CancelPipeline = graphql(`
  mutation CancelPipeline($id: Int!) {
    cancelPipeline(id: $id) {
      __typename
      ... on Pipeline { id state }
      ... on Error { message field }
    }
  }
`);

export const RetryPipeline = graphql(`
  mutation RetryPipeline($id: Int!) {
    retryPipeline(id: $id) {
      __typename
      ... on Pipeline { id state }
      ... on Error { message field }
    }
  }
`);

export const PipelineDetail = graphql(`
  query PipelineDetail($id: Int!) {
    pipeline(id: $id) {
      id name state finishedAt
      graph { id sealed }
      tracks { id name state needsInput input script output { text truncated complete size } exitCode reason attempt startedAt finishedAt }
    }
  }
`);

export const PipelineTrackNames = graphql(`
  query PipelineTrackNames($id: Int!) {
    pipeline(id: $id) { tracks { vertex { name } } }
  }
`);

export const GraphDetail = graphql(`
  query GraphDetail($id: Int!) {
    graph(id: $id) {
      id name desc checked sealed
      vertices { id name script timeoutSeconds inputSchema predecessors { name } successors { name } }
      edges { id tail { name } head { name } }
    }
  }
`);

export const Graphs = graphql(`
  query Graphs {
    graphs { id name checked sealed }
  }
`);

export const Pipelines = graphql(`
  query Pipelines($state: PipelineState, $graphId: Int, $first: Int, $after: Int) {
    pipelines(state: $state, graphId: $graphId, first: $first, after: $after) { id state }
  }
`);

export const Tracks = graphql(`
  query Tracks($pipelineId: Int, $states: [TrackState!], $excludePipelineStates: [PipelineState!]) {
    tracks(pipelineId: $pipelineId, states: $states, excludePipelineStates: $excludePipelineStates) { id name state }
  }
`);

export const TrackUpdated = graphql(`
  subscription TrackUpdated($pipelineId: Int!, $after: Int) {
    trackUpdated(pipelineId: $pipelineId, after: $after) {
      id type trackState attempt exitCode reason
      track { id name }
    }
  }
`);

export const PipelineUpdated = graphql(`
  subscription PipelineUpdated($pipelineId: Int!, $after: Int) {
    pipelineUpdated(pipelineId: $pipelineId, after: $after) { id type pipelineState reason }
  }
`);

export const TrackOutput = graphql(`
  subscription TrackOutput($trackId: Int!) {
    trackOutput(trackId: $trackId) { trackId attempt stream line }
  }
`);

export const CreateSchedule = graphql(`
  mutation CreateSchedule($graphId: Int!, $input: ScheduleInput!) {
    createSchedule(graphId: $graphId, input: $input) {
      __typename
      ... on Schedule { id name cron timeZone inputs overlap misfireGraceSeconds paused nextRunAt graph { id } }
      ... on Error { message field }
    }
  }
`);

export const UpdateSchedule = graphql(`
  mutation UpdateSchedule($id: Int!, $graphId: Int, $input: ScheduleInput!) {
    updateSchedule(id: $id, graphId: $graphId, input: $input) {
      __typename
      ... on Schedule { id name cron timeZone inputs overlap misfireGraceSeconds paused nextRunAt graph { id } }
      ... on Error { message field }
    }
  }
`);

export const DeleteSchedule = graphql(`
  mutation DeleteSchedule($id: Int!) {
    deleteSchedule(id: $id) {
      __typename
      ... on Deleted { id name }
      ... on Error { message field }
    }
  }
`);

export const ScheduleTicks = graphql(`
  query ScheduleTicks($id: Int!, $first: Int) {
    schedule(id: $id) {
      id name paused nextRunAt lastTickAt
      ticks(first: $first) { id tickAt outcome count reason recordedAt pipeline { id idempotencyKey createdAt state schedule { id } } }
    }
  }
`);

export const DeletePipeline = graphql(`
  mutation DeletePipeline($id: Int!) {
    deletePipeline(id: $id) {
      __typename
      ... on Deleted { id name }
      ... on ForbiddenError { role requiredRole }
      ... on Error { message field }
    }
  }
`);
