/**
 * Pictures of a graph or a run: Mermaid (GitHub, GraphiQL users, any Markdown viewer) and
 * Graphviz DOT. Pure: vertices, edges and optional track states in, text out.
 */
import { TrackState, trackStateName } from './states.ts';

export interface DiagramInput {
  vertices: ReadonlyArray<{ id: number; name: string }>;
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
};

/** Mermaid text labels: quotes and markup characters as entity codes. */
function mermaidLabel(text: string): string {
  return text.replace(/[#"<>&]/g, (c) => `#${c.charCodeAt(0)};`);
}

export function toMermaid({ vertices, edges, states }: DiagramInput): string {
  const lines = ['flowchart LR'];
  for (const vertex of vertices) {
    const state = states?.get(vertex.id);
    const label = state === undefined ? mermaidLabel(vertex.name) : `${mermaidLabel(vertex.name)}<br/>${trackStateName(state)}`;
    lines.push(`  v${vertex.id}["${label}"]`);
  }
  for (const edge of edges) lines.push(`  v${edge.tailId} --> v${edge.headId}`);
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
  for (const vertex of vertices) {
    const state = states?.get(vertex.id);
    if (state === undefined) {
      lines.push(`  v${vertex.id} [label=${dotString(vertex.name)}];`);
    } else {
      const name = trackStateName(state);
      lines.push(
        `  v${vertex.id} [label=${dotString(`${vertex.name}\n${name}`)}, fillcolor="${COLOURS[name].fill}", color="${COLOURS[name].stroke}"];`,
      );
    }
  }
  for (const edge of edges) lines.push(`  v${edge.tailId} -> v${edge.headId};`);
  lines.push('}');
  return `${lines.join('\n')}\n`;
}
