// Detached sandboxes with podman's verbs: run -d, logs, ps -a, stop, kill,
// rm, wait, --rm. Every check runs dist/hutch and looks at what a user (or
// the host's /proc) sees. A plain `run -d` leaves no hutch (Node) process:
// the helper's monitor keeps the sandbox, writes its log and its exit status,
// and cleans up (helper-c/PLAN.md, "Detached sandboxes").

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import os from 'node:os';
import { describe, expectExit, freePort, hostPids, isRoot, repoPath, runHutch, testIf, tmpDir, waitFor } from '../lib/hutch';

const uniq = () => `d${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
const NONE = ['--network', 'none'];

function recordDir(name: string): string {
  return path.join(process.env.XDG_STATE_HOME || path.join(os.homedir(), '.local/state'), 'hutch', 'records', name);
}

interface Rec {
  pid?: number;
  initPid?: number;
  status: string;
  exitCode?: number;
  resident?: string;
}

/** record.json, with the status the monitor writes at exit (`exit`: CODE TIME). */
function record(name: string): Rec | undefined {
  try {
    const rec = JSON.parse(fs.readFileSync(path.join(recordDir(name), 'record.json'), 'utf8')) as Rec;
    try {
      const [code] = fs.readFileSync(path.join(recordDir(name), 'exit'), 'utf8').split(' ');
      return { ...rec, status: 'exited', exitCode: Number(code) };
    } catch {
      return rec;
    }
  } catch {
    return undefined;
  }
}

/** The text of the log (log.1 then log), without the k8s-file prefixes the monitor writes. */
const logOf = (name: string) => {
  let out = '';
  for (const f of ['log.1', 'log']) {
    try {
      out += fs.readFileSync(path.join(recordDir(name), f), 'utf8');
    } catch {}
  }
  return out.replace(/^\S+ (?:stdout|stderr) ([FP]) (.*)\n/gm, (_m, fp: string, text: string) => (fp === 'F' ? `${text}\n` : text));
};

const comm = (pid: number) => {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
};
const ppid = (pid: number) => Number(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
const cmdline = (pid: number) => {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
};
const hutchExe = fs.realpathSync(repoPath('dist', 'hutch'));

/** Processes whose program is hutch (the single executable) or node and that belong to this sandbox (its name in their arguments or environment). */
function hutchProcessesOf(name: string): string[] {
  const out: string[] = [];
  for (const pid of hostPids()) {
    let exe: string;
    try {
      exe = fs.readlinkSync(`/proc/${pid}/exe`);
    } catch {
      continue; // another user's, or not dumpable (the monitor and init are not)
    }
    if (exe !== hutchExe && path.basename(exe) !== 'node') continue;
    let env = '';
    try {
      env = fs.readFileSync(`/proc/${pid}/environ`, 'utf8');
    } catch {}
    if (cmdline(pid).includes(name) || env.includes(name)) out.push(`${pid} ${exe} ${cmdline(pid)}`);
  }
  return out;
}

/**
 * The NAT process of a sandbox: slirp4netns is given the sandbox's pid 1 as
 * its target (`... PID tap0`; an API socket in the state directory only with -p).
 */
function natOf(name: string): number[] {
  const initPid = record(name)?.initPid;
  if (!initPid) return [];
  return hostPids().filter((pid) => comm(pid) === 'slirp4netns' && cmdline(pid).includes(` ${initPid} tap0`) && alive(pid));
}

/** PSS in KiB from /proc/PID/smaps_rollup; undefined when it cannot be read (not dumpable, and we are not root). */
function pssKiB(pid: number): number | undefined {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Exists and is not a zombie (the runner may be a subreaper that reaps late). */
const alive = (pid: number) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
};

/** `hutch run -d` of a shell script; returns the name it printed. */
async function detach(script: string, ...flags: string[]): Promise<string> {
  const name = uniq();
  const r = expectExit(await runHutch(['run', '-d', '--name', name, ...NONE, ...flags, '--', 'sh', '-c', script]), 0);
  assert.is(r.stdout, `${name}\n`, `run -d prints the name\n${describe(r)}`);
  return name;
}

async function rm(name: string): Promise<void> {
  await runHutch(['rm', '-f', name]);
}

test('run -d returns at once; its monitor keeps it in a session of its own; logs, ps -a, wait, rm', async () => {
  const name = await detach('echo first-line; read x < /dev/null; sleep 1; echo second-line; exit 7');
  try {
    const rec = record(name)!;
    assert.ok(rec.pid && alive(rec.pid), 'the process that keeps it runs');
    assert.is(comm(rec.pid!), 'hutch-helper', "it is the helper's monitor, no hutch");
    assert.is(ppid(rec.initPid!), rec.pid, "the sandbox's pid 1 is the monitor's child");
    // not in our session: closing the user's shell does not touch it
    const sid = (pid: number | 'self') => fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[3];
    assert.is.not(sid(rec.pid!), sid('self'), 'the monitor has a session of its own');
    if (isRoot()) assert.is(fs.readlinkSync(`/proc/${rec.pid}/fd/0`), '/dev/null', 'nothing of the terminal run -d was typed in');
    const ins = JSON.parse(expectExit(await runHutch(['inspect', name]), 0).stdout);
    assert.is(ins[0].status, 'running');
    assert.is(ins[0].state.initPid, rec.initPid, 'inspect: the state holds the pid 1');
    assert.ok(
      ins[0].plan.some((o: { op: string }) => o.op === 'no-new-privs'),
      'inspect: the restrictions',
    );
    const ps = expectExit(await runHutch(['ps']), 0);
    assert.match(ps.stdout, new RegExp(`^${name}\\s`, 'm'), 'ps lists it while it runs');
    // wait prints the command's status
    const w = expectExit(await runHutch(['wait', name]), 0);
    assert.is(w.stdout, '7\n', describe(w));
    const logs = expectExit(await runHutch(['logs', name]), 0);
    assert.is(logs.stdout, 'first-line\nsecond-line\n', describe(logs));
    const tail = expectExit(await runHutch(['logs', '--tail', '1', name]), 0);
    assert.is(tail.stdout, 'second-line\n', describe(tail));
    // exited: only ps -a shows it, with its status
    assert.not.match((await runHutch(['ps'])).stdout, new RegExp(`^${name}\\s`, 'm'));
    const all = expectExit(await runHutch(['ps', '-a']), 0);
    assert.match(all.stdout, new RegExp(`^${name}\\s.*exited \\(7\\)`, 'm'), describe(all));
    // the name stays taken until rm
    const again = await runHutch(['run', '-d', '--name', name, ...NONE, '--', 'true']);
    assert.is(again.code, 125, describe(again));
    assert.match(again.stderr, new RegExp(`"${name}" exists \\(exited\\)[\\s\\S]*hutch rm ${name}`));
    expectExit(await runHutch(['rm', name]), 0);
    assert.not.ok(fs.existsSync(recordDir(name)), 'rm removes the record and its log');
    assert.not.match((await runHutch(['ps', '-a'])).stdout, new RegExp(`^${name}\\s`, 'm'));
  } finally {
    await rm(name);
  }
});

test('logs -f follows the output until the sandbox exits', async () => {
  const name = await detach('for i in 1 2 3; do echo "tick $i"; sleep 0.3; done');
  try {
    const r = expectExit(await runHutch(['logs', '-f', name]), 0);
    assert.is(r.stdout, 'tick 1\ntick 2\ntick 3\n', describe(r));
  } finally {
    await rm(name);
  }
});

test('stop: SIGTERM first (143); a command that ignores it is SIGKILLed after -t (137)', async () => {
  const polite = await detach('echo up; sleep 100');
  const stubborn = await detach('trap "" TERM; echo up; while :; do sleep 1; done');
  try {
    await waitFor(() => logOf(stubborn).includes('up'), 20_000, { what: 'trap set' });
    expectExit(await runHutch(['stop', polite]), 0);
    assert.is(record(polite)?.exitCode, 143, 'stopped by SIGTERM');
    const s = expectExit(await runHutch(['stop', '-t', '1', stubborn]), 0);
    assert.is(s.stdout, `${stubborn}\n`);
    const rec = record(stubborn)!;
    assert.is(rec.exitCode, 137, 'SIGKILL after the grace time');
    assert.not.ok(alive(rec.initPid!), "the sandbox's pid 1 is gone");
  } finally {
    await rm(polite);
    await rm(stubborn);
  }
});

test('kill -s SIGNAL reaches the command; rm of a running sandbox needs -f', async () => {
  const name = await detach('trap "echo got-usr1; exit 9" USR1; echo up; while :; do sleep 0.2; done');
  try {
    await waitFor(() => logOf(name).includes('up'), 20_000, { what: 'trap set' });
    const r = await runHutch(['rm', name]);
    assert.is(r.code, 125, describe(r));
    assert.match(r.stderr, /is running[\s\S]*hutch rm -f/);
    expectExit(await runHutch(['kill', '-s', 'USR1', name]), 0);
    assert.is(expectExit(await runHutch(['wait', name]), 0).stdout, '9\n');
    assert.match((await runHutch(['logs', name])).stdout, /got-usr1/);
    const bad = await runHutch(['kill', '-s', 'STOP', name]);
    assert.is(bad.code, 125, describe(bad));
  } finally {
    await rm(name);
  }
  // rm -f of a running one stops it
  const other = await detach('sleep 100');
  const pid = record(other)!.initPid!;
  expectExit(await runHutch(['rm', '-f', other]), 0);
  assert.not.ok(alive(pid), 'rm -f killed it');
  assert.not.ok(fs.existsSync(recordDir(other)));
});

test('--rm: the record goes when the sandbox exits', async () => {
  const name = await detach('exit 0', '--rm');
  await waitFor(() => !fs.existsSync(recordDir(name)), 20_000, { what: 'record removed' });
  assert.not.match((await runHutch(['ps', '-a'])).stdout, new RegExp(`^${name}\\s`, 'm'));
});

test("exec: the sandbox's processes and hostname, exactly the command's restrictions, its status; it dies with the sandbox", async () => {
  const status = 'grep -E "^(CapEff|CapBnd|NoNewPrivs|Seccomp):" /proc/self/status';
  const name = await detach(`${status} > /tmp/cmd-status; echo up; exec sleep 100`, '--hostname', 'box-h');
  try {
    await waitFor(() => logOf(name).includes('up'), 20_000, { what: 'command up' });
    const r = expectExit(
      await runHutch([
        'exec',
        name,
        'sh',
        '-c',
        `hostname; cat /proc/1/comm /proc/2/comm; ${status} > /tmp/exec-status; cmp /tmp/cmd-status /tmp/exec-status && echo same; cat /tmp/exec-status`,
      ]),
      0,
    );
    const [host, pid1, pid2, same, ...st] = r.stdout.trim().split('\n');
    assert.is(host, 'box-h', describe(r));
    assert.is(pid1, 'hutch-helper');
    assert.is(pid2, 'sleep', "the sandbox's command is pid 2 in the exec'd process's pid namespace");
    assert.is(same, 'same', `CapEff, CapBnd, NoNewPrivs, Seccomp differ from the command's\n${describe(r)}`);
    assert.ok(st.some((l) => /^NoNewPrivs:\s+1$/.test(l)) && st.some((l) => /^Seccomp:\s+2$/.test(l)), st.join('\n'));
    // its exit status, 127 for a missing command, env and workdir flags
    assert.is((await runHutch(['exec', name, 'sh', '-c', 'exit 5'])).code, 5);
    const nf = await runHutch(['exec', name, 'no-such-cmd']);
    assert.is(nf.code, 127, describe(nf));
    assert.match(nf.stderr, /no-such-cmd: command not found/);
    const ew = expectExit(await runHutch(['exec', '-e', 'FOO=bar', '-w', '/tmp', name, 'sh', '-c', 'echo "$FOO $(pwd)"']), 0);
    assert.is(ew.stdout, 'bar /tmp\n');
    // stdin with -i
    assert.is(expectExit(await runHutch(['exec', '-i', name, 'cat'], { input: 'piped\n' }), 0).stdout, 'piped\n');
    // an exec'd process dies with the sandbox
    const long = runHutch(['exec', name, 'sleep', '100']);
    await new Promise((r) => setTimeout(r, 500));
    expectExit(await runHutch(['kill', name]), 0);
    const lr = await long;
    assert.ok(lr.code !== 0 && !lr.timedOut, `exec ended with the sandbox: ${describe(lr)}`);
  } finally {
    await rm(name);
  }
  const gone = await runHutch(['exec', 'no-such-sandbox-x', 'true']);
  assert.is(gone.code, 125, describe(gone));
  assert.match(gone.stderr, /no running sandbox named "no-such-sandbox-x"/);
});

