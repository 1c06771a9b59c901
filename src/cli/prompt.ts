/**
 * Asking for the parameter values `start` was not given, when a person is at the
 * terminal. Secret parameters are read without echo. Values are checked here the way the
 * server will check them (type, choices, pattern), so a typo is asked again rather than
 * refused after the fact.
 */
import { isIP } from 'node:net';
import { createInterface } from 'node:readline/promises';
import type { ReadStream } from 'node:tty';
import { InterruptedError } from './errors.ts';

export interface PromptParam {
  name: string;
  type: string;
  required: boolean;
  default?: unknown;
  choices?: unknown[] | null;
  pattern?: string | null;
  secret: boolean;
  description?: string | null;
  /** The step output it reads (SPEC rule 18): nobody gives it. */
  from?: string | null;
}

/** Whether `start` has to ask for this parameter: nothing given, either required or without a default, and not read from a step output. */
export function needsPrompt(param: PromptParam, given: boolean): boolean {
  if (param.from != null) return false;
  return !given && (param.required || param.default === undefined || param.default === null);
}

/** The reason a typed value is not acceptable, or undefined. Mirrors the server's conversion. */
export function checkValue(param: PromptParam, value: string): string | undefined {
  switch (param.type) {
    case 'INTEGER':
      if (!/^[+-]?\d+$/.test(value.trim())) return 'expected a whole number';
      break;
    case 'NUMBER':
      if (value.trim() === '' || !Number.isFinite(Number(value))) return 'expected a number';
      break;
    case 'BOOLEAN':
      if (!/^(true|false|yes|no|1|0)$/i.test(value.trim())) return 'expected true or false';
      break;
    case 'IP':
      if (isIP(value.trim()) === 0) return 'expected an IPv4 or IPv6 address';
      break;
  }
  if (param.choices?.length && !param.choices.some((c) => String(c) === value)) {
    return `expected one of ${param.choices.map((c) => String(c)).join(', ')}`;
  }
  if (param.pattern && param.type === 'STRING') {
    try {
      if (!new RegExp(`^(?:${param.pattern})$`, 'u').test(value)) return `expected text matching ${param.pattern}`;
    } catch {
      // The server reports a bad pattern; nothing to check here.
    }
  }
  return undefined;
}

/** The question line, e.g. "report.operator (string, required; who runs it) [Ada]: ". */
export function question(vertex: string, param: PromptParam): string {
  const notes = [param.type.toLowerCase()];
  if (param.required) notes.push('required');
  if (param.secret) notes.push('secret, not echoed');
  if (param.choices?.length) notes.push(`one of ${param.choices.map((c) => String(c)).join(', ')}`);
  const described = param.description ? `; ${param.description}` : '';
  const fallback = param.default !== undefined && param.default !== null && !param.secret ? ` [${String(param.default)}]` : '';
  return `${vertex}.${param.name} (${notes.join(', ')}${described})${fallback}: `;
}

/** Reads one line without echo (raw mode); Ctrl-C interrupts, Ctrl-D ends the line. */
function readSecret(input: ReadStream, output: NodeJS.WritableStream, prompt: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let value = '';
    const wasRaw = input.isRaw;
    // No echo before the question shows: an answer typed ahead is not printed either.
    input.setRawMode(true);
    output.write(prompt);
    input.resume();
    const done = (fn: () => void) => {
      input.off('data', onData);
      input.setRawMode(wasRaw);
      input.pause();
      output.write('\n');
      fn();
    };
    const onData = (chunk: Buffer) => {
      for (const char of chunk.toString('utf8')) {
        if (char === '\u0003') return done(() => reject(new InterruptedError('Interrupted: nothing was started.')));
        if (char === '\r' || char === '\n' || char === '\u0004') return done(() => resolve(value));
        if (char === '\u007f' || char === '\b') value = [...value].slice(0, -1).join('');
        else if (char >= ' ') value += char;
      }
    };
    input.on('data', onData);
  });
}

/** Reads one line with echo; Ctrl-C or end of input interrupts. */
async function readLine(input: NodeJS.ReadableStream, output: NodeJS.WritableStream, prompt: string): Promise<string> {
  const rl = createInterface({ input, output, terminal: true });
  const abort = new AbortController();
  rl.on('SIGINT', () => abort.abort());
  rl.on('close', () => abort.abort());
  try {
    return await rl.question(prompt, { signal: abort.signal });
  } catch {
    output.write('\n');
    throw new InterruptedError('Interrupted: nothing was started.');
  } finally {
    rl.close();
  }
}

/**
 * Asks for each parameter in turn until the value is acceptable. An empty answer takes
 * the default where there is one. Returns the values typed, by vertex and parameter.
 */
export async function promptValues(
  questions: Array<{ vertex: string; param: PromptParam }>,
  io: { input: ReadStream; output: NodeJS.WritableStream },
): Promise<Array<{ vertex: string; param: string; value: string }>> {
  const answers: Array<{ vertex: string; param: string; value: string }> = [];
  if (questions.length > 0) io.output.write('Values needed to start (Ctrl-C to give up):\n');
  for (const { vertex, param } of questions) {
    for (;;) {
      const prompt = question(vertex, param);
      const typed = param.secret ? await readSecret(io.input, io.output, prompt) : await readLine(io.input, io.output, prompt);
      const hasDefault = param.default !== undefined && param.default !== null;
      if (typed === '' && hasDefault) {
        answers.push({ vertex, param: param.name, value: String(param.default) });
        break;
      }
      if (typed === '') {
        io.output.write(`  ${vertex}.${param.name} has no default: a value is needed.\n`);
        continue;
      }
      const problem = checkValue(param, typed);
      if (problem) {
        io.output.write(`  ${problem}; try again.\n`);
        continue;
      }
      answers.push({ vertex, param: param.name, value: typed });
      break;
    }
  }
  return answers;
}
