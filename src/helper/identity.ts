// The id-mapping ops every plan starts with, built in one place: the
// sandbox, image extraction, and the doctor's and storage driver's probes
// all enter a user namespace the same way.

import type { IdentityInfo, IdRange } from '../host/ids';
import type { Op } from './ops';

export interface IdMaps {
  uidMap: readonly IdRange[];
  gidMap: readonly IdRange[];
  /** Needed whenever more than the caller's own id is mapped (unprivileged). */
  newuidmap?: string;
  newgidmap?: string;
}

/** uidmap/gidmap lines, newuidmap/newgidmap when more than one range, then `userns`. */
export function userNamespaceOps(maps: IdMaps): Op[] {
  const ops: Op[] = [];
  for (const m of maps.uidMap) ops.push({ op: 'uidmap', inside: m.inside, outside: m.outside, count: m.count });
  for (const m of maps.gidMap) ops.push({ op: 'gidmap', inside: m.inside, outside: m.outside, count: m.count });
  if (maps.uidMap.length > 1 || maps.gidMap.length > 1) {
    if (!maps.newuidmap || !maps.newgidmap) throw new Error('internal: subordinate id ranges without newuidmap/newgidmap');
    ops.push({ op: 'newuidmap', path: maps.newuidmap }, { op: 'newgidmap', path: maps.newgidmap });
  }
  ops.push({ op: 'userns' });
  return ops;
}

/**
 * Whether these maps make a user namespace other than the initial one: only
 * the map `0 0 4294967295` is the initial namespace's. (Every hutch plan maps
 * explicit ranges, so this is true for all of them today; ops whose form
 * depends on it, such as overlay's `userxattr`, ask here.)
 */
export function isChildUserNamespace(maps: Pick<IdMaps, 'uidMap'>): boolean {
  const [m, ...rest] = maps.uidMap;
  return !(m && rest.length === 0 && m.inside === 0 && m.outside === 0 && m.count === 4294967295);
}

/** Only the caller's own uid and gid, as 0 (no newuidmap needed). */
export function ownIdOnly(ids: Pick<IdentityInfo, 'uid' | 'gid'>): IdMaps {
  return { uidMap: [{ inside: 0, outside: ids.uid, count: 1 }], gidMap: [{ inside: 0, outside: ids.gid, count: 1 }] };
}
