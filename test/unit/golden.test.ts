// Golden plans: each built-in profile (sandbox-profiles/*.yaml) and a few
// variants (flags, storage drivers, roots, host differences), resolved with
// the fake host's environment (test/unit/lib/fake-host.ts), assembled with the
// fake HostFacts and SandboxSetup and formatted, must equal
// test/unit/golden/<file>.plan, and each golden file must be valid for the
// real helper (`build/hutch-helper check`, helper-c/PLAN.md "Invocation"):
// a round trip TS -> plan text -> C parser.
//
// When a change to src/ changes what a plan holds (new or different ops,
// notes), regenerate and review the diff:
//
//   UPDATE_GOLDEN=1 npm test -- --tier unit test/unit/golden.test.ts
//   git diff test/unit/golden/
//
// Review a rewritten golden file like code: it is exactly what the helper
// would execute for that profile. The assertions in the last test name the
// key decisions, so a regenerated file that lost one still fails.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadProfile } from '../../src/profile/index';
import { resolveSpec, type SpecOverrides } from '../../src/spec/resolve';
import { defaultSeccompDeny } from '../../src/spec/seccomp';
import { assemblePlan, type SandboxSetup } from '../../src/sandbox/assemble';
import { fuseOverlayfsDriver } from '../../src/rootfs/fuse-overlayfs';
import { formatPlan } from '../../src/helper/plan';
import type { HostFacts } from '../../src/host/facts';
import type { SandboxSpec } from '../../src/spec/types';
import {
  FAKE_ARCH,
  FAKE_CWD,
  FAKE_ENV,
  fakeHostFacts,
  fakeIdsWithoutSubids,
  fakeResolveContext,
  fakeSetup,
  noOverrides,
  portableSeccomp,
} from './lib/fake-host';
import { helperCheck, repoRoot } from './lib/repo';

const UPDATE = process.env.UPDATE_GOLDEN === '1';
const GOLDEN_DIR = join(repoRoot(), 'test', 'unit', 'golden');

interface Case {
  file: string;
  profile: string;
  overrides?: Partial<SpecOverrides>;
  facts?: Partial<HostFacts>;
  setup?: Partial<SandboxSetup>;
}

const LAYERS = '/home/u/.local/share/hutch/layers';

const CASES: Case[] = [
  // One per built-in profile.
  // With the user-mode NAT as `hutch run` sets it up: the host's own
  // addresses unreachable, the NAT waited for at sync-exec, no sync point
  // before the init (nothing needs one without a cgroup: src/cli/run.ts).
  { file: 'default', profile: 'default', setup: { unreachable: ['192.0.2.2'], syncBeforeExec: true, syncBeforeStart: false } },
  { file: 'untrusted', profile: 'untrusted' },
  { file: 'dev-server', profile: 'dev-server' },
  { file: 'ci', profile: 'ci' },
  // The flags that change the plan most, on top of default.
  {
    file: 'default-flags',
    profile: 'default',
    overrides: {
      readOnly: true,
      network: 'none',
      capDrop: ['ALL'],
      volumes: ['/etc:/cfg:ro', '/tmp:/work', 'cache:/root/.cache'],
      tmpfs: ['/scratch:size=64m,mode=1777'],
      env: ['K=V\twith tab', 'MULTI=line1\nline2', 'PCT=100%'],
      user: '1000:1000',
      workdir: '/work',
      hostname: 'box',
      command: ['sh', '-c', 'printf "%s\\n" "$K"'],
    },
  },
  // The other storage driver: a daemon in the monitor, the upper layer kept.
  {
    file: 'fuse-overlayfs-keep',
    profile: 'default',
    overrides: { storageDriver: 'fuse-overlayfs', keep: '/home/u/proj/upper' },
    setup: { storage: fuseOverlayfsDriver('/usr/bin/fuse-overlayfs') },
  },
  // An image root: shared read-only layers, /etc files written by hutch.
  {
    file: 'image-layers',
    profile: 'default',
    overrides: { rootfs: 'image:alpine', command: ['/bin/sh', '-l'] },
    setup: {
      imageLayers: { store: LAYERS, ids: ['a'.repeat(64), 'b'.repeat(64)] },
      etcFiles: { hosts: '# written by hutch for this sandbox\n127.0.0.1\tlocalhost\n10.0.2.100\tgolden\n' },
    },
  },
  // A dir: root, read-only, on a host without subordinate ids, a time namespace, or a sync point.
  {
    file: 'dir-root-plain-host',
    profile: 'untrusted',
    overrides: { rootfs: 'dir:/srv', readOnly: true, network: 'host' },
    facts: { ids: fakeIdsWithoutSubids(), hasTimeNamespace: false },
    setup: { syncBeforeStart: false },
  },
  // run -d without a resident hutch: the monitor keeps the log, the timeout, slirp4netns's exit fd, the cgroup, the status.
  {
    file: 'detached',
    profile: 'default',
    overrides: { limits: { timeout: '90s' } },
    setup: {
      detached: {
        leave: true,
        log: '/home/u/.local/state/hutch/records/golden/log',
        logMaxSize: 4194304,
        exitFile: '/home/u/.local/state/hutch/records/golden/exit',
        timeoutMs: 90000,
        holdFd: 6,
        cgroupPrefix: '/sys/fs/cgroup/user.slice/hutch.golden',
      },
    },
  },
];

