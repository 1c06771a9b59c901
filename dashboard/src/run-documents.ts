/**
 * The run page's GraphQL documents (typed by codegen). The event carries its track as it is
 * now, so a row updates from the event itself without another request.
 */
import { graphql } from './generated';

/** A track without why it waits: the snapshot's tracks (see PipelineLiveDocument). */
export const RunTrackStateFields = graphql(`
  fragment RunTrackState on Track {
    id
    name
    state
    attempt
    startedAt
    finishedAt
    exitCode
    reason
    needsInput
  }
`);

export const RunTrackFields = graphql(`
  fragment RunTrack on Track {
    ...RunTrackState
    blockedBy {
      ...RunBlockedBy
    }
  }
`);

export const RunBlockedByFields = graphql(`
  fragment RunBlockedBy on BlockedReason {
    kind
    message
    missingParams
    until
    tracks {
      name
    }
  }
`);

/**
 * Why each track waits, as of `cursor`. A track's blockedBy also changes without an event of
 * its own (a predecessor succeeded, the pipeline failed): the page reads them again after
 * such events.
 */
export const RunBlockedDocument = graphql(`
  query RunBlocked($id: Int!) {
    pipeline(id: $id) {
      cursor
      tracks {
        id
        blockedBy {
          ...RunBlockedBy
        }
      }
    }
  }
`);

/**
 * The snapshot leaves out the tracks' blockedBy: resolving it for every track is most of the
 * service's time for a big run (200 tracks: 0.2 s of 0.25 s), and the page reads it with
 * RunBlockedDocument right after drawing the snapshot, as it does after events.
 */
export const PipelineLiveDocument = graphql(`
  subscription RunPipelineLive($pipelineId: Int!, $after: Int) {
    pipelineLive(pipelineId: $pipelineId, after: $after) {
      snapshot {
        id
        name
        state
        desc
        createdAt
        finishedAt
        cursor
        blockedBy {
          kind
          message
        }
        graph {
          id
          name
          ...DagGraph
        }
        tracks {
          ...RunTrackState
          attempts {
            attempt
            state
            startedAt
            finishedAt
            exitCode
            reason
          }
        }
      }
      event {
        id
        type
        pipelineState
        trackId
        trackState
        attempt
        reason
        exitCode
        createdAt
        pipeline {
          finishedAt
          blockedBy {
            kind
            message
          }
        }
        track {
          ...RunTrack
        }
      }
    }
  }
`);

export const CancelRunDocument = graphql(`
  mutation CancelRun($id: Int!) {
    cancelPipeline(id: $id) {
      __typename
      ... on Pipeline {
        id
        state
      }
      ... on Error {
        message
        field
      }
    }
  }
`);

export const RetryRunDocument = graphql(`
  mutation RetryRun($id: Int!, $from: [String!]) {
    retryPipeline(id: $id, from: $from) {
      __typename
      ... on Pipeline {
        id
        state
      }
      ... on Error {
        message
        field
      }
    }
  }
`);
