// Does the root filesystem hold files owned by ids outside the sandbox's id
// map? The host's own / seen by an unprivileged user, or a directory made by
// `sudo debootstrap`, does: those files show as nobody inside, and kernel
// overlayfs cannot copy them up (the copy would have to be chowned to an
// unmapped id), so root inside cannot modify them. fuse-overlayfs can. This
// is what the driver choice (choose.ts) and --dry-run need to know.

import { hostFs, type HostFs } from '../host/facts';
import type { IdentityInfo, IdRange } from '../host/ids';
import type { SandboxSpec } from '../spec/types';

export type IdMapView = Pick<IdentityInfo, 'uidMap' | 'gidMap'>;

const mapped = (map: readonly IdRange[], id: number) => map.some((m) => id >= m.outside && id < m.outside + m.count);

/**
 * The first of `root` and its top-level entries owned outside the map, as
 * "PATH (host uid N)", or undefined. A sample, not a walk: a root whose top
 * is owned by mapped ids is taken to be owned by them throughout (an image's
 * layers, extracted by hutch in the same user namespace; a directory the
 * caller made).
 */
export function ownerOutsideMap(root: string, ids: IdMapView, fs: Pick<HostFs, 'topOwners'> = hostFs): string | undefined {
  for (const o of fs.topOwners(root)) {
    if (!mapped(ids.uidMap, o.uid)) return `${o.path} (host uid ${o.uid})`;
    if (!mapped(ids.gidMap, o.gid)) return `${o.path} (host gid ${o.gid})`;
  }
  return undefined;
}

/** What the storage driver choice needs to know about the root and who writes it. */
export interface RootWrites {
  /** A file of the root owned outside the map ("PATH (host uid N)"); undefined: none seen. */
  unmappedOwner?: string;
  /** Root inside writes the root filesystem: not --read-only, the command runs as uid 0. */
  rootWrites: boolean;
}

/** The host directory under the sandbox's layers, if any (a host root, a dir: root, a profile's dir: base). */
export function lowerHostDir(spec: Pick<SandboxSpec, 'rootfs'>): string | undefined {
  if (spec.rootfs.kind === 'host') return '/';
  if (spec.rootfs.kind === 'dir') return spec.rootfs.path;
  return undefined; // image layers: extracted by hutch with the sandbox's own ids
}

export function rootWrites(
  spec: Pick<SandboxSpec, 'rootfs' | 'readOnly' | 'user'>,
  ids: IdMapView,
  commandIsRoot: boolean,
  fs: Pick<HostFs, 'topOwners'> = hostFs,
): RootWrites {
  const dir = lowerHostDir(spec);
  return {
    unmappedOwner: dir ? ownerOutsideMap(dir, ids, fs) : undefined,
    rootWrites: !spec.readOnly && commandIsRoot && spec.user === undefined,
  };
}
