// Cache keys of `setup:` steps. A step's key is the digest of the key below
// it (the base image's id, or the base directory's path), the step itself
// and, for `copy:`, the content of the files it copies (paths, types, modes,
// bytes, symlink targets; not times). Same key = same layer: an unchanged
// profile is all cache hits; changing one step changes its key and so the
// keys of every step after it.

import { createHash, type Hash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { HutchError } from '../util/errors';
import type { SetupStep } from '../profile/merge';
import { writeFileAtomic, type Store } from '../image/store';

export interface CacheEntry {
  key: string;
  layer: string;
  step: SetupStep;
  created: string;
}

/** Every file under `root` (itself included), sorted, as [relative path, lstat]. */
export function walk(root: string): { rel: string; path: string; st: Stats }[] {
  const out: { rel: string; path: string; st: Stats }[] = [];
  const visit = (path: string, rel: string) => {
    const st = lstatSync(path);
    out.push({ rel, path, st });
    if (st.isDirectory()) for (const n of readdirSync(path).sort()) visit(join(path, n), rel ? `${rel}/${n}` : n);
  };
  try {
    visit(root, '');
  } catch (e) {
    throw new HutchError(`setup copy: cannot read ${root}: ${(e as Error).message}`, { hint: "copy sources are relative to the profile file's directory" });
  }
  return out;
}

function hashTree(h: Hash, root: string): void {
  for (const { rel, path, st } of walk(root)) {
    h.update(`${rel}\0${st.mode}\0`);
    if (st.isFile()) h.update(readFileSync(path));
    else if (st.isSymbolicLink()) h.update(readlinkSync(path));
    h.update('\0');
  }
}

export function stepKey(parentKey: string, step: SetupStep): string {
  const h = createHash('sha256').update(`hutch-setup-v1\0${parentKey}\0`);
  if ('run' in step) h.update(`run\0${step.run}`);
  else {
    h.update(`copy\0${step.copy.to}\0`);
    hashTree(h, step.copy.from);
  }
  return h.digest('hex');
}

export function baseKey(kind: 'image' | 'dir', what: string): string {
  return createHash('sha256').update(`hutch-base\0${kind}\0${what}`).digest('hex');
}

export function readCache(store: Store, key: string): CacheEntry | undefined {
  try {
    const e = JSON.parse(readFileSync(join(store.cacheDir, `${key}.json`), 'utf8')) as CacheEntry;
    return store.hasLayer(e.layer) ? e : undefined;
  } catch {
    return undefined;
  }
}

export function writeCache(store: Store, e: CacheEntry): void {
  store.ensure();
  writeFileAtomic(join(store.cacheDir, `${e.key}.json`), `${JSON.stringify(e, null, 2)}\n`);
}