/** The spec of a case; the seccomp list is made arch-independent (see fake-host.ts). */
async function specFor(c: Case): Promise<SandboxSpec> {
  const profile = await loadProfile(`builtin:${c.profile}`, { cwd: FAKE_CWD, env: FAKE_ENV });
  const spec = resolveSpec(profile, noOverrides({ name: 'golden', ...c.overrides }), fakeResolveContext());
  assert.equal(spec.seccompDeny, defaultSeccompDeny(FAKE_ARCH));
  return { ...spec, seccompDeny: portableSeccomp(spec.seccompDeny) };
}

async function planText(c: Case): Promise<string> {
  const spec = await specFor(c);
  return formatPlan(assemblePlan(spec, fakeHostFacts(c.facts), fakeSetup(spec.name, c.setup)));
}

function firstDifference(actual: string, expected: string): string {
  const a = actual.split('\n');
  const e = expected.split('\n');
  for (let i = 0; i < Math.max(a.length, e.length); i++) {
    if (a[i] !== e[i]) return `line ${i + 1}:\n  golden: ${JSON.stringify(e[i])}\n  actual: ${JSON.stringify(a[i])}`;
  }
  return 'no difference';
}

for (const c of CASES) {
  test(`golden plan: ${c.file}.plan`, async () => {
    const text = await planText(c);
    const file = join(GOLDEN_DIR, `${c.file}.plan`);
    if (UPDATE) {
      mkdirSync(GOLDEN_DIR, { recursive: true });
      writeFileSync(file, text);
      console.log(`# wrote ${file}`);
    }
    assert.ok(existsSync(file), `${file} is missing: run UPDATE_GOLDEN=1 npm test -- --tier unit test/unit/golden.test.ts`);
    const golden = readFileSync(file, 'utf8');
    // fixture: a line diff on failure.
    assert.fixture(
      text,
      golden,
      `${c.file}.plan differs from the assembled plan (${firstDifference(text, golden)}); if the change is intended: UPDATE_GOLDEN=1 npm test -- --tier unit test/unit/golden.test.ts`,
    );
    const r = await helperCheck(golden);
    assert.is(r.code, 0, `hutch-helper check refused ${c.file}.plan: ${r.stderr}`);
    assert.is(r.stderr, '');
  });
}

