/**
 * Unit tests of typed vertex inputs (SPEC rule 5): parsing the seed's JSON schema,
 * converting submitted values, resolving a track's parameters, and serialising back.
 */
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.ts';
import {
  convertValue,
  MAX_VALUE_LENGTH,
  parseFromReference,
  parseInputSchema,
  readsOutputs,
  resolveFromOutputs,
  resolveParams,
  serializeInputSchema,
  type ParamSpec,
  type ParamType,
} from '../../src/engine/inputs.ts';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error to be thrown');
}

/** Asserts fn throws a ValidationError whose field is exactly `field`; returns it. */
function expectFieldError(fn: () => unknown, field: string): ValidationError {
  const error = thrown(fn);
  expect(error).toBeInstanceOf(ValidationError);
  expect((error as ValidationError).field).toBe(field);
  return error as ValidationError;
}

const spec = (type: ParamType, extra: Partial<ParamSpec> = {}): ParamSpec => ({
  name: 'p',
  type,
  required: false,
  secret: false,
  ...extra,
});

describe('parseInputSchema', () => {
  it('parses the seed example', () => {
    const schema = parseInputSchema('{"ip": {"type": "str", "required": true, "default": "127.0.0.1"}}', 'inputs');
    expect(schema).toEqual([{ name: 'ip', type: 'string', required: true, secret: false, default: '127.0.0.1' }]);
  });

  it('parses every attribute', () => {
    const schema = parseInputSchema(
      {
        env: {
          type: 'string',
          required: false,
          default: 'prod',
          choices: ['prod', 'staging'],
          pattern: '[a-z]+',
          secret: true,
          description: 'target environment',
        },
      },
      'inputs',
    );
    expect(schema).toEqual([
      {
        name: 'env',
        type: 'string',
        required: false,
        default: 'prod',
        choices: ['prod', 'staging'],
        pattern: '[a-z]+',
        secret: true,
        description: 'target environment',
      },
    ]);
  });

  it('keeps the declaration order of several parameters', () => {
    const schema = parseInputSchema('{"host": {"type": "ip"}, "port": {"type": "int"}, "path": {"type": "str"}}', 'inputs');
    expect(schema.map((p) => p.name)).toEqual(['host', 'port', 'path']);
  });

  it.each([
    { source: '', name: 'empty text' },
    { source: '   ', name: 'blank text' },
    { source: '{}', name: 'empty object' },
    { source: {}, name: 'empty object value' },
  ])('reads $name as no parameters', ({ source }) => {
    expect(parseInputSchema(source, 'inputs')).toEqual([]);
  });

  it.each([
    ['str', 'string'],
    ['string', 'string'],
    ['int', 'integer'],
    ['integer', 'integer'],
    ['float', 'number'],
    ['number', 'number'],
    ['bool', 'boolean'],
    ['boolean', 'boolean'],
    ['ip', 'ip'],
  ])('reads type alias %s as %s', (alias, canonical) => {
    const [param] = parseInputSchema(JSON.stringify({ x: { type: alias } }), 'inputs');
    expect(param!.type).toBe(canonical);
    expect(param!.required).toBe(false);
    expect(param!.secret).toBe(false);
  });

  it.each([
    ['"text"'],
    ['"hostname"'],
    ['"list"'],
    ['"str "'],
    ['""'],
    ['42'],
    ['null'],
    ['["str"]'],
    ['{"name": "str"}'],
    // Names that exist on Object.prototype must not pass as types.
    ['"constructor"'],
    ['"__proto__"'],
    ['"toString"'],
    ['"hasOwnProperty"'],
  ])('refuses unknown type %s, naming inputs.x.type', (type) => {
    const error = expectFieldError(() => parseInputSchema(`{"x": {"type": ${type}}}`, 'inputs'), 'inputs.x.type');
    expect(error.message).toContain('"x"');
  });

  it('refuses a parameter without a type', () => {
    expectFieldError(() => parseInputSchema('{"x": {"required": true}}', 'inputs'), 'inputs.x.type');
  });

  it.each(['requried', 'defaults', 'Type', 'regex', 'min'])('refuses unknown attribute %s, naming it', (key) => {
    const error = expectFieldError(
      () => parseInputSchema(JSON.stringify({ x: { type: 'str', [key]: true } }), 'inputs'),
      `inputs.x.${key}`,
    );
    expect(error.message).toContain(key);
  });

  it.each([
    ['1abc'],
    ['a-b'],
    ['a b'],
    ['a.b'],
    ['$x'],
    ['{x}'],
    ['é'],
    ['x;y'],
    ['x'.repeat(49)],
  ])('refuses parameter name %j, naming it', (name) => {
    expectFieldError(() => parseInputSchema(JSON.stringify({ [name]: { type: 'str' } }), 'inputs'), `inputs.${name}`);
  });

  it('refuses the empty parameter name', () => {
    expectFieldError(() => parseInputSchema('{"": {"type": "str"}}', 'inputs'), 'inputs.');
  });

  it.each(['_', 'a', 'A_1', 'host_name', '_private', 'x'.repeat(48)])('accepts parameter name %j', (name) => {
    expect(parseInputSchema(JSON.stringify({ [name]: { type: 'str' } }), 'inputs')[0]!.name).toBe(name);
  });

  it.each([
    { source: '{"x": ', name: 'invalid JSON' },
    { source: '[]', name: 'a JSON array' },
    { source: '"str"', name: 'a JSON string' },
    { source: 'null', name: 'JSON null' },
    { source: '42', name: 'a JSON number' },
    { source: ['x'], name: 'an array value' },
    { source: null, name: 'null value' },
  ])('refuses $name at the schema field itself', ({ source }) => {
    expectFieldError(() => parseInputSchema(source, 'vertices.A.inputs'), 'vertices.A.inputs');
  });

  it.each([['"str"'], ['null'], ['[]'], ['42']])('refuses a parameter spec that is not an object: %s', (value) => {
    expectFieldError(() => parseInputSchema(`{"x": ${value}}`, 'inputs'), 'inputs.x');
  });

  it.each([
    { attr: 'required', value: '"yes"' },
    { attr: 'required', value: '1' },
    { attr: 'secret', value: '"true"' },
    { attr: 'secret', value: 'null' },
    { attr: 'description', value: '42' },
    { attr: 'description', value: JSON.stringify('d'.repeat(501)) },
  ])('refuses $attr = $value', ({ attr, value }) => {
    expectFieldError(() => parseInputSchema(`{"x": {"type": "str", "${attr}": ${value}}}`, 'inputs'), `inputs.x.${attr}`);
  });

  it('accepts a description of exactly 500 characters', () => {
    const [param] = parseInputSchema({ x: { type: 'str', description: 'd'.repeat(500) } }, 'inputs');
    expect(param!.description).toHaveLength(500);
  });

  it.each([
    { type: 'int', value: '"eighty"' },
    { type: 'int', value: '1.5' },
    { type: 'int', value: 'true' },
    { type: 'float', value: '"abc"' },
    { type: 'float', value: '""' },
    { type: 'bool', value: '"maybe"' },
    { type: 'ip', value: '"999.1.1.1"' },
    { type: 'ip', value: '"localhost"' },
    { type: 'str', value: '{}' },
    { type: 'str', value: '["a"]' },
    { type: 'str', value: 'null' },
  ])('refuses a $type default of $value that does not convert', ({ type, value }) => {
    expectFieldError(() => parseInputSchema(`{"x": {"type": "${type}", "default": ${value}}}`, 'inputs'), 'inputs.x.default');
  });

  it.each([
    { type: 'int', value: '"8080"', expected: 8080 },
    { type: 'int', value: '-3', expected: -3 },
    { type: 'float', value: '"0.5"', expected: 0.5 },
    { type: 'float', value: '2', expected: 2 },
    { type: 'bool', value: '"yes"', expected: true },
    { type: 'bool', value: 'false', expected: false },
    { type: 'ip', value: '" ::1 "', expected: '::1' },
    { type: 'str', value: '42', expected: '42' },
    { type: 'str', value: '""', expected: '' },
  ])('converts a $type default of $value to its type', ({ type, value, expected }) => {
    const [param] = parseInputSchema(`{"x": {"type": "${type}", "default": ${value}}}`, 'inputs');
    expect(param!.default).toStrictEqual(expected);
  });

  describe('choices', () => {
    it.each([
      { type: 'str', choices: '["a", "b"]', expected: ['a', 'b'] },
      { type: 'int', choices: '["1", 2]', expected: [1, 2] },
      { type: 'bool', choices: '[false, "yes"]', expected: [false, true] },
      { type: 'ip', choices: '["10.0.0.1", "::1"]', expected: ['10.0.0.1', '::1'] },
    ])('converts $type choices $choices', ({ type, choices, expected }) => {
      const [param] = parseInputSchema(`{"x": {"type": "${type}", "choices": ${choices}}}`, 'inputs');
      expect(param!.choices).toStrictEqual(expected);
    });

    it.each([['[]'], ['"a"'], ['{"a": 1}'], ['null']])('refuses choices %s', (choices) => {
      expectFieldError(() => parseInputSchema(`{"x": {"type": "str", "choices": ${choices}}}`, 'inputs'), 'inputs.x.choices');
    });

    it('names the choice that does not convert', () => {
      expectFieldError(() => parseInputSchema('{"x": {"type": "int", "choices": [1, "two", 3]}}', 'inputs'), 'inputs.x.choices.1');
    });

    it('refuses a choice that does not match the pattern', () => {
      expectFieldError(
        () => parseInputSchema('{"x": {"type": "str", "pattern": "[a-z]+", "choices": ["ok", "NO"]}}', 'inputs'),
        'inputs.x.choices.1',
      );
    });

    it('refuses a default that is not one of the choices', () => {
      expectFieldError(() => parseInputSchema('{"x": {"type": "str", "choices": ["a", "b"], "default": "c"}}', 'inputs'), 'inputs.x.default');
    });

    it('accepts a default that is one of the choices after conversion', () => {
      const [param] = parseInputSchema('{"x": {"type": "int", "choices": [1, 2], "default": "2"}}', 'inputs');
      expect(param!.default).toBe(2);
    });
  });

  describe('pattern', () => {
    it.each([['[a-z]+'], ['^v\\d+$'], ['a|b'], ['\\p{L}+'], ['(?<word>\\w+)-\\k<word>']])('accepts valid pattern %s', (pattern) => {
      const [param] = parseInputSchema({ x: { type: 'str', pattern } }, 'inputs');
      expect(param!.pattern).toBe(pattern);
    });

    it.each([['('], ['['], ['a{2,1}'], ['*a'], ['\\']])('refuses invalid pattern %s', (pattern) => {
      expectFieldError(() => parseInputSchema({ x: { type: 'str', pattern } }, 'inputs'), 'inputs.x.pattern');
    });

    it.each([['int'], ['integer'], ['float'], ['number'], ['bool'], ['boolean'], ['ip']])('refuses a pattern on type %s', (type) => {
      expectFieldError(() => parseInputSchema({ x: { type, pattern: '.*' } }, 'inputs'), 'inputs.x.pattern');
    });

    it.each([[42], [null], [['a']]])('refuses a pattern that is not a string: %j', (pattern) => {
      expectFieldError(() => parseInputSchema({ x: { type: 'str', pattern } }, 'inputs'), 'inputs.x.pattern');
    });

    it('refuses a default that does not match the pattern', () => {
      expectFieldError(() => parseInputSchema('{"x": {"type": "str", "pattern": "[0-9]+", "default": "12a"}}', 'inputs'), 'inputs.x.default');
    });
  });
});

