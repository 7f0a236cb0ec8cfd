// Run the pure core of `hutch run` once at build time, for the single
// executable's V8 startup snapshot (src/main.ts, build.mjs): V8 keeps the
// bytecode of functions that ran while the snapshot was made, so a real run
// no longer compiles the flag parser, profile merge, spec resolution and plan
// assembly from source (measured: npm run bench --group startup).
//
// Only pure code runs here, on a made-up host (nothing of the build machine
// is read: no identity, helper, mounts or environment), with a fixed name (no
// Math.random at build time); every result is dropped. Nothing here may leave
// state behind in a module: the heap is frozen into the binary.

import type { HostFacts, HostFs } from '../host/facts';
import { loadProfile } from '../profile/index';
import { overlayDriver } from '../rootfs/overlay';
import { assemblePlan } from '../sandbox/assemble';
import { formatPlan } from '../helper/plan';
import { etcFilesFor } from '../net/etc-files';
import { resolveSpec } from '../spec/resolve';
import { overridesFromFlags } from './run';

const NOWHERE = '/nonexistent/hutch-snapshot';

const noFs: HostFs = {
  isDir: (p) => p === '/' || p === '/tmp',
  exists: (p) => p === '/' || p === '/tmp',
  readText: () => '',
  blockDevice: () => undefined,
  link: (p) => (p === '/bin' ? 'usr/bin' : p === '/' || p === '/tmp' ? null : undefined),
  topOwners: () => [],
  scanTop: () => [],
};

const dir = (name: string) => ({ name, kind: 'dir' as const, mode: 0o755, readable: true, submounts: false });

export async function warmRunPath(): Promise<void> {
  const env = { HOME: NOWHERE, XDG_CONFIG_HOME: NOWHERE, PATH: '/usr/bin:/bin' };
  const facts: HostFacts = {
    env,
    cwd: '/tmp',
    arch: process.arch,
    ids: {
      uid: 1000,
      gid: 1000,
      user: 'u',
      home: NOWHERE,
      uidMap: [{ inside: 0, outside: 1000, count: 1 }],
      gidMap: [{ inside: 0, outside: 1000, count: 1 }],
    },
    paths: { runtimeDir: NOWHERE, stateDir: NOWHERE, recordsDir: NOWHERE, dataDir: NOWHERE, cacheDir: NOWHERE, configDir: NOWHERE },
    helper: `${NOWHERE}/hutch-helper`,
    protectedFiles: [],
    protectedDirs: [],
    hasTimeNamespace: true,
    totalMemory: 4 << 30,
    homes: { own: [NOWHERE], all: [NOWHERE] },
    procMounts: ['/proc'],
    hostTop: [{ name: 'bin', kind: 'symlink', target: 'usr/bin' }, dir('etc'), dir('home'), dir('tmp'), dir('usr'), dir('var')],
    fs: noFs,
  };
  for (const argv of [
    ['--name', 'warm', '--network', 'none', '--', '/bin/true'],
    ['--name', 'warm', '-e', 'A=1', '-v', '/tmp:/tmp', '--', 'sh'],
  ]) {
    const { o, profile: ref } = overridesFromFlags(argv);
    const profile = await loadProfile(ref, { cwd: '/tmp', env });
    const spec = resolveSpec(profile, o, facts);
    const setup = { sandboxDir: `${NOWHERE}/warm`, storage: overlayDriver, syncBeforeStart: false, etcFiles: etcFilesFor(spec) };
    formatPlan(assemblePlan(spec, facts, setup));
  }
}
