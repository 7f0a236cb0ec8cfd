// The isolation claims of `hutch run`, each tried from inside a real sandbox
// (and checked from outside where the host is the witness). Runs as root and
// as an unprivileged user with subordinate ids (test/run.mjs prepares it).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describe, descendants, expectExit, hostPids, procStatus, repoPath, runHutch, spawnHutch, tmpDir, waitFor } from '../lib/hutch';

const uid = process.getuid!();
const sh = (script: string, ...flags: string[]) => runHutch(['run', '--network', 'none', ...flags, '--', 'sh', '-c', script]);
const uniq = () => `t${process.pid}-${Math.random().toString(16).slice(2, 8)}`;

function subuidStart(): number | undefined {
  const name = os.userInfo().username;
  for (const line of fs.readFileSync('/etc/subuid', 'utf8').split('\n')) {
    const [who, start] = line.split(':');
    if (who === name || who === String(uid)) return Number(start);
  }
  return undefined;
}

test('pid 1 is hutch init and the command is its child', async () => {
  const r = expectExit(await sh('echo "$$ $PPID"; cat /proc/1/comm'));
  const [ids, comm] = r.stdout.trim().split('\n');
  assert.is(ids, '2 1', describe(r));
  assert.match(comm, /hutch/);
});

test('no host pid is visible inside', async () => {
  const r = expectExit(await sh('ls /proc | grep "^[0-9]" | tr "\\n" " "'));
  const inside = r.stdout.trim().split(/\s+/).map(Number);
  // pid 1 (init), the shell and its pipeline: nothing else, all small numbers.
  assert.ok(inside.length <= 6, `too many pids inside: ${r.stdout}`);
  assert.ok(Math.max(...inside) < 10, `host-looking pid inside: ${r.stdout}`);
  assert.ok(!inside.includes(process.pid) || process.pid < 10);
  const probe = expectExit(await sh(`test -e /proc/${process.pid} && echo visible || echo hidden`));
  assert.is(probe.stdout.trim(), process.pid < 10 ? probe.stdout.trim() : 'hidden');
});

test('uid 0 inside is the invoking uid outside', async () => {
  const name = uniq();
  const child = spawnHutch(['run', '--network', 'none', '--name', name, '--', 'sh', '-c', 'id -u; exec sleep 30']);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  try {
    await waitFor(() => out.includes('\n'), 15_000, { what: 'id output' });
    assert.is(out.trim(), '0');
    const sleeper = await waitFor(() => descendants(child.pid!).find((p) => fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'sleep'), 10_000, {
      what: 'the sleep process on the host',
    });
    const st = procStatus(sleeper)!;
    assert.is(st.Uid.split(/\s+/)[0], String(uid), `host Uid line: ${st.Uid}`);
  } finally {
    child.kill('SIGTERM');
  }
});

test('subordinate ids: uid 1000 inside lands on the host as the mapped subordinate uid', async () => {
  const dir = tmpDir();
  const start = subuidStart();
  const r = await sh('touch /data/f && chown 1000:1000 /data/f && stat -c %u /data/f', '-v', `${dir}:/data`);
  if (start === undefined || uid === 0) {
    // Without a subordinate range only uid 0 exists inside: the chown must fail, not be faked.
    assert.is.not(r.code, 0, describe(r));
    assert.match(r.stderr, /chown/);
  } else {
    expectExit(r);
    assert.is(r.stdout.trim(), '1000');
    assert.is(fs.statSync(path.join(dir, 'f')).uid, start + 999);
  }
});