describe('convertValue', () => {
  const FIELD = 'inputs.0.params.port';

  it.each<{ type: ParamType; value: unknown; expected: string | number | boolean }>([
    { type: 'string', value: 'abc', expected: 'abc' },
    { type: 'string', value: '', expected: '' },
    { type: 'string', value: '  padded  ', expected: '  padded  ' },
    { type: 'string', value: 'multi\nline', expected: 'multi\nline' },
    { type: 'string', value: 42, expected: '42' },
    { type: 'string', value: true, expected: 'true' },
    { type: 'integer', value: 42, expected: 42 },
    { type: 'integer', value: '42', expected: 42 },
    { type: 'integer', value: ' -7 ', expected: -7 },
    { type: 'integer', value: '+3', expected: 3 },
    { type: 'integer', value: '0', expected: 0 },
    { type: 'integer', value: Number.MAX_SAFE_INTEGER, expected: Number.MAX_SAFE_INTEGER },
    { type: 'integer', value: '9007199254740991', expected: 9007199254740991 },
    { type: 'number', value: 1.5, expected: 1.5 },
    { type: 'number', value: '1.5', expected: 1.5 },
    { type: 'number', value: ' -2 ', expected: -2 },
    { type: 'number', value: '1e3', expected: 1000 },
    { type: 'number', value: 0, expected: 0 },
    { type: 'boolean', value: true, expected: true },
    { type: 'boolean', value: false, expected: false },
    { type: 'boolean', value: 'true', expected: true },
    { type: 'boolean', value: 'TRUE', expected: true },
    { type: 'boolean', value: ' yes ', expected: true },
    { type: 'boolean', value: '1', expected: true },
    { type: 'boolean', value: 'false', expected: false },
    { type: 'boolean', value: 'No', expected: false },
    { type: 'boolean', value: '0', expected: false },
    { type: 'ip', value: '127.0.0.1', expected: '127.0.0.1' },
    { type: 'ip', value: ' 10.0.0.1 ', expected: '10.0.0.1' },
    { type: 'ip', value: '::1', expected: '::1' },
    { type: 'ip', value: '2001:db8::1', expected: '2001:db8::1' },
    { type: 'ip', value: '::ffff:192.168.0.1', expected: '::ffff:192.168.0.1' },
  ])('converts $type $value', ({ type, value, expected }) => {
    expect(convertValue(spec(type), value, FIELD)).toStrictEqual(expected);
  });

  it.each<{ type: ParamType; value: unknown }>([
    { type: 'string', value: null },
    { type: 'string', value: undefined },
    { type: 'string', value: {} },
    { type: 'string', value: ['a'] },
    // A NUL cannot be passed to bash (argv and environment are C strings): refuse it here,
    // as a field error, rather than fail the track when it is spawned.
    { type: 'string', value: 'a\u0000b' },
    { type: 'integer', value: '4.5' },
    { type: 'integer', value: 4.5 },
    { type: 'integer', value: '1e3' },
    { type: 'integer', value: '0x10' },
    { type: 'integer', value: '42abc' },
    { type: 'integer', value: 'abc' },
    { type: 'integer', value: '' },
    { type: 'integer', value: ' ' },
    { type: 'integer', value: true },
    { type: 'integer', value: null },
    { type: 'integer', value: Number.NaN },
    { type: 'integer', value: Number.POSITIVE_INFINITY },
    { type: 'integer', value: 2 ** 53 },
    { type: 'integer', value: '9007199254740993' },
    { type: 'number', value: 'abc' },
    { type: 'number', value: '' },
    { type: 'number', value: '   ' },
    { type: 'number', value: '1.2.3' },
    { type: 'number', value: 'Infinity' },
    { type: 'number', value: '-Infinity' },
    { type: 'number', value: Number.NaN },
    { type: 'number', value: Number.POSITIVE_INFINITY },
    { type: 'number', value: true },
    { type: 'number', value: null },
    { type: 'boolean', value: 'maybe' },
    { type: 'boolean', value: '' },
    { type: 'boolean', value: 'true; rm -rf /' },
    { type: 'boolean', value: null },
    { type: 'boolean', value: {} },
    { type: 'ip', value: '256.1.1.1' },
    { type: 'ip', value: '1.2.3' },
    { type: 'ip', value: 'localhost' },
    { type: 'ip', value: '' },
    { type: 'ip', value: 127001 },
    { type: 'ip', value: null },
    { type: 'ip', value: '127.0.0.1; rm -rf /' },
    { type: 'ip', value: '1.2.3.4 5.6.7.8' },
  ])('refuses $type $value, naming the field', ({ type, value }) => {
    const error = expectFieldError(() => convertValue(spec(type, { name: 'port' }), value, FIELD), FIELD);
    expect(error.message).toContain('port');
  });

  describe('pattern', () => {
    it.each([
      { pattern: '[a-z]+', value: 'abc', ok: true },
      { pattern: '[a-z]+', value: 'abc1', ok: false },
      { pattern: '[a-z]+', value: '1abc', ok: false },
      { pattern: 'abc', value: 'xabcx', ok: false },
      { pattern: 'a|b', value: 'a', ok: true },
      { pattern: 'a|b', value: 'ab', ok: false },
      { pattern: 'a|b', value: 'xb', ok: false },
      { pattern: '\\p{Lu}\\p{Ll}+', value: 'Émile', ok: true },
    ])('pattern $pattern on $value: ok=$ok (whole value must match)', ({ pattern, value, ok }) => {
      const run = () => convertValue(spec('string', { pattern }), value, FIELD);
      if (ok) expect(run()).toBe(value);
      else expectFieldError(run, FIELD);
    });
  });

  describe('choices', () => {
    it.each<{ type: ParamType; choices: (string | number | boolean)[]; value: unknown; expected: string | number | boolean | null }>([
      { type: 'integer', choices: [1, 2], value: '2', expected: 2 },
      { type: 'integer', choices: [1, 2], value: '3', expected: null },
      { type: 'string', choices: ['prod', 'dev'], value: 'dev', expected: 'dev' },
      { type: 'string', choices: ['prod', 'dev'], value: 'DEV', expected: null },
      { type: 'string', choices: ['1'], value: 1, expected: '1' },
      { type: 'boolean', choices: [true], value: 'no', expected: null },
      { type: 'number', choices: [0.5, 1], value: '0.5', expected: 0.5 },
    ])('$type choices $choices with $value', ({ type, choices, value, expected }) => {
      const run = () => convertValue(spec(type, { choices }), value, FIELD);
      if (expected === null) expectFieldError(run, FIELD);
      else expect(run()).toStrictEqual(expected);
    });
  });

  describe('size limit (64 KiB)', () => {
    it('is 64 KiB', () => {
      expect(MAX_VALUE_LENGTH).toBe(64 * 1024);
    });

    it('accepts a string of exactly 64 KiB', () => {
      const value = 'a'.repeat(64 * 1024);
      expect(convertValue(spec('string'), value, FIELD)).toBe(value);
    });

    it.each<ParamType>(['string', 'integer', 'number', 'boolean', 'ip'])('refuses a %s value longer than 64 KiB', (type) => {
      const error = expectFieldError(() => convertValue(spec(type), '1'.repeat(64 * 1024 + 1), FIELD), FIELD);
      expect(error.message).toMatch(/long/);
    });
  });
});

