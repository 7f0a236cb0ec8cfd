// Everything hutch reads about this host to decide a sandbox, gathered once
// per command into one immutable HostFacts. Policy (src/spec, src/sandbox)
// takes it as an argument and reads nothing else, so it is a pure function
// of (profile, flags, facts) and unit tests pass a fake.

import { lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { totalmem, userInfo } from 'node:os';
import { resolve } from 'node:path';
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
  /** What PATH is without following it: undefined when missing, null when not a symlink, else the link's target. */
  link(path: string): string | null | undefined;
  /** Owners of a directory and of its top-level entries (symlinks left out); [] when unreadable. */
  topOwners(root: string): { path: string; uid: number; gid: number }[];
  /** The top-level entries of a directory used as a root (host-scan.ts), for drivers that bind them one by one. */
  scanTop(root: string): TopLevelEntry[];
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
  /** The host's RAM in bytes: the default RAM budget of a sandbox is half of it. */
  readonly totalMemory: number;
  /**
   * Home directories to hide in `host` mode (read on first use), parents
   * before children. own: the account's home from the password database and
   * $HOME when it differs (hiding is about the account, not a variable
   * anyone can set); all: own plus /home and /root as this host has them.
   */
  readonly homes: { readonly own: readonly string[]; readonly all: readonly string[] };
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
  link(path) {
    try {
      return lstatSync(path).isSymbolicLink() ? readlinkSync(path) : null;
    } catch {
      return undefined;
    }
  },
  topOwners(root) {
    let names: string[];
    try {
      names = readdirSync(root).sort();
    } catch {
      names = [];
    }
    const out: { path: string; uid: number; gid: number }[] = [];
    for (const p of [root, ...names.map((n) => `${root === '/' ? '' : root}/${n}`)]) {
      try {
        const st = lstatSync(p);
        if (!st.isSymbolicLink()) out.push({ path: p, uid: st.uid, gid: st.gid });
      } catch {}
    }
    return out;
  },
  scanTop(root) {
    return scanHostRoot([], root);
  },
};

/** A path and, when it differs, its real path; never `/` (hiding / would hide everything). */
function withRealPath(p: string | undefined): string[] {
  if (!p?.startsWith('/')) return [];
  const out = [resolve(p)];
  try {
    out.push(realpathSync(p));
  } catch {
    /* missing: nothing to follow */
  }
  return out.filter((x) => x !== '/');
}

/** The home directories to hide (see HostFacts.homes). */
export function homeDirs(env: NodeJS.ProcessEnv, accountHome: string, fs: Pick<HostFs, 'isDir'> = hostFs): { own: string[]; all: string[] } {
  // Code-point order, not localeCompare: that loads ICU's collator, ~10 ms of every run.
  const byDepth = (xs: string[]) => [...new Set(xs)].sort((a, b) => a.split('/').length - b.split('/').length || (a < b ? -1 : a > b ? 1 : 0));
  const own = byDepth([...withRealPath(accountHome), ...withRealPath(env.HOME)]);
  const system = ['/home', '/root'].filter((d) => fs.isDir(d)).flatMap(withRealPath);
  return { own, all: byDepth([...system, ...own]) };
}

/** Gather the facts of this host for one hutch command. */
export function gatherHostFacts(env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): HostFacts {
  const ids = identity(env);
  const loc = locateHelper(env);
  const paths = hutchPaths(env, ids.home, ids.uid);
  let top: TopLevelEntry[] | undefined;
  let homes: { own: string[]; all: string[] } | undefined;
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
    totalMemory: totalmem(),
    get homes() {
      homes ??= homeDirs(env, userInfo().homedir);
      return homes;
    },
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
