// Process liveness, the one check every owner-pid file (sandbox state,
// layer leases, cgroup names) relies on.

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
