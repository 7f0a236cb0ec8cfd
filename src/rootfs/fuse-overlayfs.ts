// fuse-overlayfs: accepts lowerdir=/ directly and works on kernels whose
// overlayfs cannot be mounted in a user namespace. It runs as a daemon of the
// monitor, outside the sandbox's pid namespace, so nothing inside can ptrace
// it and reach the host root. Its upper layer is in the sandbox's
// RAM budget tmpfs, src/sandbox/ram-budget.ts, or --keep).

import type { PlanBuilder } from '../helper/plan';
import type { TopLevelEntry } from '../host/host-scan';
import { overlayEscape, SYSTEM_DIRS, type RootfsInput, type StorageDriver } from './types';

/** --keep DIR, else the RAM budget tmpfs (mounted by the monitor before the daemon starts). */
const upperStore = (r: RootfsInput) => r.keep ?? r.ram.host;

export interface FuseOptions {
  /**
   * Present every file as owned by root (fuse-overlayfs's squash_to_root).
   * Used when the sandbox maps only the caller's own id: files owned by
   * anyone else would be unmapped, so root inside could neither modify them
   * nor copy them up; squashed, they are root's and writable. Nothing is lost:
   * with one id mapped, no other owner can exist inside anyway.
   */
  squashToRoot: boolean;
}

function outerOps(path: string, o: FuseOptions, b: PlanBuilder, r: RootfsInput): void {
  const store = upperStore(r);
  const merged = `${r.sandboxDir}/merged`;
  const kept = r.keep ? ' (kept)' : ' (discarded at exit)';
  let lowers: string;
  if (r.rootfs.kind === 'layers') {
    const { store: layers, ids } = r.rootfs;
    b.note(`fuse-overlayfs: ${r.rootfs.label}: ${ids.length} read-only layers, upper in ${store}${kept}`);
    lowers = [...ids.map((id) => `${layers}/${id}/root`), ...(r.rootfs.base ? [r.rootfs.base] : [])].map(overlayEscape).join(':');
  } else {
    const lower = r.rootfs.kind === 'host' ? '/' : r.rootfs.path;
    b.note(`fuse-overlayfs: lower ${lower}, upper in ${store}${kept}`);
    lowers = overlayEscape(lower);
  }
  let opts = `lowerdir=${lowers},upperdir=${overlayEscape(`${store}/upper`)},workdir=${overlayEscape(`${store}/work`)}`;
  if (o.squashToRoot) {
    b.note("fuse-overlayfs squash_to_root: only uid 0 is mapped, so every file shows as root's and stays writable (copied up on change)");
    opts += ',squash_to_root';
  }
  b.add({ op: 'daemon', waitPath: merged, argv: [path, '-f', '-o', `${opts},allow_other`, merged] }, r.origins.root);
}

function unreadableTop(r: RootfsInput) {
  return r.hostTop.filter((e): e is Extract<TopLevelEntry, { kind: 'dir' }> => e.kind === 'dir' && !e.readable && !SYSTEM_DIRS.has(e.name));
}

/** The driver, running the fuse-overlayfs binary at `path`. */
export function fuseOverlayfsDriver(path: string, o: FuseOptions = { squashToRoot: false }): StorageDriver {
  return {
    name: 'fuse-overlayfs',
    config: JSON.stringify({ path, ...o }),
    usesDaemon: true,
    // a host root's unreadable top-level directories (/root) are replaced, see innerOps
    needsHostTop: true,
    hostDirs(r) {
      // The upper directory's mode is the sandbox root's: 0755, as / is
      // (its parent, --keep's or the RAM budget's, is 0700 and keeps others out).
      return [
        ...(r.keep
          ? [
              { path: `${r.keep}/upper`, mode: 0o755 },
              { path: `${r.keep}/work`, mode: 0o700 },
            ]
          : []),
        { path: `${r.sandboxDir}/merged`, mode: 0o700 },
      ];
    },
    ramDirs: (r) => (r.keep ? [] : ['upper', 'work']),
    outerOps: (b, r) => outerOps(path, o, b, r),
    innerOps(b, r) {
      b.note('root: the fuse-overlayfs mount made by the monitor');
      b.add({ op: 'bind', src: `/oldroot${r.sandboxDir}/merged`, dest: '/newroot', flags: {} });
      // The daemon runs as you: a host directory you cannot read (such as
      // /root) could be neither listed nor written through it. It gets an
      // empty tmpfs instead, as kernel overlayfs gives it an empty directory.
      const hidden = unreadableTop(r);
      if (hidden.length) b.note(`host directories you cannot read are empty here: ${hidden.map((e) => `/${e.name}`).join(', ')}`);
      for (const e of hidden) b.add({ op: 'tmpfs', dest: `/newroot/${e.name}`, mode: e.mode });
    },
    // The final remount-root-ro covers the fuse mount; the tmpfs above need their own.
    readOnlyOps(b, r, covered) {
      for (const e of unreadableTop(r)) if (!covered.has(`/${e.name}`)) b.add({ op: 'remount-ro', dest: `/newroot/${e.name}`, self: true });
    },
  };
}
