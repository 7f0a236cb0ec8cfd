// SandboxSpec + HostFacts + SandboxSetup -> plan (src/sandbox/assemble.ts and
// the modules it calls), for the host variants the golden plans do not
// cover. The host is the fake one (test/unit/lib/fake-host.ts); every plan
// assembled here is also fed to `hutch-helper check`.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadProfile } from '../../src/profile/index';
import { resolveSpec, type ResolveContext, type SpecOverrides } from '../../src/spec/resolve';
import { assemblePlan, hiddenPaths, type SandboxSetup } from '../../src/sandbox/assemble';
import { fuseOverlayfsDriver } from '../../src/rootfs/fuse-overlayfs';
import { formatPlan, type Plan } from '../../src/helper/plan';
import { fieldsOf, type OpName } from '../../src/helper/ops';
import type { HostFacts } from '../../src/host/facts';
import { hostsFile, resolvConf } from '../../src/net/etc-files';
import type { SandboxSpec } from '../../src/spec/types';
import {
  FAKE_CLI,
  FAKE_CWD,
  FAKE_ENV,
  FAKE_HELPER,
  fakeFs,
  fakeHostFacts,
  fakeIdsWithoutSubids,
  fakePaths,
  fakeResolveContext,
  fakeSetup,
  noOverrides,
} from './lib/fake-host';
import { helperCheck } from './lib/repo';
import { fails } from './lib/fails';

const DEFAULT = await loadProfile('builtin:default', { cwd: FAKE_CWD, env: FAKE_ENV });
const UNTRUSTED = await loadProfile('builtin:untrusted', { cwd: FAKE_CWD, env: FAKE_ENV });

function spec(o: Partial<SpecOverrides> = {}, profile = DEFAULT, ctx: ResolveContext = fakeResolveContext()): SandboxSpec {
  return resolveSpec(profile, noOverrides({ name: 't', ...o }), ctx);
}

interface Host {
  facts?: Partial<HostFacts>;
  setup?: Partial<SandboxSetup>;
}

/** The plan of sandbox `t` on the fake host, with `h` changed. */
function assemble(s: SandboxSpec, h: Host = {}): Plan {
  return assemblePlan(s, fakeHostFacts(h.facts), fakeSetup('t', h.setup));
}

/** Plan lines without comments, fields joined by TAB (not escaped). */
const lines = (p: Plan) => p.ops.map((o) => [o.op, ...fieldsOf(o)].join('\t'));
/** The fields of every `op` in the plan. */
const ops = (p: Plan, op: OpName) => p.ops.filter((o) => o.op === op).map(fieldsOf);
const noteTexts = (p: Plan) => [...p.notes.values()];

async function valid(p: Plan, what: string): Promise<void> {
  const r = await helperCheck(formatPlan(p));
  assert.is(r.code, 0, `${what}: hutch-helper check refused the plan: ${r.stderr}`);
}

// ------------------------------------------------------------ identity and namespaces

test('without subordinate ids: one map line each, no newuidmap, the reason in a note', async () => {
  const p = assemble(spec(), { facts: { ids: fakeIdsWithoutSubids() } });
  assert.equal(ops(p, 'uidmap'), [['0', '1000', '1']]);
  assert.equal(ops(p, 'gidmap'), [['0', '1000', '1']]);
  assert.equal(ops(p, 'newuidmap'), []);
  assert.ok(noteTexts(p).includes('user namespace: uid 1000 -> 0 only (no range for u in /etc/subuid)'));
  await valid(p, 'no subids');
});

