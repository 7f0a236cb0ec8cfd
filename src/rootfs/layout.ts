// The root filesystem part of the plan: the writable upper layer, the lower
// layers (host / or a directory) and the storage driver that joins them.
//
// Kernel overlayfs inside a user namespace cannot take the host's / as a lower
// layer (it has locked submounts), so a `host` root is a root directory that
// holds one overlay per top-level host directory, read-only binds for the
// directories that carry submounts, and the host's top-level symlinks.
// fuse-overlayfs accepts lowerdir=/ directly; it runs as a daemon outside the
// sandbox's pid namespace so nothing inside can reach it.

import { HutchError } from '../util/errors';
import type { PlanBuilder } from '../helper/plan';
import type { RootfsSpec } from '../spec/types';
import type { TopLevelEntry } from './host-scan';

export type ResolvedDriver = 'overlay' | 'fuse-overlayfs';

/** Directories the system-mount stage provides fresh; never taken from the host. */
export const SYSTEM_DIRS = new Set(['proc', 'sys', 'dev', 'tmp', 'run']);

/**
 * An image (or build step) root: read-only layers from the store, top first.
 * `store` is the host directory holding them (`<store>/<id>/root` is a layer).
 */
export interface LayeredRoot {
  kind: 'layers';
  label: string;
  store: string;
  ids: string[];
  /** A host directory below every layer (a profile's `dir:` root under its setup layers). */
  base?: string;
}

export interface RootfsInput {
  rootfs: Exclude<RootfsSpec, { kind: 'image' }> | LayeredRoot;
  driver: ResolvedDriver;
  readOnly: boolean;
  /** Host directory that keeps the upper layer (--keep); ephemeral tmpfs otherwise. */
  keep?: string;
  /** Per-sandbox host directory (state dir) for fuse-overlayfs mount point and scratch upper. */
  sandboxDir: string;
  hostTop: TopLevelEntry[];
  fuseOverlayfs?: string;
}

/** Overlay mount options; lower/upper/work paths escaped the way overlayfs parses them. */
export function overlayOpts(lower: string, upper: string, work: string): string {
  const esc = (p: string) => p.replace(/\\/g, '\\\\').replace(/,/g, '\\,').replace(/:/g, '\\:');
  return `lowerdir=${esc(lower)},upperdir=${esc(upper)},workdir=${esc(work)}`;
}

/** Escape one path for an overlay option (lowerdir entries are joined with ':'). */
export function overlayEscape(p: string): string {
  return p.replace(/\\/g, '\\\\').replace(/,/g, '\\,').replace(/:/g, '\\:');
}

/** Mount data must fit one page; the layers are bound to /L so their paths stay short. */
const LAYER_MOUNT = '/L';
const MOUNT_DATA_MAX = 4095;

/** Host directories the launcher creates before the helper starts. */
export function rootfsHostDirs(r: RootfsInput): string[] {
  if (r.driver !== 'fuse-overlayfs') return r.keep ? [r.keep] : [];
  const store = r.keep ?? `${r.sandboxDir}/upper`;
  return [`${store}/upper`, `${store}/work`, `${r.sandboxDir}/merged`];
}

/** Ops that run in the monitor before the init exists (fuse daemon). */
export function rootfsOuterOps(b: PlanBuilder, r: RootfsInput): void {
  if (r.driver !== 'fuse-overlayfs') return;
  const store = r.keep ?? `${r.sandboxDir}/upper`;
  const merged = `${r.sandboxDir}/merged`;
  let opts: string;
  if (r.rootfs.kind === 'layers') {
    const { store: layers, ids } = r.rootfs;
    b.note(`fuse-overlayfs: ${r.rootfs.label}: ${ids.length} read-only layers, upper in ${store}${r.keep ? ' (kept)' : ' (discarded at exit)'}`);
    const lowers = [...ids.map((id) => `${layers}/${id}/root`), ...(r.rootfs.base ? [r.rootfs.base] : [])].map(overlayEscape).join(':');
    opts = `lowerdir=${lowers},upperdir=${overlayEscape(`${store}/upper`)},workdir=${overlayEscape(`${store}/work`)}`;
  } else {
    const lower = r.rootfs.kind === 'host' ? '/' : r.rootfs.path;
    b.note(`fuse-overlayfs: lower ${lower}, upper in ${store}${r.keep ? ' (kept)' : ' (discarded at exit)'}`);
    opts = overlayOpts(lower, `${store}/upper`, `${store}/work`);
  }
  b.add('daemon', merged, r.fuseOverlayfs ?? 'fuse-overlayfs', '-f', '-o', `${opts},allow_other`, merged);
}

