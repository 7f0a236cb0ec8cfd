// Run a host command inside a user namespace with the caller's id maps and
// no other namespace: that is how layers are written, read and removed. The
// tar that extracts a layer runs as "root" of the namespace, so a file owned
// by uid 33 in the image is owned by subuid+32 on disk, exactly what a
// sandbox's namespace will see as 33 again.

import type { ChildProcess } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { HutchError } from '../util/errors';
import { installHint } from '../host/fixes';
import type { IdentityInfo } from '../host/ids';
import { findExecutable } from '../host/which';
import { userNamespaceOps } from './identity';
import type { Op } from './ops';
import { planOf } from './plan';
import { collect, startHelper } from './spawn';

/** Whether only uid/gid 0 exist in the namespace (every file ends up owned by the caller). */
export function ownershipSquashed(ids: IdentityInfo): boolean {
  return ids.uidMap.length === 1 || ids.gidMap.length === 1;
}

/** Highest id that exists inside the namespace. */
export function maxMappedId(ranges: IdentityInfo['uidMap']): number {
  return Math.max(...ranges.map((r) => r.inside + r.count - 1));
}

export function toolPath(name: 'tar' | 'xz' | 'zstd' | 'sync'): string {
  const p = findExecutable(name, process.env);
  if (!p) throw new HutchError(`${name} is not installed`, { hint: installHint(name) });
  return p;
}

export interface NsProcess {
  child: ChildProcess;
  /** Resolves with the exit status and stderr once the command is gone. */
  done: Promise<{ code: number; stderr: string }>;
}

/**
 * Start `argv` (absolute argv0) in the user namespace. stdin/stdout are pipes
 * unless given; the plan goes in on fd 3, which stays open as the lifeline:
 * if hutch dies, the helper kills the command.
 */
export function spawnInUserns(
  ids: IdentityInfo,
  argv: string[],
  opts: { stdin?: 'pipe' | 'ignore' | number; stdout?: 'pipe' | 'ignore' | number; cleanup?: string[] } = {},
): NsProcess {
  const ops: Op[] = [...userNamespaceOps(ids), ...(opts.cleanup ?? []).map((path): Op => ({ op: 'cleanup', path })), { op: 'exec', argv }];
  const run = startHelper(planOf(ops), { stdio: [opts.stdin ?? 'pipe', opts.stdout ?? 'pipe', 'pipe'] });
  const stderr = collect(run.child.stderr);
  const done = run.done.then(
    (r) => ({ code: r.exitCode, stderr: stderr() }),
    (e: Error) => ({ code: 125, stderr: e.message }),
  );
  return { child: run.child, done };
}

/** Run to completion, output captured. */
export async function runInUserns(ids: IdentityInfo, argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const p = spawnInUserns(ids, argv, { stdin: 'ignore' });
  let stdout = '';
  p.child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  const r = await p.done;
  return { ...r, stdout };
}

/**
 * Remove a tree whose files may belong to subordinate ids: the helper's
 * `cleanup` op runs inside the namespace (never follows symlinks, not even
 * in the parents; the parent must be the user's and private; gives
 * directories u+rwx on the way).
 */
export async function removeTree(ids: IdentityInfo, path: string): Promise<void> {
  // the op refuses a symlink anywhere in the path: hand it the parent's real path
  let real: string;
  try {
    real = join(realpathSync(dirname(path)), basename(path));
  } catch {
    return; // the parent is gone, and so is the tree
  }
  const r = await spawnInUserns(ids, ['/bin/true'], { stdin: 'ignore', stdout: 'ignore', cleanup: [real] }).done;
  if (r.code !== 0 || r.stderr.trim()) {
    throw new HutchError(`cannot remove ${path}: ${r.stderr.trim().replace(/^hutch: /, '') || `exit ${r.code}`}`);
  }
}