test('--user runs the command as another uid with no capabilities (or says why it cannot)', async () => {
  const dir = tmpDir();
  fs.chmodSync(dir, 0o777);
  const start = subuidStart();
  const r = await runHutch([
    'run',
    '--network',
    'none',
    '-u',
    '1000:1000',
    '-v',
    `${dir}:/out`,
    '--',
    'sh',
    '-c',
    'id -u; id -g; grep CapEff /proc/self/status; touch /out/f',
  ]);
  if (start === undefined || uid === 0) {
    assert.is(r.code, 125, describe(r));
    assert.match(r.stderr, /not mapped in the sandbox: ids other than 0 need subordinate ids/);
  } else {
    expectExit(r);
    assert.match(r.stdout, /^1000\n1000\nCapEff:\s+0+$/m, describe(r));
    assert.is(fs.statSync(path.join(dir, 'f')).uid, start + 999);
  }
  const bad = await runHutch(['run', '--network', 'none', '-u', 'no-such-user-x', '--', 'true']);
  assert.is(bad.code, 125);
  assert.match(bad.stderr, /no such user in the sandbox's \/etc\/passwd/);
});

test('--user with --cap-drop SETUID/SETGID/ALL: the switch happens (before the drop), the bounding set lacks what was dropped', async () => {
  const start = subuidStart();
  const status = 'id -u; id -g; grep -E "^Cap(Inh|Prm|Eff|Bnd):" /proc/self/status';
  const bnd = (out: string) => BigInt(`0x${/^CapBnd:\s+([0-9a-f]+)$/m.exec(out)?.[1] ?? 'x'}`);
  const SETGID = 1n << 6n;
  const SETUID = 1n << 7n;
  // uid 0 inside needs no CAP_SETUID to stay uid 0; the group is set all the same
  const root = expectExit(await runHutch(['run', '--network', 'none', '-u', '0:0', '--cap-drop', 'SETUID', '--cap-drop', 'SETGID', '--', 'sh', '-c', status]));
  assert.match(root.stdout, /^0\n0\n/, describe(root));
  assert.is(bnd(root.stdout) & (SETUID | SETGID), 0n, describe(root));
  for (const drop of [['SETUID'], ['SETGID'], ['SETUID', 'SETGID'], ['ALL']]) {
    const flags = drop.flatMap((c) => ['--cap-drop', c]);
    const r = await runHutch(['run', '--network', 'none', '-u', '1000:1000', ...flags, '--', 'sh', '-c', status]);
    if (start === undefined || uid === 0) {
      // only uid 0 is mapped: the refusal is about the id, never about the capabilities
      assert.is(r.code, 125, describe(r));
      assert.match(r.stderr, /not mapped in the sandbox: ids other than 0 need subordinate ids/, describe(r));
      continue;
    }
    expectExit(r);
    assert.match(r.stdout, /^1000\n1000\nCapInh:\s+0+\nCapPrm:\s+0+\nCapEff:\s+0+\n/, `${drop}: ${describe(r)}`);
    const b = bnd(r.stdout);
    if (drop.includes('ALL')) assert.is(b, 0n, describe(r));
    for (const [name, bit] of [
      ['SETUID', SETUID],
      ['SETGID', SETGID],
    ] as const) {
      assert.is((b & bit) === 0n, drop.includes(name) || drop.includes('ALL'), `${drop}: ${name} in CapBnd ${b.toString(16)}`);
    }
  }
});

test('the hostname is the sandbox name, not the host name', async () => {
  const name = uniq();
  const r = expectExit(await runHutch(['run', '--network', 'none', '--name', name, '--', 'hostname']));
  assert.is(r.stdout.trim(), name);
  assert.is.not(r.stdout.trim(), os.hostname());
  const h = expectExit(await runHutch(['run', '--network', 'none', '--hostname', 'box', '--', 'cat', '/proc/sys/kernel/hostname']));
  assert.is(h.stdout.trim(), 'box');
});

test('/etc/hostname says the sandbox hostname, as `hostname` does: by default, with --hostname, --network host and --read-only', async () => {
  const name = uniq();
  const cases: [string, string[]][] = [
    [name, ['--network', 'none', '--name', name]],
    ['box', ['--network', 'none', '--hostname', 'box']],
    ['hostnet', ['--network', 'host', '--hostname', 'hostnet']],
    ['ro', ['--network', 'none', '--read-only', '--hostname', 'ro']],
  ];
  for (const [want, flags] of cases) {
    const r = expectExit(
      await runHutch(['run', ...flags, '--', 'sh', '-c', 'hostname; cat /etc/hostname; (echo x > /etc/hostname) 2>/dev/null && echo written; true']),
    );
    assert.equal(r.stdout.split('\n'), [want, want, ''], `${flags.join(' ')}: ${describe(r)}`);
  }
  // the host's file is untouched
  assert.is(fs.readFileSync('/etc/hostname', 'utf8').trim(), os.hostname());
});

test('read-only mounts refuse writes and cannot be made writable from inside', async () => {
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, 'f'), 'orig');
  const tries = [
    'echo x > /data/f',
    'touch /data/new',
    'mount -o remount,rw /data',
    'mount -o remount,rw,bind /data',
    'umount /data',
    'umount -l /data',
    'unshare -Urm sh -c "mount -o remount,rw,bind /data && echo x > /data/f"',
    'unshare -Urm sh -c "umount /data && ls /data"',
  ];
  for (const t of tries) {
    const r = await sh(`${t} && echo WRITABLE`, '-v', `${dir}:/data:ro`);
    assert.not.match(r.stdout, /WRITABLE/, `"${t}" succeeded:\n${describe(r)}`);
  }
  assert.is(fs.readFileSync(path.join(dir, 'f'), 'utf8'), 'orig');
  assert.equal(fs.readdirSync(dir), ['f']);
});