test('golden plans: the key decisions are visible in the text', async () => {
  const plans = new Map<string, string[]>();
  for (const c of CASES) plans.set(c.file, readFileSync(join(GOLDEN_DIR, `${c.file}.plan`), 'utf8').split('\n'));
  const has = (name: string, line: string) => plans.get(name)!.includes(line);
  // Every plan: cleanup first, the subordinate-id maps, newuidmap, the sandbox's own pid/cgroup/time namespaces.
  for (const [name, lines] of plans) {
    assert.is(lines[0], '# hutch helper plan v1', name);
    assert.is(lines.filter((l) => !l.startsWith('#'))[0], 'cleanup\t/run/user/1000/hutch/golden', name);
    assert.is(lines.at(-1), '', name);
    assert.is(lines.at(-2), 'end', name);
    assert.ok(lines.at(-3)!.startsWith('exec\t'), name);
    assert.ok(has(name, 'pivot\t/newroot'), name);
    assert.ok(has(name, 'no-new-privs'), name);
  }
  // The host-root plans of the fake host (kernel overlay, subordinate ids, time namespace).
  for (const name of ['default', 'untrusted', 'dev-server', 'ci', 'default-flags']) {
    const lines = plans.get(name)!;
    assert.ok(has(name, 'uidmap\t1\t100000\t65536'), name);
    assert.ok(has(name, 'newuidmap\t/usr/bin/newuidmap'), name);
    assert.ok(has(name, 'unshare\tpid,cgroup,time'), name);
    assert.ok(has(name, 'mkdir\t/newroot/home/u\t700'), `${name}: home hidden`);
    assert.ok(has(name, 'bind\t/R/home-home-u\t/newroot/home/u\trw'), `${name}: home hidden (a directory of the RAM budget)`);
    assert.ok(has(name, 'bind\t/oldroot/swap.img\t/newroot/swap.img\tro,try'), name);
    assert.ok(has(name, 'mkdir\t/newroot/root\t700'), `${name}: unreadable /root is an empty directory`);
    assert.ok(has(name, 'bind\t/oldroot/var\t/newroot/var\tro,rec'), `${name}: /var has submounts`);
    assert.ok(has(name, 'overlay\t/newroot/usr\t/oldroot/usr\t/R/up/upper/usr\t/R/up/work/usr\tuserxattr'), name);
    assert.ok(!lines.some((l) => l.startsWith('daemon\t')), name);
  }
  // Network: slirp profiles keep `net` in the first unshare and bring lo up; untrusted too (none = own netns).
  assert.ok(has('default', 'unshare\tmount,ipc,uts,net'));
  // The command starts only after the NAT is ready: sync-exec after the pivot, before the command's ops.
  const d = plans.get('default')!;
  assert.ok(
    d.indexOf('sync-exec') > d.indexOf('pivot\t/newroot') && d.indexOf('sync-exec') < d.indexOf('clearenv'),
    'default: sync-exec between pivot and the command',
  );
  // ... and it is the only go byte: no `sync` round trip before the init is forked
  assert.ok(!has('default', 'sync'), 'default: no sync before the init');
  assert.ok(has('default', 'unreachable\t192.0.2.2'));
  assert.ok(has('untrusted', 'lo-up'));
  // Capabilities.
  assert.ok(has('default', 'caps\tCHOWN,DAC_OVERRIDE,FOWNER,FSETID,KILL,NET_BIND_SERVICE,SETFCAP,SETGID,SETPCAP,SETUID,SYS_CHROOT'));
  assert.ok(has('untrusted', 'caps\t-'));
  assert.ok(has('default-flags', 'caps\t-'));
  // Environment filtering.
  assert.ok(has('default', 'env\tTZ\tEurope/Berlin'));
  assert.ok(!plans.get('untrusted')!.some((l) => l.startsWith('env\tTZ\t') || l.startsWith('env\tLC_')));
  for (const lines of plans.values()) assert.ok(!lines.some((l) => /GITHUB_TOKEN|SSH_AUTH_SOCK/.test(l)));
  // Mounts and workdir.
  assert.ok(has('dev-server', 'bind\t/oldroot/tmp\t/newroot/work\trw,rec'));
  assert.ok(has('ci', 'chdir\t/work'));
  assert.ok(has('default', 'chdir\t/'));
  // The flags case: read-only root, ro bind, volume, tmpfs, escaped env values, user.
  assert.ok(has('default-flags', 'remount-ro\t/newroot/usr\tself'));
  assert.ok(has('default-flags', 'remount-root-ro'));
  assert.ok(has('default-flags', 'bind\t/oldroot/etc\t/newroot/cfg\tro,rec'));
  assert.ok(has('default-flags', 'bind\t/oldroot/home/u/.local/share/hutch/volumes/cache/_data\t/newroot/root/.cache\trw,rec'));
  assert.ok(has('default-flags', 'tmpfs\t/newroot/scratch\t1777\t67108864'));
  assert.ok(has('default-flags', 'env\tK\tV%09with tab'));
  assert.ok(has('default-flags', 'env\tMULTI\tline1%0Aline2'));
  assert.ok(has('default-flags', 'env\tPCT\t100%25'));
  assert.ok(has('default-flags', 'user\t1000:1000'));
  assert.ok(has('default-flags', 'exec\tsh\t-c\tprintf "%25s\\n" "$K"'));
  assert.ok(has('default-flags', 'lo-up'), 'network none still has its own loopback');
  // fuse-overlayfs: the monitor's own mount namespace, the daemon with the kept upper, its mount as the root.
  const fuse = plans.get('fuse-overlayfs-keep')!;
  assert.ok(has('fuse-overlayfs-keep', 'unshare\tmount,ipc,uts,net'));
  assert.ok(
    has(
      'fuse-overlayfs-keep',
      'daemon\t/run/user/1000/hutch/golden/merged\t/usr/bin/fuse-overlayfs\t-f\t-o\tlowerdir=/,upperdir=/home/u/proj/upper/upper,workdir=/home/u/proj/upper/work,allow_other\t/run/user/1000/hutch/golden/merged',
    ),
  );
  assert.ok(has('fuse-overlayfs-keep', 'bind\t/oldroot/run/user/1000/hutch/golden/merged\t/newroot\trw'));
  assert.ok(!fuse.some((l) => l.startsWith('overlay\t')));
  assert.ok(has('fuse-overlayfs-keep', 'mkdir\t/newroot/home/u\t700'), 'home hidden with either driver');
  // Image layers: the store read-only at /L, one overlay of the layers top first; hutch's /etc/hosts; no home hiding.
  assert.ok(has('image-layers', `bind\t/oldroot${LAYERS}\t/L\tro`));
  assert.ok(has('image-layers', `overlay\t/newroot\t/L/${'a'.repeat(64)}/root:/L/${'b'.repeat(64)}/root\t/R/up/upper\t/R/up/work\tuserxattr`));
  assert.ok(has('image-layers', 'bind\t/hutch-etc/hosts\t/newroot/etc/hosts\tro'));
  assert.ok(!plans.get('image-layers')!.some((l) => l.includes('/newroot/home/u')));
  // dir: root on a plain host: own id only, no time namespace, no sync point, the host's network, read-only root.
  const plain = plans.get('dir-root-plain-host')!;
  assert.ok(has('dir-root-plain-host', 'overlay\t/newroot\t/oldroot/srv\t/R/up/upper\t/R/up/work\tuserxattr'));
  assert.equal(
    plain.filter((l) => l.startsWith('uidmap\t') || l.startsWith('newuidmap')),
    ['uidmap\t0\t1000\t1'],
  );
  assert.equal(
    plain.filter((l) => l.startsWith('unshare\t')),
    ['unshare\tmount,ipc,uts', 'unshare\tpid,cgroup'],
  );
  // report is in every plan (failures name the flag behind the op); no sync point, no lo.
  assert.ok(!has('dir-root-plain-host', 'sync') && has('dir-root-plain-host', 'report') && !has('dir-root-plain-host', 'lo-up'));
  assert.ok(has('dir-root-plain-host', 'remount-root-ro'));
  assert.ok(!plain.some((l) => l.startsWith('remount-ro\t')), 'a dir root is one overlay: the final remount covers it');
});

test('golden plans: one file per case, no stale ones; every built-in profile has one', () => {
  const files = readdirSync(GOLDEN_DIR)
    .filter((f) => f.endsWith('.plan'))
    .sort();
  assert.equal(files, CASES.map((c) => `${c.file}.plan`).sort());
  const builtins = readdirSync(join(repoRoot(), 'sandbox-profiles'))
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -'.yaml'.length));
  for (const b of builtins)
    assert.ok(
      CASES.some((c) => c.file === b && c.profile === b),
      `sandbox-profiles/${b}.yaml has no golden plan`,
    );
});

test.run();
