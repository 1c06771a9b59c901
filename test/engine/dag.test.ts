/**
 * Unit tests of the pure DAG code (SPEC rules 1, 2 and 4): adjacency, start vertices,
 * reachability, cycle detection and the checkGraph rules.
 */
import { describe, expect, it } from 'vitest';
import {
  buildDag,
  checkGraphDefinition,
  descendants,
  findCycle,
  startVertices,
  type CheckableVertex,
  type EdgeLike,
} from '../../src/engine/dag.ts';
import { CycleError, DomainError, ValidationError } from '../../src/errors.ts';

const e = (tailId: number, headId: number): EdgeLike => ({ tailId, headId });

/** The SPEC seed graph: A -> B, A -> C, B -> D, C -> D, plus isolated E. */
const A = 1;
const B = 2;
const C = 3;
const D = 4;
const E = 5;
const seedIds = [A, B, C, D, E];
const seedEdges = [e(A, B), e(A, C), e(B, D), e(C, D)];
const seed = () => buildDag(seedIds, seedEdges);

function chain(n: number, first = 0): { ids: number[]; edges: EdgeLike[] } {
  const ids = Array.from({ length: n }, (_, i) => first + i);
  const edges = ids.slice(1).map((id) => e(id - 1, id));
  return { ids, edges };
}

/**
 * Which vertex a cycle is reported from is the implementation's choice; the order along
 * the edges is not. Rotates a closed path so that its smallest element comes first.
 */
function canonical<T>(path: readonly T[] | null): T[] | null {
  if (path === null || path.length < 2) return path === null ? null : [...path];
  const ring = path.slice(0, -1);
  let at = 0;
  ring.forEach((x, i) => {
    if (x < ring[at]!) at = i;
  });
  const rotated = [...ring.slice(at), ...ring.slice(0, at)];
  return [...rotated, rotated[0]!];
}

/** Asserts `path` is a closed walk along real edges, first vertex repeated last, no other repeats. */
function expectCycleAlongEdges(path: number[] | null, edges: readonly EdgeLike[]): void {
  expect(path).not.toBeNull();
  const p = path!;
  expect(p.length).toBeGreaterThanOrEqual(2);
  expect(p[p.length - 1]).toBe(p[0]);
  expect(new Set(p.slice(0, -1)).size).toBe(p.length - 1);
  const edgeSet = new Set(edges.map((edge) => `${edge.tailId}->${edge.headId}`));
  for (let i = 0; i + 1 < p.length; i++) {
    expect(edgeSet.has(`${p[i]}->${p[i + 1]}`), `edge ${p[i]} -> ${p[i + 1]} exists`).toBe(true);
  }
}

describe('buildDag', () => {
  it('lists successors and predecessors of every vertex, isolated ones with empty lists', () => {
    const dag = seed();
    expect(dag.vertexIds).toEqual(seedIds);
    expect(Object.fromEntries(dag.successors)).toEqual({ [A]: [B, C], [B]: [D], [C]: [D], [D]: [], [E]: [] });
    expect(Object.fromEntries(dag.predecessors)).toEqual({ [A]: [], [B]: [A], [C]: [A], [D]: [B, C], [E]: [] });
  });

  it('keeps edge order in the adjacency lists', () => {
    const dag = buildDag([1, 2, 3, 4], [e(1, 4), e(1, 2), e(1, 3), e(3, 4), e(2, 4)]);
    expect(dag.successors.get(1)).toEqual([4, 2, 3]);
    expect(dag.predecessors.get(4)).toEqual([1, 3, 2]);
  });

  it('builds an edgeless graph', () => {
    const dag = buildDag([7], []);
    expect(dag.successors.get(7)).toEqual([]);
    expect(dag.predecessors.get(7)).toEqual([]);
  });
});

describe('startVertices', () => {
  it.each([
    { name: 'seed graph: A and isolated E', ids: seedIds, edges: seedEdges, starts: [A, E] },
    { name: 'single vertex', ids: [1], edges: [], starts: [1] },
    { name: 'all isolated', ids: [3, 1, 2], edges: [], starts: [3, 1, 2] },
    { name: 'chain', ids: [1, 2, 3], edges: [e(1, 2), e(2, 3)], starts: [1] },
    { name: 'several starts into one end', ids: [1, 2, 3, 4], edges: [e(1, 4), e(2, 4), e(3, 4)], starts: [1, 2, 3] },
    { name: 'start listed last', ids: [3, 2, 1], edges: [e(1, 2), e(2, 3)], starts: [1] },
    { name: 'every vertex on a cycle: none', ids: [1, 2], edges: [e(1, 2), e(2, 1)], starts: [] },
  ])('$name', ({ ids, edges, starts }) => {
    expect(startVertices(buildDag(ids, edges))).toEqual(starts);
  });
});

