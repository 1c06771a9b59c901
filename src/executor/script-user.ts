/**
 * Who scripts run as. A service running as root must not hand root to every script: they
 * run as SCRIPT_USER (default nobody) instead. A service running as another user runs
 * scripts as itself (it cannot switch users, and needs not).
 */
import { readFileSync } from 'node:fs';

export interface ScriptUser {
  uid: number;
  gid: number;
  name: string;
  /** The user's home directory from /etc/passwd (scripts get their working directory when it is unusable). */
  home: string;
}

export class ScriptUserError extends Error {
  override name = 'ScriptUserError';
}

/**
 * The user scripts run as, or undefined to run them as the service's own user (also
 * when a root service is told SCRIPT_USER=root).
 * @param setting SCRIPT_USER: a user name, a uid, or uid:gid.
 * @param serviceUid the service's uid (process.getuid()).
 */
export function resolveScriptUser(setting: string, serviceUid: number | undefined, passwd: () => string = () => readFileSync('/etc/passwd', 'utf8')): ScriptUser | undefined {
  if (serviceUid !== 0) return undefined;
  if (setting === 'root' || setting === '0' || setting.startsWith('0:')) {
    // An explicit choice (a throwaway container, a test machine): scripts run as the
    // service itself, root; the caller logs it loudly.
    return undefined;
  }
  const entries = passwd()
    .split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => line.split(':'))
    .map(([name, , uid, gid, , home]) => ({ name: name!, uid: Number(uid), gid: Number(gid), home: home ?? '/' }));
  const numeric = /^(\d+)(?::(\d+))?$/.exec(setting);
  if (numeric) {
    const uid = Number(numeric[1]);
    const known = entries.find((e) => e.uid === uid);
    return { uid, gid: numeric[2] !== undefined ? Number(numeric[2]) : (known?.gid ?? uid), name: known?.name ?? String(uid), home: known?.home ?? '/' };
  }
  const entry = entries.find((e) => e.name === setting);
  if (!entry) {
    throw new ScriptUserError(
      `SCRIPT_USER=${setting} is not a user on this machine (not in /etc/passwd). The service runs as root, so scripts run as SCRIPT_USER: create that user, or name another unprivileged one.`,
    );
  }
  return entry;
}
