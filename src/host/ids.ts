// Who is running hutch and which ids the sandbox may use: the caller's own
// uid/gid, plus the subordinate ranges of /etc/subuid and /etc/subgid.

import { readFileSync } from 'node:fs';
import { userInfo, type UserInfo } from 'node:os';
import { findExecutable } from './which';

export interface IdRange {
  inside: number;
  outside: number;
  count: number;
}

export interface IdentityInfo {
  uid: number;
  gid: number;
  user: string;
  home: string;
  uidMap: IdRange[];
  gidMap: IdRange[];
  /** Paths of newuidmap/newgidmap when subordinate ranges are used. */
  newuidmap?: string;
  newgidmap?: string;
  /** Why the subordinate range is not used (shown by --dry-run and doctor). */
  subidNote?: string;
}

/** Parse /etc/subuid-style text: `name-or-uid:start:count` per line. */
export function parseSubidFile(text: string, user: string, id: number): { start: number; count: number }[] {
  const out: { start: number; count: number }[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const [who, start, count] = line.split(':');
    if (who !== user && who !== String(id)) continue;
    const s = Number(start);
    const c = Number(count);
    if (Number.isInteger(s) && Number.isInteger(c) && c > 0) out.push({ start: s, count: c });
  }
  return out;
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

let account: UserInfo<string> | undefined;
/**
 * The caller's password-database entry (getpwuid: /etc/passwd through NSS),
 * read once per process: identity, the homes to hide and the exposure
 * warnings all ask. Never at module load (the startup snapshot, src/main.ts).
 */
export function accountInfo(): UserInfo<string> {
  account ??= userInfo();
  return account;
}

/**
 * The caller maps to 0 inside; with subordinate ids, the first range maps to
 * 1..count (so uid 1000 inside is subuid start+999), as podman does.
 */
export function identity(env: NodeJS.ProcessEnv = process.env): IdentityInfo {
  const info = accountInfo();
  const uid = process.getuid!();
  const gid = process.getgid!();
  const base: IdentityInfo = {
    uid,
    gid,
    user: info.username,
    home: env.HOME || info.homedir,
    uidMap: [{ inside: 0, outside: uid, count: 1 }],
    gidMap: [{ inside: 0, outside: gid, count: 1 }],
  };
  if (env.HUTCH_NO_SUBIDS === '1') return { ...base, subidNote: 'HUTCH_NO_SUBIDS=1' };
  const subu = parseSubidFile(readOrEmpty('/etc/subuid'), info.username, uid);
  const subg = parseSubidFile(readOrEmpty('/etc/subgid'), info.username, gid);
  if (subu.length === 0 || subg.length === 0) {
    return { ...base, subidNote: `no entry for ${info.username} in /etc/subuid and /etc/subgid: only uid 0 exists inside` };
  }
  const newuidmap = findExecutable('newuidmap', env);
  const newgidmap = findExecutable('newgidmap', env);
  if (!newuidmap || !newgidmap) {
    return { ...base, subidNote: 'newuidmap/newgidmap not found (install the uidmap package): only uid 0 exists inside' };
  }
  const extend = (own: IdRange, ranges: { start: number; count: number }[]): IdRange[] => {
    const out = [own];
    let next = 1;
    for (const r of ranges) {
      out.push({ inside: next, outside: r.start, count: r.count });
      next += r.count;
    }
    return out;
  };
  return {
    ...base,
    uidMap: extend(base.uidMap[0], subu),
    gidMap: extend(base.gidMap[0], subg),
    newuidmap,
    newgidmap,
  };
}
