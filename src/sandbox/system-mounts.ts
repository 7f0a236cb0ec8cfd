// The kernel filesystems every sandbox gets fresh: /proc (with the paths
// that leak or control host state masked, as podman does), /sys read-only,
// a minimal /dev, a private /tmp and /run.

import type { PlanBuilder } from '../helper/plan';

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

export function systemMountOps(b: PlanBuilder): void {
  b.note('fresh /proc for the new pid namespace; host-state paths masked, kernel knobs read-only');
  b.add('mkdir', '/newroot/proc', '555');
  b.add('proc', '/newroot/proc');

  b.note('/sys read-only');
  b.add('mkdir', '/newroot/sys', '555');
  b.add('sysfs', '/newroot/sys');

  b.note('minimal /dev: a few device nodes from the host, private devpts, shm and mqueue');
  b.add('mkdir', '/newroot/dev', '755');
  b.add('tmpfs', '/newroot/dev', '755');
  for (const d of DEVICES) b.add('bind', `/oldroot/dev/${d}`, `/newroot/dev/${d}`, 'rw,dev');
  b.add('mkdir', '/newroot/dev/pts', '755');
  b.add('devpts', '/newroot/dev/pts');
  b.add('symlink', 'pts/ptmx', '/newroot/dev/ptmx');
  b.add('mkdir', '/newroot/dev/shm', '1777');
  b.add('tmpfs', '/newroot/dev/shm', '1777');
  b.add('mkdir', '/newroot/dev/mqueue', '755');
  b.add('mqueue', '/newroot/dev/mqueue');
  b.add('symlink', '/proc/self/fd', '/newroot/dev/fd');
  b.add('symlink', '/proc/self/fd/0', '/newroot/dev/stdin');
  b.add('symlink', '/proc/self/fd/1', '/newroot/dev/stdout');
  b.add('symlink', '/proc/self/fd/2', '/newroot/dev/stderr');

  b.note('private /tmp and /run (host sockets such as docker.sock or the session bus stay outside)');
  b.add('mkdir', '/newroot/tmp', '1777');
  b.add('tmpfs', '/newroot/tmp', '1777');
  b.add('mkdir', '/newroot/run', '755');
  b.add('tmpfs', '/newroot/run', '755');
}

export function procMaskOps(b: PlanBuilder): void {
  for (const p of MASKED_PATHS) b.add('mask', `/newroot${p}`);
  for (const p of READONLY_PATHS) b.add('bind', `/newroot${p}`, `/newroot${p}`, 'ro,rec,try');
}
