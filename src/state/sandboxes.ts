// Running sandboxes are found through the state directory (no daemon):
// <runtime dir>/hutch/<name>/state.json, written at start and removed by the
// helper's cleanup op at exit. A directory whose hutch process is gone is
// stale (hutch was killed together with its helper) and is reclaimed by the
// next hutch that looks.

import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { HutchError } from '../util/errors';
import type { HutchPaths } from '../host/paths';
import { ensurePrivateDir, entries, removeEntry } from '../host/private-dir';
// running, not alive: a detached sandbox's owner is its monitor, which a subreaper may reap late
import { running as alive } from '../util/proc';

export interface SandboxState {
  name: string;
  /** pid of the hutch process that owns the sandbox. */
  pid: number;
  startedAt: string;
  profile: string[];
  command: string[];
  rootfs: string;
  network: string;
  /** User-mode NAT driver in use (slirp4netns | pasta), when there is one. */
  networkDriver?: string;
  /** Named networks the sandbox is a member of (src/net/named-store.ts). */
  networks?: string[];
  /** Exposed ports (--expose, the image's EXPOSE): --link's variables name them. */
  expose?: string[];
  /** Its address on each named network, once attached. */
  addresses?: Record<string, string>;
  /** The interface of each network connected while it runs (hutch network connect), e.g. {b: 'eth1'}. */
  interfaces?: Record<string, string>;
  /** Published ports, one entry per port (host port already chosen); `hutch port NAME` prints them. */
  ports?: {
    protocol: 'tcp' | 'udp';
    hostIp: string;
    hostPort: number;
    containerPort: number;
    /** Published through this named network by `hutch network connect -p` (withdrawn with it). */
    network?: string;
  }[];
  /** The sandbox's cgroup v2 directory (src/cgroup), when it has one. */
  cgroup?: string;
  /** Limits in force (src/cgroup; `hutch update` changes them). */
  limits?: import('../spec/types').LimitsSpec;
  /** Host pid of the sandbox's pid 1, once it exists (`hutch exec` joins its namespaces). */
  initPid?: number;
}

export const EXEC_OPS_FILE = 'exec-ops.json';

/** The command's own restrictions (environment, directory, caps, user, seccomp): `hutch exec` runs with exactly these. */
export function writeExecOps(dir: string, plan: { ops: import('../helper/ops').Op[] }): void {
  const kinds = new Set(['clearenv', 'env', 'chdir', 'setsid', 'no-new-privs', 'caps', 'user', 'seccomp']);
  writeFileSync(join(dir, EXEC_OPS_FILE), JSON.stringify(plan.ops.filter((o) => kinds.has(o.op))), { mode: 0o600 });
}

export function readExecOps(dir: string): import('../helper/ops').Op[] | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, EXEC_OPS_FILE), 'utf8')) as import('../helper/ops').Op[];
  } catch {
    return undefined;
  }
}

function olderThan(dir: string, ms: number): boolean {
  try {
    return Date.now() - statSync(dir).mtimeMs > ms;
  } catch {
    return false;
  }
}

export function readState(dir: string): SandboxState | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as SandboxState;
  } catch {
    return undefined;
  }
}

/**
 * The state directory, verified (src/host/private-dir.ts) together with the
 * runtime directory it is in, as a real path: both are created 0700 when
 * missing, and one that another user made first is refused (125).
 */
export function verifiedStateDir(stateDir: string, uid: number = process.getuid!()): string {
  ensurePrivateDir(dirname(stateDir), uid, 'the runtime directory');
  return ensurePrivateDir(stateDir, uid, 'the state directory');
}

/** Claim `name`: create its state directory, reclaiming a stale one. */
export function claimSandboxDir(stateDir: string, uid: number, name: string): string {
  const base = verifiedStateDir(stateDir, uid);
  const dir = join(base, name);
  try {
    mkdirSync(dir, { mode: 0o700 });
    return dir;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const st = readState(dir);
  if (st && alive(st.pid)) {
    throw new HutchError(`a sandbox named "${name}" is already running (hutch pid ${st.pid})`, {
      hint: 'choose another --name, or stop that sandbox first',
    });
  }
  removeEntry(base, name, uid);
  mkdirSync(dir, { mode: 0o700 });
  return dir;
}

/** Atomic (temp file + rename): `hutch ps` in another terminal never reads half a state. */
export function writeState(dir: string, state: SandboxState): void {
  const tmp = join(dir, `.state.json.${process.pid}`);
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, join(dir, 'state.json'));
}

/** Running sandboxes; stale entries are removed on the way. */
export function listSandboxes(stateDir: string, uid: number = process.getuid!()): { dir: string; state: SandboxState }[] {
  const base = verifiedStateDir(stateDir, uid);
  const out: { dir: string; state: SandboxState }[] = [];
  for (const n of entries(base)) {
    if (n.startsWith('.')) continue; // .records (records.ts), not a sandbox
    const dir = join(base, n);
    const st = readState(dir);
    if (st && alive(st.pid)) out.push({ dir, state: st });
    // No state.json yet may be a sandbox being started right now (claimed,
    // not yet written): only a dead owner, or a dir older than a minute, is stale.
    else if (st ? !alive(st.pid) : olderThan(dir, 60_000)) removeEntry(base, n, uid);
  }
  return out;
}

export interface SandboxStorage {
  /** Layer digests the sandbox's root is made of. */
  layers: string[];
  /** Named volumes it mounts. */
  volumes: string[];
}

export const STORAGE_FILE = 'storage.json';

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
