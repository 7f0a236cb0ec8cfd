// Process liveness, the one check every owner-pid file (sandbox state,
// layer leases, cgroup names) relies on.

import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** Whether `pid` exists (EPERM: it exists but belongs to someone else). */
export function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Like alive(), but a zombie (killed, not yet reaped: its parent may be a
 * subreaper that reaps late) is not running.
 */
export function running(pid: number): boolean {
  if (!alive(pid)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // exists, /proc unreadable (hidepid): trust kill(0)
  }
}

/**
 * A process of the sandbox whose pid 1 is `initPid` that the user may
 * inspect: pid 1 and hutch's monitor are not dumpable, and their memory
 * belongs to the host's user namespace, so an unprivileged user cannot open
 * their /proc/PID/ns (that is what keeps a command with CAP_SYS_PTRACE away
 * from them). The command pid 1 started (its oldest child) was exec'd inside
 * the sandbox and shares its namespaces; `initPid` itself when none is
 * readable (root can read pid 1's).
 */
export function sandboxMember(initPid: number): number {
  const children: number[] = [];
  let names: string[] = [];
  try {
    names = readdirSync('/proc');
  } catch {}
  for (const p of names) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === initPid) children.push(Number(p));
    } catch {}
  }
  for (const c of children.sort((a, b) => a - b)) {
    try {
      readlinkSync(`/proc/${c}/ns/pid`);
      return c;
    } catch {}
  }
  return initPid;
}