test('a name that does not exist: a clear 125 for every verb', async () => {
  for (const verb of [['logs'], ['stop'], ['kill'], ['rm'], ['wait'], ['inspect']]) {
    const r = await runHutch([...verb, 'no-such-sandbox-x']);
    assert.is(r.code, 125, describe(r));
    assert.match(r.stderr, /no sandbox named "no-such-sandbox-x"[\s\S]*hint: .*ps -a/, describe(r));
  }
});

test('--restart on-failure:N starts a crashed command again, N times; --restart always until stop', async () => {
  const name = await detach('echo "run $$"; exit 3', '--restart', 'on-failure:2');
  try {
    assert.is(expectExit(await runHutch(['wait', name]), 0).stdout, '3\n');
    const log = logOf(name);
    assert.is(log.match(/^run /gm)?.length, 3, log);
    assert.match(log, /--restart on-failure: the command exited with 3, starting it again \(2\)/);
  } finally {
    await rm(name);
  }
  const always = await detach('echo tick; exit 0', '--restart', 'always');
  try {
    await waitFor(() => (logOf(always).match(/^tick$/gm)?.length ?? 0) >= 2, 30_000, { what: 'a second start' });
    assert.is(record(always)?.resident, '--restart', 'a resident hutch, said in the record');
    expectExit(await runHutch(['stop', always]), 0);
    assert.not.ok(record(always)?.pid && alive(record(always)!.pid!), 'stop ends the restarting hutch');
  } finally {
    await rm(always);
  }
  const bad = await runHutch(['run', '--restart', 'sometimes', '--', 'true']);
  assert.is(bad.code, 125, describe(bad));
  assert.match(bad.stderr, /--restart: "sometimes" is not a restart policy/);
});

