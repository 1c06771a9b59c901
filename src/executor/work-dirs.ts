/**
 * Where scripts run: every attempt of a track in a directory of its own, inside one
 * directory per pipeline, so that deleting a pipeline (src/retention.ts) removes one tree.
 */
import path from 'node:path';

/** `<WORK_DIR>/pipeline-<id>`. */
export function pipelineWorkDir(workDir: string, pipelineId: number): string {
  return path.join(workDir, `pipeline-${pipelineId}`);
}

/** `<WORK_DIR>/pipeline-<id>/track-<t>-attempt-<n>`: one attempt's working directory. */
export function attemptWorkDir(workDir: string, pipelineId: number, trackId: number, attempt: number): string {
  return path.join(pipelineWorkDir(workDir, pipelineId), `track-${trackId}-attempt-${attempt}`);
}

/** The pipeline id of an entry of WORK_DIR named as pipelineWorkDir names them, else undefined. */
export function pipelineIdOfWorkDir(name: string): number | undefined {
  const match = /^pipeline-([1-9]\d{0,15})$/.exec(name);
  return match ? Number(match[1]) : undefined;
}