test('namespaces: network host shares the net namespace; no sync point; no time namespace', async () => {
  const s = spec({ network: 'host' });
  const p = assemble(s, { facts: { hasTimeNamespace: false }, setup: { syncBeforeStart: false } });
  // mount: the monitor mounts the RAM budget tmpfs in a mount namespace of its own
  assert.equal(ops(p, 'unshare'), [['mount,ipc,uts'], ['pid,cgroup']]);
  // report is always the first op (failures of the userns ops are reported too); no sync point.
  assert.is(ops(p, 'report').length, 1);
  assert.equal(ops(p, 'sync'), []);
  assert.equal(ops(p, 'lo-up'), []);
  const l = lines(p);
  assert.equal(l.slice(0, 10), [
    'cleanup\t/run/user/1000/hutch/t',
    'report',
    'uidmap\t0\t1000\t1',
    'uidmap\t1\t100000\t65536',
    'gidmap\t0\t1000\t1',
    'gidmap\t1\t100000\t65536',
    'newuidmap\t/usr/bin/newuidmap',
    'newgidmap\t/usr/bin/newgidmap',
    'userns',
    'unshare\tmount,ipc,uts',
  ]);
  // Not owning its network namespace, it cannot mount a fresh sysfs: the plan binds the host's read-only.
  assert.ok(l.includes('bind\t/oldroot/sys\t/newroot/sys\tro,rec'));
  assert.ok(!l.some((x) => x.startsWith('sysfs\t')));
  await valid(p, 'network host');
  // none and slirp both get their own network namespace with lo up.
  for (const network of ['none', 'slirp', 'pasta']) {
    const q = assemble(spec({ network }));
    assert.equal(ops(q, 'unshare'), [['mount,ipc,uts,net'], ['pid,cgroup,time']], network);
    assert.equal(ops(q, 'lo-up'), [[]], network);
  }
});

test('the tail of every plan: hostname, pivot, environment, caps, seccomp, exec last', () => {
  const p = assemble(spec({ command: ['id', '-u'], user: 'nobody' }, UNTRUSTED));
  const l = lines(p);
  const from = l.indexOf('hostname\tt');
  assert.ok(from > 0);
  const seccomp = l.find((x) => x.startsWith('seccomp\t'))!;
  assert.equal(l.slice(from), [
    'hostname\tt',
    'lo-up',
    'pivot\t/newroot',
    'clearenv',
    'env\tPATH\t/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    'env\tHOME\t/root',
    'env\tcontainer\thutch',
    'env\tTERM\txterm-256color',
    'env\tLANG\ten_US.UTF-8',
    'chdir\t/',
    'setsid',
    'no-new-privs',
    'caps\t-',
    'user\tnobody',
    seccomp,
    'no-setid',
    'exec\tid\t-u',
  ]);
  // seccomp: unconfined drops the op.
  const q = assemble(spec({ securityOpt: ['seccomp=unconfined'] }));
  assert.equal(ops(q, 'seccomp'), []);
});

// ------------------------------------------------------------ storage drivers and roots

test('fuse-overlayfs: a daemon in the monitor, the merged mount bound as the root', async () => {
  const host: Host = { setup: { storage: fuseOverlayfsDriver('/usr/bin/fuse-overlayfs') } };
  const p = assemble(spec(), host);
  const dir = '/run/user/1000/hutch/t';
  assert.equal(ops(p, 'unshare'), [['mount,ipc,uts,net'], ['pid,cgroup,time']]);
  assert.equal(ops(p, 'daemon'), [
    [`${dir}/merged`, '/usr/bin/fuse-overlayfs', '-f', '-o', `lowerdir=/,upperdir=${dir}/ram/upper,workdir=${dir}/ram/work,allow_other`, `${dir}/merged`],
  ]);
  const l = lines(p);
  assert.ok(l.includes(`bind\t/oldroot${dir}/merged\t/newroot\trw`));
  assert.equal(ops(p, 'overlay'), []);
  // started before the sync point, where the monitor joins the sandbox cgroup: the daemon stays out of it
  const daemonAt = l.findIndex((x) => x.startsWith('daemon\t'));
  const scratchAt = l.indexOf(`scratch\t${dir}/ram\t4294967296\tupper\twork`);
  assert.ok(scratchAt >= 0 && scratchAt < daemonAt, l.join('\n'));
  assert.ok(daemonAt < l.indexOf('sync'), l.join('\n'));
  await valid(p, 'fuse-overlayfs');
  // --keep: the upper layer goes to the kept directory.
  const k = assemble(spec({ keep: '/tmp' }), host);
  assert.equal(ops(k, 'daemon')[0][4], 'lowerdir=/,upperdir=/tmp/upper,workdir=/tmp/work,allow_other');
  await valid(k, 'fuse-overlayfs --keep');
});