test('--watch PATH: a change under PATH restarts the command, with a line saying what changed', async () => {
  const dir = tmpDir('hutch-watch-');
  fs.chmodSync(dir, 0o755);
  fs.mkdirSync(path.join(dir, 'src'));
  fs.writeFileSync(path.join(dir, 'src', 'app.txt'), 'v1\n');
  const name = await detach('echo "serving $(cat /w/src/app.txt)"; exec sleep 100', '--watch', dir, '-v', `${dir}:/w:ro`);
  try {
    await waitFor(() => logOf(name).includes('serving v1'), 20_000, { what: 'first start' });
    await new Promise((r) => setTimeout(r, 300)); // the watch is set before the first start
    fs.writeFileSync(path.join(dir, 'src', 'app.txt'), 'v2\n');
    await waitFor(() => logOf(name).includes('serving v2'), 30_000, { what: 'restart after the change' });
    assert.match(logOf(name), new RegExp(`--watch: ${dir}/src/app.txt changed, restarting`));
    assert.is(logOf(name).match(/^serving /gm)?.length, 2, 'one restart per burst of changes');
  } finally {
    await rm(name);
  }
});

test('a detached server is reachable through its published port', async () => {
  const dir = tmpDir('hutch-detach-');
  fs.chmodSync(dir, 0o755);
  fs.writeFileSync(path.join(dir, 'server.js'), `require('net').createServer((c) => c.end('hi from inside\\n')).listen(8080, () => console.log('ready'));\n`);
  const port = await freePort();
  const name = uniq();
  expectExit(await runHutch(['run', '-d', '--name', name, '-p', `${port}:8080`, '-v', `${dir}:/t:ro`, '--', 'node', '/t/server.js']), 0);
  try {
    await waitFor(() => logOf(name).includes('ready'), 30_000, { what: 'server ready' });
    const got = await new Promise<string>((resolve, reject) => {
      let data = '';
      const c = net.connect(port, '127.0.0.1');
      c.on('data', (d) => (data += d));
      c.on('end', () => resolve(data));
      c.on('error', reject);
    });
    assert.is(got, 'hi from inside\n');
  } finally {
    await rm(name);
  }
});