describe('descendants', () => {
  it.each([
    { from: A, expected: [B, C, D] },
    { from: B, expected: [D] },
    { from: C, expected: [D] },
    { from: D, expected: [] },
    { from: E, expected: [] },
  ])('seed graph: descendants of $from', ({ from, expected }) => {
    const result = descendants(seed(), from);
    expect([...result].sort()).toEqual(expected);
    expect(result.has(from)).toBe(false);
  });

  it('walks a 10,000-vertex chain without recursion', () => {
    const { ids, edges } = chain(10_000);
    const result = descendants(buildDag(ids, edges), 0);
    expect(result.size).toBe(9_999);
    expect(result.has(0)).toBe(false);
    expect(result.has(9_999)).toBe(true);
  });

  it('does not include the vertex itself even when it lies on a cycle', () => {
    // Not a legal graph, but descendants must still terminate.
    const result = descendants(buildDag([1, 2, 3], [e(1, 2), e(2, 3), e(3, 1)]), 1);
    expect([...result].sort()).toEqual([1, 2, 3]);
  });
});

describe('findCycle', () => {
  it.each([
    { name: 'single vertex', ids: [1], edges: [] as EdgeLike[] },
    { name: 'seed graph (diamond + isolated)', ids: seedIds, edges: seedEdges },
    { name: 'chain', ids: [1, 2, 3], edges: [e(1, 2), e(2, 3)] },
    { name: 'two disjoint diamonds', ids: [1, 2, 3, 4, 5, 6, 7, 8], edges: [e(1, 2), e(1, 3), e(2, 4), e(3, 4), e(5, 6), e(5, 7), e(6, 8), e(7, 8)] },
    { name: 'forward and cross edges', ids: [1, 2, 3, 4], edges: [e(1, 2), e(2, 3), e(1, 3), e(4, 3), e(4, 2)] },
    { name: 'no vertices', ids: [], edges: [] },
  ])('finds no cycle in a DAG: $name', ({ ids, edges }) => {
    expect(findCycle(buildDag(ids, edges))).toBeNull();
  });

  it.each([
    { name: 'self-loop', ids: [1], edges: [e(1, 1)], cycle: [1, 1] },
    { name: 'self-loop after a tail', ids: [1, 2], edges: [e(1, 2), e(2, 2)], cycle: [2, 2] },
    { name: '2-cycle', ids: [1, 2], edges: [e(1, 2), e(2, 1)], cycle: [1, 2, 1] },
    { name: '3-cycle', ids: [1, 2, 3], edges: [e(1, 2), e(2, 3), e(3, 1)], cycle: [1, 2, 3, 1] },
    { name: 'cycle behind a tail, tail excluded', ids: [1, 2, 3, 4], edges: [e(1, 2), e(2, 3), e(3, 4), e(4, 2)], cycle: [2, 3, 4, 2] },
    {
      name: 'cycle not reachable from the first vertex',
      ids: [1, 2, 3, 4, 5],
      edges: [e(1, 5), e(2, 3), e(3, 4), e(4, 2)],
      cycle: [2, 3, 4, 2],
    },
    { name: 'vertex ids not in edge order', ids: [3, 1, 2], edges: [e(1, 2), e(2, 3), e(3, 1)], cycle: [3, 1, 2, 3] },
    {
      name: 'cycle off a diamond',
      ids: seedIds,
      edges: [...seedEdges, e(D, E), e(E, C)],
      cycle: [C, D, E, C],
    },
  ])('returns the path in edge order, first repeated last: $name', ({ ids, edges, cycle }) => {
    const path = findCycle(buildDag(ids, edges));
    expectCycleAlongEdges(path, edges);
    expect(canonical(path)).toEqual(canonical(cycle));
  });

  it('finds a cycle that closes a 10,000-vertex chain without overflowing the stack', () => {
    const { ids, edges } = chain(10_000);
    edges.push(e(9_999, 0));
    const path = findCycle(buildDag(ids, edges));
    expectCycleAlongEdges(path, edges);
    expect(path).toHaveLength(10_001);
    expect(canonical(path)).toEqual([...ids, 0]);
  });

  it('finds a 2-cycle at the far end of a 10,000-vertex chain', () => {
    const { ids, edges } = chain(10_000);
    edges.push(e(9_999, 9_998));
    const path = findCycle(buildDag(ids, edges));
    expect(canonical(path)).toEqual([9_998, 9_999, 9_998]);
  });

  it('reports no cycle on a 10,000-vertex chain', () => {
    const { ids, edges } = chain(10_000);
    expect(findCycle(buildDag(ids, edges))).toBeNull();
  });

  it('finds a cycle reachable only after exploring a large acyclic part first', () => {
    const { ids, edges } = chain(5_000);
    const cyc = [10_001, 10_002, 10_003];
    const all = [...ids, ...cyc];
    const allEdges = [...edges, e(10_001, 10_002), e(10_002, 10_003), e(10_003, 10_001)];
    const path = findCycle(buildDag(all, allEdges));
    expectCycleAlongEdges(path, allEdges);
    expect(canonical(path)).toEqual([10_001, 10_002, 10_003, 10_001]);
  });
});

