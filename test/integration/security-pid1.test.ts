// Issue 11, point 1: pid 1 and hutch's monitor, attacked from inside a real
// sandbox given every capability (--cap-add ALL), and the host's /proc bound
// in so that the monitor (host pid namespace, sandbox user namespace) is in
// sight. The attacks (test/integration/attacks/pid1-monitor.py) run first
// against a process of the sandbox's own, which they must break: that shows
// the tools work, so a refusal against pid 1 means something.
//
// Point 2 (the helper that runs is the bytes hutch carries) is attacked in
// the second half: a sandbox with the cache bound read-write tries to swap
// hutch's directories, and a planted helper is never executed.

import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { describe, descendants, expectExit, hasCommand, hutchCmd, procStatus, repoPath, runCmd, runHutch, testIf, tier, tmpDir, waitFor } from '../lib/hutch';
import { attackCommand, hasPython, noPython, runAttack } from '../lib/attacks';

const ZERO = '0000000000000000';

type Attacks = Record<'environ' | 'mem' | 'fd' | 'ptrace' | 'vm_read' | 'pidfd_getfd', string> & { fd_targets: string[] | string };

/** What attacks/pid1-monitor.py reports. */
interface Pid1Report {
  control: Attacks;
  pid1: Attacks;
  monitor: Attacks;
  init_host: Attacks;
  pid1_caps: Record<string, string>;
  pid1_session: number;
  pid1_tty: number;
  pid1_state: string;
  devtty: string;
  hostproc_masked: boolean;
  unmask: string;
  monitor_comm: string;
  monitor_pidfd_kill: string;
  monitor_kill: string;
  monitor_alive: boolean;
}

/**
 * Every attack failed. One exception, root on the host only: uid 0 inside is
 * then the host's root, which owns a non-dumpable process's /proc files, so
 * the fd directory may be listed; what opening its entries gives must then
 * be an error or /dev/null, never a file of hutch's.
 */
function refused(a: Attacks, who: string): void {
  const { fd_targets: targets, ...rest } = a;
  for (const [k, v] of Object.entries(rest)) {
    if (v === 'n/a') continue;
    if (k === 'fd' && v === 'ok' && tier() === 'root') {
      assert.ok(Array.isArray(targets) && targets.every((t) => t !== 'other'), `${who}: fds reachable: ${JSON.stringify(targets)}`);
      continue;
    }
    assert.is.not(v, 'ok', `${who}: ${k} succeeded`);
  }
}

testIf(
  test,
  hasPython,
  'with --cap-add ALL nothing inside can attach to, read or kill pid 1 or the monitor; pid 1 holds no capabilities',
  async () => {
    const secret = `hutch-secret-${process.pid}-${Date.now()}`;
    const { code, out, err } = await runAttack(
      ['run', '--network', 'none', '--cap-add', 'ALL', '-v', '/proc:/hostproc:ro'],
      'pid1-monitor.py',
      ['wait'],
      (r: Pid1Report, line, child) => {
        // the control: the same attacks work against a process of the sandbox's own
        const { fd_targets: _, ...control } = r.control as Attacks;
        assert.equal(control, { environ: 'ok', mem: 'ok', fd: 'ok', ptrace: 'ok', vm_read: 'ok', pidfd_getfd: 'ok' }, line);
        refused(r.pid1, 'pid 1');
        assert.equal(r.pid1_caps, { CapInh: ZERO, CapPrm: ZERO, CapEff: ZERO, CapBnd: ZERO, CapAmb: ZERO }, line);
        assert.is(r.pid1_session, 1, 'pid 1 leads a session of its own');
        assert.is(r.pid1_tty, 0, 'pid 1 has no controlling terminal');
        assert.is(r.pid1_state, 'S', 'SIGKILL and SIGSTOP from inside did nothing to pid 1');
        assert.is(r.devtty, 'ENXIO', 'the command has no controlling terminal either');
        assert.is(r.hostproc_masked, true, "the host's /proc bound inside is masked");
        assert.is(r.unmask, 'ok', 'CAP_SYS_ADMIN unmounts the mask (as its warning says)');
        assert.is(r.monitor_comm, 'hutch-helper', line);
        refused(r.monitor, 'the monitor (through the host /proc)');
        refused(r.init_host, 'pid 1 (through the host /proc)');
        assert.is.not(r.monitor_pidfd_kill, 'ok', 'pidfd_send_signal to the monitor');
        assert.is.not(r.monitor_kill, 'ok', 'kill(monitor pid, 0)');
        assert.ok(r.monitor_alive, line);

        // From the host: neither pid 1 nor the monitor carries hutch's environment.
        const init = descendants(child.pid!).find((p) => /\s1$/.test(procStatus(p)?.NSpid ?? ''));
        assert.ok(init, "pid 1 found among hutch's descendants");
        const monitor = Number(procStatus(init!)!.PPid);
        for (const [who, pid] of [
          ['pid 1', init!],
          ['the monitor', monitor],
        ] as const) {
          let env: string | undefined;
          try {
            env = fs.readFileSync(`/proc/${pid}/environ`, 'latin1');
          } catch (e) {
            // not dumpable: /proc/PID/environ belongs to root, so only root on the host reads it
            assert.is((e as NodeJS.ErrnoException).code, 'EACCES');
            assert.is(tier(), 'user');
          }
          if (env !== undefined) assert.not.ok(env.includes(secret), `${who}'s /proc/PID/environ holds hutch's environment`);
        }
        if (tier() === 'root') {
          // pid 1 keeps nothing of hutch's stdio (here: pipes to this test) and no other fd
          const fds = fs.readdirSync(`/proc/${init}/fd`).map((fd) => fs.readlinkSync(`/proc/${init}/fd/${fd}`));
          assert.equal(fds, ['/dev/null', '/dev/null', '/dev/null'], fds.join(' '));
        }
      },
      { env: { HUTCH_TEST_SECRET: secret } },
    );
    assert.is(code, 0, `${out}\n${err}`);
    assert.match(out, /\nend\n$/);
    assert.match(err, /warning: ALL capabilities/);
    assert.match(err, /warning: CAP_SYS_PTRACE lets the command attach to/);
  },
  noPython,
);

