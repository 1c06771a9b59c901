/** Messages between the service and its launcher process (over Node IPC). */
import type { ScriptOutcome, ScriptSpec } from './run-script.ts';

export type ToLauncher =
  | { type: 'run'; runId: string; spec: ScriptSpec }
  | { type: 'kill'; runId: string; reason: string };

export type FromLauncher =
  | { type: 'ready' }
  | { type: 'started'; runId: string; pid: number | undefined; at: number }
  | { type: 'output'; runId: string; lines: Array<['stdout' | 'stderr', string]> }
  | { type: 'exit'; runId: string; outcome: ScriptOutcome };