describe('checkGraphDefinition', () => {
  const v = (id: number, name: string, input = '', script = 'true'): CheckableVertex => ({ id, name, input, script });
  const seedVertices = [v(A, 'A'), v(B, 'B', '{}'), v(C, 'C', '{"ip": {"type": "str", "required": true, "default": "127.0.0.1"}}'), v(D, 'D'), v(E, 'E')];

  function thrown(fn: () => void): unknown {
    try {
      fn();
    } catch (error) {
      return error;
    }
    throw new Error('expected an error to be thrown');
  }

  it('accepts the seed graph, isolated vertex included', () => {
    expect(() => checkGraphDefinition(seedVertices, seedEdges)).not.toThrow();
  });

  it('accepts a single isolated vertex', () => {
    expect(() => checkGraphDefinition([v(1, 'only')], [])).not.toThrow();
  });

  it('refuses a graph with no vertices, naming the field "vertices"', () => {
    const error = thrown(() => checkGraphDefinition([], []));
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toBeInstanceOf(DomainError);
    expect((error as ValidationError).field).toBe('vertices');
  });

  it.each([
    { name: 'self-loop', edges: [e(A, A)], path: ['A', 'A'] },
    { name: '2-cycle', edges: [e(A, B), e(B, A)], path: ['A', 'B', 'A'] },
    { name: 'cycle through the diamond', edges: [...seedEdges, e(D, A)], path: ['A', 'B', 'D', 'A'] },
    { name: 'cycle away from the start', edges: [e(A, B), e(B, C), e(C, D), e(D, B)], path: ['B', 'C', 'D', 'B'] },
  ])('refuses a cycle with a CycleError naming its vertices: $name', ({ edges, path }) => {
    const error = thrown(() => checkGraphDefinition(seedVertices, edges));
    expect(error).toBeInstanceOf(CycleError);
    const cycle = error as CycleError;
    expect(cycle.field).toBe('edges');
    expect(cycle.path[0]).toBe(cycle.path[cycle.path.length - 1]);
    expect(canonical(cycle.path)).toEqual(canonical(path));
    expect(cycle.message).toContain(cycle.path.join(' -> '));
  });

  it.each([
    { retries: 11, field: 'vertices.ping.retries' },
    { retryDelaySeconds: 7200, field: 'vertices.ping.retryDelaySeconds' },
    { retryBackoff: 0, field: 'vertices.ping.retryBackoff' },
  ])('refuses retries out of bounds, naming the vertex and the field: $field', ({ field, ...retry }) => {
    const error = thrown(() => checkGraphDefinition([v(1, 'start'), { ...v(2, 'ping'), ...retry }], [e(1, 2)]));
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).field).toBe(field);
    expect(() => checkGraphDefinition([{ ...v(2, 'ping'), retries: 10, retryDelaySeconds: 3600, retryBackoff: 10 }], [])).not.toThrow();
  });

  it.each([
    {
      name: 'unknown type',
      input: '{"host": {"type": "hostname"}}',
      field: 'vertices.ping.inputs.host.type',
    },
    {
      name: 'default that does not convert',
      input: '{"port": {"type": "int", "default": "eighty"}}',
      field: 'vertices.ping.inputs.port.default',
    },
    {
      name: 'unknown attribute',
      input: '{"port": {"type": "int", "requierd": true}}',
      field: 'vertices.ping.inputs.port.requierd',
    },
    { name: 'not JSON', input: '{"port": ', field: 'vertices.ping.inputs' },
    { name: 'bad parameter name', input: '{"my-port": {"type": "int"}}', field: 'vertices.ping.inputs.my-port' },
  ])('refuses an invalid input schema with a ValidationError naming the vertex and parameter: $name', ({ input, field }) => {
    const vertices = [v(1, 'start'), v(2, 'ping', input)];
    const error = thrown(() => checkGraphDefinition(vertices, [e(1, 2)]));
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).field).toBe(field);
  });

  it('names the parameter in the message of a schema error', () => {
    const error = thrown(() => checkGraphDefinition([v(1, 'ping', '{"host": {"type": "hostname"}}')], []));
    expect((error as Error).message).toContain('host');
  });
});

