/** Messages between the service and its launcher process (over Node IPC). */
import type { ScriptOutcome, ScriptSpec } from './run-script.ts';

export type ToLauncher =
  | { type: 'run'; runId: string; spec: ScriptSpec }
  | { type: 'kill'; runId: string; reason: string }
  /**
   * The service has handled `batches` more output messages of a run (flow control: the
   * launcher stops reading a script's output while too much of it is unacknowledged).
   */
  | { type: 'ack'; runId: string; batches: number };

export type FromLauncher =
  | { type: 'ready' }
  | { type: 'started'; runId: string; pid: number | undefined; at: number }
  /**
   * Output of a run: `text` is whole lines, each with its newline; `streams` one character
   * per line, "o" for stdout and "e" for stderr (the stored chunks' form). One string for
   * a whole batch, not a string per line: JSON-parsing millions of small strings and tuples
   * was most of the service's allocation under a flood of output.
   */
  | { type: 'output'; runId: string; text: string; streams: string }
  | { type: 'exit'; runId: string; outcome: ScriptOutcome };
