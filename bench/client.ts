/** A small GraphQL client for the benchmark: typed documents over HTTP, graphql-ws for events. */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type ExecutionResult } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import type { PipelineState } from '../src/generated/gql/graphql.ts';
import { PipelineUpdated } from '../test/helpers/operations.ts';

export class GraphQLClient {
  constructor(readonly url: string) {}

  /** Posts one operation; returns the raw result (data and errors). */
  async post<R>(query: string, variables?: unknown): Promise<ExecutionResult<R>> {
    const response = await fetch(this.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
      body: JSON.stringify({ query, variables }),
    });
    return (await response.json()) as ExecutionResult<R>;
  }

  /** Runs a typed document; throws on GraphQL errors. */
  async request<R, V>(document: TypedDocumentNode<R, V>, variables?: V): Promise<R> {
    return this.data(await this.post<R>(print(document), variables));
  }

  /** Runs a document built at run time (e.g. many aliased mutations); throws on GraphQL errors. */
  async requestRaw<R>(query: string, variables?: unknown): Promise<R> {
    return this.data(await this.post<R>(query, variables));
  }

  private data<R>(result: ExecutionResult<R>): R {
    if (result.errors?.length || !result.data) throw new Error(`GraphQL errors: ${JSON.stringify(result.errors)}`);
    return result.data;
  }
}

/** A connected graphql-ws client (the handshake is done before anything is timed). */
export async function connectWs(httpUrl: string): Promise<Client> {
  const client = createClient({ url: httpUrl.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, lazy: false });
  await new Promise<void>((resolve, reject) => {
    const offConnected = client.on('connected', () => {
      offConnected();
      offError();
      resolve();
    });
    const offError = client.on('error', (error) => {
      offConnected();
      offError();
      reject(error instanceof Error ? error : new Error(`graphql-ws: ${String(error)}`));
    });
  });
  return client;
}

export interface PipelineEnd {
  state: PipelineState;
  /** performance.now() when the event arrived here. */
  at: number;
  reason: string | null | undefined;
}

/**
 * Follows pipelineUpdated with after: 0 (so an end committed before the subscription is
 * replayed, not missed) and resolves at the first terminal state: FINISH, FAILED or CANCELLED.
 */
export function pipelineEnd(client: Client, pipelineId: number, timeoutMs: number): Promise<PipelineEnd> {
  return new Promise<PipelineEnd>((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      unsubscribe();
      fn();
    };
    const timer = setTimeout(
      () => settle(() => reject(new Error(`pipeline ${pipelineId} did not end within ${timeoutMs} ms`))),
      timeoutMs,
    );
    const unsubscribe = client.subscribe<{ pipelineUpdated: { pipelineState?: PipelineState | null; reason?: string | null } }>(
      { query: print(PipelineUpdated), variables: { pipelineId, after: 0 } },
      {
        next: (value) => {
          const at = performance.now();
          if (value.errors?.length) {
            settle(() => reject(new Error(`pipelineUpdated: ${JSON.stringify(value.errors)}`)));
            return;
          }
          const event = value.data?.pipelineUpdated;
          const state = event?.pipelineState;
          if (state === 'FINISH' || state === 'FAILED' || state === 'CANCELLED') {
            settle(() => resolve({ state, at, reason: event?.reason }));
          }
        },
        error: (error) =>
          settle(() => reject(error instanceof Error ? error : new Error(`pipelineUpdated: ${JSON.stringify(error)}`))),
        complete: () => settle(() => reject(new Error(`pipelineUpdated for ${pipelineId} completed without an end state`))),
      },
    );
  });
}
