// Storage driver choice: kernel overlayfs inside the user namespace where the
// kernel allows it (tried for real once, result cached per kernel), else
// fuse-overlayfs, else a clear error naming what to install. fuse-overlayfs
// also wins when root inside will write a root holding files owned outside
// the id map (ownership.ts): only it can copy those up.

import { accessSync, constants, readFileSync, statSync, writeFileSync } from 'node:fs';
import { ensurePrivateDir } from '../host/private-dir';
import { release } from 'node:os';
import { join } from 'node:path';
import { HutchError } from '../util/errors';
import type { IdentityInfo } from '../host/ids';
import { installHint } from '../host/fixes';
import { findExecutable } from '../host/which';
import { isChildUserNamespace, userNamespaceOps, ownIdOnly } from '../helper/identity';
import { runPlanCaptured } from '../helper/spawn';
import { PlanBuilder } from '../helper/plan';
import type { StorageDriver } from '../spec/types';
import { fuseOverlayfsDriver } from './fuse-overlayfs';
import { overlayDriver, overlayUserxattr } from './overlay';
import type { StorageDriver as Driver } from './types';
import type { RootWrites } from './ownership';

export interface DriverChoice {
  driver: Driver;
  why: string;
  /** What root inside can modify with it (--dry-run). */
  gives: string;
}

/** The probe: a throw-away user+mount namespace mounting an overlay with its upper on tmpfs. */
export async function probeKernelOverlay(helper: string, ids: IdentityInfo): Promise<{ ok: boolean; detail: string }> {
  const b = new PlanBuilder();
  const maps = ownIdOnly(ids);
  b.add(userNamespaceOps(maps));
  b.add({ op: 'base', dir: '/tmp' });
  b.add({ op: 'mkdir', path: '/up/u', mode: 0o755 }).add({ op: 'mkdir', path: '/up/w', mode: 0o700 }).add({ op: 'mkdir', path: '/m', mode: 0o755 });
  // with the options a sandbox's overlay gets, so that "works" means works for it
  b.add({
    op: 'overlay',
    dest: '/m',
    lowers: '/oldroot/usr',
    upper: '/up/u',
    work: '/up/w',
    userxattr: overlayUserxattr({ childUserNamespace: isChildUserNamespace(maps) }),
  });
  // the helper itself, whatever its path (the command is forked from it, never exec'd in between)
  b.add({ op: 'exec', argv: ['/oldroot/proc/self/exe', '--version'] });
  const r = await runPlanCaptured(b.build(), 10_000, helper);
  return { ok: r.code === 0, detail: r.stderr.trim().replace(/^hutch: /, '') };
}

function fuseUsable(env: NodeJS.ProcessEnv): { path?: string; problem?: string } {
  const path = findExecutable('fuse-overlayfs', env);
  if (!path) return { problem: 'fuse-overlayfs is not installed' };
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch {
    return { path, problem: '/dev/fuse is not accessible (mode 0666 is usual; here it is not)' };
  }
  return { path };
}

/** What root inside can write with this driver, for --dry-run (the README's table says the same). */
export function describeWrites(driver: 'overlay' | 'fuse-overlayfs', squashToRoot: boolean, unmappedOwner?: string): string {
  if (driver === 'overlay') {
    return unmappedOwner
      ? `kernel overlayfs: files owned outside the sandbox's id map (such as ${unmappedOwner}) are read-only inside, even for root; new files and files of mapped owners are copy-on-write`
      : 'kernel overlayfs: the root is copy-on-write writable inside (its top is owned by mapped ids; a file deeper down owned outside the map would be read-only)';
  }
  return squashToRoot
    ? "fuse-overlayfs: every file is copy-on-write writable inside; every file shows as root's (squash_to_root: only uid 0 is mapped)"
    : 'fuse-overlayfs: every file is copy-on-write writable inside; files owned outside the map show as nobody (65534)';
}

