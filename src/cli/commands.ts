/** The commands: each turns a parsed command into requests and lines, and returns its exit code. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command, InputAssignment } from './args.ts';
import type { Api } from './client.ts';
import { ExitCode, RefusedError, UsageError, refusal, type ExitCode as Code } from './errors.ts';
import type { Io } from './io.ts';
import {
  CliCancelPipeline,
  CliCheckGraph,
  CliGraphForStart,
  CliGraphNames,
  CliGraphs,
  CliImportGraph,
  CliPauseSchedule,
  CliRetryPipeline,
  CliRetryPlan,
  CliSchedules,
  CliStartPipeline,
} from './operations.ts';
import { followOutput, printStored, trackInfo } from './output.ts';
import { FINAL_TRACK_STATES, type PipelineState } from './progress.ts';
import { needsPrompt, promptValues, type PromptParam } from './prompt.ts';
import { watchPipeline } from './watch.ts';

export interface Context {
  api: Api;
  io: Io;
  /** Aborted by Ctrl-C. */
  signal: AbortSignal;
}

/** Events per journal page. */
const JOURNAL_PAGE = 10_000;

const out = (io: Io, line = '') => io.stdout.write(`${line}\n`);
const note = (io: Io, line: string) => io.stderr.write(`${line}\n`);

/** The exit code for how a watched pipeline ended. */
export function exitCodeFor(state: PipelineState): Code {
  if (state === 'FINISH') return ExitCode.OK;
  if (state === 'CANCELLED') return ExitCode.CANCELLED;
  return ExitCode.FAILED;
}

export async function run(command: Command, ctx: Context): Promise<Code> {
  switch (command.name) {
    case 'help':
      return ExitCode.OK;
    case 'graphs':
      return graphs(ctx, command.json);
    case 'apply':
      return apply(ctx, command.file, command.graphName);
    case 'start':
      return start(ctx, command);
    case 'watch':
      return exitCodeFor(await watchPipeline(ctx.api, command.pipelineId, ctx.io, { signal: ctx.signal }));
    case 'logs':
      return logs(ctx, command.trackId, command.follow);
    case 'cancel':
      return cancel(ctx, command.pipelineId);
    case 'retry':
      return retry(ctx, command.pipelineId, command.watch, command.from);
    case 'schedules':
      return listSchedules(ctx, command.graph, command.json);
    case 'schedule':
      return pauseOrResume(ctx, command.action, command.schedule);
  }
}

/** A table with columns padded to their widest cell. */
export function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => [...(r[i] ?? '')].length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd());
}

async function graphs(ctx: Context, json: boolean): Promise<Code> {
  const { graphs: list } = await ctx.api.request(CliGraphs, {});
  if (json) {
    out(ctx.io, JSON.stringify(list, null, 2));
    return ExitCode.OK;
  }
  if (list.length === 0) {
    out(ctx.io, 'No graphs yet. Import one with: pipectl apply <file>');
    return ExitCode.OK;
  }
  const rows = [['ID', 'NAME', 'VERTICES', 'STATUS', 'LAST RUN']];
  for (const g of list) {
    const status = g.sealed ? 'sealed' : g.checked ? 'checked' : 'not checked';
    const last = g.pipelines[0];
    rows.push([String(g.id), g.name, String(g.vertices.length), status, last ? `pipeline ${last.id} ${last.state}` : '-']);
  }
  for (const line of table(rows)) out(ctx.io, line);
  return ExitCode.OK;
}

