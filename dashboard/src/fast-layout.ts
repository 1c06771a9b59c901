/**
 * A layered left-to-right layout in linear time, for graphs too big for dagre on the page's
 * thread: dagre took 1 to 6 s on a 200-vertex graph of 784 edges here (network simplex and
 * its crossing reduction), over the run page's budget of 1 s to draw. Argo Workflows does the
 * same past 200 nodes (its "fast" layered renderer, argoproj/argo-workflows#3967).
 *
 * Each vertex goes in the column of its longest path from a source; within a column, vertices
 * are ordered by the mean row of their predecessors (one sweep, stable by input order), and
 * edges are straight lines from the tail's right side to the head's left side. Less pretty
 * than dagre (no bends around nodes), but every vertex is where its dependencies say.
 */
export interface LaidOut {
  width: number;
  height: number;
  /** Centres. */
  nodes: { name: string; x: number; y: number }[];
  edges: { tail: string; head: string; points: { x: number; y: number }[] }[];
}

export interface LayoutSizes {
  nodeWidth: number;
  nodeHeight: number;
  nodesep: number;
  ranksep: number;
  margin: number;
}

export function layeredLayout(vertices: { name: string }[], edges: { tail: { name: string }; head: { name: string } }[], sizes: LayoutSizes): LaidOut {
  const index = new Map(vertices.map((v, i) => [v.name, i]));
  const preds: number[][] = vertices.map(() => []);
  const succs: number[][] = vertices.map(() => []);
  for (const e of edges) {
    const tail = index.get(e.tail.name);
    const head = index.get(e.head.name);
    if (tail === undefined || head === undefined) continue;
    preds[head]!.push(tail);
    succs[tail]!.push(head);
  }
  // Longest path from a source, in topological order (Kahn). A cycle (never in a checked
  // graph) leaves its vertices in column 0 rather than looping.
  const rank = vertices.map(() => 0);
  const indegree = preds.map((p) => p.length);
  const queue = vertices.map((_, i) => i).filter((i) => indegree[i] === 0);
  for (let k = 0; k < queue.length; k++) {
    const v = queue[k]!;
    for (const s of succs[v]!) {
      rank[s] = Math.max(rank[s]!, rank[v]! + 1);
      if (--indegree[s]! === 0) queue.push(s);
    }
  }
  const columns: number[][] = [];
  for (let i = 0; i < vertices.length; i++) (columns[rank[i]!] ??= []).push(i);
  const row = vertices.map(() => 0);
  for (const column of columns) {
    if (!column) continue;
    const mean = (v: number) => (preds[v]!.length ? preds[v]!.reduce((sum, p) => sum + row[p]!, 0) / preds[v]!.length : v);
    const keyed = column.map((v, i) => ({ v, key: mean(v), i }));
    keyed.sort((a, b) => a.key - b.key || a.i - b.i);
    keyed.forEach(({ v }, r) => (row[v] = r));
  }
  const { nodeWidth, nodeHeight, nodesep, ranksep, margin } = sizes;
  const tallest = Math.max(0, ...columns.map((c) => c?.length ?? 0));
  const height = 2 * margin + tallest * nodeHeight + Math.max(0, tallest - 1) * nodesep;
  const width = 2 * margin + columns.length * nodeWidth + Math.max(0, columns.length - 1) * ranksep;
  const x = (v: number) => margin + rank[v]! * (nodeWidth + ranksep) + nodeWidth / 2;
  // Each column is centred vertically, as dagre centres its ranks.
  const y = (v: number) => {
    const size = columns[rank[v]!]!.length;
    const offset = (tallest - size) * (nodeHeight + nodesep) / 2;
    return margin + offset + row[v]! * (nodeHeight + nodesep) + nodeHeight / 2;
  };
  return {
    width,
    height,
    nodes: vertices.map((vertex, v) => ({ name: vertex.name, x: x(v), y: y(v) })),
    edges: edges.flatMap((e) => {
      const tail = index.get(e.tail.name);
      const head = index.get(e.head.name);
      if (tail === undefined || head === undefined) return [];
      return [{ tail: e.tail.name, head: e.head.name, points: [{ x: x(tail) + nodeWidth / 2, y: y(tail) }, { x: x(head) - nodeWidth / 2, y: y(head) }] }];
    }),
  };
}
