/**
 * The launcher: a small process, started once by the service, that spawns scripts on
 * its behalf. Spawning forks the calling process, and the cost of a fork grows with the
 * caller's memory (about 0.03 ms per MiB here, freezing its event loop), so scripts are
 * never spawned from the large GraphQL server process. Output is batched per event-loop
 * turn (or every BATCH_CHARS) as one text of whole lines, to keep IPC traffic and the
 * service's work proportional to bytes and time, not to lines.
 *
 * Flow control: the service acknowledges every output batch once it has handled it. While
 * more than OUTPUT_HIGH_WATER characters of a run's output are unacknowledged, the
 * launcher stops reading that script's stdout and stderr (the script blocks on its
 * writes) and reads on below OUTPUT_LOW_WATER. Without it, a script printing faster than
 * the service can take its lines (100 MB with a live subscriber, say) queued them all in
 * this process's IPC write queue. Order is kept: lines wait in the pipe, not aside.
 *
 * If the service dies, the IPC channel closes and every running script's process group
 * is killed: their results could no longer be recorded.
 */
import type { FromLauncher, ToLauncher } from './launcher-protocol.ts';
import { startScript, type RunningScript } from './run-script.ts';

const running = new Map<string, RunningScript>();
const pendingKills = new Map<string, string>();

/** Unacknowledged output (characters of text and streams) above which a script's reading pauses. */
const OUTPUT_HIGH_WATER = 1024 * 1024;
/** ... and below which it resumes. */
const OUTPUT_LOW_WATER = 256 * 1024;
/**
 * A batch is sent once it holds this many characters, without waiting for the end of the
 * event-loop turn. Each message is one string in both processes, and a string of 128 KiB
 * or more is a V8 large object: one alive at a minor collection moves to the old
 * generation at once, where only a major collection frees it. Below that (this plus one
 * 64 KiB read at most), the text of a flood dies young.
 */
const BATCH_CHARS = 32 * 1024;

/** A run's output in flight to the service: sizes of the batches sent and not yet acknowledged. */
interface Flow {
  batches: number[];
  unacked: number;
  paused: boolean;
  script?: RunningScript;
}
const flows = new Map<string, Flow>();

function acknowledged(runId: string, batches: number): void {
  const flow = flows.get(runId);
  if (!flow) return;
  for (let i = 0; i < batches && flow.batches.length > 0; i++) flow.unacked -= flow.batches.shift()!;
  if (flow.paused && flow.unacked <= OUTPUT_LOW_WATER) {
    flow.paused = false;
    flow.script?.resume();
  }
}

function send(message: FromLauncher): void {
  if (process.connected) process.send!(message);
}

async function run(runId: string, spec: Extract<ToLauncher, { type: 'run' }>['spec']): Promise<void> {
  let text = '';
  let streams = '';
  const flow: Flow = { batches: [], unacked: 0, paused: false };
  flows.set(runId, flow);
  const flush = () => {
    if (text === '') return;
    send({ type: 'output', runId, text, streams });
    const size = text.length + streams.length;
    flow.batches.push(size);
    flow.unacked += size;
    text = '';
    streams = '';
    if (!flow.paused && flow.unacked > OUTPUT_HIGH_WATER) {
      flow.paused = true;
      flow.script?.pause();
    }
  };
  let scheduled = false;
  try {
    const script = await startScript(spec, (stream, lines, count) => {
      text += lines;
      streams += (stream === 'stdout' ? 'o' : 'e').repeat(count);
      if (text.length >= BATCH_CHARS) flush();
      else if (!scheduled) {
        scheduled = true;
        setImmediate(() => {
          scheduled = false;
          flush();
        });
      }
    });
    running.set(runId, script);
    flow.script = script;
    if (flow.paused) script.pause();
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
    flows.delete(runId);
  }
}

process.on('message', (message: ToLauncher) => {
  if (message.type === 'run') {
    void run(message.runId, message.spec);
  } else if (message.type === 'kill') {
    const script = running.get(message.runId);
    if (script) script.kill(message.reason);
    else pendingKills.set(message.runId, message.reason);
  } else if (message.type === 'ack') {
    acknowledged(message.runId, message.batches);
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