test('a dir: root is one overlay, and the home directory is not hidden (it is not the host)', async () => {
  const p = assemble(spec({ rootfs: 'dir:/etc' }));
  const l = lines(p);
  const at = l.indexOf('base\t/tmp');
  assert.equal(l.slice(at, at + 6), [
    'base\t/tmp',
    'bind\t/oldroot/run/user/1000/hutch/t/ram\t/R\trw',
    'mkdir\t/R/up\t755',
    'mkdir\t/R/up/upper\t755',
    'mkdir\t/R/up/work\t700',
    'overlay\t/newroot\t/oldroot/etc\t/R/up/upper\t/R/up/work\tuserxattr',
  ]);
  assert.ok(!l.some((x) => x.includes('/newroot/home/u')));
  assert.ok(!l.some((x) => x.startsWith('remount-ro')));
  await valid(p, 'dir root');
  // --read-only on a dir root: only the root itself after the pivot.
  const r = assemble(spec({ rootfs: 'dir:/etc', readOnly: true }));
  assert.equal(ops(r, 'remount-ro'), []);
  assert.equal(ops(r, 'remount-root-ro'), [[]]);
});

test('image layers: the store bound at /L, one overlay of the layers top first, base last', async () => {
  const store = '/home/u/.local/share/hutch/layers';
  const host: Host = { setup: { imageLayers: { store, ids: ['aaa', 'bbb'], base: '/srv/a:b,c' } } };
  const p = assemble(spec({ rootfs: 'image:alpine' }), host);
  const l = lines(p);
  const at = l.indexOf('base\t/tmp');
  assert.equal(l.slice(at, at + 7), [
    'base\t/tmp',
    'bind\t/oldroot/run/user/1000/hutch/t/ram\t/R\trw',
    'mkdir\t/R/up\t755',
    `bind\t/oldroot${store}\t/L\tro`,
    'mkdir\t/R/up/upper\t755',
    'mkdir\t/R/up/work\t700',
    'overlay\t/newroot\t/L/aaa/root:/L/bbb/root:/oldroot/srv/a\\:b\\,c\t/R/up/upper\t/R/up/work\tuserxattr',
  ]);
  assert.ok(noteTexts(p).includes('root: image alpine: overlay of 2 shared read-only layers (top first) and a private upper layer'));
  await valid(p, 'image layers');
  // Too many layers for one page of mount options.
  const ids = Array.from({ length: 100 }, (_, i) => i.toString(16).padStart(64, '0'));
  const e = fails(() => assemble(spec({ rootfs: 'image:big' }), { setup: { imageLayers: { store, ids } } }));
  assert.match(e.message, /^image big: 100 layers do not fit in one overlay mount \(\d+ > 4095 bytes of options\)$/);
  // An image root without resolved layers is a programming error, not a user error.
  assert.throws(() => assemble(spec({ rootfs: 'image:alpine' })), /internal: image alpine without resolved layers/);
});

// ------------------------------------------------------------ what is hidden

