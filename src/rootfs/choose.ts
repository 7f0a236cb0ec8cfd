// Storage driver choice: kernel overlayfs inside the user namespace where the
// kernel allows it (tried for real once, result cached per kernel), else
// fuse-overlayfs, else a clear error naming what to install.

import { accessSync, constants, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { HutchError } from '../util/errors';
import type { IdentityInfo } from '../host/ids';
import { installHint } from '../host/fixes';
import { findExecutable } from '../host/which';
import { userNamespaceOps, ownIdOnly } from '../helper/identity';
import { runPlanCaptured } from '../helper/spawn';
import { PlanBuilder } from '../helper/plan';
import type { StorageDriver } from '../spec/types';
import { fuseOverlayfsDriver } from './fuse-overlayfs';
import { overlayDriver } from './overlay';
import type { StorageDriver as Driver } from './types';

export interface DriverChoice {
  driver: Driver;
  why: string;
}

/** The probe: a throw-away user+mount namespace mounting an overlay with its upper on tmpfs. */
export async function probeKernelOverlay(helper: string, ids: IdentityInfo): Promise<{ ok: boolean; detail: string }> {
  const b = new PlanBuilder();
  b.add(userNamespaceOps(ownIdOnly(ids)));
  b.add({ op: 'base', dir: '/tmp' });
  b.add({ op: 'mkdir', path: '/up/u', mode: 0o755 }).add({ op: 'mkdir', path: '/up/w', mode: 0o700 }).add({ op: 'mkdir', path: '/m', mode: 0o755 });
  b.add({ op: 'overlay', dest: '/m', lowers: '/oldroot/usr', upper: '/up/u', work: '/up/w' });
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

export async function chooseDriver(
  requested: StorageDriver,
  helper: string,
  ids: IdentityInfo,
  cacheDir: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<DriverChoice> {
  if (requested === 'fuse-overlayfs') {
    const f = fuseUsable(env);
    if (f.problem) {
      throw new HutchError(`--storage-driver fuse-overlayfs: ${f.problem}`, {
        hint: `${installHint('fuse-overlayfs')}; make /dev/fuse accessible (see hutch doctor); or use --storage-driver overlay`,
      });
    }
    return { driver: fuseOverlayfsDriver(f.path!), why: 'requested' };
  }
  const kernel = await kernelOverlayWorks(helper, ids, cacheDir);
  if (kernel.ok) return { driver: overlayDriver, why: requested === 'overlay' ? 'requested' : 'kernel overlayfs works in a user namespace' };
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
  return { driver: fuseOverlayfsDriver(f.path!), why: 'kernel overlayfs unusable in a user namespace' };
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
    mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
    writeFileSync(file, JSON.stringify({ key, result }));
  } catch {
    /* read-only cache: probe again next time */
  }
  return result;
}