export async function chooseDriver(
  requested: StorageDriver,
  helper: string,
  ids: IdentityInfo,
  cacheDir: string,
  env: NodeJS.ProcessEnv = process.env,
  writes: RootWrites = { rootWrites: false },
): Promise<DriverChoice> {
  // One id mapped: files of every other owner would be unmapped (see FuseOptions).
  const squashToRoot = ids.uidMap.length === 1 && ids.gidMap.length === 1;
  const fuse = (path: string, why: string): DriverChoice => ({
    driver: fuseOverlayfsDriver(path, { squashToRoot }),
    why,
    gives: describeWrites('fuse-overlayfs', squashToRoot, writes.unmappedOwner),
  });
  const overlay = (why: string): DriverChoice => ({ driver: overlayDriver, why, gives: describeWrites('overlay', false, writes.unmappedOwner) });
  if (requested === 'fuse-overlayfs') {
    const f = fuseUsable(env);
    if (f.problem) {
      throw new HutchError(`--storage-driver fuse-overlayfs: ${f.problem}`, {
        hint: `${installHint('fuse-overlayfs')}; make /dev/fuse accessible (see hutch doctor); or use --storage-driver overlay`,
      });
    }
    return fuse(f.path!, 'requested');
  }
  const kernel = await kernelOverlayWorks(helper, ids, cacheDir);
  if (kernel.ok) {
    if (requested === 'overlay') return overlay('requested');
    // Kernel overlayfs is faster, but cannot copy up a file owned outside the
    // map: when root inside will write such a root, fuse-overlayfs can.
    if (writes.unmappedOwner && writes.rootWrites) {
      const f = fuseUsable(env);
      if (!f.problem)
        return fuse(f.path!, `the root has files owned outside the sandbox's id map (${writes.unmappedOwner}): kernel overlayfs would leave them read-only`);
      return overlay(`kernel overlayfs works in a user namespace; fuse-overlayfs would make files owned outside the map writable, but ${f.problem}`);
    }
    return overlay('kernel overlayfs works in a user namespace');
  }
  if (requested === 'overlay') {
    throw new HutchError(`--storage-driver overlay: kernel overlayfs cannot be mounted in a user namespace here (${kernel.detail})`, {
      hint: 'use --storage-driver fuse-overlayfs (apt install fuse-overlayfs), or a kernel >= 5.11',
    });
  }
  const f = fuseUsable(env);
  if (f.problem) {
    throw new HutchError(`no storage driver: kernel overlayfs is not usable in a user namespace (${kernel.detail}) and ${f.problem}`, {
      hint: `${installHint('fuse-overlayfs')} (hutch doctor checks the rest)`,
    });
  }
  return fuse(f.path!, 'kernel overlayfs unusable in a user namespace');
}

/**
 * fuse-overlayfs runs as root inside. Under --userns keep-id that is a
 * subordinate id on the host, not the caller, so /dev/fuse must be open to
 * everyone (mode 0666, as distributions ship it), not just to the caller.
 */
export function checkFuseForSubordinateRoot(driver: Driver, rootOutside: number): void {
  if (driver.name !== 'fuse-overlayfs') return;
  let mode = 0;
  try {
    mode = statSync('/dev/fuse').mode & 0o777;
  } catch {
    /* fuseUsable reported a missing device already */
  }
  if ((mode & 0o006) === 0o006) return;
  throw new HutchError(
    `--userns keep-id with fuse-overlayfs: root inside is host uid ${rootOutside} (a subordinate id), which cannot open /dev/fuse (mode ${mode.toString(8).padStart(4, '0')} here)`,
    {
      hint: 'use --storage-driver overlay (auto picks it under keep-id), or give /dev/fuse mode 0666 as distributions ship it',
    },
  );
}

async function kernelOverlayWorks(helper: string, ids: IdentityInfo, cacheDir: string): Promise<{ ok: boolean; detail: string }> {
  const key = `${release()}`;
  const file = join(cacheDir, 'probe-overlay.json');
  try {
    const cached = JSON.parse(readFileSync(file, 'utf8'));
    if (cached.key === key) return cached.result;
  } catch {
    /* no cache yet */
  }
  const result = await probeKernelOverlay(helper, ids);
  try {
    // never written into a directory someone else could have planted: an unsafe one is skipped like a read-only one
    const dir = ensurePrivateDir(cacheDir, ids.uid, 'the cache directory');
    writeFileSync(join(dir, 'probe-overlay.json'), JSON.stringify({ key, result }));
  } catch {
    /* read-only or unsafe cache: probe again next time */
  }
  return result;
}
