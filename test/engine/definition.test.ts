import { describe, expect, it } from 'vitest';
import { parseDefinition, printDefinition, type GraphDefinition } from '../../src/engine/definition.ts';
import { ValidationError } from '../../src/errors.ts';

const definition: GraphDefinition = {
  name: 'web server check',
  desc: 'loopback only',
  vertices: [
    { name: 'ping', script: 'echo {ip}\n', timeoutSeconds: 10, inputs: { ip: { type: 'ip', default: '127.0.0.1' } } },
    { name: 'report', script: 'echo done', timeoutSeconds: 3600, inputs: {} },
    { name: 'flaky', script: 'curl -f localhost', timeoutSeconds: 60, retries: 3, retryDelaySeconds: 5, retryBackoff: 1.5, inputs: {} },
  ],
  edges: [{ tail: 'ping', head: 'report' }],
};

function fieldOf(work: () => unknown): string | undefined {
  try {
    work();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return (error as ValidationError).field;
  }
  return undefined;
}

describe('graph definitions', () => {
  it.each(['yaml', 'json'] as const)('round-trips through %s', (format) => {
    expect(parseDefinition(printDefinition(definition, format), format)).toEqual(definition);
  });

  it.each(['yaml', 'json'] as const)('round-trips schedules through %s; a file without the key has none', (format) => {
    const withSchedules: GraphDefinition = {
      ...definition,
      schedules: [
        { name: 'nightly', cron: '30 2 * * *', timeZone: 'Europe/Berlin', inputs: [{ vertex: 'ping', params: { ip: '10.0.0.1' } }] },
        { name: 'often', cron: '*/10 * * * * *', timeZone: 'UTC', overlap: 'ALLOW', misfireGraceSeconds: 0, paused: true },
      ],
    };
    expect(parseDefinition(printDefinition(withSchedules, format), format)).toEqual(withSchedules);
    expect(parseDefinition(printDefinition(definition, format), format)).not.toHaveProperty('schedules');
    expect(fieldOf(() => parseDefinition('name: x\nschedules:\n  - {name: s}\n', 'yaml'))).toBe('definition.schedules.0.cron');
  });

  it('reads hand-written YAML with block scripts and defaults for missing lists', () => {
    const parsed = parseDefinition('name: tiny\nvertices:\n  - name: a\n    script: |\n      echo one\n      echo two\n', 'yaml');
    expect(parsed).toEqual({ name: 'tiny', vertices: [{ name: 'a', script: 'echo one\necho two\n' }], edges: [] });
  });

  it('says where the syntax is wrong', () => {
    expect(() => parseDefinition('name: [unclosed\n', 'yaml')).toThrow(/not valid YAML \(line \d+\)/);
    expect(fieldOf(() => parseDefinition('{"name": ', 'json'))).toBe('definition');
  });

  it.each([
    ['{"vertices": []}', 'definition.name'],
    ['{"name": "x", "vertices": [{"script": "true"}]}', 'definition.vertices.0.name'],
    ['{"name": "x", "edges": [{"tail": "a"}]}', 'definition.edges.0.head'],
    ['{"name": "x", "vertices": [{"name": "a", "timeoutSeconds": 1.5}]}', 'definition.vertices.0.timeoutSeconds'],
    ['{"name": "x", "vertices": [{"name": "a", "retries": "3"}]}', 'definition.vertices.0.retries'],
    ['{"name": "x", "vertices": [{"name": "a", "retryDelaySeconds": 0.5}]}', 'definition.vertices.0.retryDelaySeconds'],
    ['{"name": "x", "vertices": [{"name": "a", "retryBackoff": "fast"}]}', 'definition.vertices.0.retryBackoff'],
    ['[1, 2]', 'definition'],
  ])('names the field of a wrong shape: %s', (text, field) => {
    expect(fieldOf(() => parseDefinition(text, 'json'))).toBe(field);
  });

  it('refuses YAML alias bombs and oversized text', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...Array.from({ length: 12 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}]`)].join('\n');
    expect(fieldOf(() => parseDefinition(bomb, 'yaml'))).toBe('definition');
    expect(fieldOf(() => parseDefinition(' '.repeat(4 * 1024 * 1024 + 1), 'yaml'))).toBe('definition');
  });
});
