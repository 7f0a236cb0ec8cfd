// What `hutch run` needs from the store: an image's layers for the root
// filesystem, its config as spec defaults, volumes created on first use, and
// a note in the sandbox's state directory of the layers and volumes it uses
// (so prune and `volume rm` leave them alone while it runs).

import { writeFileSync } from 'node:fs';
import { ensurePrivateDir } from '../host/private-dir';
import { join } from 'node:path';
import type { HutchPaths } from '../host/paths';
import type { SandboxSpec } from '../spec/types';
import { ensureVolume } from '../volume/store';
import { hexOf, Store, writeFileAtomic, type ImageRecord } from '../image/store';
import type { ImageDefaults } from '../spec/types';
import { STORAGE_FILE, type SandboxStorage } from '../state/sandboxes';

export function imageDefaults(img: ImageRecord): ImageDefaults {
  const env: Record<string, string> = {};
  for (const e of img.config.env) {
    const eq = e.indexOf('=');
    if (eq > 0) env[e.slice(0, eq)] = e.slice(eq + 1);
  }
  return { env, workdir: img.config.workdir, entrypoint: img.config.entrypoint, cmd: img.config.cmd, expose: img.config.exposedPorts, user: img.config.user };
}

/** Look an image up for spec resolution (throws HutchError naming near misses). */
export function imageDefaultsFor(paths: HutchPaths, name: string): ImageDefaults {
  return imageDefaults(new Store(paths.dataDir).requireImage(name, 'rootfs image'));
}

/** The overlay lowers of an image: the store's layers dir and the layer ids, top first. */
export function imageLayers(store: Store, layers: string[]): { store: string; ids: string[] } {
  return { store: store.layersDir, ids: [...layers].reverse().map(hexOf) };
}

/** Create the named volumes the spec mounts (first use) and say which are new. */
export function ensureVolumes(spec: SandboxSpec, paths: HutchPaths): string[] {
  const created: string[] = [];
  for (const m of spec.mounts) if (m.type === 'volume' && ensureVolume(paths, m.name).created) created.push(m.name);
  return created;
}

export function writeStorageUse(sandboxDir: string, layers: string[], spec: SandboxSpec): void {
  const s: SandboxStorage = { layers, volumes: spec.mounts.filter((m) => m.type === 'volume').map((m) => (m as { name: string }).name) };
  if (!s.layers.length && !s.volumes.length) return; // nothing prune could take from this sandbox
  writeFileSync(join(sandboxDir, STORAGE_FILE), JSON.stringify(s), { mode: 0o600 });
}

/** A sandbox run with --keep on layers: what `hutch commit NAME` needs afterwards. */
export interface KeptRecord {
  name: string;
  keep: string;
  image?: string;
  layers: string[];
  created: string;
}

export function keptPath(paths: HutchPaths, name: string): string {
  return join(paths.dataDir, 'kept', `${name}.json`);
}

export function recordKept(paths: HutchPaths, spec: SandboxSpec, layers: string[]): void {
  const rec: KeptRecord = {
    name: spec.name,
    keep: spec.keep!,
    image: spec.rootfs.kind === 'image' ? spec.rootfs.name : undefined,
    layers,
    created: new Date().toISOString(),
  };
  ensurePrivateDir(paths.dataDir, undefined, 'the data directory');
  ensurePrivateDir(join(paths.dataDir, 'kept'), undefined, 'the data directory');
  writeFileAtomic(keptPath(paths, spec.name), `${JSON.stringify(rec, null, 2)}\n`);
}
