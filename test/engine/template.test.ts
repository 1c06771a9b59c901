/**
 * Unit tests of script rendering (SPEC rule 6), including injection tests that run the
 * rendered script with the same bash invocation the executor uses.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.ts';
import { convertValue, parseInputSchema, resolveFromOutputs, resolveParams, type ParamType } from '../../src/engine/inputs.ts';
import { parseOutputs, type OutputsResult } from '../../src/engine/outputs.ts';
import { inputEnvironment, renderScript, shellQuote } from '../../src/engine/template.ts';

describe('shellQuote', () => {
  it.each([
    ['', "''"],
    ['abc', "'abc'"],
    ['a b', "'a b'"],
    ["it's", "'it'\\''s'"],
    ["''", "''\\'''\\'''"],
    ['$HOME', "'$HOME'"],
    ['a\nb', "'a\nb'"],
    ['\\', "'\\'"],
  ])('quotes %j as %j', (value, quoted) => {
    expect(shellQuote(value)).toBe(quoted);
  });
});

describe('renderScript', () => {
  it.each<{ name: string; script: string; values: Record<string, string | number | boolean>; expected: string }>([
    { name: 'seed example', script: 'ping -c 1 {ip}', values: { ip: '127.0.0.1' }, expected: "ping -c 1 '127.0.0.1'" },
    { name: 'several placeholders', script: 'curl http://{host}:{port}/', values: { host: '::1', port: 80 }, expected: "curl http://'::1':'80'/" },
    { name: 'same placeholder twice', script: 'echo {a} {a}', values: { a: 'x' }, expected: "echo 'x' 'x'" },
    { name: 'adjacent placeholders', script: '{a}{b}', values: { a: '1', b: '2' }, expected: "'1''2'" },
    { name: 'boolean and number values', script: 'run {flag} {n} {f}', values: { flag: true, n: -3, f: 0.5 }, expected: "run 'true' '-3' '0.5'" },
    { name: 'awk program stays literal', script: "awk '{print $1}' f", values: { print: 'x' }, expected: "awk '{print $1}' f" },
    { name: 'awk program with a param named like a word in it', script: "awk '{print}' {file}", values: { file: 'f.txt' }, expected: "awk '{print}' 'f.txt'" },
    { name: '${HOME} stays literal', script: 'cd ${HOME}', values: {}, expected: 'cd ${HOME}' },
    { name: '${name} stays literal even when name is declared', script: 'echo ${HOME} {HOME}', values: { HOME: 'h' }, expected: "echo ${HOME} 'h'" },
    { name: 'undeclared placeholder stays literal', script: 'echo {other} {ip}', values: { ip: '::1' }, expected: "echo {other} '::1'" },
    { name: 'placeholders are case-sensitive', script: 'echo {IP} {ip}', values: { ip: '::1' }, expected: "echo {IP} '::1'" },
    { name: 'spaces inside braces are not a placeholder', script: 'echo { ip } {ip }', values: { ip: '::1' }, expected: 'echo { ip } {ip }' },
    { name: 'brace group in bash', script: '{ echo a; echo b; } > out', values: { echo: 'x' }, expected: '{ echo a; echo b; } > out' },
    { name: 'brace expansion', script: 'echo {a,b} {1..3}', values: { a: 'x' }, expected: 'echo {a,b} {1..3}' },
    { name: 'double braces', script: 'echo {{a}}', values: { a: 'x' }, expected: "echo {'x'}" },
    { name: 'names starting with a digit are not placeholders', script: 'echo {1a} {_a}', values: { _a: 'u' }, expected: "echo {1a} 'u'" },
    { name: 'JSON in a script stays literal', script: `echo '{"a": 1}'`, values: { a: 'x' }, expected: `echo '{"a": 1}'` },
    { name: 'Object.prototype names are not declared', script: 'echo {toString} {constructor} {__proto__}', values: {}, expected: 'echo {toString} {constructor} {__proto__}' },
    { name: 'no placeholders', script: 'echo hi\nexit 0\n', values: { a: 'x' }, expected: 'echo hi\nexit 0\n' },
    { name: 'empty value', script: 'echo {a}', values: { a: '' }, expected: "echo ''" },
  ])('$name', ({ script, values, expected }) => {
    expect(renderScript(script, values)).toBe(expected);
  });

  it('does not substitute inside substituted values (one pass)', () => {
    expect(renderScript('echo {a} {b}', { a: '{b}', b: 'B' })).toBe("echo '{b}' 'B'");
  });

  it.each([['$&'], ['$1'], ['$`'], ["$'"], ['$$']])('inserts the replacement pattern %s verbatim', (value) => {
    expect(renderScript('echo {a}', { a: value })).toBe(`echo ${shellQuote(value)}`);
  });
});

describe('inputEnvironment', () => {
  it('exports each parameter as INPUT_<NAME> with its string value', () => {
    expect(inputEnvironment({ ip: '10.0.0.1', port: 8080, verbose: true, dry_run: false, Mixed_Case1: 'x', ratio: 0.25 })).toStrictEqual({
      INPUT_IP: '10.0.0.1',
      INPUT_PORT: '8080',
      INPUT_VERBOSE: 'true',
      INPUT_DRY_RUN: 'false',
      INPUT_MIXED_CASE1: 'x',
      INPUT_RATIO: '0.25',
    });
  });

  it('is empty for no parameters', () => {
    expect(inputEnvironment({})).toStrictEqual({});
  });

  it('passes hostile values through unchanged (the environment needs no quoting)', () => {
    expect(inputEnvironment({ v: "x; rm -rf / $(touch pwned) `id` 'q'\n" })).toStrictEqual({ INPUT_V: "x; rm -rf / $(touch pwned) `id` 'q'\n" });
  });
});

/** Hostile values: shell syntax that would do something if it were not inert data. */
const HOSTILE = [
  'x; rm -rf /',
  'x; touch pwned',
  '$(touch pwned)',
  '`touch pwned`',
  "'; touch pwned; '",
  "'",
  "it's",
  '"; touch pwned; "',
  'a\ntouch pwned',
  'a\n',
  '\n',
  'x && touch pwned',
  'x || touch pwned',
  'x | tee pwned',
  'x > pwned',
  '< /etc/passwd',
  '*',
  '.*',
  '?',
  '[a-z]*',
  '~',
  '~root',
  '$HOME',
  '${HOME}',
  '${IFS}',
  '$((1+1))',
  '!!',
  '!$',
  '\\',
  "\\'",
  '{a,b}',
  '{1..3}',
  '#comment',
  '-n',
  '--help',
  '&',
  'x & touch pwned',
  '$(touch pwned)\n`touch pwned2`',
  '<(touch pwned)',
  'a\tb  c',
  '   ',
  '',
  'héllo ✓ 日本',
  "$'\\x41'",
  '{v}',
];

