// The id-mapping ops every plan starts with, built in one place: the
// sandbox, image extraction, and the doctor's and storage driver's probes
// all enter a user namespace the same way.

import type { IdentityInfo, IdRange } from '../host/ids';
import { HutchError } from '../util/errors';
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

/**
 * `--userns keep-id` (podman's layout): the caller's uid and gid are the same
 * inside as outside, and the subordinate ids fill every other inside id from
 * 0 up, skipping the caller's (0..uid-1 -> the first subordinate ids, uid ->
 * the caller, uid+1.. -> the rest). Root inside stays mapped (the helper's
 * setup needs it) but is a subordinate id, not the caller. As real root the
 * maps are root's own: keep-id is just root. Undefined without subordinate
 * ids: uid 0 and the caller's uid cannot both be mapped then.
 */
export function keepIdMaps(ids: IdentityInfo): IdMaps | undefined {
  if (ids.uid === 0) return ids;
  if (ids.uidMap.length < 2 || ids.gidMap.length < 2) return undefined;
  return { ...ids, uidMap: around(ids.uid, ids.uidMap.slice(1)), gidMap: around(ids.gid, ids.gidMap.slice(1)) };
}

function around(own: number, subs: readonly IdRange[]): IdRange[] {
  const out: IdRange[] = [];
  let inside = 0;
  for (const s of subs) {
    let outside = s.outside;
    let left = s.count;
    while (left > 0) {
      if (inside === own) inside++;
      const n = inside < own ? Math.min(left, own - inside) : left;
      out.push({ inside, outside, count: n });
      inside += n;
      outside += n;
      left -= n;
    }
  }
  out.push({ inside: own, outside: own, count: 1 });
  return out.sort((a, b) => a.inside - b.inside);
}

/** The maps of a sandbox: the caller as root (default) or keep-id; a clear error when keep-id cannot be had. */
export function sandboxMaps(userns: 'root' | 'keep-id', ids: IdentityInfo): IdMaps {
  if (userns === 'root') return ids;
  const maps = keepIdMaps(ids);
  if (!maps) {
    throw new HutchError(
      `--userns keep-id: needs subordinate ids (${ids.subidNote ?? `none for ${ids.user}`}): uid 0 must stay mapped for the sandbox's setup besides your uid ${ids.uid}`,
      {
        hint: `add ranges for ${ids.user} to /etc/subuid and /etc/subgid (e.g. sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${ids.user}) and install newuidmap (the uidmap package), or run without --userns keep-id`,
      },
    );
  }
  return maps;
}

/** One line per map for --dry-run: "inside-range -> outside-range". */
export function describeMap(map: readonly IdRange[]): string {
  return map
    .map((m) => (m.count === 1 ? `${m.inside} -> ${m.outside}` : `${m.inside}-${m.inside + m.count - 1} -> ${m.outside}-${m.outside + m.count - 1}`))
    .join(', ');
}