test('home: none gives an empty, read-only home; what is mounted into it stays writable', async () => {
  const dir = tmpDir();
  const profile = path.join(tmpDir(), 'none.yaml');
  fs.writeFileSync(profile, 'extends: default\nnetwork: none\nhome: none\n');
  const home = os.homedir();
  const r = await runHutch([
    'run',
    '--profile',
    profile,
    '-v',
    `${dir}:${home}/p`,
    '--',
    'sh',
    '-c',
    `ls -A ${home} | tr '\\n' ' '; touch ${home}/f 2>/dev/null && echo HOME-WRITABLE; touch ${home}/p/b && echo BIND-RW`,
  ]);
  expectExit(r);
  assert.is(r.stdout.trim(), 'p BIND-RW', describe(r));
});

test('network none has only the loopback interface, and it is up', async () => {
  const r = expectExit(await sh('ls /sys/class/net; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " "'));
  const lines = r.stdout.trim().split('\n');
  assert.equal([...new Set(lines)], ['lo'], describe(r));
  const up = expectExit(await sh('cat /sys/class/net/lo/operstate /sys/class/net/lo/flags'));
  assert.match(up.stdout, /0x9|0x49/); // IFF_UP|IFF_LOOPBACK (|IFF_RUNNING)
});

test('an orphaned zombie is reaped by pid 1', async () => {
  const r = expectExit(await sh('( sleep 0.2 & ) ; sleep 1.2; for s in /proc/[0-9]*/stat; do cut -d" " -f3 $s; done | grep -c Z || true'));
  assert.is(r.stdout.trim(), '0', describe(r));
});

test('SIGTERM to hutch reaches the command and its status comes back', async () => {
  const child = spawnHutch(['run', '--network', 'none', '--', 'sh', '-c', 'trap "exit 42" TERM; echo ready; while :; do sleep 0.05; done']);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  await waitFor(() => out.includes('ready'), 15_000, { what: 'ready' });
  const done = new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
  child.kill('SIGTERM');
  assert.is(await done, 42);
});

test('a command killed by a signal gives 128+N', async () => {
  const child = spawnHutch(['run', '--network', 'none', '--', 'sh', '-c', 'echo ready; exec sleep 30']);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  await waitFor(() => out.includes('ready'), 15_000, { what: 'ready' });
  const done = new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
  child.kill('SIGTERM');
  assert.is(await done, 143);
  const self = await sh('kill -9 $$');
  assert.is(self.code, 137, describe(self));
});

test('exit codes: the command status, 127 not found, 126 not executable, 125 hutch errors', async () => {
  assert.is((await sh('exit 3')).code, 3);
  const nf = await runHutch(['run', '--network', 'none', '--', 'no-such-command-xyz']);
  assert.is(nf.code, 127, describe(nf));
  assert.match(nf.stderr, /no-such-command-xyz/);
  const ne = await runHutch(['run', '--network', 'none', '--', '/etc/passwd']);
  assert.is(ne.code, 126, describe(ne));
  const bad = await runHutch(['run', '--netwrok', 'none', '--', 'true']);
  assert.is(bad.code, 125);
  assert.match(bad.stderr, /did you mean --network/);
  const badDir = await runHutch(['run', '--network', 'none', '-w', '/no/such/dir', '--', 'true']);
  assert.is(badDir.code, 125, describe(badDir));
});

