import { describe, expect, it } from 'vitest';
import { parseInputSchema } from '../../src/engine/inputs.ts';
import { maskedValues, maskSecrets, secretsOf } from '../../src/engine/secrets.ts';
import { renderScript } from '../../src/engine/template.ts';

const schema = parseInputSchema(
  { token: { type: 'str', secret: true }, user: { type: 'str' }, pin: { type: 'int', secret: true }, empty: { type: 'str', secret: true } },
  'input',
);

describe('secret masking', () => {
  it('masks a secret in the rendered script, shell-quoted as it is there, and leaves the rest', () => {
    const values = { token: "it's s3cr3t", user: 'ada', pin: 1234, empty: '' };
    const script = renderScript('curl -u {user}:{token} --pin {pin}', values);
    expect(script).toBe(`curl -u 'ada':'it'\\''s s3cr3t' --pin '1234'`);
    expect(maskSecrets(script, secretsOf(schema, values))).toBe("curl -u 'ada':*** --pin ***");
  });

  it('masks every occurrence in output lines, also line by line for a multi-line secret', () => {
    const values = { token: 'first-half\nsecond-half', user: 'ada', pin: 42, empty: '' };
    const secrets = secretsOf(schema, values);
    expect(maskSecrets('got first-half and second-half; pin=42, 42', secrets)).toBe('got *** and ***; pin=***, ***');
    expect(maskSecrets('user ada', secrets)).toBe('user ada');
  });

  it('never treats an empty value as a secret (it would mask everything)', () => {
    expect(secretsOf(schema, { empty: '' })).toEqual([]);
  });

  it('masks the longest secret first, so a shorter one inside it leaves nothing behind', () => {
    const two = parseInputSchema({ a: { type: 'str', secret: true }, b: { type: 'str', secret: true } }, 'input');
    expect(maskSecrets('xx abcdef yy', secretsOf(two, { a: 'abc', b: 'abcdef' }))).toBe('xx *** yy');
  });

  it('shows secret values as *** and the others as they are', () => {
    expect(maskedValues(schema, { token: 't', user: 'ada', pin: 1 })).toEqual({ token: '***', user: 'ada', pin: '***' });
  });
});