const BASH = ['--noprofile', '--norc', '-eo', 'pipefail', '-c'];

describe('injection: hostile values are inert', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'dagpipe-render-'));
    // A file for globs to match, so an unquoted * would visibly expand.
    writeFileSync(path.join(dir, 'existing'), '');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function run(script: string, env: Record<string, string> = {}): string {
    return execFileSync('bash', [...BASH, script], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, ...env },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 10_000,
    });
  }

  function expectNoNewFiles(): void {
    expect(readdirSync(dir)).toEqual(['existing']);
  }

  describe.each(['str', 'string'])('type %s', (type) => {
    const schema = parseInputSchema(JSON.stringify({ v: { type, required: true } }), 'inputs');

    it.each(HOSTILE)('prints %j back verbatim and creates no file', (hostile) => {
      const { values, missing } = resolveParams(schema, { v: hostile }, 'inputs.0.params');
      expect(missing).toEqual([]);
      const script = renderScript("printf '%s' {v}", values);
      expect(run(script)).toBe(hostile);
      expectNoNewFiles();
    });

    it.each(HOSTILE)('keeps %j one word in an assignment, a test and a loop', (hostile) => {
      const { values } = resolveParams(schema, { v: hostile }, 'inputs.0.params');
      const script = renderScript(
        [
          'x={v}',
          'n=0',
          'for w in {v}; do n=$((n+1)); done',
          '[ "$n" = 1 ]',
          'test "$x" = {v}',
          `printf '%s' "$x"`,
        ].join('\n'),
        values,
      );
      expect(run(script)).toBe(hostile);
      expectNoNewFiles();
    });

    it.each(HOSTILE)('exports %j as INPUT_V verbatim', (hostile) => {
      const { values } = resolveParams(schema, { v: hostile }, 'inputs.0.params');
      expect(run(`printf '%s' "$INPUT_V"`, inputEnvironment(values))).toBe(hostile);
      expectNoNewFiles();
    });
  });

  /**
   * SPEC rule 18: a value that arrives as a step output, written by a real script to its
   * output file, parsed, resolved for an input with `from` and rendered, is as inert as a
   * given one.
   */
  describe('values that arrive as step outputs', () => {
    const reader = parseInputSchema(JSON.stringify({ v: { type: 'str', from: 'produce.v' } }), 'inputs');

    /** Has bash write `value` to an output file (as a heredoc when it has line breaks) and parses it. */
    function throughOutputFile(value: string): OutputsResult {
      const file = path.join(dir, 'out');
      writeFileSync(file, '');
      const write = value.includes('\n') || value.includes('\r')
        ? `printf 'v<<END_OF_V\n%s\nEND_OF_V\n' "$VALUE" >> "$OUT"`
        : `printf 'v=%s\n' "$VALUE" >> "$OUT"`;
      run(write, { VALUE: value, OUT: file });
      const parsed = parseOutputs(readFileSync(file, 'utf8'));
      rmSync(file);
      return parsed;
    }

    function rendered(outputs: Record<string, string>, script: string): string {
      const resolved = resolveFromOutputs('consume', reader, {}, (vertex) => (vertex === 'produce' ? outputs : undefined));
      if (!resolved.ok) throw new Error(resolved.reason);
      return renderScript(script, resolved.values);
    }

    it.each(HOSTILE)('prints %j back verbatim and creates no file', (hostile) => {
      const parsed = throughOutputFile(hostile);
      if (!parsed.ok) throw new Error(parsed.reason);
      expect(parsed.outputs).toEqual({ v: hostile });
      expect(run(rendered(parsed.outputs, "printf '%s' {v}"))).toBe(hostile);
      expectNoNewFiles();
    });

    it.each(HOSTILE)('keeps %j one word in an assignment, a test and a loop', (hostile) => {
      const script = rendered({ v: hostile }, ['x={v}', 'n=0', 'for w in {v}; do n=$((n+1)); done', '[ "$n" = 1 ]', 'test "$x" = {v}', `printf '%s' "$x"`].join('\n'));
      expect(run(script)).toBe(hostile);
      expectNoNewFiles();
    });

    it.each([
      ['a heredoc of shell syntax', 'v<<EOF\n$(touch pwned)\n`touch pwned2`\nEOF\n', '$(touch pwned)\n`touch pwned2`'],
      ['a value closing its quotes', "v='; touch pwned; '\n", "'; touch pwned; '"],
      ['a CRLF file', 'v=x; touch pwned\r\n', 'x; touch pwned'],
      ['a heredoc whose delimiter is shell syntax', "v<<$(touch pwned)\na\n$(touch pwned)\n", 'a'],
    ])('renders %s inert', (_what, text, value) => {
      const parsed = parseOutputs(text);
      if (!parsed.ok) throw new Error(parsed.reason);
      expect(parsed.outputs).toEqual({ v: value });
      expect(run(rendered(parsed.outputs, "printf '%s' {v}"))).toBe(value);
      expectNoNewFiles();
    });

    it('refuses NUL attempts: in the file, and in a value handed over otherwise', () => {
      for (const text of ['v=x\u0000; touch pwned\n', 'v<<E\n\u0000\nE\n']) {
        const parsed = parseOutputs(text);
        expect(parsed.ok).toBe(false);
      }
      const resolved = resolveFromOutputs('consume', reader, {}, () => ({ v: 'x\u0000y' }));
      expect(resolved).toMatchObject({ ok: false, reason: expect.stringContaining('must not contain NUL characters') });
    });

    it('an output cannot turn into a placeholder of another input', () => {
      const two = parseInputSchema(JSON.stringify({ a: { type: 'str', from: 'produce.a' }, b: { type: 'str', default: '$(touch pwned)' } }), 'inputs');
      const resolved = resolveFromOutputs('consume', two, { b: '$(touch pwned)' }, () => ({ a: '{b}' }));
      if (!resolved.ok) throw new Error(resolved.reason);
      expect(run(renderScript("printf '%s|%s' {a} {b}", resolved.values))).toBe('{b}|$(touch pwned)');
      expectNoNewFiles();
    });
  });

  it('a value that looks like another placeholder is not expanded', () => {
    const schema = parseInputSchema('{"a": {"type": "str"}, "b": {"type": "str"}}', 'inputs');
    const { values } = resolveParams(schema, { a: '{b}', b: '$(touch pwned)' }, 'p');
    expect(run(renderScript("printf '%s|%s' {a} {b}", values))).toBe('{b}|$(touch pwned)');
    expectNoNewFiles();
  });

  it('the check itself works: an unquoted hostile value does create a file', () => {
    run('echo $(touch pwned)');
    expect(readdirSync(dir).sort()).toEqual(['existing', 'pwned']);
  });

  const NON_STRING_TYPES: ParamType[] = ['integer', 'number', 'boolean', 'ip'];
  describe.each(NON_STRING_TYPES)('type %s refuses hostile values at conversion', (type) => {
    const spec = { name: 'v', type, required: true, secret: false };
    it.each(HOSTILE)('refuses %j', (hostile) => {
      expect(() => convertValue(spec, hostile, 'inputs.0.params.v')).toThrow(ValidationError);
    });

    it.each([
      '1; touch pwned',
      '1 && touch pwned',
      '1$(touch pwned)',
      '`touch pwned`1',
      '1\ntouch pwned',
      '1 | tee pwned',
      'true; touch pwned',
      'yes && touch pwned',
      '127.0.0.1; touch pwned',
      '::1 && touch pwned',
      '::1%$(touch pwned)',
      'fe80::1%eth0;id',
      '10.0.0.1\ntouch pwned',
      '1.0.0.1 *',
    ])('refuses the look-alike %j', (hostile) => {
      expect(() => convertValue(spec, hostile, 'inputs.0.params.v')).toThrow(ValidationError);
    });
  });

  it.each<{ type: ParamType; value: string }>([
    { type: 'integer', value: ' 42\n' },
    { type: 'number', value: ' -1.5e2 ' },
    { type: 'boolean', value: ' YES ' },
    { type: 'ip', value: ' ::1\n' },
    { type: 'ip', value: '10.1.2.3' },
  ])('renders an accepted $type value as plain data: $value', ({ type, value }) => {
    const spec = { name: 'v', type, required: true, secret: false };
    const converted = convertValue(spec, value, 'inputs.0.params.v');
    const rendered = renderScript("printf '%s' {v}", { v: converted });
    expect(run(rendered)).toBe(String(converted));
    expect(String(converted)).toMatch(/^[0-9A-Za-z.:+-]+$/);
    expectNoNewFiles();
  });
});