test('no hutch process stays for a plain run -d: only the monitor, its init and the command; their PSS under 1 MiB', async () => {
  const name = uniq();
  // the default network (slirp4netns here): its NAT process is no hutch either
  const r = expectExit(await runHutch(['run', '-d', '--name', name, '--', 'sh', '-c', 'echo up; exec sleep 100']), 0);
  console.log(`  run -d returned after ${r.ms} ms`);
  try {
    const rec = record(name)!;
    assert.equal(hutchProcessesOf(name), [], 'no hutch/node process belongs to the sandbox');
    assert.is(comm(rec.pid!), 'hutch-helper');
    assert.not.ok(rec.resident, 'no resident hutch in the record');
    const monitorParent = ppid(rec.pid!);
    let parentExe = '';
    try {
      parentExe = fs.readlinkSync(`/proc/${monitorParent}/exe`);
    } catch {}
    assert.is.not(parentExe, hutchExe, 'the monitor was reparented (no hutch above it)');
    await waitFor(() => logOf(name).includes('up'), 20_000, { what: 'command up' });
    const kids = fs.readFileSync(`/proc/${rec.pid}/task/${rec.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
    // beside the sandbox's pid 1, only a storage daemon the plan started (fuse-overlayfs, for the unprivileged user here)
    assert.ok(kids.includes(rec.initPid!), "the sandbox's pid 1 is the monitor's child");
    assert.equal(
      kids
        .filter((k) => k !== rec.initPid)
        .map(comm)
        .filter((c) => c !== 'fuse-overlayfs'),
      [],
      `the monitor's children: ${kids.map((k) => `${k} ${comm(k)}`).join(', ')}`,
    );
    const children = () => fs.readFileSync(`/proc/${rec.initPid}/task/${rec.initPid}/children`, 'utf8').trim().split(/\s+/).map(Number);
    // "up" is logged by sh just before its `exec sleep`: wait for the exec
    await waitFor(() => children().map(comm).join() === 'sleep', 10_000, { what: "pid 1's child to exec sleep" }).catch(() => {});
    assert.equal(children().map(comm), ['sleep'], "pid 1's only child is the command");
    assert.is(natOf(name).length, 1, 'its slirp4netns runs');
    const pss = [rec.pid!, rec.initPid!].map(pssKiB);
    if (pss.every((k) => k !== undefined)) {
      const total = pss[0]! + pss[1]!;
      console.log(`  PSS: monitor ${pss[0]} KiB + init ${pss[1]} KiB = ${total} KiB`);
      assert.ok(total < 1024, `monitor + init PSS ${total} KiB, want < 1 MiB`);
    } else {
      console.log('  PSS not measured as this user: the monitor and init are not dumpable, only root reads their smaps_rollup (the root tier measures it)');
    }
  } finally {
    await rm(name);
  }
});

