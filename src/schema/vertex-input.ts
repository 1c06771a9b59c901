/** Input types shared by the graph and vertex mutations: typed parameters and vertex fields. */
import { ValidationError } from '../errors.ts';
import { builder } from './builder.ts';

export const ParamType = builder.enumType('ParamType', {
  description: 'The type a parameter value is converted to.',
  values: {
    STRING: { value: 'string', description: 'Any text ("str" in the seed JSON).' },
    INTEGER: { value: 'integer', description: 'A whole number ("int").' },
    NUMBER: { value: 'number', description: 'A decimal number ("float").' },
    BOOLEAN: { value: 'boolean', description: 'true or false ("bool"); "yes"/"no"/"1"/"0" are accepted too.' },
    IP: { value: 'ip', description: 'An IPv4 or IPv6 address.' },
  } as const,
});

const InputParamInput = builder.inputType('InputParamInput', {
  description: 'Declares one typed parameter of a vertex.',
  fields: (t) => ({
    name: t.string({ description: 'Parameter name: letters, digits and _ (not first), at most 48 characters.' }),
    type: t.field({ type: ParamType, description: 'Value type.' }),
    required: t.boolean({ required: false, description: 'Must be supplied explicitly (default false).' }),
    default: t.field({ type: 'JSON', required: false, description: 'Default value, converted to the type.' }),
    choices: t.field({ type: ['JSON'], required: false, description: 'Allowed values.' }),
    pattern: t.string({ required: false, description: 'Regular expression a string value must match in full.' }),
    secret: t.boolean({
      required: false,
      description:
        'Marks a sensitive value (default false). The script gets the real value; everything the service shows has *** in its place: Track.input, Track.script, and the output (stored and live) wherever the value appears in it. Error messages and the audit trail never repeat it. A default is part of the definition and is shown as written: supply secret values at startPipeline or finishInput.',
    }),
    description: t.string({ required: false, description: 'What the parameter is for (at most 500 characters).' }),
    from: t.string({
      required: false,
      description:
        'Takes the value from a step output, "<vertex>.<output>" (e.g. "port-open.port"): what that step wrote to $DAGPIPE_OUTPUT, converted to the type. The step must be an ancestor (checkGraph checks). Nobody gives such a parameter; a missing output takes the default, else the track fails.',
    }),
  }),
});

export const RunIfEnum = builder.enumType('RunIf', {
  description: "A vertex's run condition (SPEC rule 19); a condition that can no longer hold ends its track SKIPPED.",
  values: {
    SUCCESS: { description: 'Every predecessor succeeded (the default).' },
    FAILURE: { description: 'Every predecessor has ended and some track of the pipeline failed: a failure handler (cleanup, alert).' },
    ALWAYS: { description: 'Every predecessor has ended, whatever the outcome: runs after a failure too.' },
  } as const,
});

export const VertexFields = builder.inputType('VertexInput', {
  description: 'The fields of a vertex; on update, omitted fields keep their value.',
  fields: (t) => ({
    name: t.string({ required: false, description: 'Name, unique within the graph, 1 to 48 characters.' }),
    script: t.string({ required: false, description: 'Bash script template, at most 64 KiB.' }),
    inputs: t.field({ type: [InputParamInput], required: false, description: 'The typed parameters (replaces all).' }),
    timeoutSeconds: t.int({ required: false, description: 'Timeout in seconds (default 3600, at most 7 days).' }),
    retries: t.int({ required: false, description: 'Automatic retries of a failed attempt (default 0, at most 10).' }),
    retryDelaySeconds: t.int({ required: false, description: 'Seconds before the first retry (default 10, 0 to 3600).' }),
    retryBackoff: t.float({
      required: false,
      description: 'Factor each further retry waits longer by (default 2, from 1 to 10); no wait exceeds 3600 s.',
    }),
    runIf: t.field({
      type: RunIfEnum,
      required: false,
      description: 'When it runs (default SUCCESS: every predecessor succeeded). FAILURE and ALWAYS make it a handler that runs after failures too.',
    }),
  }),
});

type InputParamShape = typeof InputParamInput.$inferInput;

/** The GraphQL list form -> the seed's JSON object form the store keeps. */
export function toSchemaObject(params: readonly InputParamShape[] | null | undefined) {
  if (params == null) return null;
  const schema: Record<string, unknown> = {};
  params.forEach((param, i) => {
    if (Object.hasOwn(schema, param.name)) throw new ValidationError(`inputs.${i}.name`, `Parameter "${param.name}" is declared twice.`);
    const { name, ...spec } = param;
    schema[name] = Object.fromEntries(Object.entries(spec).filter(([, v]) => v !== null && v !== undefined));
  });
  return schema;
}

