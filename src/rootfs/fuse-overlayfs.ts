// fuse-overlayfs: accepts lowerdir=/ directly and works on kernels whose
// overlayfs cannot be mounted in a user namespace. It runs as a daemon of the
// monitor, outside the sandbox's pid namespace, so nothing inside can ptrace
// it and reach the host root. Its upper layer is in the sandbox's
// RAM budget tmpfs, src/sandbox/ram-budget.ts, or --keep).

import type { PlanBuilder } from '../helper/plan';
import { overlayEscape, type RootfsInput, type StorageDriver } from './types';

/** --keep DIR, else the RAM budget tmpfs (mounted by the monitor before the daemon starts). */
const upperStore = (r: RootfsInput) => r.keep ?? r.ram.host;

function outerOps(path: string, b: PlanBuilder, r: RootfsInput): void {
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
  const opts = `lowerdir=${lowers},upperdir=${overlayEscape(`${store}/upper`)},workdir=${overlayEscape(`${store}/work`)}`;
  b.add({ op: 'daemon', waitPath: merged, argv: [path, '-f', '-o', `${opts},allow_other`, merged] });
}

/** The driver, running the fuse-overlayfs binary at `path`. */
export function fuseOverlayfsDriver(path: string): StorageDriver {
  return {
    name: 'fuse-overlayfs',
    usesDaemon: true,
    needsHostTop: false,
    hostDirs(r) {
      return [...(r.keep ? [`${r.keep}/upper`, `${r.keep}/work`] : []), `${r.sandboxDir}/merged`];
    },
    ramDirs: (r) => (r.keep ? [] : ['upper', 'work']),
    outerOps: (b, r) => outerOps(path, b, r),
    innerOps(b, r) {
      b.note('root: the fuse-overlayfs mount made by the monitor');
      b.add({ op: 'bind', src: `/oldroot${r.sandboxDir}/merged`, dest: '/newroot', flags: {} });
    },
    // One mount: the final remount-root-ro makes it read-only.
    readOnlyOps: () => {},
  };
}