test('SIGKILL to hutch leaves no process, state or temp file behind', async () => {
  const name = uniq();
  const tmpBefore = new Set(fs.readdirSync(os.tmpdir()));
  const child = spawnHutch(['run', '--network', 'none', '--name', name, '--', 'sh', '-c', 'echo hi > /tmp/x; echo ready; exec sleep 60']);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  await waitFor(() => out.includes('ready'), 15_000, { what: 'ready' });
  const tree = descendants(child.pid!);
  assert.ok(tree.length >= 3, `expected helper, init and command: ${tree}`);
  const runtime = process.env.XDG_RUNTIME_DIR || `/tmp/hutch-run-${uid}`;
  const stateDir = path.join(runtime, 'hutch', name);
  assert.ok(fs.existsSync(stateDir), 'state dir exists while running');
  process.kill(child.pid!, 'SIGKILL'); // only hutch itself, not its process group
  await waitFor(() => tree.every((p) => !hostPids().includes(p)), 10_000, { what: 'sandbox processes to exit' });
  await waitFor(() => !fs.existsSync(stateDir), 5_000, { what: `state dir ${stateDir} removed` });
  const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  assert.not.match(mounts, new RegExp(name));
  const leftovers = fs.readdirSync(os.tmpdir()).filter((f) => !tmpBefore.has(f) && !f.startsWith('hutch-test-'));
  assert.equal(leftovers, [], `new files in ${os.tmpdir()}`);
});

test('a file under $HOME that the profile did not grant cannot be read', async () => {
  const home = os.homedir();
  const secret = path.join(home, `.hutch-secret-${uniq()}`);
  fs.writeFileSync(secret, 'top secret', { mode: 0o600 });
  try {
    for (const profile of ['default', 'untrusted']) {
      const r = await runHutch(['run', '--profile', profile, '--network', 'none', '--', 'sh', '-c', `cat ${secret}; ls -A ${home} | wc -l`]);
      assert.not.match(r.stdout, /top secret/, `${profile}: ${describe(r)}`);
      assert.is(r.stdout.trim(), '0', `${profile}: home not empty: ${describe(r)}`);
    }
    // ...unless it is mounted.
    const granted = expectExit(await sh(`cat /granted`, '-v', `${secret}:/granted:ro`));
    assert.is(granted.stdout, 'top secret');
  } finally {
    fs.rmSync(secret, { force: true });
  }
});

test("hutch's runtime directory and the session bus are hidden", async () => {
  const runtime = tmpDir();
  fs.writeFileSync(path.join(runtime, 'bus'), '');
  const r = await runHutch(['run', '--network', 'none', '--', 'sh', '-c', `ls -A ${runtime} | wc -l`], {
    env: { XDG_RUNTIME_DIR: runtime, DBUS_SESSION_BUS_ADDRESS: `unix:path=${runtime}/bus` },
  });
  expectExit(r);
  assert.is(r.stdout.trim(), '0', describe(r));
});

test('/proc paths that leak or control host state are masked, /proc/sys is read-only', async () => {
  const r = await sh(
    'for f in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug; do test -s $f && echo "READ $f"; done; ' +
      'echo h > /proc/sysrq-trigger 2>/dev/null && echo SYSRQ; ' +
      'echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo PROCSYS; ' +
      'ls /proc/acpi /proc/scsi 2>/dev/null | grep -v : ; echo done',
  );
  assert.is(r.stdout.trim(), 'done', describe(r));
});

test('hardening: no_new_privs, new session, no inherited fds, capabilities per profile', async () => {
  const r = expectExit(
    await runHutch(
      [
        'run',
        '--network',
        'none',
        '--',
        'sh',
        '-c',
        'grep -E "NoNewPrivs|CapEff|CapBnd" /proc/self/status; cut -d" " -f6 /proc/$$/stat; echo $$; ls /proc/self/fd | tr "\\n" " "',
      ],
      {},
    ),
  );
  const lines = r.stdout.trim().split('\n');
  assert.match(r.stdout, /NoNewPrivs:\s+1/);
  const [sid, pid] = lines.slice(-3, -1);
  assert.is(sid, pid, 'the command leads its own session');
  assert.equal(
    lines
      .at(-1)!
      .trim()
      .split(' ')
      .map(Number)
      .filter((f) => f > 3),
    [],
    'no fd above 3 (3 is ls reading the dir)',
  );
  const eff = BigInt(`0x${/CapEff:\s+(\w+)/.exec(r.stdout)![1]}`);
  assert.ok(eff !== 0n, 'default profile keeps podman-like capabilities');
  assert.is(eff & (1n << 21n), 0n, 'no CAP_SYS_ADMIN by default');
  const u = expectExit(await runHutch(['run', '--profile', 'untrusted', '--network', 'none', '--', 'grep', '-E', 'Cap(Eff|Prm|Bnd|Amb)', '/proc/self/status']));
  for (const line of u.stdout.trim().split('\n')) assert.match(line, /:\s+0+$/, `untrusted keeps a capability: ${line}`);
});

