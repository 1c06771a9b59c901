/**
 * pipectl's entry: parse the command line, run the command, map every failure to a
 * message and an exit code (see errors.ts and `pipectl --help`). Never a stack trace for
 * an expected problem.
 */
import { HELP, parseCommandLine, ROLE_NEEDED, serverUrl, type Command } from './args.ts';
import { createApi } from './client.ts';
import { run } from './commands.ts';
import { CliError, ExitCode, TokenRefusedError, UsageError } from './errors.ts';
import { processIo } from './io.ts';

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let invocation;
  let url: string;
  try {
    invocation = parseCommandLine(argv);
    url = serverUrl(invocation.url ?? env.PIPECTL_URL);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`pipectl: ${error.message}\nRun pipectl --help for the commands and options.\n`);
    return ExitCode.USAGE;
  }
  if (invocation.command.name === 'help') {
    process.stdout.write(HELP);
    return ExitCode.OK;
  }
  const io = processIo(env, invocation.noColor);
  const api = createApi(url, env.PIPECTL_TOKEN?.trim() || undefined);
  const interrupt = new AbortController();
  // While watching, Ctrl-C ends the watch (the pipeline keeps running); otherwise, or the
  // second time, it ends pipectl at once.
  const onSigint = () => {
    if (interrupt.signal.aborted || !watching(invocation.command)) {
      if (io.stdout.isTTY) io.stdout.write('\x1b[?25h');
      process.exit(ExitCode.INTERRUPTED);
    }
    interrupt.abort();
  };
  process.on('SIGINT', onSigint);
  try {
    return await run(invocation.command, { api, io, signal: interrupt.signal });
  } catch (error) {
    if (error instanceof TokenRefusedError) {
      io.stderr.write(`pipectl: ${tokenAdvice(invocation.command, env.PIPECTL_TOKEN?.trim() ? error.message : undefined)}\n`);
      return error.exitCode;
    }
    if (error instanceof CliError) {
      io.stderr.write(`pipectl: ${error.message}\n`);
      return error.exitCode;
    }
    io.stderr.write(`pipectl: unexpected error: ${(error as Error)?.stack ?? String(error)}\n`);
    return ExitCode.INTERNAL;
  } finally {
    process.off('SIGINT', onSigint);
    await api.close().catch(() => undefined);
  }
}

/**
 * What to do when the server wants a token: the role this command needs (the server only
 * knows the field it refused, e.g. the graphs query that start runs first) and how to get
 * one. `refused` is the server's reason when PIPECTL_TOKEN was sent and not accepted.
 */
function tokenAdvice(command: Exclude<Command, { name: 'help' }>, refused: string | undefined): string {
  const role = ROLE_NEEDED[command.name];
  const needs = `pipectl ${command.name} needs a token of the ${role} role${role === 'admin' ? '' : ' or higher'}`;
  const create = `an admin creates one with: npm run token -- create --role ${role} --name <you>`;
  if (refused === undefined) return `The server needs an API token, and PIPECTL_TOKEN is not set. ${needs}: ${create}, then export PIPECTL_TOKEN=dp_...`;
  return `PIPECTL_TOKEN was refused: ${refused}\n${needs}; ${create}.`;
}

function watching(command: { name: string; watch?: boolean }): boolean {
  return command.name === 'watch' || command.watch === true;
}

/** Exit code for a closed pipe (`pipectl watch 3 | head`), as if killed by SIGPIPE. */
const BROKEN_PIPE = 141;

/** Runs main and exits with its code once stdout has drained. */
export function runMain(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => process.exit(error.code === 'EPIPE' ? BROKEN_PIPE : ExitCode.INTERNAL));
  }
  main(process.argv.slice(2)).then(
    (code) => {
      // Idle keep-alive sockets would hold the process for a while: exit once output is out.
      const exit = () => process.exit(code);
      if (process.stdout.writableLength > 0) process.stdout.once('drain', exit);
      else exit();
    },
    (error: unknown) => {
      process.stderr.write(`pipectl: ${(error as Error)?.stack ?? String(error)}\n`);
      process.exit(ExitCode.INTERNAL);
    },
  );
}
