// `hutch doctor`: its JSON agrees with probes this test makes itself (not
// through hutch), and with a tool hidden from PATH it reports it missing
// with the fix that `hutch run` then prints when a profile needs that tool.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describe, expectExit, hasCommand, runHutch, tmpDir } from '../lib/hutch';

interface Check {
  id: string;
  status: 'ok' | 'warning' | 'error';
  summary: string;
  fix?: string;
  facts?: Record<string, unknown>;
}
interface Report {
  canRun: boolean;
  checks: Check[];
}

async function doctor(env: Record<string, string | undefined> = {}): Promise<{ report: Report; code: number | null }> {
  const r = await runHutch(['doctor', '--json'], { env, timeoutMs: 60_000 });
  assert.ok(r.code === 0 || r.code === 1, describe(r));
  return { report: JSON.parse(r.stdout) as Report, code: r.code };
}
const get = (r: Report, id: string): Check => {
  const c = r.checks.find((x) => x.id === id);
  if (!c) throw new Error(`doctor has no check ${id}: ${r.checks.map((x) => x.id).join(', ')}`);
  return c;
};
const sh = (script: string) => spawnSync('sh', ['-c', script], { encoding: 'utf8' });
const canOpenRw = (dev: string) => {
  try {
    fs.closeSync(fs.openSync(dev, 'r+'));
    return true;
  } catch {
    return false;
  }
};

