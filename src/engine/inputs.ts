/**
 * Typed vertex inputs (SPEC rule 5): the seed's JSON schema, e.g.
 * `{"ip": {"type": "str", "required": true, "default": "127.0.0.1"}}`, its validation,
 * and resolving a track's parameters from submitted values and defaults. Pure.
 */
import { isIP } from 'node:net';
import isSafeRegex from 'safe-regex2';
import { ValidationError } from '../errors.ts';
import { hasLoneSurrogate } from './fields.ts';
import { isParamName } from './names.ts';

export const PARAM_TYPES = ['string', 'integer', 'number', 'boolean', 'ip'] as const;
export type ParamType = (typeof PARAM_TYPES)[number];

/** The seed's spellings and their canonical names. */
const TYPE_ALIASES: Readonly<Record<string, ParamType>> = {
  str: 'string',
  string: 'string',
  int: 'integer',
  integer: 'integer',
  float: 'number',
  number: 'number',
  bool: 'boolean',
  boolean: 'boolean',
  ip: 'ip',
};

export type ParamValue = string | number | boolean;

export interface ParamSpec {
  name: string;
  type: ParamType;
  required: boolean;
  default?: ParamValue;
  choices?: ParamValue[];
  pattern?: string;
  secret: boolean;
  description?: string;
  /**
   * SPEC rule 18: `"<vertex>.<output>"`, the step output the value comes from (that step
   * must be an ancestor); not given by an operator.
   */
  from?: string;
}

export type InputSchema = ParamSpec[];


/** Longest accepted parameter value: a parameter is data for a script, not a payload. */
export const MAX_VALUE_LENGTH = 64 * 1024;
/** Longest value checked against a pattern: keeps even a slow (polynomial) pattern quick. */
export const MAX_PATTERN_VALUE_LENGTH = 4096;

const DECIMAL = /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/;

const SPEC_KEYS = new Set(['type', 'required', 'default', 'choices', 'pattern', 'secret', 'description', 'from']);

/** A step output named by an input's `from` (SPEC rule 18). */
export interface FromReference {
  vertex: string;
  output: string;
}

/**
 * Splits `"<vertex>.<output>"` at its last dot (vertex names may hold dots, output names
 * cannot), or undefined when it is not of that form.
 */
