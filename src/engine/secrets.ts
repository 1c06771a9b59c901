/**
 * Masking of parameters marked `secret: true` (SPEC rule 5): their values never leave the
 * service in output, events, logs or the script shown by the API; `***` stands in. Pure.
 *
 * The script itself runs with the real value; only what is shown is masked. A value is
 * masked wherever it appears, as given and shell-quoted (as the rendered script holds
 * it), and line by line, since output is stored and streamed in lines.
 */
import { parseFromReference, type InputSchema, type ParamValue } from './inputs.ts';
import { shellQuote } from './template.ts';

export const MASK = '***';

/** Texts to hide, longest first so that a longer secret is not half-masked by a shorter one. */
export type Secrets = readonly string[];

export function secretsOf(schema: InputSchema, values: Readonly<Record<string, ParamValue>>): Secrets {
  return textsToHide(schema.filter((spec) => spec.secret && Object.hasOwn(values, spec.name)).map((spec) => String(values[spec.name])));
}

/** Each secret value as given, shell-quoted and line by line, longest first. */
function textsToHide(values: Iterable<string>): Secrets {
  const texts = new Set<string>();
  for (const value of values) {
    if (value === '') continue;
    texts.add(shellQuote(value));
    texts.add(value);
    for (const line of value.split(/\r?\n/)) if (line.trim() !== '') texts.add(line);
  }
  return [...texts].sort((a, b) => b.length - a.length);
}

/**
 * SPEC rule 18: by step name, its outputs that a secret input reads (checkGraph makes every
 * input reading such an output secret). Those are masked on the step that wrote them too.
 */
export function secretOutputs(vertices: Iterable<{ inputs: InputSchema }>): Map<string, Set<string>> {
  const secret = new Map<string, Set<string>>();
  for (const { inputs } of vertices) {
    for (const spec of inputs) {
      if (!spec.secret || spec.from === undefined) continue;
      const ref = parseFromReference(spec.from);
      if (!ref) continue;
      secret.set(ref.vertex, (secret.get(ref.vertex) ?? new Set()).add(ref.output));
    }
  }
  return secret;
}

/**
 * A step's outputs as shown: those a secret input reads as `***`, and their values masked
 * wherever the other outputs hold them.
 */
export function maskedOutputs(outputs: Readonly<Record<string, string>>, secret: ReadonlySet<string>): Array<{ name: string; value: string }> {
  const entries = Object.entries(outputs);
  const hidden = textsToHide(entries.filter(([name]) => secret.has(name)).map(([, value]) => value));
  return entries.map(([name, value]) => ({ name, value: secret.has(name) ? MASK : maskSecrets(value, hidden) }));
}

/** `text` with every secret replaced by `***`. */
export function maskSecrets(text: string, secrets: Secrets): string {
  let masked = text;
  for (const secret of secrets) masked = masked.replaceAll(secret, MASK);
  return masked;
}

/**
 * The secrets that can occur within a line. Output is masked line by line (a secret
 * printed across lines is masked in each line's part, see secretsOf), so a text of whole
 * lines masked with these at once comes out as if each of its lines had been masked.
 */
export function withinLines(secrets: Secrets): Secrets {
  return secrets.filter((secret) => !secret.includes('\n'));
}

/** The values as shown: secret ones replaced by `***`. */
export function maskedValues(schema: InputSchema, values: Readonly<Record<string, ParamValue>>): Record<string, ParamValue> {
  const secret = new Set(schema.filter((s) => s.secret).map((s) => s.name));
  return Object.fromEntries(Object.entries(values).map(([name, value]) => [name, secret.has(name) ? MASK : value]));
}