describe('resolveParams', () => {
  const FIELD = 'inputs.0.params';
  const schema = parseInputSchema(
    {
      host: { type: 'ip', required: true, default: '127.0.0.1' },
      port: { type: 'int', default: 80 },
      verbose: { type: 'bool' },
      label: { type: 'str', required: true },
    },
    'inputs',
  );

  it('converts every given value to its type', () => {
    const result = resolveParams(schema, { host: '10.0.0.1', port: '8080', verbose: 'yes', label: 'web' }, FIELD);
    expect(result).toStrictEqual({ values: { host: '10.0.0.1', port: 8080, verbose: true, label: 'web' }, missing: [] });
  });

  it('fills an optional parameter from its default', () => {
    const result = resolveParams(schema, { host: '::1', verbose: false, label: 'x' }, FIELD);
    expect(result.values).toStrictEqual({ host: '::1', port: 80, verbose: false, label: 'x' });
    expect(result.missing).toEqual([]);
  });

  it('lists as missing: required ones (even with a default) and those without a default, in schema order', () => {
    const result = resolveParams(schema, {}, FIELD);
    expect(result.missing).toEqual(['host', 'verbose', 'label']);
    expect(result.values.port).toBe(80);
    expect(result.values.verbose).toBeUndefined();
    expect(result.values.label).toBeUndefined();
  });

  it('requires a required parameter to be given explicitly even though it has a default', () => {
    const result = resolveParams(schema, { verbose: true, label: 'x' }, FIELD);
    expect(result.missing).toEqual(['host']);
  });

  it('resolves the seed example only when ip is given', () => {
    const seed = parseInputSchema('{"ip": {"type": "str", "required": true, "default": "127.0.0.1"}}', 'inputs');
    expect(resolveParams(seed, {}, FIELD).missing).toEqual(['ip']);
    expect(resolveParams(seed, { ip: '192.168.1.1' }, FIELD)).toStrictEqual({ values: { ip: '192.168.1.1' }, missing: [] });
  });

  it('resolves an empty schema with no values', () => {
    expect(resolveParams([], {}, FIELD)).toStrictEqual({ values: {}, missing: [] });
  });

  it.each([
    { given: { port: 'eighty' }, field: 'inputs.0.params.port' },
    { given: { port: '80.5' }, field: 'inputs.0.params.port' },
    { given: { host: 'example.com' }, field: 'inputs.0.params.host' },
    { given: { verbose: 'perhaps' }, field: 'inputs.0.params.verbose' },
    { given: { label: {} }, field: 'inputs.0.params.label' },
  ])('names the parameter whose value does not convert: $field', ({ given, field }) => {
    const error = expectFieldError(() => resolveParams(schema, given, FIELD), field);
    expect(error.message).toContain(field.split('.').at(-1)!);
  });

  it('refuses a name not in the schema, naming it and listing the known ones', () => {
    const error = expectFieldError(() => resolveParams(schema, { host: '::1', bogus: 1 }, FIELD), 'inputs.0.params.bogus');
    expect(error.message).toContain('bogus');
    expect(error.message).toContain('host');
  });

  it('refuses any name when the step takes no parameters', () => {
    expectFieldError(() => resolveParams([], { x: '1' }, FIELD), 'inputs.0.params.x');
  });

  it('refuses a string value longer than 64 KiB', () => {
    const error = expectFieldError(
      () => resolveParams(schema, { host: '::1', verbose: true, label: 'x'.repeat(64 * 1024 + 1) }, FIELD),
      'inputs.0.params.label',
    );
    expect(error.message).toMatch(/long/);
  });

  it('does not resolve a parameter from Object.prototype', () => {
    const proto = parseInputSchema({ toString: { type: 'str' }, constructor: { type: 'str', default: 'd' } }, 'inputs');
    const result = resolveParams(proto, {}, FIELD);
    expect(result.missing).toEqual(['toString']);
    expect(Object.hasOwn(result.values, 'constructor')).toBe(true);
    expect(result.values.constructor).toBe('d');
  });

  it('either refuses the parameter name __proto__ or resolves it like any other name', () => {
    const source = '{"__proto__": {"type": "str"}}';
    let proto;
    try {
      proto = parseInputSchema(source, 'inputs');
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      return;
    }
    const given = resolveParams(proto, JSON.parse('{"__proto__": "value"}') as Record<string, unknown>, FIELD);
    expect(Object.hasOwn(given.values, '__proto__')).toBe(true);
    expect(given.values['__proto__']).toBe('value');
    expect(given.missing).toEqual([]);
    expect(resolveParams(proto, {}, FIELD).missing).toEqual(['__proto__']);
  });
});