describe('checkGraphDefinition and placeholder contexts', () => {
  const schema = '{"who": {"type": "str"}}';
  it.each([
    ['echo "Hello {who}"', 'double quotes'],
    ["echo '{who}'", 'single quotes'],
    ['cat <<EOF\nHello {who}\nEOF', 'a heredoc'],
    ['# greet {who}\necho hi', 'a comment'],
  ])('refuses %j (inside %s), naming the vertex script', (script, context) => {
    let error: unknown;
    try {
      checkGraphDefinition([{ id: 1, name: 'greet', input: schema, script }], []);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ field: 'vertices.greet.script' });
    expect((error as Error).message).toContain(context);
    expect((error as Error).message).toContain('"$INPUT_WHO"');
  });

  it.each(['echo {who}', 'echo "Hello "{who}', "awk '{print $1}' {who}", 'echo "{other}" ${who}', 'echo "$INPUT_WHO"'])(
    'accepts %j',
    (script) => {
      expect(() => checkGraphDefinition([{ id: 1, name: 'greet', input: schema, script }], [])).not.toThrow();
    },
  );
});


describe('checkGraphDefinition and step outputs (from)', () => {
  // The seed graph: A -> B, A -> C, B -> D, C -> D, and isolated E.
  const reading = (name: string, spec: Record<string, unknown>) => JSON.stringify({ [name]: { type: 'str', ...spec } });
  const graphWith = (id: number, input: string): CheckableVertex[] =>
    seedIds.map((vid) => ({ id: vid, name: 'ABCDE'[vid - 1]!, input: vid === id ? input : '{}', script: 'true' }));
  const refusal = (vertices: CheckableVertex[], edges = seedEdges) => {
    try {
      checkGraphDefinition(vertices, edges);
    } catch (error) {
      return error as ValidationError;
    }
    throw new Error('expected checkGraphDefinition to refuse');
  };

  it.each([
    ['a predecessor', D, 'B.port'],
    ['an ancestor two edges up', D, 'A.port'],
    ['the start of a branch', B, 'A.port'],
  ])('accepts %s', (_what, vertex, from) => {
    expect(() => checkGraphDefinition(graphWith(vertex, reading('port', { from })), seedEdges)).not.toThrow();
  });

  it.each([
    ['a step the graph does not have', D, 'Z.port', /No step named "Z" is in this graph/],
    ['the step itself', D, 'D.port', /Step "D" cannot read its own outputs/],
    ['a step beside it (no path of edges)', B, 'C.port', /Step "C" is not an ancestor of "B"/],
    ['a step after it', A, 'D.port', /Step "D" is not an ancestor of "A"/],
    ['an isolated step', D, 'E.port', /Step "E" is not an ancestor of "D"/],
  ])('refuses a from naming %s, naming the field', (_what, vertex, from, message) => {
    const error = refusal(graphWith(vertex, reading('port', { from })));
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.field).toBe(`vertices.${'ABCDE'[vertex - 1]}.inputs.port.from`);
    expect(error.message).toMatch(message);
  });

  it('refuses a non-secret input reading an output that a secret input reads, naming its secret field', () => {
    const vertices = graphWith(D, reading('token', { from: 'A.token', secret: true }));
    vertices[1] = { ...vertices[1]!, input: reading('t', { from: 'A.token' }) };
    const error = refusal(vertices);
    expect(error.field).toBe('vertices.B.inputs.t.secret');
    expect(error.message).toContain('read by the secret input vertices.D.inputs.token too');
    vertices[1] = { ...vertices[1]!, input: reading('t', { from: 'A.token', secret: true }) };
    expect(() => checkGraphDefinition(vertices, seedEdges)).not.toThrow();
  });

  it('reads vertex names with dots: the output is after the last dot', () => {
    const vertices: CheckableVertex[] = [
      { id: 1, name: 'build.v2', input: '{}', script: 'true' },
      { id: 2, name: 'deploy', input: reading('tag', { from: 'build.v2.tag' }), script: 'true' },
    ];
    expect(() => checkGraphDefinition(vertices, [e(1, 2)])).not.toThrow();
  });
});
