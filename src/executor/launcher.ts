/**
 * The launcher: a small process, started once by the service, that spawns scripts on
 * its behalf. Spawning forks the calling process, and the cost of a fork grows with the
 * caller's memory (about 0.03 ms per MiB here, freezing its event loop), so scripts are
 * never spawned from the large GraphQL server process. Output lines are batched per
 * event-loop turn to keep IPC traffic proportional to time, not to lines.
 *
 * If the service dies, the IPC channel closes and every running script's process group
 * is killed: their results could no longer be recorded.
 */
import type { FromLauncher, ToLauncher } from './launcher-protocol.ts';
import { startScript, type RunningScript } from './run-script.ts';

const running = new Map<string, RunningScript>();
const pendingKills = new Map<string, string>();

function send(message: FromLauncher): void {
  if (process.connected) process.send!(message);
}

async function run(runId: string, spec: Extract<ToLauncher, { type: 'run' }>['spec']): Promise<void> {
  let batch: Array<['stdout' | 'stderr', string]> = [];
  const flush = () => {
    if (batch.length === 0) return;
    send({ type: 'output', runId, lines: batch });
    batch = [];
  };
  let scheduled = false;
  try {
    const script = await startScript(spec, (stream, line) => {
      batch.push([stream, line]);
      if (!scheduled) {
        scheduled = true;
        setImmediate(() => {
          scheduled = false;
          flush();
        });
      }
    });
    running.set(runId, script);
    send({ type: 'started', runId, pid: script.pid, at: script.startedAt });
    const killReason = pendingKills.get(runId);
    if (killReason !== undefined) script.kill(killReason);
    const outcome = await script.done;
    flush();
    send({ type: 'exit', runId, outcome });
  } catch (error) {
    flush();
    send({
      type: 'exit',
      runId,
      outcome: {
        exitCode: null,
        signal: null,
        timedOut: false,
        killedBecause: null,
        spawnError: (error as Error).message,
        durationMs: 0,
      },
    });
  } finally {
    running.delete(runId);
    pendingKills.delete(runId);
  }
}

process.on('message', (message: ToLauncher) => {
  if (message.type === 'run') {
    void run(message.runId, message.spec);
  } else if (message.type === 'kill') {
    const script = running.get(message.runId);
    if (script) script.kill(message.reason);
    else pendingKills.set(message.runId, message.reason);
  }
});

process.on('disconnect', () => {
  for (const script of running.values()) script.kill('the service stopped');
  // Give SIGTERM a moment, then make sure nothing survives us.
  setTimeout(() => {
    for (const script of running.values()) {
      if (script.pid !== undefined) {
        try {
          process.kill(-script.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    process.exit(0);
  }, 500).unref();
});

send({ type: 'ready' });