test('logs: rotation keeps the log bounded under tens of MiB of output; --tail; --timestamps', async () => {
  const name = await detach('seq 1 3000000; echo "last line"', '--log-max-size', '1m');
  try {
    assert.is(expectExit(await runHutch(['wait', name], { timeoutMs: 120_000 }), 0).stdout, '0\n');
    const size = (f: string) => fs.statSync(path.join(recordDir(name), f)).size;
    console.log(`  20.9 MB of output: log ${size('log')} bytes, log.1 ${size('log.1')} bytes`);
    assert.ok(size('log') <= 1 << 20 && size('log.1') <= 1 << 20 && size('log.1') > 1 << 19, 'both files within --log-max-size');
    assert.equal(fs.readdirSync(recordDir(name)).sort(), ['exit', 'inspect.json', 'log', 'log.1', 'record.json']);
    const t = expectExit(await runHutch(['logs', '--tail', '3', name]), 0);
    assert.is(t.stdout, '2999999\n3000000\nlast line\n', describe(t));
    const ts = expectExit(await runHutch(['logs', '--timestamps', '--tail', '2', name]), 0);
    const lines = ts.stdout.split('\n').filter(Boolean);
    assert.is(lines.length, 2, describe(ts));
    for (const l of lines) assert.match(l, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (3000000|last line)$/);
    // everything the files hold, in order, without the prefixes
    const all = expectExit(await runHutch(['logs', name]), 0).stdout.split('\n');
    const first = Number(all[0]);
    assert.ok(first > 1, 'the oldest output was rotated away');
    assert.is(all[all.length - 3], '3000000');
    assert.ok(
      all.slice(0, -3).every((l, i) => Number(l) === first + i),
      'no line lost or torn between log.1 and log',
    );
  } finally {
    await rm(name);
  }
});

