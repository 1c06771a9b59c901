/**
 * Step outputs (SPEC rule 18): the $DAGPIPE_OUTPUT file format (GitHub Actions'
 * $GITHUB_OUTPUT), its limit, and masking the outputs that secret inputs read. Unit tests
 * and properties: what a script writes in the format reads back exactly, with LF or CRLF
 * line breaks, any delimiter and repeated names (the last one wins); any text either parses
 * or gives a reason, never throws.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_OUTPUT_BYTES, outputsOf, parseOutputs, tooLargeReason } from '../../src/engine/outputs.ts';
import { parseInputSchema } from '../../src/engine/inputs.ts';
import { maskedOutputs, secretOutputs } from '../../src/engine/secrets.ts';
import { fcSeed, hostileString } from '../helpers/hostile.ts';

const seed = fcSeed('test/engine/outputs.test.ts');

const ok = (text: string) => {
  const parsed = parseOutputs(text);
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.outputs;
};

const reasonOf = (text: string) => {
  const parsed = parseOutputs(text);
  if (parsed.ok) throw new Error(`parsed: ${JSON.stringify(parsed.outputs)}`);
  return parsed.reason;
};

/**
 * Writes outputs in the file format as a script would: `name=value` for one line, a heredoc
 * with a delimiter the value does not hold otherwise. A value ending in CR gets CRLF before
 * the delimiter, since a CR right before LF belongs to the line break.
 */
function writeOutputs(entries: ReadonlyArray<readonly [string, string]>, delimiterBase = 'EOF'): string {
  return entries
    .map(([name, value], i) => {
      if (!value.includes('\n') && !value.includes('\r')) return `${name}=${value}\n`;
      let delimiter = `${delimiterBase}_${i}`;
      while (value.includes(delimiter)) delimiter += 'x';
      return `${name}<<${delimiter}\n${value}${value.endsWith('\r') ? '\r\n' : '\n'}${delimiter}\n`;
    })
    .join('');
}

/** What the entries mean: the last value of each name, at the place its name first appeared. */
function lastWins(entries: ReadonlyArray<readonly [string, string]>): Record<string, string> {
  const map = new Map<string, string>();
  for (const [name, value] of entries) map.set(name, value);
  return Object.fromEntries(map);
}

const outputName = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,47}$/).filter((name) => name !== '__proto__');
const outputValue = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), hostileString).filter((value) => !value.includes('\u0000'));
const entries = fc.array(fc.tuple(fc.oneof(outputName, fc.constantFrom('a', 'port', 'constructor')), outputValue), { maxLength: 12 });

