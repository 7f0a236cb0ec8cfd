// Fake host facts for the pure core's unit tests: one fixed user, fixed XDG
// paths, a fixed subordinate id map, a fixed listing of the host's `/`.
// Nothing here reads this machine. Everything that *does* still depend on
// the host (because src/ reads it today) is listed in HOST_DEPENDENCIES, so
// the tests can be adapted in one place once host facts become an explicit
// input of src/.

import type { IdentityInfo } from '../../../src/host/ids';
import type { HutchPaths } from '../../../src/host/paths';
import type { TopLevelEntry } from '../../../src/host/host-scan';
import { hostFs } from '../../../src/host/facts';
import type { ResolveContext, SpecOverrides } from '../../../src/spec/resolve';

/**
 * Where src/ still reads the host during resolveSpec/assemblePlan (as of
 * this writing), and how these tests stay deterministic anyway:
 *  - profile `mounts: [.:/work]` resolve `.` against ctx.cwd, and
 *    assemblePlan checks existsSync(bind source): FAKE_CWD is /tmp, which
 *    exists on every Linux machine;
 *  - `--rootfs dir:PATH` statSync()s PATH: tests use /etc or a temp dir;
 *  - `--env-file` / profile envFile are read from disk: tests write temp files;
 *  - DEFAULT_SECCOMP_DENY depends on process.arch (src/spec/seccomp.ts): the
 *    golden plans replace it with its arch-independent part (PORTABLE_SECCOMP);
 *  - etcFileOps (src/net/etc-files.ts) lstat()s /etc/hosts and
 *    /etc/resolv.conf of the *host* root to follow symlinks: the golden plans
 *    carry no etc files; the symlink logic is tested against a temp `dir:` root;
 *  - parseDeviceRate statSync()s the device: tested with a block device of
 *    this machine when one exists.
 */
export const HOST_DEPENDENCIES = 'see the comment above HOST_DEPENDENCIES in test/unit/lib/fake-host.ts';

export const FAKE_UID = 1000;
export const FAKE_GID = 1000;
export const FAKE_USER = 'u';
export const FAKE_HOME = '/home/u';
/** Exists on every Linux machine (bind sources must exist, see above). */
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

export function fakeResolveContext(extra: Partial<ResolveContext> = {}): ResolveContext {
  return { env: { ...FAKE_ENV }, cwd: FAKE_CWD, arch: process.arch, fs: hostFs, ...extra };
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

/** The system calls DEFAULT_SECCOMP_DENY adds on x86_64 only (src/spec/seccomp.ts). */
export const X64_ONLY_SECCOMP = ['iopl', 'ioperm', 'uselib', 'ustat', 'sysfs', '_sysctl', 'create_module', 'get_kernel_syms', 'query_module', 'nfsservctl'];

/** DEFAULT_SECCOMP_DENY without the arch-specific names: the same on every build machine. */
export function portableSeccomp(list: string[]): string[] {
  return list.filter((s) => !X64_ONLY_SECCOMP.includes(s));
}
