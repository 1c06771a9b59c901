/**
 * A graph's DAG drawn as SVG, laid out by @dagrejs/dagre (synchronously: dagpipe's graphs
 * are small; see docs/dashboard.md for when a worker would pay off), and above
 * FAST_LAYOUT_ABOVE vertices by the linear layered layout of fast-layout.ts.
 */
import { graphlib, layout } from '@dagrejs/dagre';
import { useId, useMemo } from 'preact/hooks';
import { layeredLayout, type LaidOut } from './fast-layout';
import { graphql } from './generated';

/** What a page selects of a graph to draw it: spread it into the graph's selection. */
export const DagGraphFields = graphql(`
  fragment DagGraph on Graph {
    vertices {
      name
    }
    edges {
      tail {
        name
      }
      head {
        name
      }
    }
  }
`);

export interface DagProps {
  vertices: { name: string }[];
  edges: { tail: { name: string }; head: { name: string } }[];
  /** The colour class of a vertex (a track state on a run page). */
  stateOf?: (name: string) => string | undefined;
  label: string;
}

const NODE_WIDTH = 120;
const NODE_HEIGHT = 36;

/** Above this many vertices the linear layered layout replaces dagre (see fast-layout.ts). */
export const FAST_LAYOUT_ABOVE = 100;

const SIZES = { nodeWidth: NODE_WIDTH, nodeHeight: NODE_HEIGHT, nodesep: 24, ranksep: 48, margin: 8 };

function dagreLayout(vertices: DagProps['vertices'], edges: DagProps['edges']): LaidOut {
  const g = new graphlib.Graph();
  g.setGraph({ rankdir: 'LR', nodesep: SIZES.nodesep, ranksep: SIZES.ranksep, marginx: SIZES.margin, marginy: SIZES.margin });
  g.setDefaultEdgeLabel(() => ({}));
  for (const v of vertices) g.setNode(v.name, { width: NODE_WIDTH, height: NODE_HEIGHT });
  for (const e of edges) g.setEdge(e.tail.name, e.head.name);
  layout(g);
  const { width = 0, height = 0 } = g.graph();
  return {
    width,
    height,
    nodes: g.nodes().map((name) => ({ name, x: g.node(name).x, y: g.node(name).y })),
    edges: g.edges().map((e) => ({ tail: e.v, head: e.w, points: (g.edge(e).points ?? []) as { x: number; y: number }[] })),
  };
}

export function Dag({ vertices, edges, stateOf, label }: DagProps) {
  // Its own id: a page may draw several DAGs.
  const arrow = `arrow-${useId()}`;
  // A live page redraws on every state change: the layout depends on the graph only.
  const { width, height, nodes, edges: lines } = useMemo(
    () => (vertices.length > FAST_LAYOUT_ABOVE ? layeredLayout(vertices, edges, SIZES) : dagreLayout(vertices, edges)),
    [vertices, edges],
  );
  return (
    <svg class="dag" role="img" aria-label={label} width={width} height={height} viewBox={`0 0 ${width} ${height}`}>
      {/* An arrowhead at the head end: tail runs first. */}
      <defs>
        <marker id={arrow} viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
          <path d="M 0 0 L 10 5 L 0 10 z" class="arrow" />
        </marker>
      </defs>
      {lines.map((e) => (
        <polyline key={`${e.tail}->${e.head}`} class="edge" marker-end={`url(#${arrow})`} points={e.points.map((p) => `${p.x},${p.y}`).join(' ')} />
      ))}
      {nodes.map((n) => {
        const name = n.name;
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
