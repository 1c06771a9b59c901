/**
 * Script rendering (SPEC rule 6). Only `{name}` of a declared parameter is replaced, by
 * the shell-quoted value; every other brace stays literal, so `awk '{print $1}'` and
 * `${HOME}` keep working. Pure.
 */
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
