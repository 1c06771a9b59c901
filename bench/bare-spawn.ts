/**
 * The baseline for the engine benchmark, run as a fresh small Node process:
 *
 *   node --import tsx bench/bare-spawn.ts [count=1000] [concurrency=2] [script=true]
 *
 * Spawns `bash <BASH_ARGS> <script>` `count` times, at most `concurrency` at once, with
 * the same execa options run-script.ts uses (detached process group, stdin ignored,
 * stdout/stderr piped and drained, no buffering, group killed on exit), and prints
 * {"count","concurrency","ms","failures"} as one JSON line. No database, no IPC, no
 * per-track working directory: what is left is the cost of the processes themselves.
 */
import { tmpdir } from 'node:os';
import { execa } from 'execa';
import { BASH_ARGS } from '../src/executor/run-script.ts';

const count = Number(process.argv[2] ?? 1000);
const concurrency = Number(process.argv[3] ?? 2);
const script = process.argv[4] ?? 'true';
if (!Number.isInteger(count) || count < 1 || !Number.isInteger(concurrency) || concurrency < 1) {
  console.error('usage: bare-spawn.ts [count >= 1] [concurrency >= 1] [script]');
  process.exit(2);
}

const cwd = tmpdir();
const env = Object.fromEntries(
  ['PATH', 'HOME', 'LANG'].flatMap((name) => (process.env[name] !== undefined ? [[name, process.env[name]!]] : [])),
);

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

async function runOne(): Promise<boolean> {
  const subprocess = execa('bash', [...BASH_ARGS, script], {
    cwd,
    env,
    extendEnv: false,
    detached: true,
    stdin: 'ignore',
    // Plain pipes, drained and dropped: the least a runner that reads output can do.
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: false,
    reject: false,
    stripFinalNewline: false,
  });
  subprocess.stdout?.resume();
  subprocess.stderr?.resume();
  const pid = subprocess.pid;
  subprocess.once('exit', () => killGroup(pid));
  const result = await subprocess;
  return result.exitCode === 0;
}

let started = 0;
let failures = 0;
const t0 = performance.now();
await Promise.all(
  Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (started < count) {
      started++;
      if (!(await runOne())) failures++;
    }
  }),
);
const ms = performance.now() - t0;
console.log(JSON.stringify({ count, concurrency, ms, failures }));
