/**
 * The pure half of the input forms: a vertex's declared parameters (Vertex.inputs) become
 * form fields, the typed text of those fields becomes finishInput's or startPipeline's
 * params, and a server error's field path ("params.ticket", "inputs.1.params.ip") finds
 * the field it names. No Preact and no generated imports here, so that the unit test
 * (test/dashboard/input-form.test.ts) runs it under Node as it is.
 *
 * The server is the judge of every value: nothing here refuses a value before it is sent
 * (a number that does not parse is sent as typed, and the server says what is wrong with
 * it, at that field). The constraints still go on the inputs (required, pattern, step) so
 * that a browser and a screen reader can tell them.
 */

/** Vertex.inputs' ParamType. */
export type ParamKind = 'BOOLEAN' | 'INTEGER' | 'IP' | 'NUMBER' | 'STRING';

/** One InputParam as the API returns it. */
export interface ParamDef {
  name: string;
  type: ParamKind;
  required: boolean;
  default?: unknown;
  choices?: readonly unknown[] | null | undefined;
  pattern?: string | null | undefined;
  secret: boolean;
  description?: string | null | undefined;
  from?: string | null | undefined;
}

/**
 * `finish`: a waiting track's form (finishInput): every parameter without a usable default
 * must be given now. `start`: startPipeline's values for one vertex: nothing is needed up
 * front, since a track whose parameters do not resolve waits for finishInput.
 */
export type FormMode = 'finish' | 'start';

export type Control = 'text' | 'number' | 'checkbox' | 'select' | 'password' | 'from';

export interface Option {
  value: string;
  label: string;
}

export interface Field {
  name: string;
  type: ParamKind;
  control: Control;
  /** The form needs a value here (the required attribute). */
  required: boolean;
  /** The field's first value: text, a select's option value, or a checkbox's state. */
  initial: string | boolean;
  /** For a select: '' is "nothing chosen"; the others index `choices` or are 'true'/'false'. */
  options?: Option[];
  /** The declared values a select's options index. */
  choices?: readonly unknown[];
  /** For the pattern attribute, when the browser can read it (see htmlPattern). */
  pattern?: string;
  /** For number inputs: "1" (INTEGER) or "any" (NUMBER). */
  step?: string;
  inputMode?: 'numeric' | 'decimal';
  /** The placeholder: a default not put in the field (a required or secret parameter's). */
  placeholder?: string;
  /** Sentences under the label: the description, then the rules the value must follow. */
  hints: string[];
  /** The step whose output gives the value ("comes from step X"): such a field is not editable. */
  fromStep?: string;
}