/**
 * Ops that run in the init after `base`: build /newroot. Host paths are under
 * /oldroot at that point, scratch space is the base tmpfs itself.
 */
export function rootfsInnerOps(b: PlanBuilder, r: RootfsInput): void {
  if (r.driver === 'fuse-overlayfs') {
    b.note('root: the fuse-overlayfs mount made by the monitor');
    b.add('bind', `/oldroot${r.sandboxDir}/merged`, '/newroot', 'rw');
    return;
  }
  // Upper store: the base tmpfs (discarded with the mount namespace, even on
  // SIGKILL) or the --keep directory.
  const up = '/up';
  b.add('mkdir', up, '755');
  if (r.keep) {
    b.note(`upper layer kept in ${r.keep}`);
    b.add('bind', `/oldroot${r.keep}`, up, 'rw');
  }
  if (r.rootfs.kind === 'layers') {
    const { label, store, ids } = r.rootfs;
    b.note(`root: ${label}: overlay of ${ids.length} shared read-only layers (top first) and a private upper layer`);
    b.add('bind', `/oldroot${store}`, LAYER_MOUNT, 'ro');
    b.add('mkdir', `${up}/upper`, '755');
    b.add('mkdir', `${up}/work`, '700');
    const lowers = [...ids.map((id) => `${LAYER_MOUNT}/${id}/root`), ...(r.rootfs.base ? [`/oldroot${r.rootfs.base}`] : [])].map(overlayEscape).join(':');
    const data = `lowerdir=${lowers},upperdir=${up}/upper,workdir=${up}/work,userxattr`;
    if (data.length > MOUNT_DATA_MAX) {
      throw new HutchError(`${label}: ${ids.length} layers do not fit in one overlay mount (${data.length} > ${MOUNT_DATA_MAX} bytes of options)`, {
        hint: 'use --storage-driver fuse-overlayfs, or squash the image (export and import it as one root filesystem)',
      });
    }
    b.add('overlay', '/newroot', lowers, `${up}/upper`, `${up}/work`);
    return;
  }
  if (r.rootfs.kind === 'dir') {
    b.note(`root: overlay of ${r.rootfs.path} (read-only lower) and a private upper layer`);
    b.add('mkdir', `${up}/upper`, '755');
    b.add('mkdir', `${up}/work`, '700');
    b.add('overlay', '/newroot', `/oldroot${r.rootfs.path}`, `${up}/upper`, `${up}/work`);
    return;
  }
  b.note('root: one overlay per top-level host directory (kernel overlayfs cannot take / as a lower layer)');
  b.add('mkdir', `${up}/root`, '755');
  b.add('bind', `${up}/root`, '/newroot', 'rw');
  for (const e of r.hostTop) {
    if (SYSTEM_DIRS.has(e.name)) continue;
    const dest = `/newroot/${e.name}`;
    if (e.kind === 'symlink') {
      b.add('symlink', e.target, dest);
    } else if (e.kind === 'file') {
      b.add('bind', `/oldroot/${e.name}`, dest, 'ro,try');
    } else if (!e.readable) {
      b.add('mkdir', dest, e.mode.toString(8)); // unreadable on the host (e.g. /root): empty here
    } else if (e.submounts) {
      b.add('bind', `/oldroot/${e.name}`, dest, 'ro,rec');
    } else {
      b.add('mkdir', `${up}/upper/${e.name}`, e.mode.toString(8));
      b.add('mkdir', `${up}/work/${e.name}`, '700');
      b.add('mkdir', dest, e.mode.toString(8));
      b.add('overlay', dest, `/oldroot/${e.name}`, `${up}/upper/${e.name}`, `${up}/work/${e.name}`);
    }
  }
}
