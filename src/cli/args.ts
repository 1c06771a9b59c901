/**
 * The command line, parsed (node:util parseArgs) into one typed command. Pure: argv in,
 * a command or a UsageError out; nothing here touches the network or the terminal.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ExitCode, UsageError } from './errors.ts';

export const DEFAULT_URL = 'http://127.0.0.1:4000/graphql';

/** Checks and normalises the server URL given by --url or PIPECTL_URL. */
export function serverUrl(given: string | undefined): string {
  const text = given?.trim() || DEFAULT_URL;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`"${text}" is not a URL. Give the server's GraphQL endpoint, e.g. --url ${DEFAULT_URL}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`The server URL must start with http:// or https:// (got "${text}"), e.g. --url ${DEFAULT_URL}`);
  }
  return url.toString();
}

/** One `--input vertex.name=value`; without a vertex it applies to every vertex declaring `name`. */
export interface InputAssignment {
  vertex: string | undefined;
  param: string;
  value: string;
}

export type Command =
  | { name: 'help' }
  | { name: 'graphs'; json: boolean }
  | { name: 'apply'; file: string; graphName: string | undefined }
  | {
      name: 'start';
      graph: string;
      inputs: InputAssignment[];
      watch: boolean;
      runName: string | undefined;
      prompt: boolean;
      idempotencyKey: string | undefined;
    }
  | { name: 'watch'; pipelineId: number }
  | { name: 'logs'; trackId: number; follow: boolean }
  | { name: 'cancel'; pipelineId: number }
  | { name: 'retry'; pipelineId: number; watch: boolean; from: string[] | undefined }
  | { name: 'schedules'; graph: string | undefined; json: boolean }
  | { name: 'schedule'; action: 'pause' | 'resume'; schedule: string };

/**
 * The least role a command's token needs (see src/engine/roles.ts): reading and watching
 * a viewer, running an operator, defining graphs an admin.
 */
export const ROLE_NEEDED: Record<Exclude<Command['name'], 'help'>, 'viewer' | 'operator' | 'admin'> = {
  graphs: 'viewer',
  watch: 'viewer',
  logs: 'viewer',
  start: 'operator',
  cancel: 'operator',
  retry: 'operator',
  schedules: 'viewer',
  schedule: 'operator',
  apply: 'admin',
};

export interface Invocation {
  command: Command;
  /** --url, when given (else PIPECTL_URL, else the default). */
  url: string | undefined;
  /** --no-color. */
  noColor: boolean;
}

