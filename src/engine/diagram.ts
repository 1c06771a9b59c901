/**
 * Pictures of a graph or a run: Mermaid (GitHub, GraphiQL users, any Markdown viewer) and
 * Graphviz DOT. Pure: vertices, edges and optional track states in, text out.
 */
import { TrackState, trackStateName } from './states.ts';

export interface DiagramInput {
  /** `runIf` other than SUCCESS draws the vertex as a handler (SPEC rule 19): a hexagon, reached by dashed edges. */
  vertices: ReadonlyArray<{ id: number; name: string; runIf?: string }>;
  edges: ReadonlyArray<{ tailId: number; headId: number }>;
  /** Track state per vertex id, to colour a pipeline's run. */
  states?: ReadonlyMap<number, number>;
}

/** Fill and stroke per track state, shared by both formats. */
const COLOURS: Record<keyof typeof TrackState, { fill: string; stroke: string }> = {
  WAITING: { fill: '#eeeeee', stroke: '#9e9e9e' },
  PENDING: { fill: '#fff8e1', stroke: '#f9a825' },
  RUNNING: { fill: '#e3f2fd', stroke: '#1565c0' },
  SUCCEED: { fill: '#e8f5e9', stroke: '#2e7d32' },
  FAILED: { fill: '#ffebee', stroke: '#c62828' },
  CANCELLED: { fill: '#f3e5f5', stroke: '#6a1b9a' },
  SKIPPED: { fill: '#fafafa', stroke: '#bdbdbd' },
};

const isHandler = (vertex: { runIf?: string }) => vertex.runIf !== undefined && vertex.runIf !== 'SUCCESS';

/** The line under a handler's name: when it runs. */
const conditionLine = (vertex: { runIf?: string }) => (isHandler(vertex) ? `if ${vertex.runIf}` : null);

/** Mermaid text labels: quotes and markup characters as entity codes. */
function mermaidLabel(text: string): string {
  return text.replace(/[#"<>&]/g, (c) => `#${c.charCodeAt(0)};`);
}

export function toMermaid({ vertices, edges, states }: DiagramInput): string {
  const lines = ['flowchart LR'];
  const handlers = new Set(vertices.filter(isHandler).map((v) => v.id));
  for (const vertex of vertices) {
    const state = states?.get(vertex.id);
    const label = [mermaidLabel(vertex.name), conditionLine(vertex), state === undefined ? null : trackStateName(state)].filter((l) => l !== null).join('<br/>');
    lines.push(handlers.has(vertex.id) ? `  v${vertex.id}{{"${label}"}}` : `  v${vertex.id}["${label}"]`);
  }
  for (const edge of edges) lines.push(`  v${edge.tailId} ${handlers.has(edge.headId) ? '-.->' : '-->'} v${edge.headId}`);
  if (states) {
    const used = new Set([...states.values()].map((s) => trackStateName(s)));
    for (const name of used) lines.push(`  classDef ${name} fill:${COLOURS[name].fill},stroke:${COLOURS[name].stroke}`);
    for (const vertex of vertices) {
      const state = states.get(vertex.id);
      if (state !== undefined) lines.push(`  class v${vertex.id} ${trackStateName(state)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function dotString(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

export function toDot({ vertices, edges, states }: DiagramInput, title: string): string {
  const lines = [`digraph ${dotString(title)} {`, '  rankdir=LR;', '  node [shape=box, style="rounded,filled", fillcolor="#ffffff"];'];
  const handlers = new Set(vertices.filter(isHandler).map((v) => v.id));
  for (const vertex of vertices) {
    const state = states?.get(vertex.id);
    const shape = handlers.has(vertex.id) ? ', shape=hexagon' : '';
    const label = [vertex.name, conditionLine(vertex), state === undefined ? null : trackStateName(state)].filter((l) => l !== null).join('\n');
    if (state === undefined) {
      lines.push(`  v${vertex.id} [label=${dotString(label)}${shape}];`);
    } else {
      const name = trackStateName(state);
      lines.push(`  v${vertex.id} [label=${dotString(label)}${shape}, fillcolor="${COLOURS[name].fill}", color="${COLOURS[name].stroke}"];`);
    }
  }
  for (const edge of edges) lines.push(`  v${edge.tailId} -> v${edge.headId}${handlers.has(edge.headId) ? ' [style=dashed]' : ''};`);
  lines.push('}');
  return `${lines.join('\n')}\n`;
}