describe('serializeInputSchema', () => {
  it.each([
    ['{"ip": {"type": "str", "required": true, "default": "127.0.0.1"}}'],
    ['{}'],
    ['{"port": {"type": "int", "default": 8080, "description": "TCP port"}}'],
    ['{"token": {"type": "string", "secret": true, "required": true}}'],
    ['{"env": {"type": "str", "choices": ["prod", "dev"], "default": "dev", "pattern": "[a-z]+"}}'],
    ['{"ratio": {"type": "float", "default": 0.5, "choices": [0.5, 1]}}'],
    ['{"host": {"type": "ip", "default": "::1"}, "count": {"type": "integer", "default": 0}}'],
    ['{"verbose": {"type": "bool", "default": true}}'],
    // false is a real default: it must survive the round trip like true does.
    ['{"verbose": {"type": "bool", "default": false}}'],
    ['{"dry_run": {"type": "boolean", "default": "no", "choices": [false, true]}}'],
    ['{"label": {"type": "str", "default": ""}}'],
  ])('round-trips %s', (source) => {
    const schema = parseInputSchema(source, 'inputs');
    const text = serializeInputSchema(schema);
    expect(typeof JSON.parse(text)).toBe('object');
    expect(parseInputSchema(text, 'inputs')).toStrictEqual(schema);
    expect(serializeInputSchema(parseInputSchema(text, 'inputs'))).toBe(text);
  });

  it('writes canonical type names the seed format reads back', () => {
    const text = serializeInputSchema(parseInputSchema('{"a": {"type": "str"}, "b": {"type": "int"}, "c": {"type": "float"}, "d": {"type": "bool"}}', 'inputs'));
    const raw = JSON.parse(text) as Record<string, { type: string }>;
    expect(Object.fromEntries(Object.entries(raw).map(([name, s]) => [name, s.type]))).toEqual({
      a: 'string',
      b: 'integer',
      c: 'number',
      d: 'boolean',
    });
  });

  it('keeps a boolean default of false when resolving the stored schema', () => {
    const stored = serializeInputSchema(parseInputSchema('{"verbose": {"type": "bool", "default": false}}', 'inputs'));
    expect(resolveParams(parseInputSchema(stored, 'inputs'), {}, 'params')).toStrictEqual({ values: { verbose: false }, missing: [] });
  });
});

