// Which layers and volumes are in use right now: by running sandboxes (each
// writes storage.json into its state directory at start), by unfinished
// imports and builds (leases), by images and the build cache. `prune` and
// `volume rm` ask here before removing anything.

import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { alive } from '../util/proc';
import type { Store } from './store';

/** Layers named by leases of live processes; leases of dead ones are removed. */
export function leasedLayers(store: Store): Set<string> {
  const out = new Set<string>();
  let files: string[] = [];
  try {
    files = readdirSync(store.leasesDir);
  } catch {
    return out;
  }
  for (const f of files) {
    const pid = Number(f.replace(/\.json$/, ''));
    const path = join(store.leasesDir, f);
    if (!alive(pid)) {
      rmSync(path, { force: true });
      continue;
    }
    try {
      for (const l of JSON.parse(readFileSync(path, 'utf8')) as string[]) out.add(l);
    } catch {
      /* being rewritten */
    }
  }
  return out;
}

/** Work dirs under tmp/ whose owner is gone (an import or build that was killed). */
export function abandonedWork(store: Store): string[] {
  let names: string[] = [];
  try {
    names = readdirSync(store.tmpDir);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const n of names) {
    const dir = join(store.tmpDir, n);
    let pid = 0;
    // A layer prune or a failed import moved here and could not finish removing: its pid is in the name.
    const detached = /^(?:prune|discard)-[0-9a-f]+-(\d+)$/.exec(n);
    if (detached) {
      if (!alive(Number(detached[1]))) out.push(dir);
      continue;
    }
    try {
      pid = Number(readFileSync(join(dir, 'owner.pid'), 'utf8'));
    } catch {
      // no owner file yet: only a very fresh dir may be missing it
      try {
        if (Date.now() - statSync(dir).mtimeMs < 60_000) continue;
      } catch {
        continue;
      }
    }
    if (!alive(pid)) out.push(dir);
  }
  return out;
}
