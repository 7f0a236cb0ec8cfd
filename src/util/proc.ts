// Process liveness, the one check every owner-pid file (sandbox state,
// layer leases, cgroup names) relies on.

import { readFileSync } from 'node:fs';

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