test('hiddenPaths: home as a tmpfs; hutch dirs and hide entries masked unless already hidden', () => {
  const paths = fakePaths({ dataDir: '/srv/hutch-data', cacheDir: '/var/cache/hutch', configDir: '/home/u/.config/hutch', sessionBus: '/var/run/bus' });
  const host = fakeHostFacts({ paths });
  const dir = '/run/user/1000/hutch/t';
  const s = { ...spec(), hide: ['/opt/secret', '/srv/hutch-data/sub', '/home/u/x', 'relative', '/tmp/x', '/run/y'] };
  assert.equal(hiddenPaths(s, host, dir), {
    homes: ['/home/u'],
    ownHomes: ['/home/u'],
    masks: ['/srv/hutch-data', '/var/cache/hutch', '/var/run/bus', '/opt/secret'],
  });
  assert.equal(hiddenPaths({ ...s, rootfs: { kind: 'dir', path: '/etc' } }, host, dir), { homes: [], ownHomes: [], masks: [] });
  // No false prefix matches: /home/uu is not under /home/u, /tmpx not under /tmp.
  assert.equal(hiddenPaths({ ...spec(), hide: ['/home/uu', '/tmpx'] }, fakeHostFacts(), dir), {
    homes: ['/home/u'],
    ownHomes: ['/home/u'],
    masks: ['/home/uu', '/tmpx'],
  });
  // A sandbox dir outside the runtime dir (XDG_RUNTIME_DIR elsewhere) is masked too.
  assert.equal(hiddenPaths(spec(), fakeHostFacts({ paths: fakePaths({ stateDir: '/var/lib/hutch' }) }), '/var/lib/hutch/t'), {
    homes: ['/home/u'],
    ownHomes: ['/home/u'],
    masks: ['/var/lib/hutch'],
  });
});

test('masks and home: none in the plan', async () => {
  const s = { ...spec(), hide: ['/opt/secret'], home: 'none' as const };
  const p = assemble(s);
  assert.equal(ops(p, 'mask').slice(0, 1), [['/newroot/opt/secret']]);
  assert.ok(noteTexts(p).includes("hide hutch's own directories and the session bus"));
  assert.equal(ops(p, 'remount-ro'), [['/newroot/home/u', 'self']]);
  await valid(p, 'masks, home none');
});

// ------------------------------------------------------------ user mounts

test("user mounts: binds, volumes, tmpfs; a read-write bind gives hutch's own files back read-only", async () => {
  const host: Host = { facts: { protectedFiles: ['/etc/hutch/helper', '/etcetera/x', FAKE_HELPER, FAKE_CLI] } };
  const p = assemble(spec({ volumes: ['/etc:/cfg', '/usr:/u:ro', 'data:/data'], tmpfs: ['/t'] }), host);
  const l = lines(p);
  const at = l.indexOf('bind\t/oldroot/etc\t/newroot/cfg\trw,rec');
  assert.ok(at > 0);
  // The directories leading to a protected file are pinned (bound onto themselves: they cannot be renamed), then the file is read-only.
  assert.equal(l.slice(at, at + 8), [
    'bind\t/oldroot/etc\t/newroot/cfg\trw,rec',
    'bind\t/oldroot/etc/hutch\t/newroot/cfg/hutch\trw,rec,try',
    'bind\t/oldroot/etc/hutch/helper\t/newroot/cfg/hutch/helper\tro,rec,try',
    'bind\t/oldroot/usr\t/newroot/u\tro,rec',
    'bind\t/oldroot/home/u/.local/share/hutch/volumes/data/_data\t/newroot/data\trw,rec',
    'mkdir\t/newroot/t\t1777',
    // a --tmpfs without a size of its own is a directory of the RAM budget
    'mkdir\t/R/tmpfs3\t1777',
    'bind\t/R/tmpfs3\t/newroot/t\trw',
  ]);
  assert.ok(noteTexts(p).includes("hutch's own /etc/hutch/helper stays read-only inside"), noteTexts(p).join(' | '));
  await valid(p, 'user mounts');
});

test("-v /:/host gives hutch's own files back read-only at /host/... (not /hostPATH)", () => {
  // inside = target + f.slice(source.length) once cut the slash off with source "/": the
  // read-only bind must land on /newroot/host/home/u/..., the path the sandbox sees.
  const p = assemble(spec({ volumes: ['/:/host'] }), { facts: { protectedFiles: [FAKE_CLI] } });
  assert.ok(
    lines(p).includes(`bind\t/oldroot${FAKE_CLI}\t/newroot/host${FAKE_CLI}\tro,rec,try`),
    lines(p)
      .filter((x) => x.includes(FAKE_CLI))
      .join(' | '),
  );
});