describe('the output file format', () => {
  it.each<[string, string, Record<string, string>]>([
    ['one value', 'port=4000\n', { port: '4000' }],
    ['several, in the order written', 'b=2\na=1\n', { b: '2', a: '1' }],
    ['a value holding =', 'url=http://x/?a=1&b=2\n', { url: 'http://x/?a=1&b=2' }],
    ['an empty value', 'empty=\n', { empty: '' }],
    ['spaces kept as written', 'greeting=  hello world  \n', { greeting: '  hello world  ' }],
    ['no line break at the end', 'port=4000', { port: '4000' }],
    ['empty lines skipped', '\n\na=1\n\n\nb=2\n\n', { a: '1', b: '2' }],
    ['= before << is a one-line value', 'a=b<<c\n', { a: 'b<<c' }],
    ['<< before = is a heredoc whose delimiter holds =', 'a<<X=Y\nline\nX=Y\n', { a: 'line' }],
    ['a heredoc of several lines', 'notes<<EOF\nfirst\n\nthird\nEOF\n', { notes: 'first\n\nthird' }],
    ['an empty heredoc', 'notes<<EOF\nEOF\n', { notes: '' }],
    ['a heredoc of one empty line', 'notes<<EOF\n\nEOF\n', { notes: '' }],
    ['a heredoc of two empty lines', 'notes<<EOF\n\n\nEOF\n', { notes: '\n' }],
    ['a heredoc whose delimiter ends the file', 'notes<<EOF\nx\nEOF', { notes: 'x' }],
    ['a line like the delimiter with spaces is part of the value', 'n<<EOF\n EOF\nEOF \nEOF\n', { n: ' EOF\nEOF ' }],
    ['any delimiter', 'n<<ghadelimiter_5f2e\na=1\nghadelimiter_5f2e\n', { n: 'a=1' }],
    ['CRLF line breaks', 'a=1\r\nb=2\r\n', { a: '1', b: '2' }],
    ['a CRLF heredoc keeps its inner line breaks', 'n<<EOF\r\nx\r\ny\r\nEOF\r\n', { n: 'x\r\ny' }],
    ['a CR inside a line stays', 'a=x\ry\n', { a: 'x\ry' }],
    ['the same name twice: the last value wins', 'a=1\nb=2\na=3\n', { a: '3', b: '2' }],
    ['a heredoc then a one-line value of the same name', 'a<<E\nx\nE\na=y\n', { a: 'y' }],
    ['names of Object.prototype members are plain names', 'constructor=1\ntoString=2\nhasOwnProperty=3\n', { constructor: '1', toString: '2', hasOwnProperty: '3' }],
    ['shell syntax is data', "cmd=$(touch pwned); `id` 'q' \"d\"\n", { cmd: "$(touch pwned); `id` 'q' \"d\"" }],
    ['unicode', 'name=héllo ✓ 日本 🙂\n', { name: 'héllo ✓ 日本 🙂' }],
    ['nothing at all', '', {}],
  ])('reads %s', (_what, text, expected) => {
    expect(ok(text)).toStrictEqual(expected);
  });

  it.each<[string, string, RegExp]>([
    ['a line without = or <<', 'a=1\njust some text\n', /line 2 is neither name=value nor name<<DELIMITER/],
    ['a line of spaces', 'a=1\n   \n', /line 2 is neither name=value nor name<<DELIMITER/],
    ['no name before =', '=value\n', /line 1 has no name before its =/],
    ['no name before <<', '<<EOF\nx\nEOF\n', /line 1 has no name before its <</],
    ['a name with a dash', 'a=1\nmy-port=1\n', /line 2: "my-port" is not an output name: use letters, digits and _/],
    ['a name starting with a digit', '1a=x\n', /line 1: "1a" is not an output name/],
    ['a name with a space', 'my name=x\n', /line 1: "my name" is not an output name/],
    ['a name of 49 characters', `${'a'.repeat(49)}=x\n`, /line 1: "a{49}" is not an output name.*at most 48 characters/],
    ['__proto__', '__proto__=x\n', /line 1: "__proto__" is not an output name/],
    ['a heredoc without a delimiter', 'n<<\nx\n', /line 1 starts a multi-line value of "n" without a delimiter/],
    ['a heredoc that never ends', 'a=1\nn<<EOF\nx\ny\n', /the multi-line value of "n" that starts on line 2 never ends: no line after it is exactly "EOF"/],
    ['a heredoc whose last line is not its delimiter', 'n<<EOF\nx\nEOFX', /never ends/],
    ['a heredoc closed by a differently cased delimiter', 'n<<EOF\nx\neof\n', /never ends/],
    ['a NUL in a value', 'a=x\u0000y\n', /the value of "a" \(line 1\) holds a NUL character/],
    ['a NUL in a heredoc', 'n<<E\nx\u0000\nE\n', /the value of "n" \(line 1\) holds a NUL character/],
  ])('refuses %s, naming the line', (_what, text, reason) => {
    const why = reasonOf(text);
    expect(why).toMatch(/^The script exited 0, but its outputs \(\$DAGPIPE_OUTPUT\) could not be read: /);
    expect(why).toMatch(reason);
  });

  it('never repeats the text of a malformed line (it may hold a secret)', () => {
    expect(reasonOf('token s3cr3t-value\n')).not.toContain('s3cr3t');
    expect(reasonOf('n<<EOF\ns3cr3t-value\n')).not.toContain('s3cr3t');
  });

  it('shortens a long bad name in the reason', () => {
    const why = reasonOf(`${'x'.repeat(200)}-y=1\n`);
    expect(why).toContain(`"${'x'.repeat(60)}…"`);
    expect(why.length).toBeLessThan(300);
  });

  it('fails a file past the limit with the bytes written and what to do instead', () => {
    expect(MAX_OUTPUT_BYTES).toBe(65536);
    expect(outputsOf({ tooLarge: 70000 })).toEqual({ ok: false, reason: tooLargeReason(70000) });
    expect(tooLargeReason(70000)).toContain('wrote 70000 bytes of outputs; at most 65536 are kept; write large data to a file and pass its path');
    expect(outputsOf({ problem: 'it is a symbolic link.' })).toEqual({
      ok: false,
      reason: 'The script exited 0, but its outputs ($DAGPIPE_OUTPUT) could not be read: it is a symbolic link.',
    });
    expect(outputsOf({ text: 'a=1\n' })).toEqual({ ok: true, outputs: { a: '1' } });
  });
});

