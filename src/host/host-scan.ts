// A snapshot of the host's top-level directory, for building a `host` root:
// each entry becomes an overlay, a read-only bind, a symlink or an empty
// directory in the sandbox's root.

import { accessSync, constants, lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import type { MountEntry } from './mounts';

export type TopLevelEntry =
  | { name: string; kind: 'symlink'; target: string }
  | { name: string; kind: 'dir'; mode: number; readable: boolean; submounts: boolean }
  | { name: string; kind: 'file'; mode: number };

/** A directory's entries (sorted) with their lstat: what both the scan and the owners check (HostFs.topOwners) look at. */
export interface TopListing {
  /** lstat of the directory itself; undefined when missing. */
  self?: Stats;
  /** undefined when the directory cannot be read. */
  entries?: { name: string; path: string; st: Stats }[];
}

export function listTop(root: string): TopListing {
  const out: TopListing = {};
  try {
    out.self = lstatSync(root);
  } catch {}
  let names: string[];
  try {
    names = readdirSync(root).sort();
  } catch {
    return out;
  }
  out.entries = [];
  for (const name of names) {
    const path = `${root === '/' ? '' : root}/${name}`;
    try {
      out.entries.push({ name, path, st: lstatSync(path) });
    } catch {
      /* vanished while listing */
    }
  }
  return out;
}

export function scanHostRoot(mounts: MountEntry[], root = '/', listing: TopListing = listTop(root)): TopLevelEntry[] {
  const out: TopLevelEntry[] = [];
  if (!listing.entries) readdirSync(root); // throws the reason
  for (const { name, path, st } of listing.entries ?? []) {
    if (st.isSymbolicLink()) {
      out.push({ name, kind: 'symlink', target: readlinkSync(path) });
    } else if (st.isDirectory()) {
      let readable = true;
      try {
        accessSync(path, constants.R_OK | constants.X_OK);
      } catch {
        readable = false;
      }
      // Strictly below: a directory that is itself a mount root is still a valid lower layer.
      const below = mounts.some((m) => m.mountPoint.startsWith(`${path}/`));
      out.push({ name, kind: 'dir', mode: st.mode & 0o7777, readable, submounts: below });
    } else if (st.isFile()) {
      out.push({ name, kind: 'file', mode: st.mode & 0o7777 });
    }
  }
  return out;
}
