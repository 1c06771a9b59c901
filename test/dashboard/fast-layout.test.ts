/** The linear layered layout the DAG uses for big graphs (dashboard/src/fast-layout.ts). */
import { expect, it } from 'vitest';
import { layeredLayout } from '../../dashboard/src/fast-layout.ts';

const sizes = { nodeWidth: 120, nodeHeight: 36, nodesep: 24, ranksep: 48, margin: 8 };
const edge = (tail: string, head: string) => ({ tail: { name: tail }, head: { name: head } });

it('puts each vertex right of all its predecessors, no two in one place, inside the drawing', () => {
  const vertices = ['A', 'B', 'C', 'D', 'E'].map((name) => ({ name }));
  const edges = [edge('A', 'B'), edge('A', 'C'), edge('B', 'D'), edge('C', 'D'), edge('A', 'D')];
  const out = layeredLayout(vertices, edges, sizes);
  const at = new Map(out.nodes.map((n) => [n.name, n]));
  for (const e of edges) expect(at.get(e.tail.name)!.x).toBeLessThan(at.get(e.head.name)!.x);
  // D's longest path is A -> B -> D: the third column, not the second.
  expect(at.get('D')!.x).toBeGreaterThan(at.get('B')!.x);
  expect(new Set(out.nodes.map((n) => `${n.x},${n.y}`)).size).toBe(5);
  for (const n of out.nodes) {
    expect(n.x - sizes.nodeWidth / 2).toBeGreaterThanOrEqual(0);
    expect(n.x + sizes.nodeWidth / 2).toBeLessThanOrEqual(out.width);
    expect(n.y + sizes.nodeHeight / 2).toBeLessThanOrEqual(out.height);
  }
  expect(out.edges).toHaveLength(5);
});

it('lays out 1,000 vertices of 4 a layer, fully joined, in well under a second (dagre: seconds for a fifth of it)', () => {
  const vertices = Array.from({ length: 1000 }, (_, i) => ({ name: `v${i}` }));
  const edges = [];
  for (let s = 0; s + 4 < 1000; s += 4) for (let t = s; t < s + 4; t++) for (let h = s + 4; h < s + 8; h++) edges.push(edge(`v${t}`, `v${h}`));
  const t0 = performance.now();
  const out = layeredLayout(vertices, edges, sizes);
  expect(performance.now() - t0).toBeLessThan(500);
  expect(new Set(out.nodes.map((n) => n.x)).size).toBe(250);
});
