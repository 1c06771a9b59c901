/** Validation of plain text and number fields of mutations. Pure. */
import { ValidationError } from '../errors.ts';

export const LIMITS = {
  graphName: 48,
  graphDesc: 100,
  vertexName: 48,
  pipelineName: 48,
  pipelineDesc: 100,
  scriptBytes: 64 * 1024,
  maxTimeoutSeconds: 7 * 24 * 3600,
} as const;

// Control characters other than tab make names unreadable in UIs and logs.
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/** A required, trimmed, single-line name of at most `max` characters. */
export function requireName(field: string, value: string, max: number): string {
  const name = value.trim();
  if (name === '') throw new ValidationError(field, `${field} must not be empty.`);
  if (name.length > max) throw new ValidationError(field, `${field} is ${name.length} characters long; at most ${max} are allowed.`);
  if (CONTROL.test(name)) throw new ValidationError(field, `${field} must be a single line without control characters.`);
  return name;
}

/** An optional description; empty means none. */
export function optionalText(field: string, value: string | null | undefined, max: number): string | null {
  if (value === undefined || value === null) return null;
  const text = value.trim();
  if (text.length > max) throw new ValidationError(field, `${field} is ${text.length} characters long; at most ${max} are allowed.`);
  return text === '' ? null : text;
}

export function requireScript(field: string, value: string): string {
  const bytes = Buffer.byteLength(value);
  if (bytes > LIMITS.scriptBytes) {
    throw new ValidationError(field, `The script is ${bytes} bytes; at most ${LIMITS.scriptBytes} are allowed. Put large logic in a file the script calls.`);
  }
  if (value.includes('\u0000')) throw new ValidationError(field, 'The script must not contain NUL characters.');
  return value;
}

export function requireTimeout(field: string, seconds: number): number {
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > LIMITS.maxTimeoutSeconds) {
    throw new ValidationError(field, `${field} must be a whole number of seconds from 1 to ${LIMITS.maxTimeoutSeconds}.`);
  }
  return seconds;
}