describe('names and numbers that would be ambiguous', () => {
  it('refuses two parameters that would share one INPUT_ variable', () => {
    expect(() => parseInputSchema({ host: { type: 'str' }, HOST: { type: 'str' } }, 'inputs')).toThrow(
      expect.objectContaining({ field: 'inputs.HOST', message: expect.stringContaining('INPUT_HOST') }),
    );
  });

  it.each(['0x10', 'Infinity', '1_000', ''])('refuses %j as a number', (text) => {
    expect(() => convertValue({ name: 'n', type: 'number', required: false, secret: false }, text, 'n')).toThrow(ValidationError);
  });

  it.each([['1.5', 1.5], ['-2e3', -2000], [' .25 ', 0.25]])('accepts %j as a number', (text, expected) => {
    expect(convertValue({ name: 'n', type: 'number', required: false, secret: false }, text, 'n')).toBe(expected);
  });
});

describe('patterns that could stall the service', () => {
  it.each(['(a+)+$', '([a-z]+)*', '(a*)*b'])('refuses the nested repetition %s when the schema is defined, naming the pattern', (pattern) => {
    expect(() => parseInputSchema({ p: { type: 'str', pattern } }, 'inputs')).toThrow(/repeats a group that itself repeats/);
    try {
      parseInputSchema({ p: { type: 'str', pattern } }, 'inputs');
    } catch (error) {
      expect((error as ValidationError).field).toBe('inputs.p.pattern');
    }
  });

  it('checks values against a pattern only up to 4096 characters', () => {
    const [spec] = parseInputSchema({ p: { type: 'str', pattern: '[a-z]+' } }, 'inputs');
    expect(convertValue(spec!, 'a'.repeat(4096), 'p')).toBe('a'.repeat(4096));
    expect(() => convertValue(spec!, 'a'.repeat(4097), 'p')).toThrow(/too long to check against its pattern/);
  });
});