test('doctor --json agrees with independent probes of this host', async () => {
  const { report, code } = await doctor();
  assert.is(code, report.canRun ? 0 : 1, 'exit status follows canRun');
  assert.is(report.canRun, !report.checks.some((c) => c.status === 'error'));
  for (const c of report.checks) if (c.status !== 'ok') assert.ok(c.fix, `${c.id} is ${c.status} but names no fix`);

  // user namespaces: the sysctl value, and unshare(1) trying for real
  const max = Number(fs.readFileSync('/proc/sys/user/max_user_namespaces', 'utf8'));
  assert.is(get(report, 'userns.max').facts?.value, max);
  const unshare = spawnSync('unshare', ['-U', '-r', 'true']);
  assert.is(get(report, 'userns.create').status === 'ok', unshare.status === 0, 'userns.create vs unshare -Ur');

  // subordinate ids: our own parse of /etc/subuid, and the setuid bit
  const me = os.userInfo();
  const has = (file: string, id: number) =>
    (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '').split('\n').some((l) => l.startsWith(`${me.username}:`) || l.startsWith(`${id}:`));
  assert.is(get(report, 'subids.subuid').status === 'ok', has('/etc/subuid', me.uid));
  assert.is(get(report, 'subids.subgid').status === 'ok', has('/etc/subgid', me.gid));
  const nu = sh('command -v newuidmap').stdout.trim();
  const nuCheck = get(report, 'subids.newuidmap');
  if (nu) {
    const st = fs.statSync(nu);
    const caps = hasCommand('getcap') || fs.existsSync('/usr/sbin/getcap') ? sh(`PATH=$PATH:/usr/sbin:/sbin getcap ${nu}`).stdout : '';
    assert.is(nuCheck.status === 'ok', (st.uid === 0 && (st.mode & 0o4000) !== 0) || /cap_setuid/.test(caps), 'newuidmap: setuid or file caps');
    assert.is(nuCheck.facts?.path, nu);
  } else assert.is(nuCheck.status, 'warning');

  // kernel overlayfs in a user namespace, mounted by util-linux, not by hutch
  const d = tmpDir('doctor-ovl-');
  const ovl = spawnSync('unshare', [
    '-Urm',
    'sh',
    '-c',
    `mount -t tmpfs t ${d} && mkdir ${d}/u ${d}/w ${d}/m && mount -t overlay o -o lowerdir=/usr,upperdir=${d}/u,workdir=${d}/w,userxattr ${d}/m && test -x ${d}/m/bin/sh`,
  ]);
  assert.is(get(report, 'storage.overlay').status === 'ok', ovl.status === 0, `storage.overlay vs a real mount: ${ovl.stderr}`);

  // devices: open them read-write ourselves
  assert.is(get(report, 'storage.dev-fuse').status === 'ok', canOpenRw('/dev/fuse'));
  assert.is(get(report, 'network.dev-tun').status === 'ok', canOpenRw('/dev/net/tun'));
  for (const [id, tool] of [
    ['storage.fuse-overlayfs', 'fuse-overlayfs'],
    ['network.slirp4netns', 'slirp4netns'],
    ['network.pasta', 'pasta'],
    ['network.iptables', 'iptables'],
    ['network.ebtables-restore', 'ebtables-restore'],
  ]) {
    assert.is(get(report, id).status === 'ok', hasCommand(tool) || fs.existsSync(`/usr/sbin/${tool}`), id);
  }

  // cgroups: the mount table through findmnt, hybrid = a v1 memory hierarchy
  const v2 = sh('findmnt -n -t cgroup2 -o TARGET | head -n 1').stdout.trim();
  assert.is(get(report, 'cgroup.v2').status === 'ok', v2 !== '');
  const v1mem = sh('awk \'$1=="memory"{print $2}\' /proc/cgroups').stdout.trim();
  if (v2) {
    const hybrid = report.checks.find((c) => c.id === 'cgroup.hybrid');
    assert.is(hybrid?.status === 'warning', v1mem !== '' && v1mem !== '0', 'hybrid warning iff memory sits in a v1 hierarchy');
    if (hybrid?.status === 'warning') assert.match(hybrid.fix ?? '', /cgroup_no_v1=all|unified_cgroup_hierarchy/);
    const own = fs.readFileSync('/proc/self/cgroup', 'utf8').match(/^0::(.*)$/m)![1];
    const delegated = get(report, 'cgroup.delegated').facts?.delegated as string | undefined;
    const ctl = fs.readFileSync(path.join(delegated ?? path.join(v2, own), 'cgroup.controllers'), 'utf8').split(/\s+/);
    assert.is(
      get(report, 'cgroup.controllers').status === 'ok',
      ['memory', 'cpu', 'pids', 'io'].every((c) => ctl.includes(c)),
    );
    let writable = true;
    try {
      fs.accessSync(path.join(v2, own, 'cgroup.procs'), fs.constants.W_OK);
    } catch {
      writable = false;
    }
    if (writable) assert.is(get(report, 'cgroup.delegated').status, 'ok', 'our own cgroup is writable');
  }

  // seccomp and Landlock: the kernel answers a syscall when python3 is here
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  assert.is(get(report, 'security.seccomp').status === 'ok', /^Seccomp_filters:/m.test(status));
  if (hasCommand('python3')) {
    const abi = spawnSync(
      'python3',
      [
        '-c',
        'import ctypes,platform; l=ctypes.CDLL(None,use_errno=True); n={"x86_64":444,"aarch64":444}.get(platform.machine(),444); print(l.syscall(n,None,0,1))',
      ],
      { encoding: 'utf8' },
    );
    assert.is(get(report, 'security.landlock').status === 'ok', Number(abi.stdout.trim()) > 0, `landlock vs syscall: ${abi.stdout}${abi.stderr}`);
  }
});

test('human output: one line per check, fixes, a verdict', async () => {
  const r = await runHutch(['doctor'], { timeoutMs: 60_000 });
  assert.ok(r.code === 0 || r.code === 1, describe(r));
  assert.match(r.stdout, /^user namespaces$/m);
  assert.match(r.stdout, /^ {2}(ok|warn|ERROR) /m);
  assert.match(r.stdout, /hutch (can|cannot) run here/);
  const bad = await runHutch(['doctor', 'extra']);
  expectExit(bad, 125);
});

/** A PATH with every command of /usr/bin and /bin except `hidden` (symlinks). */
function pathWithout(hidden: string): string {
  const dir = tmpDir(`doctor-path-`);
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  for (const src of ['/usr/local/bin', '/usr/bin', '/bin']) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(src);
    } catch {
      continue;
    }
    for (const n of names) {
      if (n === hidden || fs.existsSync(path.join(bin, n))) continue;
      fs.symlinkSync(path.join(src, n), path.join(bin, n));
    }
  }
  return bin; // /usr/sbin and /sbin are added by hutch's lookup: nothing of ours lives there
}

