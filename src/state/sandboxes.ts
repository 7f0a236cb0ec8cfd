// Running sandboxes are found through the state directory (no daemon):
// <runtime dir>/hutch/<name>/state.json, written at start and removed by the
// helper's cleanup op at exit. A directory whose hutch process is gone is
// stale (hutch was killed together with its helper) and is reclaimed by the
// next hutch that looks.

import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HutchError } from '../util/errors';
import { ensurePrivateDir, type HutchPaths } from '../host/paths';
import { alive } from '../util/proc';

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
  /** Its address on each named network, once attached. */
  addresses?: Record<string, string>;
  /** Published ports, one entry per port (host port already chosen); `hutch port NAME` prints them. */
  ports?: { protocol: 'tcp' | 'udp'; hostIp: string; hostPort: number; containerPort: number }[];
  /** The sandbox's cgroup v2 directory (src/cgroup), when it has one. */
  cgroup?: string;
  /** Limits in force (src/cgroup; `hutch update` changes them). */
  limits?: import('../spec/types').LimitsSpec;
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

/** Claim `name`: create its state directory, reclaiming a stale one. */
export function claimSandboxDir(stateDir: string, uid: number, name: string): string {
  ensurePrivateDir(stateDir, uid);
  const dir = join(stateDir, name);
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
  rmSync(dir, { recursive: true, force: true });
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
export function listSandboxes(stateDir: string): { dir: string; state: SandboxState }[] {
  let names: string[];
  try {
    names = readdirSync(stateDir);
  } catch {
    return [];
  }
  const out: { dir: string; state: SandboxState }[] = [];
  for (const n of names) {
    const dir = join(stateDir, n);
    const st = readState(dir);
    if (st && alive(st.pid)) out.push({ dir, state: st });
    // No state.json yet may be a sandbox being started right now (claimed,
    // not yet written): only a dead owner, or a dir older than a minute, is stale.
    else if (st ? !alive(st.pid) : olderThan(dir, 60_000)) rmSync(dir, { recursive: true, force: true });
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