export function parseFromReference(text: string): FromReference | undefined {
  const dot = text.lastIndexOf('.');
  if (dot <= 0) return undefined;
  const vertex = text.slice(0, dot);
  const output = text.slice(dot + 1);
  // Vertex names are trimmed single-line text of at most 48 characters (fields.ts requireName).
  if (vertex.trim() !== vertex || vertex.length > 48 || /[\u0000-\u0008\u000a-\u001f\u007f]/.test(vertex) || hasLoneSurrogate(vertex)) return undefined;
  return isParamName(output) ? { vertex, output } : undefined;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parses and validates a schema given as the seed's JSON text or as an object.
 * @param field the argument path used in error messages, e.g. "inputs".
 * @throws ValidationError naming the parameter and attribute at fault.
 */
export function parseInputSchema(source: string | unknown, field: string): InputSchema {
  let raw: unknown = source;
  if (typeof source === 'string') {
    try {
      raw = source.trim() === '' ? {} : JSON.parse(source);
    } catch {
      throw new ValidationError(field, 'The input schema is not valid JSON.');
    }
  }
  if (!isPlainObject(raw)) {
    throw new ValidationError(field, 'The input schema must be an object of parameter name -> {type, ...}.');
  }
  const schema = Object.entries(raw).map(([name, spec]) => parseParamSpec(name, spec, `${field}.${name}`));
  const seen = new Map<string, string>();
  for (const { name } of schema) {
    const variable = name.toUpperCase();
    const clash = seen.get(variable);
    if (clash !== undefined) {
      throw new ValidationError(
        `${field}.${name}`,
        `Parameters "${clash}" and "${name}" would both be INPUT_${variable}; rename one of them.`,
      );
    }
    seen.set(variable, name);
  }
  return schema;
}

function parseParamSpec(name: string, spec: unknown, field: string): ParamSpec {
  if (!isParamName(name)) {
    throw new ValidationError(
      field,
      `Parameter name "${name}" is not allowed: use letters, digits and _ (not first), at most 48 characters.`,
    );
  }
  if (!isPlainObject(spec)) throw new ValidationError(field, `Parameter "${name}" must be an object such as {"type": "str"}.`);
  for (const key of Object.keys(spec)) {
    if (!SPEC_KEYS.has(key)) {
      throw new ValidationError(`${field}.${key}`, `Unknown attribute "${key}"; allowed: ${[...SPEC_KEYS].join(', ')}.`);
    }
  }
  const alias = typeof spec.type === 'string' ? spec.type.toLowerCase() : undefined;
  // hasOwn: "constructor" or "__proto__" must not find Object.prototype's members.
  const type = alias !== undefined && Object.hasOwn(TYPE_ALIASES, alias) ? TYPE_ALIASES[alias] : undefined;
  if (!type) {
    throw new ValidationError(
      `${field}.type`,
      `Parameter "${name}" has unknown type ${JSON.stringify(spec.type)}; use one of ${Object.keys(TYPE_ALIASES).join(', ')}.`,
    );
  }
  for (const flag of ['required', 'secret'] as const) {
    if (spec[flag] !== undefined && typeof spec[flag] !== 'boolean') {
      throw new ValidationError(`${field}.${flag}`, `"${flag}" must be true or false.`);
    }
  }
  if (spec.description !== undefined && (typeof spec.description !== 'string' || spec.description.length > 500 || hasLoneSurrogate(spec.description))) {
    throw new ValidationError(`${field}.description`, 'The description must be valid Unicode text of at most 500 characters.');
  }
  const result: ParamSpec = {
    name,
    type,
    required: spec.required === true,
    secret: spec.secret === true,
    ...(spec.description !== undefined && { description: spec.description as string }),
  };
  if (spec.from !== undefined) {
    if (typeof spec.from !== 'string' || parseFromReference(spec.from) === undefined) {
      throw new ValidationError(
        `${field}.from`,
        `from names the step output the value comes from, as "<vertex>.<output>" (e.g. "port-open.port"); got ${JSON.stringify(spec.from)}.`,
      );
    }
    if (result.required) {
      throw new ValidationError(
        `${field}.required`,
        `Parameter "${name}" takes its value from ${spec.from} (from), so nobody gives it and it cannot be required. Leave required out: without a default, a missing output fails the step.`,
      );
    }
    result.from = spec.from;
  }
  if (spec.pattern !== undefined) {
    if (type !== 'string' || typeof spec.pattern !== 'string' || hasLoneSurrogate(spec.pattern)) {
      throw new ValidationError(`${field}.pattern`, 'A pattern is a regular expression string (valid Unicode text), only for string parameters.');
    }
    try {
      new RegExp(spec.pattern, 'u');
    } catch (error) {
      throw new ValidationError(`${field}.pattern`, `The pattern is not a valid regular expression: ${(error as Error).message}.`);
    }
    // Nested repetition such as (a+)+ can take exponential time on a crafted value, and the
    // service checks values on its only thread: refuse it when the graph is defined.
    if (!isSafeRegex(spec.pattern)) {
      throw new ValidationError(
        `${field}.pattern`,
        `The pattern ${spec.pattern} repeats a group that itself repeats (like (a+)+), which can take exponential time on some values. Write it without the nested repetition, e.g. [a-z]+ instead of ([a-z]+)+.`,
      );
    }
    result.pattern = spec.pattern;
  }
  if (spec.choices !== undefined) {
    if (!Array.isArray(spec.choices) || spec.choices.length === 0) {
      throw new ValidationError(`${field}.choices`, 'choices must be a non-empty list of allowed values.');
    }
    const withoutChoices = { ...result };
    result.choices = spec.choices.map((choice, i) => convertValue(withoutChoices, choice, `${field}.choices.${i}`));
  }
  if (spec.default !== undefined) {
    result.default = convertValue(result, spec.default, `${field}.default`);
  }
  return result;
}

/** Serialises a schema back to the seed's JSON form (the vertex.input column). */
export function serializeInputSchema(schema: InputSchema): string {
  return JSON.stringify(
    Object.fromEntries(
      schema.map(({ name, ...spec }) => [
        name,
        // Flags that are off are left out; every other value, a false default included, is kept.
        Object.fromEntries(
          Object.entries(spec).filter(([key, value]) => value !== undefined && !((key === 'required' || key === 'secret') && value === false)),
        ),
      ]),
    ),
  );
}

/**
 * Converts a submitted value to the parameter's type and checks choices and pattern.
 * @throws ValidationError naming `field`.
 */
export function convertValue(spec: ParamSpec, value: unknown, field: string): ParamValue {
  const fail = (why: string): never => {
    throw new ValidationError(field, `Parameter "${spec.name}" ${why}`);
  };
  // A secret is never echoed back, not even in an error.
  const got = spec.secret ? ' (the value given is secret, so it is not shown)' : `, got ${JSON.stringify(value)}`;
  let converted: ParamValue;
  if (typeof value === 'string' && value.length > MAX_VALUE_LENGTH) {
    fail(`is too long (${value.length} characters; at most ${MAX_VALUE_LENGTH}).`);
  }
  if (typeof value === 'string' && value.includes('\u0000')) {
    fail('must not contain NUL characters (a script argument or environment variable cannot hold them).');
  }
  if (typeof value === 'string' && hasLoneSurrogate(value)) {
    fail('is not valid Unicode text: it contains a lone surrogate (half of a UTF-16 pair).');
  }
  switch (spec.type) {
    case 'string':
      if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') fail('must be a string.');
      converted = String(value);
      break;
    case 'integer': {
      const n = typeof value === 'string' && /^\s*[-+]?\d+\s*$/.test(value) ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isSafeInteger(n)) fail(`must be a whole number${got}.`);
      converted = n as number;
      break;
    }
    case 'number': {
      // Decimal notation only: Number() alone would also take "0x10" or "Infinity".
      const n = typeof value === 'string' && DECIMAL.test(value) ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isFinite(n)) fail(`must be a number${got}.`);
      converted = n as number;
      break;
    }
    case 'boolean': {
      const text = typeof value === 'string' ? value.trim().toLowerCase() : undefined;
      if (typeof value === 'boolean') converted = value;
      else if (text === 'true' || text === '1' || text === 'yes') converted = true;
      else if (text === 'false' || text === '0' || text === 'no') converted = false;
      else converted = fail(`must be true or false${got}.`);
      break;
    }
    case 'ip':
      if (typeof value !== 'string' || isIP(value.trim()) === 0) fail(`must be an IPv4 or IPv6 address${got}.`);
      converted = (value as string).trim();
      break;
  }
  if (spec.pattern !== undefined && String(converted).length > MAX_PATTERN_VALUE_LENGTH) {
    fail(`is too long to check against its pattern (${String(converted).length} characters; at most ${MAX_PATTERN_VALUE_LENGTH}).`);
  }
  if (spec.pattern !== undefined && !new RegExp(`^(?:${spec.pattern})$`, 'u').test(String(converted))) {
    fail(`must match the pattern ${spec.pattern}.`);
  }
  if (spec.choices !== undefined && !spec.choices.includes(converted)) {
    fail(`must be one of ${spec.choices.map((c) => JSON.stringify(c)).join(', ')}.`);
  }
  return converted;
}