export const HELP = `pipectl: run and follow dagpipe pipelines from the command line

Usage: pipectl <command> [options]

Commands:
  graphs [--json]                   List graphs: id, name, vertices, checked/sealed, last run.
  apply <file> [--name <name>]      Import a graph definition (YAML, or JSON for *.json; - reads
                                    stdin) with importGraph, check it, and print its id. A graph
                                    of that name already existing is an error (graphs are
                                    versioned, never changed in place): use --name.
  start <graph> [--input vertex.param=value]... [--name <run name>] [--watch] [--no-prompt]
        [--idempotency-key <key>]   Start a pipeline of a graph (its id or its name). Values are
                                    strings; the server converts them. --input param=value (no
                                    vertex) sets it for every vertex that declares it (not
                                    those that read it from a step output with from). In a
                                    terminal, asks for required values that are missing
                                    (secret ones without echo) unless --no-prompt. With
                                    --idempotency-key, a start the graph already had with that
                                    key is not repeated: its pipeline is shown (and watched).
  watch <pipeline>                  Follow a pipeline live until it ends; the exit code tells
                                    how it ended.
  logs <track> [--follow]           Print a track's output; --follow keeps printing until the
                                    track ends.
  cancel <pipeline>                 Cancel a running pipeline (its running scripts are killed).
  retry <pipeline> [--watch] [--from <vertex>]...
                                    Put a FAILED or CANCELLED pipeline's failed and cancelled
                                    tracks back into play. With --from (repeatable, or names
                                    separated by commas), re-run an ended pipeline, FINISH
                                    too, from those steps: they and everything downstream
                                    of them run again, even if they had succeeded.
  schedules [<graph>] [--json]      List schedules (of a graph, by id or name): name, graph,
                                    cron, time zone, next run (in that zone), paused, last tick.
  schedule pause|resume <schedule>  Pause or resume a schedule (its id, or its name when only one
                                    graph has a schedule of that name). Resuming does not run the
                                    ticks of the pause.
  help                              This text.

Options:
  -w, --watch        With start and retry: follow the run like watch.
  -f, --follow       With logs: follow live output.
  -i, --input <v.p=x> With start: a parameter value (repeatable).
      --idempotency-key <key>
                     With start: at most one pipeline of the graph per key (at most
                     200 characters), e.g. a CI job's run id, so a retried job
                     does not start the graph twice.
      --url <url>    Server GraphQL endpoint (default: $PIPECTL_URL, else ${DEFAULT_URL}).
      --no-color     No colours (also when NO_COLOR is set or output is not a terminal).
  -h, --help         This text.

Authentication: set PIPECTL_TOKEN to an API token (viewer to read and watch, operator to
start, cancel, retry, give input and pause or resume schedules, admin to apply). It is read from the environment,
not the command line, so it does not show in process lists.

Watching: on a terminal the display is redrawn in place (overall bar, a line per running
track with its elapsed time, the failing track's output tail); otherwise one plain line
per transition, for CI logs.

Exit codes:
  ${ExitCode.OK}    success; a watched pipeline reached FINISH
  ${ExitCode.FAILED}    a watched pipeline ended FAILED
  ${ExitCode.CANCELLED}    a watched pipeline ended CANCELLED
  ${ExitCode.REFUSED}    the server refused: unknown graph/pipeline/track, invalid definition,
       duplicate name, wrong state (e.g. cancelling a finished pipeline)
  ${ExitCode.USAGE}   bad command line
  ${ExitCode.UNAVAILABLE}   server unreachable, or the URL is not a dagpipe GraphQL endpoint
  ${ExitCode.INTERNAL}   the server reported an unexpected error
  ${ExitCode.INTERRUPTED}  interrupted (Ctrl-C); a watched pipeline keeps running

Examples:
  pipectl apply web-server-check.yaml
  pipectl start "web server check" --input report.operator=Ada --watch
  PIPECTL_URL=http://ci-runner:4000/graphql PIPECTL_TOKEN=dp_... pipectl start 3 -i ip=10.0.0.5 -w
  pipectl logs 17 --follow
  pipectl schedules "web server check"
  pipectl schedule pause nightly
`;

const OPTIONS = {
  url: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  'no-color': { type: 'boolean' },
  json: { type: 'boolean' },
  name: { type: 'string' },
  input: { type: 'string', short: 'i', multiple: true },
  watch: { type: 'boolean', short: 'w' },
  'no-prompt': { type: 'boolean' },
  'idempotency-key': { type: 'string' },
  follow: { type: 'boolean', short: 'f' },
  from: { type: 'string', multiple: true },
} as const satisfies ParseArgsConfig['options'];

type OptionName = keyof typeof OPTIONS;

const GLOBAL: OptionName[] = ['url', 'help', 'no-color'];

/** Each command: its positional arguments (the optional ones last) and the options it accepts. */
const COMMANDS: Record<Exclude<Command['name'], 'help'>, { args: string[]; optional?: string[]; options: OptionName[] }> = {
  graphs: { args: [], options: ['json'] },
  apply: { args: ['file'], options: ['name'] },
  start: { args: ['graph'], options: ['input', 'watch', 'name', 'no-prompt', 'idempotency-key'] },
  watch: { args: ['pipeline'], options: [] },
  logs: { args: ['track'], options: ['follow'] },
  cancel: { args: ['pipeline'], options: [] },
  retry: { args: ['pipeline'], options: ['watch', 'from'] },
  schedules: { args: [], optional: ['graph'], options: ['json'] },
  schedule: { args: ['pause|resume', 'schedule'], options: [] },
};

/** A parameter name as the server accepts it: letters, digits and _, not starting with a digit. */
const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parses `vertex.param=value` (the value may contain anything, including = and .). */
export function parseInputAssignment(text: string): InputAssignment {
  const eq = text.indexOf('=');
  if (eq < 0) throw new UsageError(`--input "${text}" has no "=": write --input vertex.param=value (or param=value for every vertex).`);
  const key = text.slice(0, eq);
  const value = text.slice(eq + 1);
  // Vertex names may contain dots; parameter names cannot, so the last dot separates them.
  const dot = key.lastIndexOf('.');
  const vertex = dot < 0 ? undefined : key.slice(0, dot);
  const param = dot < 0 ? key : key.slice(dot + 1);
  if (vertex === '') throw new UsageError(`--input "${text}": the vertex name before "." is empty.`);
  if (!PARAM_NAME.test(param)) {
    throw new UsageError(`--input "${text}": "${param}" is not a parameter name (letters, digits and _, not starting with a digit).`);
  }
  return { vertex, param, value };
}

