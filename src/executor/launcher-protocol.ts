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
  | { type: 'output'; runId: string; lines: Array<['stdout' | 'stderr', string]> }
  | { type: 'exit'; runId: string; outcome: ScriptOutcome };