export interface Resolution {
  /** Converted values of every parameter that has one (given or default), `from` ones aside. */
  values: Record<string, ParamValue>;
  /** Parameters still needing a value: required and not given, or no value and no default. */
  missing: string[];
}

/**
 * Resolves parameters from submitted values `given` and the defaults. Parameters with
 * `from` are left out (nobody gives them: see resolveFromOutputs).
 * A `required` parameter must be given explicitly even when it has a default.
 * @throws ValidationError for unknown names, `from` parameters given, and values that do not convert.
 */
export function resolveParams(schema: InputSchema, given: Record<string, unknown>, field: string): Resolution {
  const byName = new Map(schema.map((spec) => [spec.name, spec]));
  for (const name of Object.keys(given)) {
    const spec = byName.get(name);
    if (!spec) {
      const known = schema.filter((s) => s.from === undefined).map((s) => s.name);
      throw new ValidationError(
        `${field}.${name}`,
        `Unknown parameter "${name}"; ${known.length ? `this step takes ${known.join(', ')}` : 'this step takes no parameters'}.`,
      );
    }
    if (spec.from !== undefined && given[name] !== null) {
      throw new ValidationError(
        `${field}.${name}`,
        `Parameter "${name}" takes its value from the step output ${spec.from} (from), so it cannot be given; leave it out.`,
      );
    }
  }
  const values: Record<string, ParamValue> = {};
  const missing: string[] = [];
  for (const spec of schema) {
    if (spec.from !== undefined) continue;
    if (Object.hasOwn(given, spec.name) && given[spec.name] !== null) {
      values[spec.name] = convertValue(spec, given[spec.name], `${field}.${spec.name}`);
    } else if (spec.required || spec.default === undefined) {
      missing.push(spec.name);
    } else {
      values[spec.name] = spec.default;
    }
  }
  return { values, missing };
}

