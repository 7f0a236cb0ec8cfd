// The kernel filesystems every sandbox gets fresh: /proc (with the paths
// that leak or control host state masked, as podman does), /sys read-only,
// a minimal /dev, a private /tmp and /run. The writable ones (/dev, /dev/shm,
// /tmp, /run) are directories of the sandbox's RAM budget (ram-budget.ts).

import type { PlanBuilder } from '../helper/plan';
import { ramDirOps } from './ram-budget';

/** Host state readable through procfs/sysfs that a sandbox must not see. */
export const MASKED_PATHS = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/proc/sysrq-trigger',
  '/sys/firmware',
  '/sys/dev/block',
  '/sys/devices/virtual/powercap',
];

/** Knobs that stay visible but read-only. */
export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys'];

const DEVICES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];

export interface SystemMountOptions {
  /**
   * A fresh sysfs (the sandbox owns its network namespace); otherwise the
   * host's /sys, bound read-only with its submounts (`--network host`: the
   * kernel lets only the network namespace's owner mount sysfs).
   */
  freshSysfs: boolean;
}

export function systemMountOps(b: PlanBuilder, opts: SystemMountOptions): void {
  b.note('fresh /proc for the new pid namespace; host-state paths masked, kernel knobs read-only');
  b.add({ op: 'mkdir', path: '/newroot/proc', mode: 0o555 });
  b.add({ op: 'proc', dest: '/newroot/proc' });

  b.note(opts.freshSysfs ? '/sys read-only' : "/sys read-only: the host's (the network namespace is the host's, so no fresh sysfs)");
  b.add({ op: 'mkdir', path: '/newroot/sys', mode: 0o555 });
  if (opts.freshSysfs) b.add({ op: 'sysfs', dest: '/newroot/sys' });
  else b.add({ op: 'bind', src: '/oldroot/sys', dest: '/newroot/sys', flags: { ro: true, rec: true } });

  b.note('minimal /dev: a few device nodes from the host, private devpts, shm and mqueue');
  b.add({ op: 'mkdir', path: '/newroot/dev', mode: 0o755 });
  ramDirOps(b, 'dev', 0o755, '/newroot/dev');
  for (const d of DEVICES) b.add({ op: 'bind', src: `/oldroot/dev/${d}`, dest: `/newroot/dev/${d}`, flags: { dev: true } });
  b.add({ op: 'mkdir', path: '/newroot/dev/pts', mode: 0o755 });
  b.add({ op: 'devpts', dest: '/newroot/dev/pts' });
  b.add({ op: 'symlink', target: 'pts/ptmx', path: '/newroot/dev/ptmx' });
  b.add({ op: 'mkdir', path: '/newroot/dev/shm', mode: 0o1777 });
  ramDirOps(b, 'shm', 0o1777, '/newroot/dev/shm');
  b.add({ op: 'mkdir', path: '/newroot/dev/mqueue', mode: 0o755 });
  b.add({ op: 'mqueue', dest: '/newroot/dev/mqueue' });
  b.add({ op: 'symlink', target: '/proc/self/fd', path: '/newroot/dev/fd' });
  b.add({ op: 'symlink', target: '/proc/self/fd/0', path: '/newroot/dev/stdin' });
  b.add({ op: 'symlink', target: '/proc/self/fd/1', path: '/newroot/dev/stdout' });
  b.add({ op: 'symlink', target: '/proc/self/fd/2', path: '/newroot/dev/stderr' });

  b.note('private /tmp and /run (host sockets such as docker.sock or the session bus stay outside)');
  b.add({ op: 'mkdir', path: '/newroot/tmp', mode: 0o1777 });
  ramDirOps(b, 'tmp', 0o1777, '/newroot/tmp');
  b.add({ op: 'mkdir', path: '/newroot/run', mode: 0o755 });
  ramDirOps(b, 'run', 0o755, '/newroot/run');
}

export function procMaskOps(b: PlanBuilder): void {
  for (const p of MASKED_PATHS) b.add({ op: 'mask', path: `/newroot${p}` });
  for (const p of READONLY_PATHS) b.add({ op: 'bind', src: `/newroot${p}`, dest: `/newroot${p}`, flags: { ro: true, rec: true, try: true } });
}
