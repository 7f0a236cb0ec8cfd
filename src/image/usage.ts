// Which layers and volumes are in use right now: by running sandboxes (each
// writes storage.json into its state directory at start), by unfinished
// imports and builds (leases), by images and the build cache. `prune` and
// `volume rm` ask here before removing anything.

import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { HutchPaths } from '../host/paths';
import { listSandboxes } from '../runtime/state';
import type { Store } from './store';

export interface SandboxStorage {
  /** Layer digests the sandbox's root is made of. */
  layers: string[];
  /** Named volumes it mounts. */
  volumes: string[];
}

export const STORAGE_FILE = 'storage.json';

export function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Running sandboxes and what they use. */
export function runningUsage(paths: HutchPaths): { name: string; storage: SandboxStorage }[] {
  const out: { name: string; storage: SandboxStorage }[] = [];
  for (const { dir, state } of listSandboxes(paths.stateDir)) {
    try {
      out.push({ name: state.name, storage: JSON.parse(readFileSync(join(dir, STORAGE_FILE), 'utf8')) as SandboxStorage });
    } catch {
      /* a sandbox on host / or a directory: no layers, no volumes recorded */
    }
  }
  return out;
}

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