/** How a JSON value reads in a form (a default, a choice). */
export function shown(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/**
 * A browser reads the pattern attribute with the `v` flag, which refuses some patterns the
 * service accepts (`u`: e.g. an unescaped "-" or "(" inside a class), and then logs an
 * error and ignores it. Such a pattern is left off the input (the hint still says it).
 */
export function htmlPattern(pattern: string): string | undefined {
  try {
    new RegExp(`^(?:${pattern})$`, 'v');
    return pattern;
  } catch {
    return undefined;
  }
}

export function fieldFor(param: ParamDef, mode: FormMode): Field {
  const hints: string[] = [];
  if (param.description) hints.push(param.description);
  if (param.from) {
    const step = param.from.split('.')[0] ?? param.from;
    return {
      name: param.name,
      type: param.type,
      control: 'from',
      required: false,
      initial: '',
      hints: [...hints, `Comes from step ${step} (its output ${param.from.slice(step.length + 1)}), when that step has run: nobody gives it.`],
      fromStep: step,
    };
  }
  const hasDefault = param.default !== undefined && param.default !== null;
  // A required parameter must be given explicitly, so its default is not put in the field
  // (submitting it untouched would count as given); a secret's is not shown in clear.
  const prefill = hasDefault && !param.required && !param.secret;
  // Without a value here, the track waits for finishInput (start), or the server refuses (finish).
  const waits = param.required || !hasDefault;
  const required = mode === 'finish' && waits;
  if (hasDefault && !prefill) hints.push(param.secret ? 'Leave it empty to use the default.' : `Default: ${shown(param.default)}${param.required ? ' (it must still be given)' : ''}.`);
  if (mode === 'start' && waits) hints.push('Leave it empty to give it when the step waits for input.');
  const base = { name: param.name, type: param.type, hints };

  if (param.choices && param.choices.length > 0) {
    const index = prefill ? param.choices.findIndex((c) => c === param.default) : -1;
    hints.push(`One of ${param.choices.map(shown).join(', ')}.`);
    return {
      ...base,
      control: 'select',
      required,
      initial: index >= 0 ? String(index) : '',
      options: [{ value: '', label: mode === 'start' && waits ? 'Give it later' : hasDefault && !required ? `Default (${shown(param.default)})` : 'Choose…' }, ...param.choices.map((c, i) => ({ value: String(i), label: shown(c) }))],
      choices: param.choices,
    };
  }
  if (param.type === 'BOOLEAN') {
    // A checkbox always says true or false: where leaving the value out matters (the step
    // would wait for it), a select can also say "not given".
    if (mode === 'start' && waits)
      return {
        ...base,
        control: 'select',
        required: false,
        initial: '',
        options: [
          { value: '', label: 'Give it later' },
          { value: 'true', label: 'Yes' },
          { value: 'false', label: 'No' },
        ],
      };
    return { ...base, control: 'checkbox', required: false, initial: prefill ? param.default === true : false };
  }
  const placeholder = hasDefault && !prefill && !param.secret ? shown(param.default) : undefined;
  const initial = prefill ? shown(param.default) : '';
  if (param.type === 'INTEGER' || param.type === 'NUMBER') {
    const integer = param.type === 'INTEGER';
    hints.push(integer ? 'A whole number.' : 'A number.');
    return { ...base, control: 'number', required, initial, step: integer ? '1' : 'any', inputMode: integer ? 'numeric' : 'decimal', ...(placeholder !== undefined && { placeholder }) };
  }
  if (param.type === 'IP') hints.push('An IPv4 or IPv6 address.');
  const pattern = param.pattern ? htmlPattern(param.pattern) : undefined;
  if (param.pattern) hints.push(`Must match the pattern ${param.pattern} in full.`);
  return {
    ...base,
    control: param.secret ? 'password' : 'text',
    required,
    initial,
    ...(pattern !== undefined && { pattern }),
    ...(placeholder !== undefined && { placeholder }),
  };
}

export function fieldsFor(params: readonly ParamDef[], mode: FormMode): Field[] {
  return params.map((p) => fieldFor(p, mode));
}

export type Values = Record<string, string | boolean>;

export function initialValues(fields: readonly Field[]): Values {
  return Object.fromEntries(fields.filter((f) => f.control !== 'from').map((f) => [f.name, f.initial]));
}

const INTEGER = /^\s*[-+]?\d+\s*$/;
const DECIMAL = /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/;

/**
 * The params to send: an empty field is left out (its default applies, or the step waits
 * for it); numbers that parse go as numbers, anything else as typed, for the server to judge.
 */
export function paramsFrom(fields: readonly Field[], values: Values): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const field of fields) {
    if (field.control === 'from') continue;
    const value = values[field.name] ?? field.initial;
    if (field.control === 'checkbox') {
      params[field.name] = value === true;
      continue;
    }
    if (typeof value !== 'string' || value === '') continue;
    if (field.control === 'select') {
      if (field.choices) params[field.name] = field.choices[Number(value)];
      else params[field.name] = value === 'true';
    } else if (field.control === 'number') {
      const parses = field.type === 'INTEGER' ? INTEGER.test(value) : DECIMAL.test(value);
      params[field.name] = parses ? Number(value) : value;
    } else params[field.name] = value;
  }
  return params;
}

/**
 * The parameter a server error's field path names under `prefix` ("params.port" under
 * "params" is "port"); undefined when it names something else (the form as a whole).
 */
export function paramAt(field: string, prefix: string): string | undefined {
  if (!field.startsWith(`${prefix}.`)) return undefined;
  return field.slice(prefix.length + 1).split('.')[0] || undefined;
}

export interface StartInputs {
  inputs: Array<{ vertex: string; params: Record<string, unknown> }>;
}

/** startPipeline's inputs: one entry per vertex given any value, in the graph's order. */
export function startInputs(vertices: ReadonlyArray<{ name: string; fields: readonly Field[] }>, values: Record<string, Values>): StartInputs['inputs'] {
  return vertices
    .map((v) => ({ vertex: v.name, params: paramsFrom(v.fields, values[v.name] ?? {}) }))
    .filter((entry) => Object.keys(entry.params).length > 0);
}

/** Where a startPipeline error belongs: a vertex's parameter, or undefined (the whole form). */
export function startErrorAt(field: string, inputs: StartInputs['inputs']): { vertex: string; param: string } | undefined {
  const match = /^inputs\.(\d+)\.params\.([^.]+)/.exec(field);
  const entry = match ? inputs[Number(match[1])] : undefined;
  if (match && entry) return { vertex: entry.vertex, param: match[2]! };
  // A parameter of a vertex not sent at all is named by the vertex ("inputs.<vertex>.<param>").
  const named = /^inputs\.([^.]+)\.([^.]+)$/.exec(field);
  if (named && !/^\d+$/.test(named[1]!)) return { vertex: named[1]!, param: named[2]! };
  return undefined;
}
