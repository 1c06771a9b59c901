/**
 * The in-process event bus. Topics are "domain:action" and keyed by the id subscribers
 * filter on. Only src/store/transaction.ts publishes transitions, after commit.
 */
import { createPubSub } from 'graphql-yoga';
import type { Event } from './generated/prisma/client.ts';

export interface OutputLine {
  trackId: number;
  attempt: number;
  stream: 'stdout' | 'stderr';
  line: string;
}

export type Topics = {
  /** A committed event of a pipeline (track or pipeline transition). */
  'pipeline:event': [pipelineId: number, event: Event];
  /** A line a running track printed, live (it is stored when the track ends). */
  'track:output': [trackId: number, line: OutputLine];
};

export type PubSub = ReturnType<typeof createPubSub<Topics>>;

export function createBus(): PubSub {
  return createPubSub<Topics>();
}
