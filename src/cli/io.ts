/** The process's streams and what they allow: colours, in-place redraws, prompts. */
export interface Io {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  /** ANSI colours on stdout: a TTY, NO_COLOR unset, no --no-color. */
  color: boolean;
  /** Someone can be asked: stdin and stdout are both terminals. */
  interactive: boolean;
}

/** Colours only for a terminal, and never when NO_COLOR is set (https://no-color.org) or TERM is dumb. */
export function useColor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv, noColorFlag: boolean): boolean {
  if (noColorFlag || (env.NO_COLOR !== undefined && env.NO_COLOR !== '') || env.TERM === 'dumb') return false;
  return stream.isTTY === true;
}

export function processIo(env: NodeJS.ProcessEnv, noColorFlag: boolean): Io {
  return {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    color: useColor(process.stdout, env, noColorFlag),
    interactive: process.stdin.isTTY === true && process.stdout.isTTY === true,
  };
}
