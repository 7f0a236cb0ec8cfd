// Named volumes: $XDG_DATA_HOME/hutch/volumes/<name>/{volume.json,_data}.
// `_data` is bound into sandboxes like a bind mount; its files keep the
// owners the sandbox gave them (subordinate ids on disk), so export, import
// and removal run inside the user namespace. A volume exists once volume.json
// is written (after `_data`), so a half-created one is never listed.

import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { HutchError } from '../util/errors';
import type { IdentityInfo } from '../host/ids';
import type { HutchPaths } from '../host/paths';
import { ensurePrivateDir } from '../host/private-dir';
import { fsyncDir, writeFileAtomic } from '../image/store';
import { suggest } from '../util/suggest';

export const VOLUME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export interface VolumeRecord {
  name: string;
  created: string;
  /** Host path of the data (what sandboxes see at the mount point). */
  mountpoint: string;
}

export function volumesDir(paths: HutchPaths): string {
  return join(paths.dataDir, 'volumes');
}

/** volumesDir, created (0700) and verified: 125 when another user could change it (src/host/private-dir.ts). */
function verifiedVolumesDir(paths: HutchPaths): string {
  ensurePrivateDir(paths.dataDir, undefined, 'the data directory');
  return ensurePrivateDir(volumesDir(paths), undefined, 'the volumes directory');
}

export function volumeDir(paths: HutchPaths, name: string): string {
  return join(volumesDir(paths), name);
}

/** The host directory a sandbox mounts. */
export function volumeDataPath(paths: HutchPaths, name: string): string {
  return join(volumeDir(paths, name), '_data');
}

export function checkVolumeName(name: string, what = 'volume name'): void {
  if (!VOLUME_RE.test(name)) {
    throw new HutchError(`${what}: "${name}" is not a valid volume name`, { hint: 'letters, digits, "_", "." and "-", starting with a letter or digit' });
  }
}

export function getVolume(paths: HutchPaths, name: string): VolumeRecord | undefined {
  try {
    return JSON.parse(readFileSync(join(volumeDir(paths, name), 'volume.json'), 'utf8')) as VolumeRecord;
  } catch {
    return undefined;
  }
}

export function requireVolume(paths: HutchPaths, name: string): VolumeRecord {
  const v = getVolume(paths, name);
  if (v) return v;
  const near = suggest(
    name,
    listVolumes(paths).map((x) => x.name),
  );
  throw new HutchError(`volume "${name}" does not exist`, {
    hint: near ? `did you mean "${near}"? (hutch volume ls)` : `create it: hutch volume create ${name}`,
  });
}

export function listVolumes(paths: HutchPaths): VolumeRecord[] {
  let names: string[] = [];
  try {
    names = readdirSync(verifiedVolumesDir(paths));
  } catch (e) {
    if (e instanceof HutchError) throw e;
    return [];
  }
  return names
    .sort()
    .map((n) => getVolume(paths, n))
    .filter((v): v is VolumeRecord => !!v);
}

/**
 * Create the volume if it does not exist (idempotent: `-v NAME:/path` calls
 * it on every run). The root of `_data` belongs to the caller (root inside).
 */
export function ensureVolume(paths: HutchPaths, name: string): { rec: VolumeRecord; created: boolean } {
  checkVolumeName(name);
  const have = getVolume(paths, name);
  if (have) return { rec: have, created: false };
  const dir = volumeDir(paths, name);
  verifiedVolumesDir(paths);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const data = join(dir, '_data');
  if (!existsSync(data)) mkdirSync(data, { mode: 0o755 });
  const rec: VolumeRecord = { name, created: new Date().toISOString(), mountpoint: data };
  writeFileAtomic(join(dir, 'volume.json'), `${JSON.stringify(rec, null, 2)}\n`);
  return { rec, created: true };
}

/** Remove a volume (caller checked it is unused): unregister first, then delete inside the namespace. */
export async function deleteVolume(paths: HutchPaths, ids: IdentityInfo, name: string): Promise<void> {
  const { removeTree } = await import('../helper/userns');
  const dir = volumeDir(paths, name);
  const doomed = join(verifiedVolumesDir(paths), `.removing-${name}-${process.pid}`);
  renameSync(dir, doomed);
  fsyncDir(volumesDir(paths));
  await removeTree(ids, doomed);
}
