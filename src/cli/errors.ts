/**
 * Exit codes and the errors that map to them. A script or CI job can tell "the pipeline
 * failed" from "the server is down" from "you typed it wrong" by the code alone.
 */
export const ExitCode = {
  /** The command did what was asked; a watched pipeline reached FINISH. */
  OK: 0,
  /** The watched pipeline ended FAILED. */
  FAILED: 1,
  /** The watched pipeline ended CANCELLED. */
  CANCELLED: 2,
  /** The server refused the request: unknown graph, pipeline or track, invalid definition, conflict, wrong state. */
  REFUSED: 3,
  /** Bad command line (EX_USAGE). */
  USAGE: 64,
  /** The server could not be reached, or is not a dagpipe server (EX_UNAVAILABLE). */
  UNAVAILABLE: 69,
  /** The server answered with an unexpected error (EX_SOFTWARE). */
  INTERNAL: 70,
  /** Interrupted (Ctrl-C): 128 + SIGINT. */
  INTERRUPTED: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** An error that ends the command with a message for the user and a given exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** The command line is wrong; the help hint is added when printed. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, ExitCode.USAGE);
    this.name = 'UsageError';
  }
}

/** The server refused: a typed GraphQL error (NotFoundError, ValidationError, ConflictError, CycleError) or an unknown name. */
export class RefusedError extends CliError {
  constructor(message: string) {
    super(message, ExitCode.REFUSED);
    this.name = 'RefusedError';
  }
}

/**
 * The server wants a valid API token: none was sent, or PIPECTL_TOKEN was refused (the
 * message says why). main() adds which role the command needs and how to get a token.
 */
export class TokenRefusedError extends RefusedError {
  constructor(message: string) {
    super(message);
    this.name = 'TokenRefusedError';
  }
}

/** No answer from the server, or not a GraphQL answer. */
export class UnavailableError extends CliError {
  constructor(message: string) {
    super(message, ExitCode.UNAVAILABLE);
    this.name = 'UnavailableError';
  }
}

/** Ctrl-C at a prompt or while watching. */
export class InterruptedError extends CliError {
  constructor(message = 'Interrupted.') {
    super(message, ExitCode.INTERRUPTED);
    this.name = 'InterruptedError';
  }
}

/** A typed error from a mutation result, in the user's terms: the message and the argument at fault. */
export function refusal(what: string, error: { __typename?: string; message: string; field: string; path?: string[] }): RefusedError {
  if (error.__typename === 'UnauthenticatedError') return new TokenRefusedError(error.message);
  const field = error.field ? ` (${error.field})` : '';
  const cycle = error.path?.length ? `\n  cycle: ${error.path.join(' -> ')}` : '';
  return new RefusedError(`${what}: ${error.message}${field}${cycle}`);
}
