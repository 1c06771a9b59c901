/**
 * A graph's DAG drawn as SVG, laid out by @dagrejs/dagre (synchronously: dagpipe's graphs
 * are small; see docs/dashboard.md for when a worker would pay off).
 */
import { graphlib, layout } from '@dagrejs/dagre';
import { useMemo } from 'preact/hooks';

export interface DagProps {
  vertices: { name: string }[];
  edges: { tail: { name: string }; head: { name: string } }[];
  /** The colour class of a vertex (a track state on a run page). */
  stateOf?: (name: string) => string | undefined;
  label: string;
}

const NODE_WIDTH = 120;
const NODE_HEIGHT = 36;

function laidOut(vertices: DagProps['vertices'], edges: DagProps['edges']) {
  const g = new graphlib.Graph();
  g.setGraph({ rankdir: 'LR', nodesep: 24, ranksep: 48, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const v of vertices) g.setNode(v.name, { width: NODE_WIDTH, height: NODE_HEIGHT });
  for (const e of edges) g.setEdge(e.tail.name, e.head.name);
  layout(g);
  return g;
}

export function Dag({ vertices, edges, stateOf, label }: DagProps) {
  // A live page redraws on every state change: the layout depends on the graph only.
  const g = useMemo(() => laidOut(vertices, edges), [vertices, edges]);
  const { width = 0, height = 0 } = g.graph();
  return (
    <svg class="dag" role="img" aria-label={label} width={width} height={height} viewBox={`0 0 ${width} ${height}`}>
      {g.edges().map((e) => {
        const points = g.edge(e).points ?? [];
        return <polyline key={`${e.v}->${e.w}`} class="edge" points={points.map((p: { x: number; y: number }) => `${p.x},${p.y}`).join(' ')} />;
      })}
      {g.nodes().map((name) => {
        const n = g.node(name);
        const state = stateOf?.(name);
        return (
          <g key={name} data-testid={`vertex-${name}`} class={`node ${state ? `state-${state}` : ''}`} transform={`translate(${n.x - NODE_WIDTH / 2},${n.y - NODE_HEIGHT / 2})`}>
            <rect width={NODE_WIDTH} height={NODE_HEIGHT} rx={6} />
            <text x={NODE_WIDTH / 2} y={NODE_HEIGHT / 2} dominant-baseline="middle" text-anchor="middle">
              {name}
            </text>
          </g>
        );
      })}
    </svg>
  );
}