describe('the output file format, properties', () => {
  it('reads back what was written, the last value of a repeated name winning', () => {
    fc.assert(
      fc.property(entries, fc.constantFrom('EOF', 'ghadelimiter', 'END', 'x'), (written, delimiter) => {
        expect(ok(writeOutputs(written, delimiter))).toStrictEqual(lastWins(written));
      }),
      { seed, numRuns: 500 },
    );
  });

  it('reads a file with CRLF line breaks like the same file with LF (a heredoc keeps its inner CRLFs)', () => {
    const noCr = fc.array(fc.tuple(outputName, outputValue.filter((v) => !v.includes('\r'))), { maxLength: 8 });
    fc.assert(
      fc.property(noCr, (written) => {
        const crlf = writeOutputs(written).replaceAll('\n', '\r\n');
        const expected = Object.fromEntries(Object.entries(lastWins(written)).map(([name, value]) => [name, value.replaceAll('\n', '\r\n')]));
        expect(ok(crlf)).toStrictEqual(expected);
      }),
      { seed, numRuns: 300 },
    );
  });

  it('gives outputs or a reason for any text, and never throws', () => {
    fc.assert(
      fc.property(fc.oneof(hostileString, fc.array(fc.oneof(hostileString, fc.constantFrom('a=1', 'n<<EOF', 'EOF', '', '\r', '=', '<<')), { maxLength: 10 }).map((lines) => lines.join('\n'))), (text) => {
        const parsed = parseOutputs(text);
        if (parsed.ok) {
          for (const [name, value] of Object.entries(parsed.outputs)) {
            expect(name).toMatch(/^[A-Za-z_][A-Za-z0-9_]{0,47}$/);
            expect(value).not.toContain('\u0000');
          }
        } else {
          expect(parsed.reason).toMatch(/could not be read: /);
        }
      }),
      { seed, numRuns: 1000 },
    );
  });

  it('names the heredoc that never ends, wherever it is', () => {
    fc.assert(
      fc.property(entries, outputName, fc.string().filter((v) => !v.includes('\n') && !v.includes('\u0000') && !v.includes('EOF_open')), (before, name, line) => {
        const text = `${writeOutputs(before)}${name}<<EOF_open\n${line}\n`;
        const lines = writeOutputs(before).split('\n').length;
        expect(reasonOf(text)).toContain(`the multi-line value of "${name}" that starts on line ${lines} never ends`);
      }),
      { seed, numRuns: 200 },
    );
  });
});

describe('outputs read by secret inputs', () => {
  const vertices = [
    { inputs: parseInputSchema({ token: { type: 'str', secret: true, from: 'login.token' }, user: { type: 'str', from: 'login.user' } }, 'inputs') },
    { inputs: parseInputSchema({ t: { type: 'str', secret: true, from: 'login.token' }, k: { type: 'str', secret: true, from: 'vault.key' } }, 'inputs') },
    { inputs: parseInputSchema({ plain: { type: 'str', secret: true } }, 'inputs') },
  ];

  it('are listed by the step that writes them', () => {
    expect(secretOutputs(vertices)).toEqual(new Map([
      ['login', new Set(['token'])],
      ['vault', new Set(['key'])],
    ]));
  });

  it('are shown as *** on that step, and their values masked in its other outputs', () => {
    const outputs = { user: 'ada', token: 's3cr3t', url: 'https://ada:s3cr3t@example.com', multi: 'x' };
    expect(maskedOutputs(outputs, new Set(['token']))).toEqual([
      { name: 'user', value: 'ada' },
      { name: 'token', value: '***' },
      { name: 'url', value: 'https://ada:***@example.com' },
      { name: 'multi', value: 'x' },
    ]);
    expect(maskedOutputs({ key: 'line one\nline two', note: 'saw line two' }, new Set(['key']))).toEqual([
      { name: 'key', value: '***' },
      { name: 'note', value: 'saw ***' },
    ]);
    expect(maskedOutputs({ empty: '', other: 'abc' }, new Set(['empty']))).toEqual([
      { name: 'empty', value: '***' },
      { name: 'other', value: 'abc' },
    ]);
  });
});
