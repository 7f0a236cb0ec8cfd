// Kernel overlayfs mounted inside the user namespace (Linux >= 5.11).
//
// It cannot take the host's / as a lower layer (/ has locked submounts in a
// user namespace), so a `host` root is a root directory holding one overlay
// per top-level host directory, read-only binds for the directories that
// carry submounts, and the host's top-level symlinks. The upper layer lives
// in the sandbox's RAM budget tmpfs (src/sandbox/ram-budget.ts), so it goes
// with the mount namespace, even when hutch is killed; `--keep` binds a host directory there instead.

import { HutchError } from '../util/errors';
import type { PlanBuilder } from '../helper/plan';
import { overlayEscape, SYSTEM_DIRS, type RootfsInput, type StorageDriver } from './types';

/** Mount data must fit one page; the layers are bound to /L so their paths stay short. */
const LAYER_MOUNT = '/L';
const MOUNT_DATA_MAX = 4095;

/**
 * Inside a user namespace overlayfs must keep its metadata in user.* xattrs
 * (`userxattr`): trusted.* needs CAP_SYS_ADMIN in the initial namespace.
 * The driver choice's probe (choose.ts) mounts its test overlay the same way,
 * so choosing this driver means the kernel takes these options.
 */
export function overlayUserxattr(r: Pick<RootfsInput, 'childUserNamespace'>): boolean {
  return r.childUserNamespace;
}

function innerOps(b: PlanBuilder, r: RootfsInput): void {
  // The upper layer: --keep DIR, else a directory of the RAM budget tmpfs.
  const UP = r.keep ? '/up' : `${r.ram.inside}/up`;
  b.add({ op: 'mkdir', path: UP, mode: 0o755 });
  if (r.keep) {
    b.note(`upper layer kept in ${r.keep}`);
    b.add({ op: 'bind', src: `/oldroot${r.keep}`, dest: UP, flags: {} }, r.origins.keep);
  }
  if (r.rootfs.kind === 'layers') {
    const { label, store, ids } = r.rootfs;
    b.note(`root: ${label}: overlay of ${ids.length} shared read-only layers (top first) and a private upper layer`);
    b.add({ op: 'bind', src: `/oldroot${store}`, dest: LAYER_MOUNT, flags: { ro: true } }, r.origins.root);
    b.add({ op: 'mkdir', path: `${UP}/upper`, mode: 0o755 });
    b.add({ op: 'mkdir', path: `${UP}/work`, mode: 0o700 });
    const lowers = [...ids.map((id) => `${LAYER_MOUNT}/${id}/root`), ...(r.rootfs.base ? [`/oldroot${r.rootfs.base}`] : [])].map(overlayEscape).join(':');
    const userxattr = overlayUserxattr(r);
    const data = `lowerdir=${lowers},upperdir=${UP}/upper,workdir=${UP}/work${userxattr ? ',userxattr' : ''}`;
    if (data.length > MOUNT_DATA_MAX) {
      throw new HutchError(`${label}: ${ids.length} layers do not fit in one overlay mount (${data.length} > ${MOUNT_DATA_MAX} bytes of options)`, {
        hint: 'use --storage-driver fuse-overlayfs, or squash the image (export and import it as one root filesystem)',
      });
    }
    b.add({ op: 'overlay', dest: '/newroot', lowers, upper: `${UP}/upper`, work: `${UP}/work`, userxattr }, r.origins.root);
    return;
  }
  if (r.rootfs.kind === 'dir') {
    b.note(`root: overlay of ${r.rootfs.path} (read-only lower) and a private upper layer`);
    b.add({ op: 'mkdir', path: `${UP}/upper`, mode: 0o755 });
    b.add({ op: 'mkdir', path: `${UP}/work`, mode: 0o700 });
    const dirs = r.dirTop.filter((e) => e.kind === 'dir');
    if (dirs.length) b.note('top-level directories owned outside the id map get an upper directory: writable directories (their files stay read-only)');
    for (const e of dirs) if (e.kind === 'dir') b.add({ op: 'mkdir', path: `${UP}/upper/${e.name}`, mode: e.mode });
    b.add(
      { op: 'overlay', dest: '/newroot', lowers: `/oldroot${r.rootfs.path}`, upper: `${UP}/upper`, work: `${UP}/work`, userxattr: overlayUserxattr(r) },
      r.origins.root,
    );
    return;
  }
  b.note('root: one overlay per top-level host directory (kernel overlayfs cannot take / as a lower layer)');
  b.add({ op: 'mkdir', path: `${UP}/root`, mode: 0o755 });
  b.add({ op: 'bind', src: `${UP}/root`, dest: '/newroot', flags: {} });
  for (const e of r.hostTop) {
    if (SYSTEM_DIRS.has(e.name)) continue;
    const dest = `/newroot/${e.name}`;
    if (e.kind === 'symlink') {
      b.add({ op: 'symlink', target: e.target, path: dest });
    } else if (e.kind === 'file') {
      b.add({ op: 'bind', src: `/oldroot/${e.name}`, dest, flags: { ro: true, try: true } });
    } else if (!e.readable) {
      b.add({ op: 'mkdir', path: dest, mode: e.mode }); // unreadable on the host (e.g. /root): empty here
    } else if (e.submounts) {
      b.add({ op: 'bind', src: `/oldroot/${e.name}`, dest, flags: { ro: true, rec: true } });
    } else {
      b.add({ op: 'mkdir', path: `${UP}/upper/${e.name}`, mode: e.mode });
      b.add({ op: 'mkdir', path: `${UP}/work/${e.name}`, mode: 0o700 });
      b.add({ op: 'mkdir', path: dest, mode: e.mode });
      b.add({
        op: 'overlay',
        dest,
        lowers: `/oldroot/${e.name}`,
        upper: `${UP}/upper/${e.name}`,
        work: `${UP}/work/${e.name}`,
        userxattr: overlayUserxattr(r),
      });
    }
  }
}

export const overlayDriver: StorageDriver = {
  name: 'overlay',
  usesDaemon: false,
  needsHostTop: true,
  hostDirs: (r) => (r.keep ? [{ path: r.keep, mode: 0o700 }] : []),
  ramDirs: () => [],
  outerOps: () => {},
  innerOps,
  readOnlyOps(b, r, covered) {
    // A host root is many overlays under a plain root: each one is made
    // read-only by itself, so mounts made on top keep their own mode. A
    // directory that another mount covers entirely (the home tmpfs at
    // /root, -v x:/opt) is invisible: `self` would hit that mount instead.
    if (r.rootfs.kind !== 'host') return;
    b.note('--read-only: every overlay read-only; mounts made on top keep their own mode');
    for (const e of r.hostTop) {
      if (e.kind === 'dir' && e.readable && !e.submounts && !SYSTEM_DIRS.has(e.name) && !covered.has(`/${e.name}`)) {
        b.add({ op: 'remount-ro', dest: `/newroot/${e.name}`, self: true }, r.origins.readOnly);
      }
    }
  },
};
