import { describe, expect, it } from 'vitest';
import { toDot, toMermaid } from '../../src/engine/diagram.ts';
import { TrackState } from '../../src/engine/states.ts';

const seed = {
  vertices: [
    { id: 1, name: 'A' },
    { id: 2, name: 'B' },
    { id: 3, name: 'C "quoted" <x>' },
  ],
  edges: [
    { tailId: 1, headId: 2 },
    { tailId: 1, headId: 3 },
  ],
};

describe('toMermaid', () => {
  it('draws vertices and edges, with labels that cannot break the syntax', () => {
    expect(toMermaid(seed)).toBe(
      ['flowchart LR', '  v1["A"]', '  v2["B"]', '  v3["C #34;quoted#34; #60;x#62;"]', '  v1 --> v2', '  v1 --> v3', ''].join('\n'),
    );
  });

  it('labels and colours each step of a run by its state', () => {
    const text = toMermaid({ ...seed, states: new Map([[1, TrackState.SUCCEED], [2, TrackState.RUNNING], [3, TrackState.SUCCEED]]) });
    expect(text).toContain('  v2["B<br/>RUNNING"]');
    expect(text).toContain('  classDef SUCCEED fill:#e8f5e9,stroke:#2e7d32');
    expect(text).toContain('  class v1 SUCCEED');
    expect(text).toContain('  class v2 RUNNING');
    expect(text.match(/classDef SUCCEED/g)).toHaveLength(1);
  });
});

describe('toDot', () => {
  it('escapes names and colours states', () => {
    const text = toDot({ ...seed, states: new Map([[3, TrackState.FAILED]]) }, 'web "check"');
    expect(text.startsWith('digraph "web \\"check\\"" {\n  rankdir=LR;')).toBe(true);
    expect(text).toContain('  v1 [label="A"];');
    expect(text).toContain('  v3 [label="C \\"quoted\\" <x>\\nFAILED", fillcolor="#ffebee", color="#c62828"];');
    expect(text).toContain('  v1 -> v3;');
    expect(text.trimEnd().endsWith('}')).toBe(true);
  });
});