/** A graph given by id or name (an id wins when a graph is also named like a number). */
export async function resolveGraph(api: Api, ref: string): Promise<{ id: number; name: string }> {
  const { graphs: list } = await api.request(CliGraphNames, {});
  const byId = /^\d+$/.test(ref) ? list.find((g) => g.id === Number(ref)) : undefined;
  const found = byId ?? list.find((g) => g.name === ref);
  if (found) return found;
  const similar = list.filter((g) => g.name.toLowerCase().includes(ref.toLowerCase()) || ref.toLowerCase().includes(g.name.toLowerCase()));
  const hint = similar.length
    ? ` Did you mean ${similar.slice(0, 5).map((g) => `"${g.name}" (${g.id})`).join(', ')}?`
    : list.length
      ? ` pipectl graphs lists the ${list.length} graph(s).`
      : ' There are no graphs yet: pipectl apply <file> imports one.';
  throw new RefusedError(`No graph has the ${/^\d+$/.test(ref) ? 'id or name' : 'name'} "${ref}".${hint}`);
}

async function apply(ctx: Context, file: string, graphName: string | undefined): Promise<Code> {
  let definition: string;
  try {
    definition = file === '-' ? await readStdin(ctx.io.stdin) : await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(`Cannot read ${file}${code === 'ENOENT' ? ': no such file' : `: ${(error as Error).message}`}.`);
  }
  const format = path.extname(file).toLowerCase() === '.json' ? 'JSON' : 'YAML';
  const before = new Set((await ctx.api.request(CliGraphNames, {})).graphs.map((g) => g.id));
  // A file with schedules may be applied again to its graph: only the schedules change.
  const { importGraph: imported } = await ctx.api.request(CliImportGraph, { definition, format, name: graphName ?? null, updateSchedules: true });
  if (imported.__typename !== 'Graph') {
    if (imported.__typename === 'ConflictError' && /(^|\.)name$/.test(imported.field)) {
      const name = graphName ?? nameIn(definition, format);
      const { graphs: list } = await ctx.api.request(CliGraphNames, {});
      const existing = list.find((g) => g.name === name);
      const which = existing ? ` (graph ${existing.id}${existing.sealed ? ', sealed: pipelines ran from it' : ''})` : '';
      throw new RefusedError(
        `A graph named "${name ?? '?'}"${which} already exists. apply never changes an existing graph (runs keep the exact graph they ran).\n` +
          `  Import this definition under a new name:  pipectl apply ${file} --name "${name ?? 'name'} v2"\n` +
          (existing ? `  or run the existing one:                  pipectl start ${existing.id}\n` : '') +
          `  (cloneGraph in the API makes an editable copy of a sealed graph.)`,
      );
    }
    throw refusal(`${file} was refused`, imported);
  }
  const { checkGraph: checked } = await ctx.api.request(CliCheckGraph, { id: imported.id });
  if (checked.__typename !== 'Graph') {
    throw refusal(`Imported "${imported.name}" as graph ${imported.id}, but it cannot start`, checked);
  }
  const schedules = imported.schedules.map((s) => `${s.name} (${s.cron} ${s.timeZone}, ${s.paused ? 'paused' : `next run ${inZone(s.nextRunAt, s.timeZone)}`})`);
  if (before.has(imported.id)) {
    out(ctx.io, `Graph "${imported.name}" (${imported.id}) is unchanged; its schedules now match ${file}: ${schedules.length ? schedules.join(', ') : 'none'}.`);
    return ExitCode.OK;
  }
  out(ctx.io, `Imported "${imported.name}" as graph ${imported.id} (${imported.vertices.length} vertices, ${imported.edges.length} edges), checked.`);
  if (schedules.length) out(ctx.io, `Schedules: ${schedules.join(', ')}.`);
  out(ctx.io, `Start it with: pipectl start ${imported.id}`);
  return ExitCode.OK;
}