/** --from's vertex names: each given once or several separated by commas; undefined without it. */
function vertexNames(given: string[] | undefined): string[] | undefined {
  if (given === undefined) return undefined;
  const names = given.flatMap((text) => text.split(',')).map((name) => name.trim());
  if (names.some((name) => name === '')) {
    throw new UsageError(`--from needs vertex names, e.g. --from build or --from build,test (got ${given.map((g) => `"${g}"`).join(', ')}).`);
  }
  return [...new Set(names)];
}

function positiveId(text: string, what: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`The ${what} must be an id (a positive whole number), not "${text}".`);
  }
  return Number(text);
}

/** Parses argv (without node and the script). */
export function parseCommandLine(argv: readonly string[]): Invocation {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    // parseArgs says e.g. "Unknown option '--wach'"; keep its words, drop its code.
    throw new UsageError((error as Error).message.replace(/\. To specify a positional argument starting with a '-'.*$/s, '.'));
  }
  const { values, positionals } = parsed;
  const url = values.url;
  const noColor = values['no-color'] === true;
  const [name, ...rest] = positionals;
  if (values.help || name === undefined || name === 'help') return { command: { name: 'help' }, url, noColor };
  if (!(name in COMMANDS)) {
    throw new UsageError(`Unknown command "${name}". Commands: ${Object.keys(COMMANDS).join(', ')}.`);
  }
  const spec = COMMANDS[name as keyof typeof COMMANDS];
  for (const option of Object.keys(values) as OptionName[]) {
    if (!GLOBAL.includes(option) && !spec.options.includes(option)) {
      throw new UsageError(`${name} does not take --${option}.`);
    }
  }
  const optional = spec.optional ?? [];
  const usage = `pipectl ${name}${spec.args.map((a) => ` <${a}>`).join('')}${optional.map((a) => ` [<${a}>]`).join('')}`;
  if (rest.length < spec.args.length) throw new UsageError(`${name} needs ${spec.args.map((a) => `<${a}>`).join(' ')}: ${usage}`);
  if (rest.length > spec.args.length + optional.length) {
    throw new UsageError(`${name} takes ${spec.args.length + optional.length || 'no'} argument(s), got "${rest.join(' ')}": ${usage}`);
  }
  const [first] = rest as [string];

  const command: Command = (() => {
    switch (name as keyof typeof COMMANDS) {
      case 'graphs':
        return { name: 'graphs', json: values.json === true };
      case 'apply':
        return { name: 'apply', file: first, graphName: values.name };
      case 'start':
        if (first.trim() === '') throw new UsageError('start needs a graph id or name, not an empty string.');
        return {
          name: 'start',
          graph: first,
          inputs: (values.input ?? []).map(parseInputAssignment),
          watch: values.watch === true,
          runName: values.name,
          prompt: values['no-prompt'] !== true,
          idempotencyKey: values['idempotency-key'],
        };
      case 'watch':
        return { name: 'watch', pipelineId: positiveId(first, 'pipeline') };
      case 'logs':
        return { name: 'logs', trackId: positiveId(first, 'track'), follow: values.follow === true };
      case 'cancel':
        return { name: 'cancel', pipelineId: positiveId(first, 'pipeline') };
      case 'retry':
        return { name: 'retry', pipelineId: positiveId(first, 'pipeline'), watch: values.watch === true, from: vertexNames(values.from) };
      case 'schedules':
        if (first !== undefined && first.trim() === '') throw new UsageError('schedules takes a graph id or name, not an empty string.');
        return { name: 'schedules', graph: first, json: values.json === true };
      case 'schedule': {
        if (first !== 'pause' && first !== 'resume') throw new UsageError(`schedule needs pause or resume, not "${first}": ${usage}`);
        const target = rest[1]!;
        if (target.trim() === '') throw new UsageError('schedule needs a schedule id or name, not an empty string.');
        return { name: 'schedule', action: first, schedule: target };
      }
    }
  })();
  return { command, url, noColor };
}
