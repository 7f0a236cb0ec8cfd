// Fake host facts for the pure core's unit tests: one fixed user, fixed XDG
// paths, a fixed subordinate id map, a fixed listing of the host's `/`, a
// fake file system (HostFs) and a fixed architecture. Nothing here reads
// this machine: resolveSpec(profile, flags, fakeResolveContext()) and
// assemblePlan(spec, fakeHostFacts(), fakeSetup(name)) are pure functions of
// what is written below: every host read of theirs goes through HostFacts
// (HostFs included), so a new one cannot slip in without a fake here.

import type { IdentityInfo } from '../../../src/host/ids';
import type { HutchPaths } from '../../../src/host/paths';
import type { TopLevelEntry } from '../../../src/host/host-scan';
import type { HostFacts, HostFs } from '../../../src/host/facts';
import type { ResolveContext, SpecOverrides } from '../../../src/spec/resolve';
import type { SandboxSetup } from '../../../src/sandbox/assemble';
import { overlayDriver } from '../../../src/rootfs/overlay';

export const FAKE_UID = 1000;
export const FAKE_GID = 1000;
export const FAKE_USER = 'u';
export const FAKE_HOME = '/home/u';
/** A directory of the fake file system (FAKE_DIRS). */
export const FAKE_CWD = '/tmp';

/** The host environment the fake user runs hutch in. */
export const FAKE_ENV: Record<string, string> = {
  HOME: FAKE_HOME,
  USER: FAKE_USER,
  PATH: '/home/u/.local/bin:/usr/local/bin:/usr/bin:/bin',
  TERM: 'xterm-256color',
  LANG: 'en_US.UTF-8',
  LC_TIME: 'de_DE.UTF-8',
  LC_PAPER: 'de_DE.UTF-8',
  TZ: 'Europe/Berlin',
  COLORTERM: 'truecolor',
  SSH_AUTH_SOCK: '/run/user/1000/ssh-agent.sock',
  GITHUB_TOKEN: 'ghp_secret',
  EDITOR: 'vi',
  XDG_RUNTIME_DIR: '/run/user/1000',
  XDG_CONFIG_HOME: '/home/u/.config',
  DBUS_SESSION_BUS_ADDRESS: 'unix:path=/run/user/1000/bus',
};

/** Directories of the fake host (bind sources and `dir:` roots must exist). */
export const FAKE_DIRS = ['/', '/etc', '/tmp', '/usr', '/srv', '/opt', '/home', FAKE_HOME, '/home/u/proj', '/var'];

export interface FakeFsContent {
  dirs?: readonly string[];
  /** Regular files and their text (env files). */
  files?: Readonly<Record<string, string>>;
  /** Block devices and their numbers (--device-read-bps). */
  devices?: Readonly<Record<string, { major: number; minor: number }>>;
  /** Symbolic links and their targets. */
  links?: Readonly<Record<string, string>>;
}

/** A HostFs answering from `content` (added to FAKE_DIRS), the OS's messages imitated. */
export function fakeFs(content: FakeFsContent = {}): HostFs {
  const dirs = new Set([...FAKE_DIRS, ...(content.dirs ?? [])]);
  const files = content.files ?? {};
  const devices = content.devices ?? {};
  const enoent = (call: string, path: string) => Object.assign(new Error(`ENOENT: no such file or directory, ${call} '${path}'`), { code: 'ENOENT' });
  return {
    isDir: (path) => dirs.has(path),
    exists: (path) => dirs.has(path) || path in files || path in devices,
    readText(path) {
      if (path in files) return files[path];
      if (dirs.has(path)) throw Object.assign(new Error(`EISDIR: illegal operation on a directory, read`), { code: 'EISDIR' });
      throw enoent('open', path);
    },
    blockDevice(path) {
      if (path in devices) return devices[path];
      if (path in files || dirs.has(path)) return undefined;
      throw enoent('stat', path);
    },
    link: (path) => (content.links && path in content.links ? content.links[path] : dirs.has(path) || path in files || path in devices ? null : undefined),
    // Everything of the fake host belongs to the fake user (mapped): no root owned outside the map.
    topOwners: (root) => (dirs.has(root) ? [{ path: root, uid: 1000, gid: 1000 }] : []),
    scanTop: () => [],
  };
}

/** The architecture of the fake host: decides the default seccomp list (src/spec/seccomp.ts). */
export const FAKE_ARCH = 'x64';

/** The fake host's RAM: 8 GiB, so the default RAM budget is 4 GiB. */
export const FAKE_RAM = 8 * 1024 ** 3;

export function fakeResolveContext(extra: Partial<ResolveContext> = {}): ResolveContext {
  return { env: { ...FAKE_ENV }, cwd: FAKE_CWD, arch: FAKE_ARCH, fs: fakeFs(), totalMemory: FAKE_RAM, ...extra };
}

/** SpecOverrides with nothing given (what `hutch run` with no flags produces), plus `o`. */
export function noOverrides(o: Partial<SpecOverrides> = {}): SpecOverrides {
  return { volumes: [], tmpfs: [], env: [], envFiles: [], capAdd: [], capDrop: [], command: [], ...o };
}

