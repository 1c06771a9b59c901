/**
 * Sealed graphs, loaded once: adjacency plus the vertex facts the executor needs. Safe to
 * cache even across several executor processes: a graph that has pipelines is sealed and
 * never changes again.
 */
import { buildDag, type Dag } from '../engine/dag.ts';
import type { Db } from '../db.ts';
import { parseInputSchema, type InputSchema } from '../engine/inputs.ts';
import type { RetryPolicy } from '../engine/retry-policy.ts';
import type { RunIf } from '../engine/run-conditions.ts';
import { secretOutputs } from '../engine/secrets.ts';
import type { Tx } from './transaction.ts';

export interface VertexFacts {
  graphId: number;
  name: string;
  timeoutSeconds: number;
  /** Its parameters (which ones are secret, for masking). */
  inputs: InputSchema;
  /** Its automatic retries (SPEC rule 13). */
  retry: RetryPolicy;
  /** When it runs (SPEC rule 19). */
  runIf: RunIf;
  /** Its outputs that a secret input reads (SPEC rule 18): masked where they are shown. */
  secretOutputs: ReadonlySet<string>;
}

/** A vertex's facts as read from its row, before the graph-wide ones are added. */
export type VertexRow = Omit<VertexFacts, 'secretOutputs'>;

/** The sealed graph of these vertices (by id) and its DAG. */
export function sealedGraphOf(dag: Dag, vertices: ReadonlyArray<readonly [number, VertexRow]>): SealedGraph {
  const secret = secretOutputs(vertices.map(([, v]) => v));
  const none: ReadonlySet<string> = new Set();
  return { dag, vertices: new Map(vertices.map(([id, v]) => [id, { ...v, secretOutputs: secret.get(v.name) ?? none }])) };
}

export interface SealedGraph {
  dag: Dag;
  vertices: ReadonlyMap<number, VertexFacts>;
}

export class DagCache {
  private readonly graphs = new Map<number, SealedGraph>();
  private readonly graphOfVertex = new Map<number, number>();
  private readonly loading = new WeakMap<Db | Tx, Map<number, Promise<SealedGraph>>>();

  constructor(private readonly capacity = 256) {}

  async get(db: Db | Tx, graphId: number): Promise<SealedGraph> {
    const cached = this.graphs.get(graphId);
    if (cached) {
      // Refresh recency: Map iteration order is insertion order.
      this.graphs.delete(graphId);
      this.graphs.set(graphId, cached);
      return cached;
    }
    // The tracks of one request (their outputs, say) ask at once: one load for all of them.
    // Only loads through the same client are shared: one in a transaction must not wait
    // for a query outside it, which on SQLite may wait for that very transaction.
    let loading = this.loading.get(db);
    if (!loading) this.loading.set(db, (loading = new Map()));
    const inFlight = loading.get(graphId);
    if (inFlight) return inFlight;
    const load = this.load(db, graphId).finally(() => loading.delete(graphId));
    loading.set(graphId, load);
    return load;
  }

  private async load(db: Db | Tx, graphId: number): Promise<SealedGraph> {
    const [vertices, edges] = await Promise.all([
      db.vertex.findMany({ where: { graphId }, select: { id: true, name: true, timeoutSeconds: true, input: true, retries: true, retryDelaySeconds: true, retryBackoff: true, runIf: true }, orderBy: { id: 'asc' } }),
      db.edge.findMany({ where: { graphId }, select: { tailId: true, headId: true } }),
    ]);
    const graph = sealedGraphOf(
      buildDag(
        vertices.map((v) => v.id),
        edges,
      ),
      vertices.map((v) => [
        v.id,
        {
          graphId,
          name: v.name,
          timeoutSeconds: v.timeoutSeconds,
          inputs: parseInputSchema(v.input, `vertex ${v.name} input`),
          retry: { retries: v.retries, retryDelaySeconds: v.retryDelaySeconds, retryBackoff: v.retryBackoff },
          runIf: v.runIf as RunIf,
        },
      ]),
    );
    this.remember(graphId, graph);
    return graph;
  }

  /**
   * Caches a graph read by someone who knows it is sealed: startPipeline, once its
   * transaction committed, so that the executor it wakes does not read the graph again.
   */
  remember(graphId: number, graph: SealedGraph): void {
    this.graphs.delete(graphId);
    this.graphs.set(graphId, graph);
    for (const id of graph.vertices.keys()) this.graphOfVertex.set(id, graphId);
    if (this.graphs.size > this.capacity) this.evict(this.graphs.keys().next().value!);
  }

  /** The facts of one vertex of a sealed graph. */
  async vertex(db: Db | Tx, vertexId: number): Promise<VertexFacts> {
    let graphId = this.graphOfVertex.get(vertexId);
    if (graphId === undefined) {
      graphId = (await db.vertex.findUniqueOrThrow({ where: { id: vertexId }, select: { graphId: true } })).graphId;
    }
    return (await this.get(db, graphId)).vertices.get(vertexId)!;
  }

  private evict(graphId: number): void {
    const graph = this.graphs.get(graphId);
    this.graphs.delete(graphId);
    for (const id of graph?.vertices.keys() ?? []) this.graphOfVertex.delete(id);
  }
}
