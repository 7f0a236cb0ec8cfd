// Under a systemd user session hutch's own cgroup (a session scope, an app
// slice) is usually not delegated. systemd hands out delegated cgroups as
// transient scopes: hutch asks its user manager for one holding hutch itself
// (what podman does), through busctl, so no D-Bus library is needed:
//   StartTransientUnit("hutch-PID.scope", "fail", [PIDs=[PID], Delegate=true], [])
// Only tried when limits are asked for and the current cgroup is unusable.

import { spawnSync } from 'node:child_process';
import { findExecutable } from '../host/which';
import { cgroupPathOf } from './delegation';

export function requestDelegatedScope(env: NodeJS.ProcessEnv): { ok: boolean; why?: string } {
  const busctl = findExecutable('busctl', env);
  if (!busctl) return { ok: false, why: 'busctl not found' };
  const unit = `hutch-${process.pid}.scope`;
  const r = spawnSync(
    busctl,
    [
      '--user',
      'call',
      'org.freedesktop.systemd1',
      '/org/freedesktop/systemd1',
      'org.freedesktop.systemd1.Manager',
      'StartTransientUnit',
      'ssa(sv)a(sva(sv))',
      unit,
      'fail',
      '2',
      'PIDs',
      'au',
      '1',
      String(process.pid),
      'Delegate',
      'b',
      'true',
      '0',
    ],
    { env, encoding: 'utf8', timeout: 5000 },
  );
  if (r.status !== 0) return { ok: false, why: (r.stderr || r.error?.message || `busctl exited ${r.status}`).trim() };
  // The job is asynchronous: wait until the kernel shows hutch in the scope.
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline) {
    if (cgroupPathOf('self')?.endsWith(`/${unit}`)) return { ok: true };
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
  return { ok: false, why: `systemd did not move hutch into ${unit}` };
}