test('bind sources are checked against HostFacts.fs, not this machine', async () => {
  // /home/u/proj exists on the fake host only; /etc exists on this machine but not on the second fake.
  const p = assemble(spec({ volumes: ['/home/u/proj:/src'] }));
  assert.ok(lines(p).includes('bind\t/oldroot/home/u/proj\t/newroot/src\trw,rec'));
  await valid(p, 'bind from the fake host');
  const bare = { ...fakeFs(), exists: (x: string) => x === '/home/u/proj' };
  assert.is(
    fails(() => assemble(spec({ volumes: ['/etc:/cfg'] }), { facts: { fs: bare } })).message,
    '-v /etc:/cfg: the bind mount source /etc does not exist',
  );
});

test('a bind source that does not exist is an error naming the mount', () => {
  const e = fails(() => assemble(spec({ volumes: ['/nonexistent-hutch-src:/x:ro'] })));
  assert.is(e.message, '-v /nonexistent-hutch-src:/x:ro: the bind mount source /nonexistent-hutch-src does not exist');
  assert.is(e.hint, 'create it first, or fix the mount "/nonexistent-hutch-src:/x"');
});

test('--read-only on the host root: each plain overlay read-only, except what a mount covers', () => {
  const p = assemble(spec({ readOnly: true, volumes: ['/tmp:/opt'] }));
  assert.equal(ops(p, 'remount-ro'), [
    ['/newroot/boot', 'self'],
    ['/newroot/etc', 'self'],
    ['/newroot/media', 'self'],
    ['/newroot/mnt', 'self'],
    ['/newroot/srv', 'self'],
    ['/newroot/usr', 'self'],
  ]);
  const l = lines(p);
  assert.ok(l.indexOf('remount-root-ro') === l.indexOf('pivot\t/newroot') + 1);
});

// ------------------------------------------------------------ /etc/hosts and /etc/resolv.conf

test('etc files: hosts and resolv.conf contents', () => {
  assert.is(
    hostsFile('box', '10.0.2.100'),
    '# written by hutch for this sandbox\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.0.2.100\tbox\n',
  );
  assert.is(hostsFile('box', '10.0.2.100', '10.0.2.2').split('\n')[4], '10.0.2.2\thost.hutch.internal host.containers.internal');
  assert.is(
    resolvConf('10.0.2.3', 'slirp4netns', 'nameserver 127.0.0.53\nsearch example.org\n options edns0 trust-ad\ndomain x\n'),
    "# written by hutch: DNS goes through slirp4netns's forwarder\nnameserver 10.0.2.3\nsearch example.org\noptions edns0 trust-ad\ndomain x\n",
  );
});

test('etc files: written to the scratch tmpfs, bound read-only, following symlinks inside the root', async () => {
  // A `dir:` root on the fake host: its /etc/resolv.conf links into /run, as systemd-resolved's does.
  const root = '/srv/root';
  const at = (links: Record<string, string>) => {
    const fs = fakeFs({ dirs: [root, `${root}/etc`], files: { [`${root}/etc/hosts`]: '' }, links });
    const s = spec({ rootfs: `dir:${root}` }, DEFAULT, fakeResolveContext({ fs }));
    return { s, fs };
  };
  const hosts = hostsFile('t', '10.0.2.100');
  const resolv = resolvConf('10.0.2.3', 'pasta');
  const one = at({ [`${root}/etc/resolv.conf`]: '../run/systemd/resolve/stub-resolv.conf' });
  const p = assemble(one.s, { facts: { fs: one.fs }, setup: { etcFiles: { hosts, resolvConf: resolv } } });
  assert.equal(ops(p, 'file'), [
    ['/hutch-etc/hosts', '644', hosts],
    ['/hutch-etc/resolv.conf', '644', resolv],
  ]);
  const binds = ops(p, 'bind').filter((a) => a[0].startsWith('/hutch-etc/'));
  assert.equal(binds, [
    ['/hutch-etc/hosts', '/newroot/etc/hosts', 'ro'],
    ['/hutch-etc/resolv.conf', '/newroot/run/systemd/resolve/stub-resolv.conf', 'ro'],
  ]);
  // The multi-line contents are escaped on one line each.
  assert.ok(formatPlan(p).includes(`file\t/hutch-etc/hosts\t644\t# written by hutch for this sandbox%0A127.0.0.1%09localhost%0A`));
  await valid(p, 'etc files');
  // An absolute link is resolved inside the root too; a loop stops.
  const two = at({ [`${root}/etc/resolv.conf`]: '/etc/static/resolv.conf', [`${root}/etc/hosts`]: 'hosts' });
  const q = assemble(two.s, { facts: { fs: two.fs }, setup: { etcFiles: { hosts, resolvConf: resolv } } });
  assert.equal(
    ops(q, 'bind')
      .filter((a) => a[0].startsWith('/hutch-etc/'))
      .map((a) => a[1]),
    ['/newroot/etc/hosts', '/newroot/etc/static/resolv.conf'],
  );
});