test('logs -f follows the output across rotations until the sandbox exits', async () => {
  const name = await detach(
    'i=1; while [ $i -le 400 ]; do echo "line $i ................................"; case $i in *0) sleep 0.2;; esac; i=$((i+1)); done',
    '--log-max-size',
    '4k',
  );
  try {
    const r = expectExit(await runHutch(['logs', '-f', name], { timeoutMs: 90_000 }), 0);
    const got = r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => Number(/^line (\d+) /.exec(l)?.[1]));
    const first = got[0];
    assert.ok(
      got.every((n, i) => n === first + i),
      `a contiguous run of lines: ${got.slice(0, 5)}...`,
    );
    assert.is(got[got.length - 1], 400, 'up to the last line');
    assert.ok(got.length >= 300, `followed across several rotations (each file holds about 55 lines): ${got.length} lines`);
  } finally {
    await rm(name);
  }
});

test('--timeout kills a detached sandbox (124); its NAT process and cgroup are gone after exit', async () => {
  const name = uniq();
  expectExit(await runHutch(['run', '-d', '--name', name, '--timeout', '2s', '--', 'sh', '-c', 'echo up; exec sleep 100']), 0);
  try {
    const nat = natOf(name);
    assert.is(nat.length, 1, 'slirp4netns runs while the sandbox does');
    const cgroup = JSON.parse(expectExit(await runHutch(['inspect', name]), 0).stdout)[0].state?.cgroup as string | undefined;
    assert.is(expectExit(await runHutch(['wait', name], { timeoutMs: 30_000 }), 0).stdout, '124\n');
    assert.match(logOf(name), /killed: timeout 2000 ms reached/);
    await waitFor(() => !alive(nat[0]), 10_000, { what: 'slirp4netns to end with the sandbox' });
    if (cgroup) assert.not.ok(fs.existsSync(cgroup), `the sandbox cgroup ${cgroup} is removed`);
    else console.log('  no sandbox cgroup for this user on this host (no delegated cgroup v2): nothing to remove');
    const stateDir = path.join(process.env.XDG_RUNTIME_DIR || `/tmp/hutch-run-${process.getuid!()}`, 'hutch', name);
    assert.not.ok(fs.existsSync(stateDir), 'the state directory is removed');
    assert.match(expectExit(await runHutch(['ps', '-a']), 0).stdout, new RegExp(`^${name}\\s.*exited \\(124\\)`, 'm'));
  } finally {
    await rm(name);
  }
});

test("SIGKILL of a detached sandbox's monitor: nothing keeps running (pid 1, command, slirp4netns), ps -a says exited (unknown)", async () => {
  const name = uniq();
  expectExit(await runHutch(['run', '-d', '--name', name, '--', 'sh', '-c', 'echo up; exec sleep 100']), 0);
  try {
    const rec = record(name)!;
    await waitFor(() => logOf(name).includes('up'), 20_000, { what: 'command up' });
    const cmd = Number(fs.readFileSync(`/proc/${rec.initPid}/task/${rec.initPid}/children`, 'utf8').trim());
    const nat = natOf(name);
    assert.is(nat.length, 1);
    process.kill(rec.pid!, 'SIGKILL');
    for (const [what, pid] of [
      ["the sandbox's pid 1", rec.initPid!],
      ['the command', cmd],
      ['slirp4netns', nat[0]],
    ] as const)
      await waitFor(() => !alive(pid), 20_000, { what: `${what} to end` });
    const all = expectExit(await runHutch(['ps', '-a']), 0);
    // nobody was left to write the status: the monitor was the one that would
    assert.match(all.stdout, new RegExp(`^${name}\\s.*exited \\(unknown\\)`, 'm'), describe(all));
    assert.not.match((await runHutch(['ps'])).stdout, new RegExp(`^${name}\\s`, 'm'));
    assert.is(expectExit(await runHutch(['wait', name]), 0).stdout, 'unknown\n');
  } finally {
    await rm(name);
  }
});

