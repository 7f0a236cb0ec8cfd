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
import { HutchError } from '../util/errors';

export interface PruneResult {
  /** Layers removed (only those really gone from disk). */
  layers: string[];
  workDirs: string[];
  cacheEntries: number;
  /** Bytes of the removed layers. */
  bytes: number;
  /** What could not be removed, one sentence each: the caller reports them (exit 125). */
  errors: string[];
}

const errText = (e: unknown) => (e as Error).message.replace(/^hutch: /, '');

/**
 * Move a stored layer out of layers/ (atomic: no new sandbox picks it up from
 * then on) to `doomed`. False when it is gone already (another prune); throws
 * on any other failure.
 */
function detachLayer(store: Store, digest: string, doomed: string): boolean {
  try {
    // a stored layer dir is 0500: moving a directory to another parent needs write access to it
    chmodSync(store.layerDir(digest), 0o700);
    renameSync(store.layerDir(digest), doomed);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
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
  const res: PruneResult = { layers: [], workDirs: [], cacheEntries: 0, bytes: 0, errors: [] };
  store.ensure(); // removes only inside verified directories (125 when another user could change them)
  // Asked first (it verifies the state directory too): a refusal leaves everything as it was.
  // With --all the cache entries go below, so they do not keep their layers.
  const used = layersInUse(store, paths, !opts.all || !!opts.dryRun);
  // Build-cache entries: all of them with --all; otherwise only those whose layer is gone.
  for (const e of cacheEntries(store)) {
    if (opts.all || !e.layer || !store.hasLayer(e.layer)) {
      try {
        if (!opts.dryRun) rmSync(e.file, { force: true });
        res.cacheEntries++;
      } catch (err) {
        res.errors.push(`build cache entry ${e.file}: ${errText(err)}`);
      }
    }
  }
  for (const l of store.listLayers()) {
    if (used.has(l)) continue;
    const size = store.layer(l)?.size ?? 0;
    if (!opts.dryRun) {
      const doomed = join(store.tmpDir, `prune-${hexOf(l)}-${process.pid}`);
      try {
        if (!detachLayer(store, l, doomed)) continue;
        await removeTree(ids, doomed);
      } catch (err) {
        // A detached but half-removed layer is a leftover in tmp/: the next prune retries it.
        res.errors.push(`layer ${l}: ${errText(err)}`);
        continue;
      }
    }
    res.layers.push(l);
    res.bytes += size;
  }
  for (const d of abandonedWork(store)) {
    try {
      if (!opts.dryRun) await removeTree(ids, d);
      res.workDirs.push(d);
    } catch (err) {
      res.errors.push(`leftover ${d}: ${errText(err)}`);
    }
  }
  return res;
}

/** After the caller printed what was removed: a HutchError (125) naming what was not. */
export function failOnPruneErrors(r: PruneResult): void {
  if (!r.errors.length) return;
  throw new HutchError(`could not remove ${r.errors.length === 1 ? r.errors[0] : `${r.errors.length} items: ${r.errors.join('; ')}`}`, {
    hint: 'what is listed above as removed is gone; fix the cause (permissions, a busy mount) and run prune again',
  });
}

/**
 * Removes `digests` (layers a failed import or commit stored) unless something
 * uses them: an image, the build cache, a running sandbox or another lease.
 * Call after releasing the caller's own lease. Never throws: it runs while
 * another error is on its way to the user; what it could not remove is
 * returned (one sentence each) for a warning, and `hutch image prune` retries.
 */
export async function discardLayers(store: Store, paths: HutchPaths, ids: IdentityInfo, digests: string[]): Promise<string[]> {
  const errors: string[] = [];
  if (!digests.length) return errors;
  try {
    const used = layersInUse(store, paths);
    for (const l of digests) {
      if (used.has(l) || !store.hasLayer(l)) continue;
      const doomed = join(store.tmpDir, `discard-${hexOf(l)}-${process.pid}`);
      try {
        if (detachLayer(store, l, doomed)) await removeTree(ids, doomed);
      } catch (e) {
        errors.push(`layer ${l}: ${errText(e)}`);
      }
    }
  } catch (e) {
    errors.push(errText(e));
  }
  return errors;
}
