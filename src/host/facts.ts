// Everything hutch reads about this host to decide a sandbox, gathered once
// per command into one immutable HostFacts. Policy (src/spec, src/sandbox)
// takes it as an argument and reads nothing else, so it is a pure function
// of (profile, flags, facts) and unit tests pass a fake.

import { readFileSync, statSync } from 'node:fs';
import { identity, type IdentityInfo } from './ids';
import { hostMounts } from './mounts';
import { hutchPaths, type HutchPaths } from './paths';
import { scanHostRoot, type TopLevelEntry } from './host-scan';
import { locateHelper, protectedPaths } from './self';

/** The few file-system questions policy asks; answered from the host, or by a fake in tests. */
export interface HostFs {
  isDir(path: string): boolean;
  exists(path: string): boolean;
  /** Text of a file the user named (an env file); throws with the OS message. */
  readText(path: string): string;
  /** A block device's numbers; throws an Error with code ENOENT when missing. */
  blockDevice(path: string): { major: number; minor: number } | undefined;
}

export interface HostFacts {
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  /** process.arch: decides the seccomp names the helper knows. */
  readonly arch: string;
  readonly ids: IdentityInfo;
  readonly paths: HutchPaths;
  /** What executes the helper: a path, or /proc/self/fd/N of hutch's private copy (src/host/self.ts). */
  readonly helper: string;
  /** hutch's own executables (the CLI, a helper given by path): never writable inside. */
  readonly protectedFiles: readonly string[];
  /** hutch's own directories (layers, volumes, state, caches, profiles, helper copies): never writable inside. */
  readonly protectedDirs: readonly string[];
  readonly hasTimeNamespace: boolean;
  /** Top-level entries of the host's / and their mounts (read on first use: only host roots need it). */
  readonly hostTop: readonly TopLevelEntry[];
  /** Mount points of the host's procfs instances (read on first use: only binds need it). */
  readonly procMounts: readonly string[];
  readonly fs: HostFs;
}

export const hostFs: HostFs = {
  isDir(path) {
    try {
      return statSync(path).isDirectory();
    } catch {
      return false;
    }
  },
  exists(path) {
    try {
      statSync(path);
      return true;
    } catch {
      return false;
    }
  },
  readText(path) {
    return readFileSync(path, 'utf8');
  },
  blockDevice(path) {
    const st = statSync(path);
    if (!st.isBlockDevice()) return undefined;
    // Linux dev_t: major in bits 8-19 and 32-43, minor in bits 0-7 and 20-31.
    const big = BigInt(st.rdev);
    return { major: Number(((big >> 8n) & 0xfffn) | ((big >> 32n) & ~0xfffn)), minor: Number((big & 0xffn) | ((big >> 12n) & ~0xffn)) };
  },
};

/** Gather the facts of this host for one hutch command. */
export function gatherHostFacts(env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): HostFacts {
  const ids = identity(env);
  const loc = locateHelper(env);
  const paths = hutchPaths(env, ids.home, ids.uid);
  let top: TopLevelEntry[] | undefined;
  let procs: string[] | undefined;
  return {
    env,
    cwd,
    arch: process.arch,
    ids,
    paths,
    helper: loc.path,
    ...protectedPaths(loc, paths, ids.uid),
    hasTimeNamespace: hostFs.exists('/proc/self/ns/time'),
    get procMounts() {
      procs ??= hostMounts()
        .filter((m) => m.fsType === 'proc')
        .map((m) => m.mountPoint);
      return procs;
    },
    get hostTop() {
      top ??= scanHostRoot(hostMounts());
      return top;
    },
    fs: hostFs,
  };
}
