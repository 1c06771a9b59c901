/**
 * Adjacency of sealed graphs, loaded once per graph. Safe to cache even across several
 * executor processes: a graph that has pipelines is sealed and never changes again.
 */
import { buildDag, type Dag } from '../engine/dag.ts';
import type { Tx } from './transaction.ts';
import type { Db } from '../db.ts';

export class DagCache {
  private readonly dags = new Map<number, Dag>();
  constructor(private readonly capacity = 256) {}

  async get(db: Db | Tx, graphId: number): Promise<Dag> {
    const cached = this.dags.get(graphId);
    if (cached) {
      // Refresh recency: Map iteration order is insertion order.
      this.dags.delete(graphId);
      this.dags.set(graphId, cached);
      return cached;
    }
    const [vertices, edges] = await Promise.all([
      db.vertex.findMany({ where: { graphId }, select: { id: true }, orderBy: { id: 'asc' } }),
      db.edge.findMany({ where: { graphId }, select: { tailId: true, headId: true } }),
    ]);
    const dag = buildDag(
      vertices.map((v) => v.id),
      edges,
    );
    this.dags.set(graphId, dag);
    if (this.dags.size > this.capacity) this.dags.delete(this.dags.keys().next().value!);
    return dag;
  }
}
