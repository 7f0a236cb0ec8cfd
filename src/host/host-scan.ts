// A snapshot of the host's top-level directory, for building a `host` root:
// each entry becomes an overlay, a read-only bind, a symlink or an empty
// directory in the sandbox's root.

import { accessSync, constants, lstatSync, readdirSync, readlinkSync } from 'node:fs';
import type { MountEntry } from './mounts';

export type TopLevelEntry =
  | { name: string; kind: 'symlink'; target: string }
  | { name: string; kind: 'dir'; mode: number; readable: boolean; submounts: boolean }
  | { name: string; kind: 'file'; mode: number };

export function scanHostRoot(mounts: MountEntry[], root = '/'): TopLevelEntry[] {
  const out: TopLevelEntry[] = [];
  for (const name of readdirSync(root).sort()) {
    const path = `${root === '/' ? '' : root}/${name}`;
    let st: ReturnType<typeof lstatSync> | undefined;
    try {
      st = lstatSync(path);
    } catch {
      continue; // vanished while scanning
    }
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
