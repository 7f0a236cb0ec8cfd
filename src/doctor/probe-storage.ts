// Copy-on-write storage: kernel overlayfs inside a user namespace (mounted
// for real, as the driver choice does), else fuse-overlayfs, which needs the
// tool and read/write access to /dev/fuse.

import { accessSync, constants, existsSync } from 'node:fs';
import { probeKernelOverlay } from '../rootfs/choose';
import { installCommand, installHint, sudo } from '../host/fixes';
import type { IdentityInfo } from '../host/ids';
import { check, type Check } from './probe';
import { findExecutable } from '../host/which';

/** Whether we can open a device node read/write, and the command that opens it up. */
export function deviceAccess(dev: string, udevKernel: string, module: string): { ok: boolean; problem?: string; fix?: string } {
  const s = sudo();
  if (!existsSync(dev)) return { ok: false, problem: `${dev} does not exist`, fix: `${s}modprobe ${module}` };
  try {
    accessSync(dev, constants.R_OK | constants.W_OK);
    return { ok: true };
  } catch {
    return {
      ok: false,
      problem: `${dev} is not readable and writable by you (most distributions make it 0666)`,
      fix: `${s}chmod 0666 ${dev} && echo 'KERNEL=="${udevKernel}", MODE="0666"' | ${s}tee /etc/udev/rules.d/90-hutch-${udevKernel}.rules`,
    };
  }
}

export async function probeStorage(helper: string, ids: IdentityInfo, env: NodeJS.ProcessEnv): Promise<Check[]> {
  const area = 'storage';
  const out: Check[] = [];
  const kernel = await probeKernelOverlay(helper, ids);
  const fuse = findExecutable('fuse-overlayfs', env);
  const dev = deviceAccess('/dev/fuse', 'fuse', 'fuse');
  const fuseOk = !!fuse && dev.ok;
  out.push(
    kernel.ok
      ? check({
          id: 'storage.overlay',
          area,
          status: 'ok',
          summary: 'kernel overlayfs mounts inside a user namespace (tried for real): the fast driver',
          facts: { works: true },
        })
      : check({
          id: 'storage.overlay',
          area,
          status: fuseOk ? 'warning' : 'error',
          summary: `kernel overlayfs cannot be mounted in a user namespace: ${kernel.detail}`,
          detail: fuseOk
            ? 'hutch uses fuse-overlayfs instead (about 3x slower to create files)'
            : 'and fuse-overlayfs is not usable either: no copy-on-write root filesystem',
          fix: 'use a kernel >= 5.11 (overlayfs in user namespaces)' + (fuseOk ? '' : `, or ${installHint('fuse-overlayfs')}`),
          facts: { works: false },
        }),
  );
  // When the kernel overlay works, fuse-overlayfs is what lets root inside
  // modify files owned outside the id map (the host's, for a user): a warning.
  const missing = kernel.ok ? 'warning' : 'error';
  out.push(
    fuse
      ? check({ id: 'storage.fuse-overlayfs', area, status: 'ok', summary: fuse, facts: { path: fuse } })
      : check({
          id: 'storage.fuse-overlayfs',
          area,
          status: missing,
          summary: 'fuse-overlayfs is not installed',
          detail: kernel.ok
            ? "kernel overlayfs works here, but without fuse-overlayfs root inside cannot modify files owned outside the sandbox's id map (the host's own files, for an unprivileged user)"
            : 'needed: kernel overlayfs does not work here',
          fix: installCommand('fuse-overlayfs'),
          facts: { hint: installHint('fuse-overlayfs') },
        }),
  );
  out.push(
    dev.ok
      ? check({ id: 'storage.dev-fuse', area, status: 'ok', summary: '/dev/fuse is readable and writable' })
      : check({ id: 'storage.dev-fuse', area, status: missing, summary: dev.problem!, detail: 'fuse-overlayfs needs it', fix: dev.fix }),
  );
  return out;
}
