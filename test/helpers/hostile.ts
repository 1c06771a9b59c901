/**
 * Hostile values for property-based and fuzz tests (fast-check): shell-injection
 * payloads, control characters, lone surrogates, bidi marks; and the run seed.
 */
import fc from 'fast-check';

/** Shell-injection payloads and other strings that break naive code. */
export const HOSTILE_STRINGS: readonly string[] = [
  '$(id)',
  '`id`',
  "'; rm -rf /; '",
  '"; rm -rf /; "',
  '\n',
  'a\nb',
  '${IFS}',
  '$IFS$9cat$IFS/etc/passwd',
  '\u0000',
  'x\u0000y',
  '; touch pwned',
  '&& touch pwned',
  '| touch pwned',
  '$(touch pwned)',
  '`touch pwned`',
  '$((1+1))',
  '{p}',
  '{name}',
  '\\',
  "'",
  "''",
  "'\\''",
  '\u202e\u202d\u200f',
  '\ud800',
  '\udc00x',
  '🙂',
  '-n',
  '--',
  '%s%n',
  '*',
  '~',
  '!',
  '\r\n',
  ' ',
  '',
  '<script>alert(1)</script>',
  "1' OR '1'='1",
  '../../../../etc/passwd',
  '__proto__',
];

export const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code));

/** Random strings, full unicode, mixes of payloads and lone surrogates, and the payloads themselves. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.string({ unit: fc.oneof(fc.constantFrom(...HOSTILE_STRINGS), loneSurrogate, fc.string({ unit: 'binary', maxLength: 2 })) }),
  fc.constantFrom(...HOSTILE_STRINGS),
);

/** The fast-check seed of this run: FC_SEED if set, else random; printed so a failure reproduces. */
export function fcSeed(file: string): number {
  const seed = process.env.FC_SEED ? Number(process.env.FC_SEED) : Math.floor(Math.random() * 2 ** 31);
  console.log(`${file}: fast-check seed ${seed} (rerun with FC_SEED=${seed})`);
  return seed;
}