testIf(
  test,
  hasPython && hasCommand('script'),
  "on the user's terminal: no TIOCSTI into it, neither directly nor through pid 1",
  async () => {
    const argv = [...hutchCmd(), 'run', '--network', 'none', '--cap-add', 'ALL', ...attackCommand('pid1-monitor.py')];
    const quoted = argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    // script(1) gives hutch a pseudo-terminal as its controlling terminal and stdio
    const r = await runCmd(['script', '-qec', quoted, '/dev/null'], { timeoutMs: 60_000 });
    const line = r.stdout.split(/\r?\n/).find((l) => l.startsWith('{'));
    assert.ok(line, describe(r));
    const res = JSON.parse(line!);
    // hutch runs on a terminal here, but the command never holds it: without -t its stdio are
    // pipes the helper relays (terminal.test.ts), so nothing can be pushed into the user's shell
    assert.is(res.isatty, false, `the command's stdin is the user's terminal: ${line}`);
    // (the attack tries TIOCSTI on each of fds 0-2 that is a terminal: none is)
    assert.equal(res.tiocsti, [], `TIOCSTI: ${line}`);
    assert.is(res.devtty, 'ENXIO', line);
    refused(res.pid1, 'pid 1');
  },
  'needs script(1) and python3',
);

test("--cap-add SYS_PTRACE warns what it allows, as SYS_ADMIN does; the host's /proc in a bind stays masked", async () => {
  // without CAP_SYS_ADMIN the mask over the host's /proc cannot be removed, so
  // no process of hutch's outside the sandbox's pid namespace is in sight
  const script = 'ls -A /host/proc | wc -l; umount /host/proc 2>/dev/null && echo UNMOUNTED; ls -A /p | wc -l';
  const r = expectExit(
    await runHutch(['run', '--network', 'none', '--cap-add', 'SYS_PTRACE', '-v', '/:/host:ro', '-v', '/proc:/p:ro', '--', 'sh', '-c', script]),
  );
  assert.is(r.stdout, '0\n0\n', describe(r));
  assert.match(r.stderr, /hutch: warning: CAP_SYS_PTRACE lets the command attach to, and read the memory and environment of, every other process/);
  assert.not.match(r.stderr, /ALL capabilities/);
  const plain = expectExit(await runHutch(['run', '--network', 'none', '--', 'true']));
  assert.not.match(plain.stderr, /warning: CAP_/);
});

// ------------------------------------------------------------------ point 2

/** A private cache (XDG_CACHE_HOME) and home for the single executable; HUTCH_HELPER unset, so the embedded helper is used. */
function isolated() {
  const dir = tmpDir('secc-');
  fs.chmodSync(dir, 0o755);
  const home = path.join(dir, 'home');
  fs.mkdirSync(home, { mode: 0o700 });
  const cache = path.join(home, '.cache');
  return {
    dir,
    home,
    cache,
    env: {
      HOME: home,
      XDG_CACHE_HOME: cache,
      XDG_DATA_HOME: path.join(home, '.local', 'share'),
      XDG_CONFIG_HOME: path.join(home, '.config'),
      HUTCH_HELPER: undefined,
    },
  };
}