/** uid 1000 -> 0, subordinate range 100000 (65536 ids) -> 1..65536. */
export function fakeIds(o: Partial<IdentityInfo> = {}): IdentityInfo {
  return {
    uid: FAKE_UID,
    gid: FAKE_GID,
    user: FAKE_USER,
    home: FAKE_HOME,
    uidMap: [
      { inside: 0, outside: FAKE_UID, count: 1 },
      { inside: 1, outside: 100000, count: 65536 },
    ],
    gidMap: [
      { inside: 0, outside: FAKE_GID, count: 1 },
      { inside: 1, outside: 100000, count: 65536 },
    ],
    newuidmap: '/usr/bin/newuidmap',
    newgidmap: '/usr/bin/newgidmap',
    ...o,
  };
}

/** Without subordinate ids: only the caller's own id. */
export function fakeIdsWithoutSubids(note = 'no range for u in /etc/subuid'): IdentityInfo {
  return fakeIds({
    uidMap: [{ inside: 0, outside: FAKE_UID, count: 1 }],
    gidMap: [{ inside: 0, outside: FAKE_GID, count: 1 }],
    newuidmap: undefined,
    newgidmap: undefined,
    subidNote: note,
  });
}

/** What hutchPaths(FAKE_ENV, FAKE_HOME, FAKE_UID) gives, written out. */
export function fakePaths(o: Partial<HutchPaths> = {}): HutchPaths {
  return {
    runtimeDir: '/run/user/1000',
    stateDir: '/run/user/1000/hutch',
    recordsDir: '/home/u/.local/state/hutch/records',
    dataDir: '/home/u/.local/share/hutch',
    cacheDir: '/home/u/.cache/hutch',
    configDir: '/home/u/.config/hutch',
    sessionBus: '/run/user/1000/bus',
    ...o,
  };
}

/** A usrmerged distribution's `/`, sorted as scanHostRoot() sorts it. */
export function fakeHostTop(): TopLevelEntry[] {
  const dir = (name: string, mode = 0o755, extra: Partial<{ readable: boolean; submounts: boolean }> = {}): TopLevelEntry => ({
    name,
    kind: 'dir',
    mode,
    readable: extra.readable ?? true,
    submounts: extra.submounts ?? false,
  });
  return [
    { name: 'bin', kind: 'symlink', target: 'usr/bin' },
    dir('boot'),
    dir('dev', 0o755, { submounts: true }),
    dir('etc'),
    dir('home', 0o755, { submounts: true }),
    { name: 'lib', kind: 'symlink', target: 'usr/lib' },
    { name: 'lib64', kind: 'symlink', target: 'usr/lib64' },
    dir('media'),
    dir('mnt'),
    dir('opt'),
    dir('proc', 0o555, { submounts: true }),
    dir('root', 0o700, { readable: false }),
    dir('run', 0o755, { submounts: true }),
    { name: 'sbin', kind: 'symlink', target: 'usr/sbin' },
    dir('srv'),
    { name: 'swap.img', kind: 'file', mode: 0o600 },
    dir('sys', 0o555, { submounts: true }),
    dir('tmp', 0o1777),
    dir('usr'),
    dir('var', 0o755, { submounts: true }),
  ];
}

export const FAKE_HELPER = '/home/u/.cache/hutch/helper-1/hutch-helper';
export const FAKE_CLI = '/home/u/.local/bin/hutch';

/** The HostFacts gatherHostFacts() would give on the fake host (time namespace, subordinate ids). */
export function fakeHostFacts(o: Partial<HostFacts> = {}): HostFacts {
  return {
    env: { ...FAKE_ENV },
    cwd: FAKE_CWD,
    arch: FAKE_ARCH,
    ids: fakeIds(),
    paths: fakePaths(),
    helper: FAKE_HELPER,
    protectedFiles: [FAKE_HELPER, FAKE_CLI],
    protectedDirs: (({ dataDir, cacheDir, stateDir, configDir }) => [dataDir, cacheDir, stateDir, configDir])(fakePaths()),
    procMounts: ['/proc'],
    hasTimeNamespace: true,
    totalMemory: FAKE_RAM,
    hostTop: fakeHostTop(),
    fs: fakeFs(),
    homes: { own: [FAKE_HOME], all: ['/home', '/root', FAKE_HOME] },
    ...o,
  };
}

/** What `hutch run` decides for sandbox `name` before assembling: kernel overlay, a sync point. */
export function fakeSetup(name: string, o: Partial<SandboxSetup> = {}, paths: HutchPaths = fakePaths()): SandboxSetup {
  return { sandboxDir: `${paths.stateDir}/${name}`, storage: overlayDriver, syncBeforeStart: true, ...o };
}

/** The system calls defaultSeccompDeny('x64') adds on x86_64 only (src/spec/seccomp.ts). */
export const X64_ONLY_SECCOMP = ['iopl', 'ioperm', 'uselib', 'ustat', 'sysfs', '_sysctl', 'create_module', 'get_kernel_syms', 'query_module', 'nfsservctl'];

/** The deny list without the x86_64-only names: what the helper of every build machine knows. */
export function portableSeccomp(list: string[]): string[] {
  return list.filter((s) => !X64_ONLY_SECCOMP.includes(s));
}