describe('inputs from step outputs (from, SPEC rule 18)', () => {
  const schema = parseInputSchema(
    {
      host: { type: 'str', default: 'localhost' },
      port: { type: 'int', from: 'port-open.port' },
      tls: { type: 'bool', from: 'port-open.tls', default: false },
      mode: { type: 'str', from: 'setup.mode', choices: ['fast', 'safe'] },
      token: { type: 'str', from: 'login.token', secret: true },
    },
    'inputs',
  );
  const outputs: Record<string, Record<string, string>> = {
    'port-open': { port: ' 8080\n', tls: 'yes' },
    setup: { mode: 'safe' },
    login: { token: 's3cr3t' },
  };
  const resolve = (of: Record<string, Record<string, string>>, values: Record<string, string | number | boolean> = { host: 'h' }) =>
    resolveFromOutputs('health', schema, values, (vertex) => of[vertex]);

  it('parses from as "<vertex>.<output>", splitting at the last dot, and serialises it back', () => {
    expect(schema.find((p) => p.name === 'port')).toMatchObject({ from: 'port-open.port', required: false });
    expect(parseFromReference('build.v2.tag')).toEqual({ vertex: 'build.v2', output: 'tag' });
    expect(JSON.parse(serializeInputSchema(schema)).port).toEqual({ type: 'integer', from: 'port-open.port' });
  });

  it.each([['port'], ['.port'], ['a.'], ['a.my-port'], ['a.1x'], [' a.port'], ['a\n.port'], [`${'a'.repeat(49)}.port`], [42], [null]])(
    'refuses the from %j, naming it',
    (from) => {
      const error = expectFieldError(() => parseInputSchema({ p: { type: 'str', from } }, 'inputs'), 'inputs.p.from');
      expect(error.message).toContain('"<vertex>.<output>"');
    },
  );

  it('refuses from together with required', () => {
    const error = expectFieldError(() => parseInputSchema({ p: { type: 'str', from: 'a.b', required: true } }, 'inputs'), 'inputs.p.required');
    expect(error.message).toContain('cannot be required');
  });

  it('leaves from parameters out of the given values: nobody gives them, and they are never missing', () => {
    expect(resolveParams(schema, {}, 'params')).toEqual({ values: { host: 'localhost' }, missing: [] });
    const error = expectFieldError(() => resolveParams(schema, { port: 1 }, 'inputs.0.params'), 'inputs.0.params.port');
    expect(error.message).toBe('Parameter "port" takes its value from the step output port-open.port (from), so it cannot be given; leave it out.');
    expect(resolveParams(schema, { port: null }, 'params').values).toEqual({ host: 'localhost' });
    expect(readsOutputs(schema)).toBe(true);
    expect(readsOutputs(parseInputSchema({ a: { type: 'str' } }, 'inputs'))).toBe(false);
  });

  it('converts each output to its input type, in schema order, as a given value is converted', () => {
    expect(resolve(outputs)).toEqual({ ok: true, values: { host: 'h', port: 8080, tls: true, mode: 'safe', token: 's3cr3t' } });
    const values = resolve(outputs);
    expect(values.ok && Object.keys(values.values)).toEqual(['host', 'port', 'tls', 'mode', 'token']);
  });

  it('takes the default of an input whose output is missing', () => {
    const result = resolve({ ...outputs, 'port-open': { port: '1' } });
    expect(result).toMatchObject({ ok: true, values: { port: 1, tls: false } });
  });

  it('fails, naming the step, the output and the input, when an output without default is missing', () => {
    expect(resolve({ ...outputs, setup: {} })).toEqual({
      ok: false,
      reason:
        'Step "health" cannot start: its input "mode" reads the output "mode" of step "setup" (from setup.mode), which that step did not write, and the input has no default. Have "setup" write mode=<value> to $DAGPIPE_OUTPUT, or give the input a default.',
    });
    expect(resolve({ setup: { mode: 'fast' }, login: { token: 't' } })).toMatchObject({ ok: false, reason: expect.stringContaining('"port" of step "port-open"') });
  });

  it.each([
    ['port-open', { port: 'eighty', tls: 'yes' }, 'the output "port" of step "port-open" does not fit its input "port" (from port-open.port): Parameter "port" must be a whole number, got "eighty".'],
    ['port-open', { port: '1', tls: 'maybe' }, 'the output "tls" of step "port-open" does not fit its input "tls" (from port-open.tls): Parameter "tls" must be true or false, got "maybe".'],
    ['setup', { mode: 'reckless' }, 'the output "mode" of step "setup" does not fit its input "mode" (from setup.mode): Parameter "mode" must be one of "fast", "safe".'],
    ['login', { token: 'x\u0000y' }, 'Parameter "token" must not contain NUL characters'],
  ])('fails when an output of %s does not convert, naming step, output and input', (vertex, written, reason) => {
    const result = resolve({ ...outputs, [vertex]: written });
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toContain(reason);
    expect(!result.ok && result.reason).toMatch(/^Step "health" cannot start: /);
  });

  it('never repeats the value of a secret input that does not fit', () => {
    const secret = parseInputSchema({ pin: { type: 'int', from: 'vault.pin', secret: true } }, 'inputs');
    const result = resolveFromOutputs('use', secret, {}, () => ({ pin: 'hunter2' }));
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).not.toContain('hunter2');
    expect(!result.ok && result.reason).toContain('the value given is secret, so it is not shown');
  });

  it('replaces a stale value of a from parameter (a re-run reads the outputs anew)', () => {
    expect(resolve(outputs, { host: 'h', port: 1 })).toMatchObject({ ok: true, values: { port: 8080 } });
  });

  it('reads no output of Object.prototype', () => {
    const proto = parseInputSchema({ c: { type: 'str', from: 'a.constructor' } }, 'inputs');
    expect(resolveFromOutputs('b', proto, {}, () => ({}))).toMatchObject({ ok: false });
    expect(resolveFromOutputs('b', proto, {}, () => ({ constructor: 'x' }))).toEqual({ ok: true, values: { c: 'x' } });
  });
});