test("a sandbox with the cache, ~/.local or ~ bound read-write cannot write, move or replace hutch's directories", async () => {
  const { home, cache, env } = isolated();
  expectExit(await runHutch(['run', '--network', 'none', '--', 'true'], { env }));
  const helperDir = path.join(cache, 'hutch', 'helper');
  assert.ok(fs.statSync(helperDir).isDirectory(), 'the helper directory exists');
  const before = fs.readdirSync(helperDir);
  const tries = (c: string) => [
    `echo x > ${c}/hutch/planted`,
    `mkdir -p ${c}/hutch/helper/x`,
    `mv ${c}/hutch ${c}/moved`,
    `mv ${c}/hutch/helper ${c}/hutch/h2`,
    `rm -rf ${c}/hutch`,
  ];
  const cases: [string, string, string[]][] = [
    [`${cache}:/root/.cache`, '/root/.cache', tries('/root/.cache')],
    [
      `${home}:/h`,
      '/h/.cache',
      [
        ...tries('/h/.cache'),
        'mv /h/.cache /h/.cache-moved',
        'mv /h/.local /h/.local-moved',
        'mv /h/.local/share /h/.local/s2',
        'touch /h/.local/share/hutch/x',
      ],
    ],
    [`/:/host`, `/host${cache}`, [...tries(`/host${cache}`), `mv /host${home}/.cache /host${home}/c2`]],
  ];
  for (const [bind, , script] of cases) {
    const s = script.map((t) => `(${t}) 2>/dev/null && echo "DID: ${t}"`).join('; ');
    const r = await runHutch(['run', '--network', 'none', '--cap-add', 'ALL', '-v', bind, '--', 'sh', '-c', `${s}; echo end`], { env });
    if (bind.startsWith('/:')) {
      // a read-write bind of the whole host is refused outright (bounds.test.ts); the protection
      // of hutch's paths inside such a bind is covered by test/unit/protect.test.ts
      assert.is(r.code, 125, describe(r));
      assert.match(r.stderr, /would mount the host's whole root filesystem read-write/, describe(r));
      continue;
    }
    assert.is(r.stdout, 'end\n', `-v ${bind}: ${describe(r)}`);
  }
  assert.equal(fs.readdirSync(helperDir), before);
  for (const gone of ['hutch/planted', 'moved', 'hutch/h2']) assert.not.ok(fs.existsSync(path.join(cache, gone)), gone);
  for (const moved of ['.cache-moved', '.local-moved', 'c2', '.local/s2', '.local/share/hutch/x']) assert.not.ok(fs.existsSync(path.join(home, moved)), moved);
  // what the sandbox may do in the bound directories is unchanged
  const ok = await runHutch(['run', '--network', 'none', '-v', `${home}:/h`, '--', 'sh', '-c', 'echo mine > /h/.cache/mine && cat /h/.cache/mine'], { env });
  assert.is(expectExit(ok).stdout, 'mine\n');
  // a read-write bind of a directory inside hutch's own is refused
  const inside = await runHutch(['run', '--network', 'none', '-v', `${helperDir}:/x`, '--', 'true'], { env });
  expectExit(inside, 125);
  assert.match(inside.stderr, /is inside hutch's own .*mount it read-only/s);
});

test('whatever a sandbox leaves in the cache, the next run executes the helper inside hutch', async () => {
  const { dir, cache, env } = isolated();
  const marker = path.join(dir, 'pwned');
  // A long-running sandbox that owns the cache (bound read-write and
  // nothing of hutch's in it yet would be the worst case: protect the
  // directories it creates as well) plants executables everywhere it can,
  // and keeps doing so while another hutch starts.
  fs.mkdirSync(cache, { recursive: true });
  const plant = `#!/bin/sh\ntouch ${marker}\nexec /bin/true\n`;
  const script = `i=0; while [ $i -lt 200 ]; do for d in /c /c/hutch /c/hutch/helper /c/hutch/helper/*; do printf '%s' '${plant}' > "$d/hutch-helper" 2>/dev/null && chmod 755 "$d/hutch-helper" 2>/dev/null; done; i=$((i+1)); sleep 0.01; done; echo planted`;
  const attacker = runHutch(['run', '--network', 'none', '--cap-add', 'ALL', '-v', `${cache}:/c`, '--', 'sh', '-c', script], { env });
  // From the host (as the user): plant a fake helper at every name an older hutch used.
  const helperDir = path.join(cache, 'hutch', 'helper');
  await waitFor(() => fs.existsSync(helperDir), 30_000, { what: 'the helper directory' });
  // the name older hutch versions extracted the helper to, and executed
  const sha = createHash('sha256')
    .update(fs.readFileSync(repoPath('dist', 'hutch-helper')))
    .digest('hex');
  for (const sub of [sha]) {
    fs.mkdirSync(path.join(helperDir, sub), { recursive: true });
    fs.writeFileSync(path.join(helperDir, sub, 'hutch-helper'), plant, { mode: 0o755 });
  }
  for (let i = 0; i < 5; i++) {
    const r = await runHutch(['run', '--network', 'none', '--', 'sh', '-c', 'cat /proc/1/comm'], { env });
    assert.is(expectExit(r).stdout, 'hutch-helper\n', describe(r));
  }
  const a = await attacker;
  assert.is(a.code, 0, describe(a));
  assert.not.ok(fs.existsSync(marker), 'a planted program was executed');
});

test.run();