test('seccomp: keyrings, bpf and io_uring are refused by default; seccomp=unconfined lifts the filter', async () => {
  const probe = `for my $p (["keyctl",250],["io_uring_setup",425],["bpf",321],["getpid",39]) { my $r = syscall($p->[1], 0, 0, 0, 0, 0); print "$p->[0] ", ($r >= 0 ? "ok" : "$!"), "\\n" }`;
  const filtered = expectExit(await runHutch(['run', '--network', 'none', '--', 'perl', '-e', probe]));
  assert.match(filtered.stdout, /^keyctl Operation not permitted$/m, describe(filtered));
  assert.match(filtered.stdout, /^io_uring_setup Operation not permitted$/m);
  assert.match(filtered.stdout, /^bpf Operation not permitted$/m);
  assert.match(filtered.stdout, /^getpid ok$/m);
  const mode = expectExit(await runHutch(['run', '--network', 'none', '--', 'grep', '^Seccomp:', '/proc/self/status']));
  assert.match(mode.stdout, /Seccomp:\s+2/);
  const open = expectExit(await runHutch(['run', '--network', 'none', '--security-opt', 'seccomp=unconfined', '--', 'perl', '-e', probe]));
  assert.not.match(open.stdout, /Operation not permitted/, describe(open));
  const bad = await runHutch(['run', '--security-opt', 'seccomp=loose', '--', 'true']);
  assert.is(bad.code, 125);
  assert.match(bad.stderr, /--security-opt seccomp/);
});

test('fds opened by the caller are not inherited', async () => {
  const child = spawnHutch(['run', '--network', 'none', '--', 'sh', '-c', 'ls /proc/self/fd | tr "\\n" " "'], {
    stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
  assert.is(code, 0);
  assert.equal(
    out
      .trim()
      .split(' ')
      .map(Number)
      .filter((f) => f > 3),
    [],
    out,
  );
});

test("the helper binary and hutch's own files cannot be written from inside any built-in profile", async () => {
  // A writable copy of hutch inside a project directory that the profiles bind read-write.
  const project = tmpDir();
  fs.mkdirSync(path.join(project, 'dist'));
  for (const f of ['hutch.cjs', 'hutch-helper']) fs.copyFileSync(repoPath('dist', f), path.join(project, 'dist', f));
  fs.chmodSync(path.join(project, 'dist', 'hutch-helper'), 0o755);
  const helper = path.join(project, 'dist', 'hutch-helper');
  const bundle = path.join(project, 'dist', 'hutch.cjs');
  const before = [fs.readFileSync(helper), fs.readFileSync(bundle)];
  for (const profile of ['default', 'untrusted', 'dev-server', 'ci']) {
    const script = [helper, bundle, '/work/dist/hutch-helper', '/work/dist/hutch.cjs']
      .map((f) => `(echo x >> ${f}) 2>/dev/null && echo "WROTE ${f}"; test -e ${f} && rm ${f} 2>/dev/null && echo "REMOVED ${f}"`)
      .join('; ');
    // --limits warn: ci is strict, and this host cannot enforce its limits (test/integration/limits.test.ts)
    const r = await runCmdIn(project, [
      'run',
      '--profile',
      profile,
      '--limits',
      'warn',
      '--network',
      'none',
      '-v',
      `${project}:${project}`,
      '--',
      'sh',
      '-c',
      `${script}; echo end`,
    ]);
    assert.is(r.stdout.trim(), 'end', `${profile}: ${describe(r)}`);
  }
  assert.ok(before[0].equals(fs.readFileSync(helper)) && before[1].equals(fs.readFileSync(bundle)));
});

async function runCmdIn(cwd: string, args: string[]) {
  const { runCmd } = await import('../lib/hutch');
  return runCmd([process.execPath, path.join(cwd, 'dist', 'hutch.cjs'), ...args], { cwd, env: { HUTCH_HELPER: undefined } });
}

test.run();