test('etc files of an image root follow the symlinks of the image (top layer first), not of the host', () => {
  // /etc/resolv.conf of the image is a link (to resolv.real): the bind goes to its target in the
  // image, whatever the host's /etc/resolv.conf is (systemd-resolved: a path the image lacks).
  const store = '/srv/layers';
  const resolv = resolvConf('10.0.2.3', 'slirp4netns');
  const p = assemble(spec({ rootfs: 'image:x' }), {
    facts: {
      fs: fakeFs({
        dirs: [`${store}/top/root/etc`],
        links: { [`${store}/top/root/etc/resolv.conf`]: 'resolv.real', '/etc/resolv.conf': '/run/systemd/resolve/stub-resolv.conf' },
      }),
    },
    setup: { imageLayers: { store, ids: ['top'] }, etcFiles: { hosts: hostsFile('t', '10.0.2.100'), resolvConf: resolv } },
  });
  const dest = ops(p, 'bind')
    .filter((a) => a[0] === '/hutch-etc/resolv.conf')
    .map((a) => a[1]);
  assert.equal(dest, ['/newroot/etc/resolv.real']);
});

test('/etc/hostname: the sandbox hostname (with --hostname too), bound read-only before the user mounts, for network host as well; not for setup steps', async () => {
  for (const o of [{}, { hostname: 'box' }, { network: 'host', hostname: 'h' }, { volumes: ['/tmp:/etc/hostname:ro'] }] as Partial<SpecOverrides>[]) {
    const s = spec(o);
    const p = assemble(s, { setup: { hostnameFile: true } });
    assert.equal(
      ops(p, 'file').filter((f) => f[0] === '/hutch-etc/hostname'),
      [['/hutch-etc/hostname', '644', `${s.hostname}\n`]],
    );
    assert.equal(ops(p, 'hostname'), [[s.hostname]]);
    const l = lines(p);
    const own = l.indexOf('bind\t/hutch-etc/hostname\t/newroot/etc/hostname\tro');
    assert.ok(own > 0, l.join('\n'));
    // a user's mount of the file wins: it is mounted later
    const user = l.indexOf('bind\t/oldroot/tmp\t/newroot/etc/hostname\tro,rec');
    if (o.volumes) assert.ok(user > own, l.join('\n'));
    await valid(p, `hostname file ${JSON.stringify(o)}`);
  }
  // a symlink of the root's /etc/hostname is followed inside the root, as for /etc/hosts
  const root = '/srv/root';
  const fs = fakeFs({ dirs: [root, `${root}/etc`], links: { [`${root}/etc/hostname`]: '../run/hostname' } });
  const q = assemble(spec({ rootfs: `dir:${root}` }, DEFAULT, fakeResolveContext({ fs })), { facts: { fs }, setup: { hostnameFile: true } });
  assert.ok(lines(q).includes('bind\t/hutch-etc/hostname\t/newroot/run/hostname\tro'));
  assert.not.ok(lines(assemble(spec())).some((x) => x.includes('/etc/hostname')));
});

test.run();