test('PATH without fuse-overlayfs: doctor says so, run --storage-driver fuse-overlayfs fails 125 with the same fix', async () => {
  const PATH = pathWithout('fuse-overlayfs');
  const { report } = await doctor({ PATH });
  const c = get(report, 'storage.fuse-overlayfs');
  assert.is.not(c.status, 'ok');
  assert.match(c.summary, /not installed/);
  assert.ok(c.fix && /fuse-overlayfs/.test(c.fix), c.fix);
  const r = await runHutch(['run', '--network', 'none', '--storage-driver', 'fuse-overlayfs', '--', '/bin/true'], { env: { PATH } });
  expectExit(r, 125);
  assert.ok(r.stderr.includes(c.fix!), `run's hint lacks doctor's fix "${c.fix}":\n${r.stderr}`);
  assert.not.match(r.stderr, /ENOENT|spawn|errno/i);
});

test('PATH without newuidmap: doctor says so, a profile with subordinateIds: required fails 125 with the same fix', async () => {
  const PATH = pathWithout('newuidmap');
  const { report } = await doctor({ PATH });
  const c = get(report, 'subids.newuidmap');
  assert.is(c.status, 'warning');
  assert.match(c.summary, /newuidmap is not installed/);
  assert.match(c.fix ?? '', /install.*(uidmap|shadow)/);
  const dir = tmpDir('doctor-prof-');
  const profile = path.join(dir, 'needs-subids.yaml');
  fs.writeFileSync(profile, 'extends: default\nnetwork: none\nsubordinateIds: required\n');
  const r = await runHutch(['run', '--profile', profile, '--', '/bin/true'], { env: { PATH } });
  expectExit(r, 125);
  // Without ranges (root here has none) the first missing piece is the range itself.
  const first = ['subids.subuid', 'subids.subgid', 'subids.newuidmap'].map((id) => get(report, id)).find((x) => x.status !== 'ok')!;
  assert.ok(r.stderr.includes(first.fix!), `run's hint lacks doctor's fix "${first.fix}" (${first.id}):\n${r.stderr}`);
  // With newuidmap visible, the same profile runs when the user has ranges.
  const ok = await runHutch(['run', '--profile', profile, '--', '/bin/true']);
  const full = await doctor();
  if (get(full.report, 'subids.subuid').status === 'ok' && get(full.report, 'subids.subgid').status === 'ok') expectExit(ok, 0);
  else expectExit(ok, 125);
});

test('PATH without slirp4netns: doctor reports it, run --network-driver slirp4netns fails 125 with the same fix', async () => {
  const PATH = pathWithout('slirp4netns');
  const { report } = await doctor({ PATH });
  const c = get(report, 'network.slirp4netns');
  assert.is(c.status, 'warning');
  assert.match(c.summary, /slirp4netns is not installed/);
  assert.match(c.fix ?? '', /install.*slirp4netns/);
  // A run that needs slirp4netns fails 125 before anything starts, with doctor's fix.
  const r = await runHutch(['run', '--network', 'slirp', '--network-driver', 'slirp4netns', '--', '/bin/true'], { env: { PATH } });
  expectExit(r, 125);
  assert.ok(r.stderr.includes(c.fix!), `run's hint lacks doctor's fix "${c.fix}":\n${r.stderr}`);
  assert.not.match(r.stderr, /ENOENT|spawn|errno/i);
  // pasta is still there: network is not blocked
  assert.is(
    report.checks.some((x) => x.id === 'network.user-mode'),
    false,
  );
  // Both hidden: the default profile's network cannot start, doctor exits 1.
  const none = pathWithout('slirp4netns');
  fs.rmSync(path.join(none, 'pasta'), { force: true });
  const both = await doctor({ PATH: none });
  if (!fs.existsSync('/usr/sbin/pasta') && !fs.existsSync('/usr/sbin/slirp4netns')) {
    assert.is(get(both.report, 'network.user-mode').status, 'error');
    assert.is(both.code, 1);
  }
});

test.run();
