// One RAM budget per sandbox. Every memory-backed place a sandbox can write
// (the throw-away upper layer of its root, /tmp, /run, /dev, /dev/shm, the
// hidden home, --tmpfs mounts without a size) is a directory of ONE tmpfs of
// spec.tmpfsBudget bytes, bound into place, instead of a tmpfs of its own:
// separate tmpfs mounts are each capped only at half of RAM by the kernel,
// five of them at more than twice the RAM. Past the budget, writes anywhere
// fail with ENOSPC.
//
// The tmpfs is mounted by the helper's monitor (`scratch` op) on a host
// directory of the sandbox's state dir, in the monitor's own mount
// namespace: fuse-overlayfs (a daemon of the monitor) keeps its upper layer
// there, and the init sees it as /oldroot/... and binds its subdirectories.

import type { Origin } from '../util/errors';
import type { PlanBuilder } from '../helper/plan';
import type { SandboxSpec } from '../spec/types';
import { formatSize } from '../profile/schema-dsl';

/** Where the init binds the budget tmpfs (short: overlay option strings must fit a page). */
export const RAM_MOUNT = '/R';

/** The budget tmpfs's host directory (in the sandbox's state dir, created by the launcher). */
export function ramHostDir(sandboxDir: string): string {
  return `${sandboxDir}/ram`;
}

/** Monitor: mount the budget tmpfs, with the directories daemons need in it. */
export function ramBudgetOuterOps(b: PlanBuilder, spec: SandboxSpec, sandboxDir: string, subdirs: string[]): void {
  b.note(
    `RAM budget ${formatSize(spec.tmpfsBudget)} (tmpfsBudget, --tmpfs-budget): one tmpfs for the upper layer, /tmp, /run, /dev, /dev/shm, the home and unsized --tmpfs mounts together; ENOSPC past it`,
  );
  b.add({ op: 'scratch', dir: ramHostDir(sandboxDir), size: spec.tmpfsBudget, subdirs });
}

/** Init, right after `base`: the budget tmpfs at RAM_MOUNT. */
export function ramBudgetInnerOps(b: PlanBuilder, sandboxDir: string): void {
  b.add({ op: 'bind', src: `/oldroot${ramHostDir(sandboxDir)}`, dest: RAM_MOUNT, flags: {} });
}

/** A writable directory of the budget at `dest` (in place of a tmpfs of its own). */
export function ramDirOps(b: PlanBuilder, name: string, mode: number, dest: string, origin?: Origin): void {
  b.add({ op: 'mkdir', path: `${RAM_MOUNT}/${name}`, mode }, origin);
  b.add({ op: 'bind', src: `${RAM_MOUNT}/${name}`, dest, flags: {} }, origin);
}
