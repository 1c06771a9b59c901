/** What Linux's /proc says about the bench's processes: their CPU, and PostgreSQL's. */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { childPids } from '../test/helpers/server-process.ts';

let clockTicks: number | undefined;

/** User and system CPU seconds of the process itself (not its children); NaN when it is gone. */
export function cpuSplit(pid: number): { user: number; system: number } {
  try {
    clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]) / clockTicks, system: Number(fields[12]) / clockTicks };
  } catch {
    return { user: Number.NaN, system: Number.NaN };
  }
}

/** User + system CPU seconds of the process itself; NaN when it is gone. */
export function cpuSeconds(pid: number): number {
  const { user, system } = cpuSplit(pid);
  return user + system;
}

/** A process's CPU seconds and its descendants' (a worker's launcher, scripts still running); 0 when gone. */
export function treeCpuSeconds(pid: number): number {
  let total = cpuSeconds(pid);
  if (Number.isNaN(total)) return 0;
  for (const child of childPids(pid)) total += treeCpuSeconds(child);
  return total;
}

/**
 * CPU seconds used so far by the PostgreSQL server on this machine: its processes (their
 * `comm` is postgres) and the backends that ended, which the postmaster has reaped (its
 * cutime and cstime). Every client's work counts, not only the bench's.
 */
export function postgresCpuSeconds(): number {
  clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'postgres') continue;
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / clockTicks;
      const parent = Number(fields[1]);
      if (readFileSync(`/proc/${parent}/comm`, 'utf8').trim() !== 'postgres') total += (Number(fields[13]) + Number(fields[14])) / clockTicks;
    } catch {
      continue; // ended meanwhile
    }
  }
  return total;
}
