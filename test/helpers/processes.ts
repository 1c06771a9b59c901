import { readdirSync, readFileSync } from 'node:fs';
/**
 * Whether a process still runs (signal 0 checks without sending anything). A zombie is
 * dead: it only waits to be reaped, by init when its parent (a killed launcher) is gone,
 * which may take a while on a busy machine.
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) state ...", comm may contain spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Whether any process of the process group `pgid` still exists. */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * The live processes whose environment has `variable=value` (Linux /proc; those of other
 * users are skipped): what a service and everything it started inherited, to find any
 * left behind, whatever process group it ended up in.
 */
export function pidsWithEnvironment(variable: string, value: string): number[] {
  const entry = `${variable}=${value}`;
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(entry) && alive(pid);
      } catch {
        return false;
      }
    });
}