test('a reboot-like loss (every process killed, the runtime directory gone): ps -a is consistent, the name can be used again', async () => {
  // a runtime directory of this test's own: removing it touches no other sandbox
  const runtime = tmpDir('hutch-rt-');
  const env = { XDG_RUNTIME_DIR: runtime };
  const name = uniq();
  expectExit(await runHutch(['run', '-d', '--name', name, '--', 'sh', '-c', 'echo up; exec sleep 100'], { env }), 0);
  try {
    const rec = record(name)!;
    await waitFor(() => logOf(name).includes('up'), 20_000, { what: 'command up' });
    const cmd = Number(fs.readFileSync(`/proc/${rec.initPid}/task/${rec.initPid}/children`, 'utf8').trim());
    const pids = [rec.pid!, rec.initPid!, cmd, ...natOf(name)];
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e; // died with the one killed before it
      }
    }
    for (const pid of pids) await waitFor(() => !alive(pid), 20_000, { what: `pid ${pid} to end` });
    fs.rmSync(runtime, { recursive: true, force: true });
    const all = expectExit(await runHutch(['ps', '-a'], { env }), 0);
    assert.match(all.stdout, new RegExp(`^${name}\\s.*exited \\(unknown\\)`, 'm'), `the record (persistent) says exited\n${describe(all)}`);
    assert.not.match(expectExit(await runHutch(['ps'], { env }), 0).stdout, new RegExp(`^${name}\\s`, 'm'));
    assert.match(expectExit(await runHutch(['logs', name], { env }), 0).stdout, /^up$/m, 'its log is kept');
    // an attached run of that name works at once; a detached one needs the exited record removed (podman's rule)
    expectExit(await runHutch(['run', '--name', name, '--network', 'none', '--', 'true'], { env }), 0);
    const again = await runHutch(['run', '-d', '--name', name, '--network', 'none', '--', 'true'], { env });
    assert.is(again.code, 125, describe(again));
    assert.match(again.stderr, /exists \(exited\)[\s\S]*hutch rm/);
    expectExit(await runHutch(['rm', name], { env }), 0);
    expectExit(await runHutch(['run', '-d', '--name', name, '--network', 'none', '--', 'true'], { env }), 0);
    assert.is(expectExit(await runHutch(['wait', name], { env }), 0).stdout, '0\n');
  } finally {
    await runHutch(['rm', '-f', name], { env });
  }
});

test('a record whose pid now belongs to another process, or to another boot, is not running', async () => {
  const name = uniq();
  fs.mkdirSync(recordDir(name), { recursive: true, mode: 0o700 });
  try {
    const base = { name, command: ['sleep', '1'], profile: ['default'], createdAt: new Date().toISOString(), status: 'running', autoRemove: false };
    // our own pid: alive, but it is no monitor of this record (another start time)
    fs.writeFileSync(path.join(recordDir(name), 'record.json'), JSON.stringify({ ...base, pid: process.pid, pidStart: 1 }));
    assert.match(expectExit(await runHutch(['ps', '-a']), 0).stdout, new RegExp(`^${name}\\s.*exited \\(unknown\\)`, 'm'));
    fs.writeFileSync(path.join(recordDir(name), 'record.json'), JSON.stringify({ ...base, pid: process.pid, bootId: 'another-boot' }));
    assert.match(expectExit(await runHutch(['ps', '-a']), 0).stdout, new RegExp(`^${name}\\s.*exited \\(unknown\\)`, 'm'));
  } finally {
    await rm(name);
  }
});

test('a command that cannot be run: run -d says so with 127 and leaves no record', async () => {
  const name = uniq();
  const r = await runHutch(['run', '-d', '--name', name, ...NONE, '--', 'no-such-command-x']);
  assert.is(r.code, 127, describe(r));
  assert.match(r.stderr, /no-such-command-x: command not found/);
  assert.not.ok(fs.existsSync(recordDir(name)));
  const t = await runHutch(['run', '-d', '-t', '--name', name, ...NONE, '--', 'true']);
  assert.is(t.code, 125, describe(t));
  assert.match(t.stderr, /-t with -d/);
});

