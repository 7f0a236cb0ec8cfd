// Everything hutch reads about this host to decide a sandbox, gathered once
// per command into one immutable HostFacts. Policy (src/spec, src/sandbox)
// takes it as an argument and reads nothing else, so it is a pure function
// of (profile, flags, facts) and unit tests pass a fake.

import { lstatSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { totalmem } from 'node:os';
import { resolve } from 'node:path';
import { accountInfo, identity, type IdentityInfo } from './ids';
import { hostMounts } from './mounts';
import { hutchPaths, type HutchPaths } from './paths';
import { listTop, scanHostRoot, type TopListing, type TopLevelEntry } from './host-scan';
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
    return ownersOf(root, listTop(root));
  },
  scanTop(root) {
    return scanHostRoot([], root);
  },
};

/** Owners of a directory and of its top-level entries (symlinks left out); [] when unreadable. */
function ownersOf(root: string, l: TopListing): { path: string; uid: number; gid: number }[] {
  const all = [...(l.self ? [{ path: root, st: l.self }] : []), ...(l.entries ?? [])];
  return all.filter((e) => !e.st.isSymbolicLink()).map((e) => ({ path: e.path, uid: e.st.uid, gid: e.st.gid }));
}

/**
 * hostFs with one listing per directory for the life of one HostFacts: the
 * driver choice (who owns the root's top) and the root's plan (what its top
 * holds) ask about the same directory within milliseconds; one readdir and
 * one lstat per entry answer both.
 */
function listingFs(): { fs: HostFs; listing: (root: string) => TopListing } {
  const listings = new Map<string, TopListing>();
  const listing = (root: string) => {
    let l = listings.get(root);
    if (!l) listings.set(root, (l = listTop(root)));
    return l;
  };
  return { listing, fs: { ...hostFs, topOwners: (root) => ownersOf(root, listing(root)), scanTop: (root) => scanHostRoot([], root, listing(root)) } };
}

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
  // one read of the mount table for both facts that need it
  let mounts: ReturnType<typeof hostMounts> | undefined;
  const mountTable = () => (mounts ??= hostMounts());
  const { fs, listing } = listingFs();
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
      homes ??= homeDirs(env, accountInfo().homedir);
      return homes;
    },
    get procMounts() {
      procs ??= mountTable()
        .filter((m) => m.fsType === 'proc')
        .map((m) => m.mountPoint);
      return procs;
    },
    get hostTop() {
      top ??= scanHostRoot(mountTable(), '/', listing('/'));
      return top;
    },
    fs,
  };
}
