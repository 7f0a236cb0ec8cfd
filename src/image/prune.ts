// Removing what nothing uses: layers no image, build-cache entry, running
// sandbox or unfinished import/build names, and the work dirs of killed
// imports. Removal runs in the user namespace (files belong to subordinate
// ids). A layer is first renamed out of layers/ (atomic: from then on no new
// sandbox can pick it up), then removed.

import { chmodSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { IdentityInfo } from '../host/ids';
import type { HutchPaths } from '../host/paths';
import { runningUsage } from '../state/sandboxes';
import { abandonedWork, leasedLayers } from './usage';
import { hexOf, type Store } from './store';
import { removeTree } from '../helper/userns';

export interface PruneResult {
  layers: string[];
  workDirs: string[];
  cacheEntries: number;
  bytes: number;
}

/** Layers in use: images, build cache, running sandboxes, leases. */
export function layersInUse(store: Store, paths: HutchPaths, withCache = true): Set<string> {
  const used = new Set<string>();
  for (const img of store.listImages()) for (const l of img.layers) used.add(l);
  if (withCache) for (const e of cacheEntries(store)) used.add(e.layer);
  for (const s of runningUsage(paths)) for (const l of s.storage.layers) used.add(l);
  for (const l of leasedLayers(store)) used.add(l);
  return used;
}

export function cacheEntries(store: Store): { file: string; layer: string }[] {
  let files: string[] = [];
  try {
    files = readdirSync(store.cacheDir).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  const out: { file: string; layer: string }[] = [];
  for (const f of files) {
    try {
      out.push({ file: join(store.cacheDir, f), layer: (JSON.parse(readFileSync(join(store.cacheDir, f), 'utf8')) as { layer: string }).layer });
    } catch {
      /* unreadable entry: dropped below */
      out.push({ file: join(store.cacheDir, f), layer: '' });
    }
  }
  return out;
}

export async function prune(store: Store, paths: HutchPaths, ids: IdentityInfo, opts: { all?: boolean; dryRun?: boolean } = {}): Promise<PruneResult> {
  const res: PruneResult = { layers: [], workDirs: [], cacheEntries: 0, bytes: 0 };
  store.ensure(); // removes only inside verified directories (125 when another user could change them)
  // Asked first (it verifies the state directory too): a refusal leaves everything as it was.
  // With --all the cache entries go below, so they do not keep their layers.
  const used = layersInUse(store, paths, !opts.all || !!opts.dryRun);
  // Build-cache entries: all of them with --all; otherwise only those whose layer is gone.
  for (const e of cacheEntries(store)) {
    if (opts.all || !e.layer || !store.hasLayer(e.layer)) {
      res.cacheEntries++;
      if (!opts.dryRun) rmSync(e.file, { force: true });
    }
  }
  for (const l of store.listLayers()) {
    if (used.has(l)) continue;
    res.layers.push(l);
    res.bytes += store.layer(l)?.size ?? 0;
    if (opts.dryRun) continue;
    const doomed = join(store.tmpDir, `prune-${hexOf(l)}-${process.pid}`);
    try {
      // a stored layer dir is 0500: moving a directory to another parent needs write access to it
      chmodSync(store.layerDir(l), 0o700);
      renameSync(store.layerDir(l), doomed);
    } catch {
      continue; // gone already (another prune)
    }
    await removeTree(ids, doomed);
  }
  for (const d of abandonedWork(store)) {
    res.workDirs.push(d);
    if (!opts.dryRun) await removeTree(ids, d);
  }
  return res;
}

/**
 * Removes `digests` (layers a failed import or commit stored) unless something
 * uses them: an image, the build cache, a running sandbox or another lease.
 * Call after releasing the caller's own lease. Never throws.
 */
export async function discardLayers(store: Store, paths: HutchPaths, ids: IdentityInfo, digests: string[]): Promise<void> {
  if (!digests.length) return;
  try {
    const used = layersInUse(store, paths);
    for (const l of digests) {
      if (used.has(l) || !store.hasLayer(l)) continue;
      const doomed = join(store.tmpDir, `discard-${hexOf(l)}-${process.pid}`);
      try {
        // a stored layer dir is 0500: moving a directory to another parent needs write access to it
        chmodSync(store.layerDir(l), 0o700);
        renameSync(store.layerDir(l), doomed);
      } catch {
        continue;
      }
      await removeTree(ids, doomed).catch(() => {});
    }
  } catch {
    /* best effort: `hutch image prune` removes what is left */
  }
}