// hutch pause needs the sandbox cgroup, which this host gives root only (hybrid cgroups): --dry-run says
const dry = await runHutch(['run', '--dry-run', '--name', 'probe-cg', ...NONE, '--', 'true']);
const cgroupLine = /^# cgroup: (.*)$/m.exec(dry.stdout)?.[1] ?? '';
testIf(
  test,
  cgroupLine.startsWith('sandbox cgroup'),
  'stop of a paused detached sandbox: thawed, then SIGTERM (143), without waiting for the grace time',
  async () => {
    const name = await detach('exec sleep 100');
    try {
      expectExit(await runHutch(['pause', name]), 0);
      expectExit(await runHutch(['stop', name]), 0);
      assert.is(record(name)?.exitCode, 143, 'the command got SIGTERM, not the SIGKILL after 10 s');
    } finally {
      await rm(name);
    }
  },
  `no sandbox cgroup for this user here (${cgroupLine})`,
);

test('inspect: spec, plan, ports, limits, network of a running detached sandbox and of the exited one; no host environment it does not get', async () => {
  const port = await freePort();
  const name = uniq();
  const secret = `s3cret-${Math.random().toString(16).slice(2)}`;
  const r = await runHutch(
    ['run', '-d', '--name', name, '--hostname', 'insp', '-p', `${port}:8080`, '--pids-limit', '64', '-e', 'PASSED=yes', '--', 'sh', '-c', 'sleep 100'],
    { env: { HUTCH_INSPECT_SECRET: secret } },
  );
  expectExit(r, 0);
  type Inspected = {
    name: string;
    status: string;
    exitCode?: number | null;
    ports: { hostPort: number; containerPort: number; protocol: string }[];
    limits?: { pidsLimit?: number };
    network?: { mode: string; driver?: string; hostname?: string };
    state?: { initPid?: number };
    spec?: { hostname: string; env: Record<string, string>; command: string[]; origins?: unknown };
    plan?: { op: string; name?: string; value?: string; argv?: string[] }[];
  };
  const check = (ins: Inspected, what: string) => {
    const text = JSON.stringify(ins);
    assert.not.ok(text.includes(secret), `${what}: a host variable the sandbox does not get is not shown`);
    assert.is(ins.name, name);
    assert.equal(
      ins.ports.map((p) => [p.protocol, p.hostPort, p.containerPort]),
      [['tcp', port, 8080]],
      `${what}: ports`,
    );
    assert.is(ins.limits?.pidsLimit, 64, `${what}: limits`);
    assert.ok(ins.network && ['slirp', 'pasta'].includes(ins.network.mode) && ins.network.driver, `${what}: network ${JSON.stringify(ins.network)}`);
    assert.is(ins.network?.hostname, 'insp');
    // the spec as resolved: the environment inside, not the host's
    assert.is(ins.spec?.hostname, 'insp', `${what}: spec`);
    assert.is(ins.spec?.env.PASSED, 'yes');
    assert.not.ok('HUTCH_INSPECT_SECRET' in (ins.spec?.env ?? {}));
    assert.is(ins.spec?.origins, undefined);
    assert.equal(ins.spec?.command, ['sh', '-c', 'sleep 100']);
    // the plan as executed: its ops, the command last
    assert.equal(ins.plan?.at(-1), { op: 'exec', argv: ['sh', '-c', 'sleep 100'] }, `${what}: plan`);
    assert.ok(ins.plan?.some((o) => o.op === 'hostname' && o.name === 'insp'));
    assert.ok(ins.plan?.some((o) => o.op === 'env' && o.name === 'PASSED' && o.value === 'yes'));
  };
  try {
    const running = JSON.parse(expectExit(await runHutch(['inspect', name]), 0).stdout) as Inspected[];
    assert.is(running.length, 1);
    assert.is(running[0].status, 'running');
    assert.ok(running[0].state?.initPid && alive(running[0].state.initPid), 'the live state: pid 1');
    check(running[0], 'running');
    expectExit(await runHutch(['stop', '-t', '1', name]), 0);
    const exited = JSON.parse(expectExit(await runHutch(['inspect', name]), 0).stdout) as Inspected[];
    assert.is(exited[0].status, 'exited');
    assert.is(exited[0].exitCode, 143, 'SIGTERM of sh: 128+15');
    assert.is(exited[0].state, undefined, 'no live state once exited');
    check(exited[0], 'exited');
  } finally {
    await rm(name);
  }
  const gone = await runHutch(['inspect', name]);
  assert.is(gone.code, 125, describe(gone));
  assert.match(gone.stderr, new RegExp(`no sandbox named "${name}"`));
});

test.run();