/** Whether some parameter takes its value from a step output (its track renders when it is ready). */
export function readsOutputs(schema: InputSchema): boolean {
  return schema.some((spec) => spec.from !== undefined);
}

export type OutputResolution = { ok: true; values: Record<string, ParamValue> } | { ok: false; reason: string };

/**
 * SPEC rule 18: the values of step `step`'s parameters once its ancestors have succeeded:
 * the given ones (`values`, as resolveParams resolved them; values of `from` parameters in
 * it are replaced) and each `from` one from its step's output, converted to its type as a
 * given value is, or its default when that output is missing. Failures are data: the
 * reason the track fails with, naming the step, the output and the input (never a secret
 * value: convertValue does not repeat one).
 * @param outputsOf the outputs of a step by name, or undefined when it has none.
 */
export function resolveFromOutputs(
  step: string,
  schema: InputSchema,
  values: Readonly<Record<string, ParamValue>>,
  outputsOf: (vertex: string) => Readonly<Record<string, string>> | undefined,
): OutputResolution {
  const resolved: Record<string, ParamValue> = {};
  for (const spec of schema) {
    if (spec.from === undefined) {
      if (Object.hasOwn(values, spec.name)) resolved[spec.name] = values[spec.name]!;
      continue;
    }
    const ref = parseFromReference(spec.from)!;
    const outputs = outputsOf(ref.vertex);
    if (outputs === undefined || !Object.hasOwn(outputs, ref.output)) {
      if (spec.default !== undefined) {
        resolved[spec.name] = spec.default;
        continue;
      }
      return {
        ok: false,
        reason:
          `Step "${step}" cannot start: its input "${spec.name}" reads the output "${ref.output}" of step "${ref.vertex}" (from ${spec.from}), ` +
          `which that step did not write, and the input has no default. Have "${ref.vertex}" write ${ref.output}=<value> to $DAGPIPE_OUTPUT, or give the input a default.`,
      };
    }
    try {
      resolved[spec.name] = convertValue(spec, outputs[ref.output], `inputs.${spec.name}`);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      return {
        ok: false,
        reason: `Step "${step}" cannot start: the output "${ref.output}" of step "${ref.vertex}" does not fit its input "${spec.name}" (from ${spec.from}): ${error.message}`,
      };
    }
  }
  return { ok: true, values: resolved };
}
