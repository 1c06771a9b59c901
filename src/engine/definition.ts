/**
 * Graph definitions as files (JSON or YAML), so workflows can live in git: the whole
 * graph — its concurrency limit, vertices with their scripts, inputs (the seed's JSON form),
 * timeouts, automatic retries and run conditions, edges by vertex name, and the schedules
 * that start it. Pure: text in, validated definition out, and back.
 */
import { parse as parseYaml, stringify as toYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { ValidationError } from '../errors.ts';

export type DefinitionFormat = 'json' | 'yaml';

const definitionSchema = z.object({
  name: z.string(),
  desc: z.string().nullish(),
  // SPEC rule 14; validated like createGraph's, printed only when set.
  maxConcurrentPipelines: z.number().int().nullish(),
  vertices: z
    .array(
      z.object({
        name: z.string(),
        script: z.string().optional(),
        timeoutSeconds: z.number().int().optional(),
        // Validated (ranges) like createGraph's; printed only when not the default.
        retries: z.number().int().optional(),
        retryDelaySeconds: z.number().int().optional(),
        retryBackoff: z.number().optional(),
        // SPEC rule 19; printed only when not SUCCESS.
        runIf: z.string().optional(),
        inputs: z.record(z.string(), z.unknown()).optional(),
      }),
    )
    .default([]),
  edges: z.array(z.object({ tail: z.string(), head: z.string() })).default([]),
  // Left out, not defaulted: a file without the key says nothing about schedules, and so
  // never changes those of an existing graph (see importGraph's updateSchedules).
  schedules: z
    .array(
      z.object({
        name: z.string(),
        cron: z.string(),
        timeZone: z.string().optional(),
        inputs: z.array(z.object({ vertex: z.string(), params: z.record(z.string(), z.unknown()) })).optional(),
        overlap: z.string().optional(),
        misfireGraceSeconds: z.number().int().optional(),
        paused: z.boolean().optional(),
      }),
    )
    .optional(),
});

export type GraphDefinition = z.infer<typeof definitionSchema>;

/** Longest definition text accepted (a graph of a few thousand steps). */
export const MAX_DEFINITION_LENGTH = 4 * 1024 * 1024;

/**
 * Parses a definition. The shape is checked here; names, scripts, inputs and edges are
 * then validated exactly as createGraph validates them.
 * @throws ValidationError naming the field, e.g. "definition.vertices.2.name".
 */
export function parseDefinition(text: string, format: DefinitionFormat, field = 'definition'): GraphDefinition {
  if (text.length > MAX_DEFINITION_LENGTH) {
    throw new ValidationError(field, `The definition is ${text.length} characters long; at most ${MAX_DEFINITION_LENGTH} are accepted.`);
  }
  let raw: unknown;
  // logLevel 'error': a client's odd YAML (an unknown tag or directive) must not print
  // process warnings on the service's stderr; errors are thrown and reported below.
  try {
    raw = format === 'json' ? JSON.parse(text) : parseYaml(text, { maxAliasCount: 100, logLevel: 'error' });
  } catch (error) {
    const where = error instanceof YAMLParseError && error.linePos ? ` (line ${error.linePos[0].line})` : '';
    throw new ValidationError(field, `The definition is not valid ${format.toUpperCase()}${where}: ${(error as Error).message.split('\n')[0]}`);
  }
  const result = definitionSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const path = [field, ...issue.path.map(String)].join('.');
    throw new ValidationError(path, `${issue.message} at ${path}. A definition has name, desc, maxConcurrentPipelines, vertices [{name, script, timeoutSeconds, retries, retryDelaySeconds, retryBackoff, runIf, inputs}], edges [{tail, head}] and schedules [{name, cron, timeZone, inputs, overlap, misfireGraceSeconds, paused}].`);
  }
  return result.data;
}

export function printDefinition(definition: GraphDefinition, format: DefinitionFormat): string {
  return format === 'json' ? `${JSON.stringify(definition, null, 2)}\n` : toYaml(definition, { lineWidth: 0 });
}
