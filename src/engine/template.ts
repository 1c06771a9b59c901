/**
 * Script rendering (SPEC rule 6). Only `{name}` of a declared parameter is replaced, by
 * the shell-quoted value; every other brace stays literal, so `awk '{print $1}'` and
 * `${HOME}` keep working. Pure.
 */
import { ValidationError } from '../errors.ts';
import type { ParamValue } from './inputs.ts';

const PLACEHOLDER = /(?<!\$)\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** POSIX single-quoting: the result is one word whatever the value holds. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

export function renderScript(script: string, values: Readonly<Record<string, ParamValue>>): string {
  return script.replace(PLACEHOLDER, (match, name: string) =>
    Object.hasOwn(values, name) ? shellQuote(String(values[name])) : match,
  );
}

/** Each parameter as INPUT_<NAME>, for scripts that prefer the environment. */
export function inputEnvironment(values: Readonly<Record<string, ParamValue>>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([name, value]) => [`INPUT_${name.toUpperCase()}`, String(value)]));
}

/**
 * @throws ValidationError naming `field` when a declared placeholder sits where its value
 *   would not be inert (see {@link unsafePlaceholders}).
 */
export function assertSafePlaceholders(script: string, declared: ReadonlySet<string>, field: string): void {
  const [first] = unsafePlaceholders(script, declared);
  if (!first) return;
  const variable = `"$INPUT_${first.name.toUpperCase()}"`;
  throw new ValidationError(
    field,
    `{${first.name}} on line ${first.line} is inside ${first.context}, where its value could break out and run as code. ` +
      `Put the placeholder outside quotes (echo "Hello "{${first.name}}), or use ${variable} instead.`,
  );
}

export interface UnsafePlaceholder {
  name: string;
  /** 1-based line of the script. */
  line: number;
  context: 'single quotes' | 'double quotes' | 'a heredoc' | 'a comment';
}

/**
 * Placeholders of declared parameters that sit where a shell-quoted value is not inert:
 * inside quotes (the value's own quotes would close them), a heredoc (expanded as text)
 * or a comment (a newline in the value would end it). Rendering is safe only outside
 * those, so such scripts are refused. A conservative scan, not a full shell parser.
 */
export function unsafePlaceholders(script: string, declared: ReadonlySet<string>): UnsafePlaceholder[] {
  const found: UnsafePlaceholder[] = [];
  type State = 'normal' | UnsafePlaceholder['context'];
  let state: State = 'normal';
  let line = 1;
  let heredocs: string[] = []; // delimiters whose bodies start after the current line
  let heredocDelimiter: string | undefined;
  let atWordStart = true;
  for (let i = 0; i < script.length; i++) {
    const c = script[i]!;
    if (c === '\n') {
      line++;
      if (state === 'a comment') state = 'normal';
      if (state === 'a heredoc') {
        const end = script.indexOf('\n', i + 1);
        const next = script.slice(i + 1, end === -1 ? undefined : end);
        if (next.replace(/^\t+/, '') === heredocDelimiter) {
          state = 'normal';
          heredocDelimiter = undefined;
          i = end === -1 ? script.length : end - 1;
          continue;
        }
      } else if (state === 'normal' && heredocs.length > 0) {
        heredocDelimiter = heredocs.shift();
        state = 'a heredoc';
        heredocs = [];
      }
      atWordStart = true;
      continue;
    }
    if (c === '{' && script[i - 1] !== '$') {
      const match = /^\{([A-Za-z_][A-Za-z0-9_]*)\}/.exec(script.slice(i));
      if (match && declared.has(match[1]!)) {
        if (state !== 'normal') found.push({ name: match[1]!, line, context: state });
        i += match[0].length - 1;
        atWordStart = false;
        continue;
      }
    }
    switch (state) {
      case 'normal':
        if (c === '\\') i++;
        else if (c === "'") state = 'single quotes';
        else if (c === '"') state = 'double quotes';
        else if (c === '#' && atWordStart) state = 'a comment';
        else if (c === '<' && script[i + 1] === '<' && script[i + 2] !== '<') {
          const heredoc = /^<<-?\s*(['"]?)([A-Za-z_][A-Za-z0-9_]*)\1/.exec(script.slice(i));
          if (heredoc) {
            heredocs.push(heredoc[2]!);
            i += heredoc[0].length - 1;
          }
        }
        break;
      case 'single quotes':
        if (c === "'") state = 'normal';
        break;
      case 'double quotes':
        if (c === '\\') i++;
        else if (c === '"') state = 'normal';
        break;
      default:
        break;
    }
    atWordStart = /[\s;&|()]/.test(c);
  }
  return found;
}