/** "2026-12-03 02:30:00" in the schedule's time zone; "-" for none. */
export function inZone(at: string | null, timeZone: string): string {
  if (at === null) return '-';
  return new Intl.DateTimeFormat('sv-SE', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' }).format(new Date(at));
}

async function listSchedules(ctx: Context, graphRef: string | undefined, json: boolean): Promise<Code> {
  const graph = graphRef === undefined ? undefined : await resolveGraph(ctx.api, graphRef);
  const { schedules } = await ctx.api.request(CliSchedules, { graphId: graph?.id ?? null });
  if (json) {
    out(ctx.io, JSON.stringify(schedules, null, 2));
    return ExitCode.OK;
  }
  if (schedules.length === 0) {
    out(ctx.io, graph ? `Graph "${graph.name}" (${graph.id}) has no schedules.` : 'No schedules yet. Create one with createSchedule, or in a definition file (schedules:) with pipectl apply.');
    return ExitCode.OK;
  }
  const rows = [['ID', 'NAME', 'GRAPH', 'CRON', 'TIME ZONE', 'NEXT RUN', 'PAUSED', 'LAST TICK']];
  for (const s of schedules) {
    const [tick] = s.ticks;
    const last = tick ? `${tick.outcome}${tick.pipeline ? ` pipeline ${tick.pipeline.id}` : ''} at ${inZone(tick.tickAt, s.timeZone)}` : '-';
    rows.push([String(s.id), s.name, `${s.graph.name} (${s.graph.id})`, s.cron, s.timeZone, inZone(s.nextRunAt, s.timeZone), s.paused ? 'yes' : 'no', last]);
  }
  for (const line of table(rows)) out(ctx.io, line);
  return ExitCode.OK;
}

/** A schedule given by id, or by name when one graph only has a schedule of that name. */
async function resolveSchedule(api: Api, ref: string): Promise<{ id: number; name: string }> {
  const { schedules } = await api.request(CliSchedules, { graphId: null });
  const byId = /^\d+$/.test(ref) ? schedules.find((s) => s.id === Number(ref)) : undefined;
  if (byId) return byId;
  const named = schedules.filter((s) => s.name === ref);
  if (named.length === 1) return named[0]!;
  if (named.length > 1) {
    throw new RefusedError(`${named.length} graphs have a schedule named "${ref}": ${named.map((s) => `id ${s.id} (graph "${s.graph.name}")`).join(', ')}. Give its id.`);
  }
  throw new RefusedError(
    `No schedule has the ${/^\d+$/.test(ref) ? 'id or name' : 'name'} "${ref}".${schedules.length ? ' pipectl schedules lists them.' : ' There are no schedules yet.'}`,
  );
}

async function pauseOrResume(ctx: Context, action: 'pause' | 'resume', ref: string): Promise<Code> {
  const target = await resolveSchedule(ctx.api, ref);
  const { updateSchedule: result } = await ctx.api.request(CliPauseSchedule, { id: target.id, paused: action === 'pause' });
  if (result.__typename !== 'Schedule') throw refusal(`Schedule ${target.id} "${target.name}" was not ${action}d`, result);
  const which = `schedule ${result.id} "${result.name}" of graph ${result.graph.id} "${result.graph.name}"`;
  out(
    ctx.io,
    result.paused
      ? `Paused ${which}: it starts nothing until resumed (pipectl schedule resume ${result.id}).`
      : `Resumed ${which}: next run ${inZone(result.nextRunAt, result.timeZone)} ${result.timeZone} (the ticks of the pause are not run).`,
  );
  return ExitCode.OK;
}

/** The definition's own name, for messages (the server parses it for real). */
function nameIn(definition: string, format: 'JSON' | 'YAML'): string | undefined {
  try {
    if (format === 'JSON') return (JSON.parse(definition) as { name?: string }).name;
    const match = /^name:\s*(.+?)\s*$/m.exec(definition);
    return match?.[1]?.replace(/^(['"])(.*)\1$/, '$2');
  } catch {
    return undefined;
  }
}

async function readStdin(stdin: NodeJS.ReadStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

type Vertex = { name: string; inputs: PromptParam[] };

/** --input values by vertex, checked against what the vertices declare. */
export function collectInputs(vertices: Vertex[], assignments: InputAssignment[]): Map<string, Record<string, string>> {
  const byVertex = new Map<string, Record<string, string>>();
  const set = (vertex: string, param: string, value: string) => {
    const params = byVertex.get(vertex) ?? {};
    params[param] = value;
    byVertex.set(vertex, params);
  };
  for (const a of assignments) {
    const shown = `--input ${a.vertex === undefined ? '' : `${a.vertex}.`}${a.param}=…`;
    if (a.vertex === undefined) {
      // Inputs that read a step output (from) are nobody's to give: skipped here.
      const declaring = vertices.filter((v) => v.inputs.some((p) => p.name === a.param && p.from == null));
      if (declaring.length === 0) throw new UsageError(`${shown}: no vertex of this graph declares a parameter "${a.param}".${declared(vertices)}`);
      for (const v of declaring) set(v.name, a.param, a.value);
      continue;
    }
    const vertex = vertices.find((v) => v.name === a.vertex);
    if (!vertex) throw new UsageError(`${shown}: this graph has no vertex "${a.vertex}". Its vertices: ${vertices.map((v) => v.name).join(', ')}.`);
    if (!vertex.inputs.some((p) => p.name === a.param)) {
      throw new UsageError(
        `${shown}: vertex "${vertex.name}" declares no parameter "${a.param}"${vertex.inputs.length ? ` (it has ${vertex.inputs.map((p) => p.name).join(', ')})` : ' (it has none)'}.`,
      );
    }
    const from = vertex.inputs.find((p) => p.name === a.param)!.from;
    if (from != null) throw new UsageError(`${shown}: vertex "${vertex.name}" reads "${a.param}" from the step output ${from}; it cannot be given.`);
    set(vertex.name, a.param, a.value);
  }
  return byVertex;
}

function declared(vertices: Vertex[]): string {
  const all = vertices.flatMap((v) => v.inputs.map((p) => `${v.name}.${p.name}`));
  return all.length ? ` Declared: ${all.join(', ')}.` : ' It declares no parameters.';
}

async function start(ctx: Context, command: Extract<Command, { name: 'start' }>): Promise<Code> {
  const ref = await resolveGraph(ctx.api, command.graph);
  const { graph } = await ctx.api.request(CliGraphForStart, { id: ref.id });
  if (!graph) throw new RefusedError(`Graph ${ref.id} no longer exists.`);
  const values = collectInputs(graph.vertices, command.inputs);
  if (command.prompt && ctx.io.interactive) {
    const questions = graph.vertices.flatMap((v) =>
      v.inputs.filter((p) => needsPrompt(p, values.get(v.name)?.[p.name] !== undefined)).map((param) => ({ vertex: v.name, param })),
    );
    for (const answer of await promptValues(questions, { input: ctx.io.stdin, output: ctx.io.stderr })) {
      const params = values.get(answer.vertex) ?? {};
      params[answer.param] = answer.value;
      values.set(answer.vertex, params);
    }
  }
  const inputs = [...values].map(([vertex, params]) => ({ vertex, params }));
  const { startPipeline: started } = await ctx.api.request(CliStartPipeline, {
    graphId: graph.id,
    name: command.runName ?? null,
    inputs: inputs.length ? inputs : null,
    idempotencyKey: command.idempotencyKey ?? null,
  });
  if (started.__typename !== 'Pipeline') {
    const hint = started.__typename === 'ConflictError' && /check/i.test(started.message) ? ' (pipectl apply checks the graphs it imports.)' : '';
    throw refusal(`Graph "${graph.name}" (${graph.id}) did not start`, { ...started, message: started.message + hint });
  }
  // With a key the answer may be an earlier start's pipeline: the server does not say which, so
  // neither does this line (a repeat of the command prints the same).
  out(
    ctx.io,
    started.idempotencyKey == null
      ? `Started pipeline ${started.id} "${started.name}" of graph ${graph.id} "${graph.name}": ${started.tracks.length} track(s).`
      : `Pipeline ${started.id} "${started.name}" of graph ${graph.id} "${graph.name}" is the start with idempotency key "${started.idempotencyKey}" (${started.state}, ${started.tracks.length} track(s)); starting it with this key again returns the same pipeline.`,
  );
  if (command.watch) return exitCodeFor(await watchPipeline(ctx.api, started.id, ctx.io, { signal: ctx.signal }));
  const waiting = started.tracks.filter((t) => t.needsInput);
  for (const track of waiting) {
    const params = graph.vertices.find((v) => v.name === track.name)?.inputs ?? [];
    const missing = track.blockedBy?.missingParams.length
      ? track.blockedBy.missingParams
      : params.filter((p) => needsPrompt(p, values.get(track.name)?.[p.name] !== undefined)).map((p) => p.name);
    out(ctx.io, `Track ${track.name} (${track.id}) waits for input${missing.length ? `: ${missing.join(', ')}` : ''}; supply it with finishInput(trackId: ${track.id}, params: {...}).`);
  }
  out(ctx.io, `Follow it with: pipectl watch ${started.id}`);
  return ExitCode.OK;
}

async function cancel(ctx: Context, id: number): Promise<Code> {
  const { cancelPipeline: result } = await ctx.api.request(CliCancelPipeline, { id });
  if (result.__typename !== 'Pipeline') throw refusal(`Pipeline ${id} was not cancelled`, result);
  out(ctx.io, `Cancelled pipeline ${result.id} "${result.name}". Resume it with: pipectl retry ${result.id}`);
  return ExitCode.OK;
}

async function retry(ctx: Context, id: number, watch: boolean, from: string[] | undefined): Promise<Code> {
  // The journal's end before the retry: --watch shows this attempt, not the history.
  let cursor = 0;
  let plan;
  for (;;) {
    const { pipeline } = await ctx.api.request(CliRetryPlan, { id, after: cursor, first: JOURNAL_PAGE });
    if (!pipeline) throw new RefusedError(`No pipeline with id ${id} exists.`);
    plan ??= pipeline;
    cursor = pipeline.events.at(-1)?.id ?? cursor;
    if (pipeline.events.length < JOURNAL_PAGE) break;
  }
  const { retryPipeline: result } = await ctx.api.request(CliRetryPipeline, { id, from: from ?? null });
  if (result.__typename !== 'Pipeline') throw refusal(`Pipeline ${id} was not ${from ? 're-run' : 'retried'}`, result);
  // Back in play: the tracks whose attempt the retry raised.
  const attemptBefore = new Map(plan.tracks.map((t) => [t.id, t.attempt]));
  const names = result.tracks.filter((t) => t.attempt > (attemptBefore.get(t.id) ?? t.attempt)).map((t) => `${t.name} (attempt ${t.attempt})`);
  const what = from ? `Re-running pipeline ${result.id} "${result.name}" from ${from.join(', ')}` : `Retrying pipeline ${result.id} "${result.name}"`;
  out(ctx.io, `${what}: ${names.length} track(s) back in play${names.length ? `: ${names.join(', ')}` : ''}.`);
  if (watch) return exitCodeFor(await watchPipeline(ctx.api, result.id, ctx.io, { signal: ctx.signal, after: cursor }));
  out(ctx.io, `Follow it with: pipectl watch ${result.id}`);
  return ExitCode.OK;
}

async function logs(ctx: Context, trackId: number, follow: boolean): Promise<Code> {
  const print = (line: string) => out(ctx.io, line);
  if (follow) {
    await followOutput(ctx.api, trackId, print);
    return ExitCode.OK;
  }
  const track = await trackInfo(ctx.api, trackId);
  await printStored(ctx.api, trackId, print);
  if (!FINAL_TRACK_STATES.includes(track.state)) {
    note(ctx.io, `Track ${track.id} (${track.name}) is ${track.state}: this is its output so far. pipectl logs ${track.id} --follow continues live.`);
  }
  return ExitCode.OK;
}
