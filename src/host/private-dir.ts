// The directories hutch creates or trusts (runtime, state, data, cache, the
// /tmp fallbacks) are verified before every use, because some of them live
// in places every local user can write: without $XDG_RUNTIME_DIR the runtime
// dir is /tmp/hutch-run-UID, and another user could create it first (a
// directory of theirs, or a symlink into the victim's home) so that hutch's
// reclaim of stale entries deletes the victim's files.
//
// The rule, as OpenSSH applies it to ~/.ssh: the directory itself is a real
// directory (lstat: never a symlink) owned by the caller and not writable by
// group or others; each parent is owned by root or the caller and is not
// writable by others unless sticky (/tmp), so nobody else can rename the
// directory away and put another in its place. A parent may be a symlink
// (/home -> /var/home) when it is owned by root or the caller; its target is
// checked the same way. What is returned is the real path (no symlink in
// it), which the helper's `cleanup` op walks with O_NOFOLLOW.

import { lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, unlinkSync, type Stats } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { HutchError } from '../util/errors';

const FIX = 'remove it (or ask its owner to), or point the matching XDG_* variable (XDG_RUNTIME_DIR, XDG_DATA_HOME, XDG_CACHE_HOME) at a directory of your own';

/**
 * The uid that stands for "not mapped" when hutch itself runs in a user
 * namespace that is not the host's (`unshare -Ur hutch ...`, a CI job in a
 * container): the host's root-owned / and /tmp show as it there. Only then is
 * it taken as root's; on the host a real uid 65534 owns nothing of this.
 */
let unmapped: number | null | undefined;
function unmappedRoot(): number | null {
  if (unmapped !== undefined) return unmapped;
  unmapped = null;
  try {
    const map = readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/);
    if (!(map.length === 3 && map[0] === '0' && map[1] === '0' && map[2] === '4294967295')) {
      unmapped = Number(readFileSync('/proc/sys/kernel/overflowuid', 'utf8').trim());
    }
  } catch {}
  return unmapped;
}
const isRootOwner = (owner: number) => owner === 0 || owner === unmappedRoot();

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

function mode(st: Stats): string {
  return (st.mode & 0o7777).toString(8).padStart(4, '0');
}

/** Why a parent directory is unsafe for `uid` (a phrase), or undefined. */
export function unsafeParent(st: Pick<Stats, 'uid' | 'mode'>, uid: number): string | undefined {
  if (!isRootOwner(st.uid) && st.uid !== uid) return `belongs to uid ${st.uid}`;
  const sticky = (st.mode & 0o1000) !== 0;
  if (st.mode & 0o002 && !sticky) return `is writable by every user and not sticky (mode ${(st.mode & 0o7777).toString(8)})`;
  if (st.mode & 0o020 && !sticky) return `is writable by its group and not sticky (mode ${(st.mode & 0o7777).toString(8)})`;
  return undefined;
}

/** Why the directory itself is not private to `uid` (a phrase), or undefined. */
export function notPrivate(st: Stats, uid: number): string | undefined {
  if (st.isSymbolicLink()) return 'is a symbolic link';
  if (!st.isDirectory()) return 'is not a directory';
  if (st.uid !== uid) return `belongs to uid ${st.uid}, not to you (uid ${uid}): another user may have created it first`;
  if (st.mode & 0o022) return `is writable by group or others (mode ${mode(st)})`;
  return undefined;
}

/**
 * The real path of directory `dir`, created (0700) when missing, with every
 * component checked as a parent; throws HutchError naming `what` otherwise.
 */
function safeParents(dir: string, uid: number, what: string): string {
  if (dir === '/') {
    const why = unsafeParent(lstatSync('/'), uid);
    if (why) throw new HutchError(`${what}: / ${why}`, { hint: FIX });
    return '/';
  }
  const parent = safeParents(dirname(dir), uid, what);
  const p = join(parent, basename(dir));
  let st = lstatOrUndefined(p);
  if (!st) {
    try {
      mkdirSync(p, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw hutchIo(e, what, p);
    }
    st = lstatSync(p);
  }
  if (st.isSymbolicLink()) {
    if (!isRootOwner(st.uid) && st.uid !== uid) throw new HutchError(`${what}: ${p} is a symbolic link that belongs to uid ${st.uid}`, { hint: FIX });
    let real: string;
    try {
      real = realpathSync(p);
    } catch (e) {
      throw hutchIo(e, what, p);
    }
    // the target's own parents and the target itself, checked from /
    return safeParents(real, uid, what);
  }
  if (!st.isDirectory()) throw new HutchError(`${what}: ${p} is not a directory`, { hint: FIX });
  const why = unsafeParent(st, uid);
  if (why) throw new HutchError(`${what}: ${p} ${why}`, { hint: FIX });
  return p;
}

function hutchIo(e: unknown, what: string, p: string): HutchError {
  const err = e as NodeJS.ErrnoException;
  return new HutchError(`${what}: cannot create ${p}: ${err.code ?? err.message}`, { hint: FIX });
}

/**
 * Create (0700) or accept the private directory `path` of user `uid` and
 * return its real path. Refuses, with a 125 naming the directory and the fix,
 * one that is a symlink, is not a directory, belongs to someone else or is
 * writable by group or others, or whose parents someone else could change.
 */
export function ensurePrivateDir(path: string, uid: number = process.getuid!(), what = "hutch's directory"): string {
  const abs = resolve(path);
  if (abs === '/') throw new HutchError(`${what}: / cannot be a private directory`, { hint: FIX });
  const parent = safeParents(dirname(abs), uid, what);
  const p = join(parent, basename(abs));
  try {
    mkdirSync(p, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw hutchIo(e, what, p);
  }
  const why = notPrivate(lstatSync(p), uid);
  if (why) throw new HutchError(`${what} ${p} ${why}`, { hint: FIX });
  return p;
}

/**
 * Remove entry `name` of the verified directory `base` without following a
 * symlink: a symlink (or any non-directory) is unlinked itself, a directory
 * only when it is ours and on the same file system as `base` (rmSync's
 * recursion uses lstat and never leaves through a link either).
 */
export function removeEntry(base: string, name: string, uid: number = process.getuid!()): void {
  if (!name || name === '.' || name === '..' || name.includes('/')) throw new Error(`internal: bad entry name ${JSON.stringify(name)}`);
  const p = join(base, name);
  const st = lstatOrUndefined(p);
  if (!st) return;
  if (!st.isDirectory()) {
    unlinkSync(p);
    return;
  }
  if (st.uid !== uid || st.dev !== lstatSync(base).dev) return; // not ours to remove
  rmSync(p, { recursive: true, force: true });
}

/** Names in a verified directory (empty when it cannot be read). */
export function entries(base: string): string[] {
  try {
    return readdirSync(base);
  } catch {
    return [];
  }
}
