// Detached sandboxes with podman's verbs: run -d, logs, ps -a, stop, kill,
// rm, wait, --rm. Every check runs dist/hutch and looks at what a user (or
// the host's /proc) sees.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describe, expectExit, freePort, runHutch, tmpDir, waitFor } from '../lib/hutch';

const uniq = () => `d${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
const NONE = ['--network', 'none'];

function recordDir(name: string): string {
  return path.join(process.env.XDG_RUNTIME_DIR || `/tmp/hutch-run-${process.getuid!()}`, 'hutch', '.records', name);
}

function record(name: string): { hutchPid?: number; initPid?: number; status: string; exitCode?: number } | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(recordDir(name), 'record.json'), 'utf8'));
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

test('run -d returns at once; the sandbox runs in a session of its own; logs, ps -a, wait, rm', async () => {
  const name = await detach('echo first-line; read x < /dev/null; sleep 1; echo second-line; exit 7');
  try {
    const rec = record(name)!;
    assert.ok(rec.hutchPid && alive(rec.hutchPid), 'the hutch that owns it runs');
    // not in our session: closing the user's shell does not touch it
    const sid = (pid: number | 'self') => fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[3];
    assert.is.not(sid(rec.hutchPid!), sid('self'), 'the detached hutch has a session of its own');
    assert.is(fs.readlinkSync(`/proc/${rec.hutchPid}/fd/0`), '/dev/null');
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
    await waitFor(() => fs.readFileSync(path.join(recordDir(stubborn), 'log'), 'utf8').includes('up'), 20_000, { what: 'trap set' });
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
    await waitFor(() => fs.readFileSync(path.join(recordDir(name), 'log'), 'utf8').includes('up'), 20_000, { what: 'trap set' });
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
    await waitFor(() => fs.readFileSync(path.join(recordDir(name), 'log'), 'utf8').includes('up'), 20_000, { what: 'command up' });
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

test('SIGKILL of the detached hutch: nothing keeps running, ps -a says exited', async () => {
  const name = await detach('sleep 100');
  try {
    const rec = record(name)!;
    process.kill(rec.hutchPid!, 'SIGKILL');
    await waitFor(() => !alive(rec.initPid!), 20_000, { what: "the sandbox's pid 1 to end" });
    const all = expectExit(await runHutch(['ps', '-a']), 0);
    assert.match(
      all.stdout,
      new RegExp(`^${name}\\s.*exited \\(unknown\\)`, 'm'),
      `${describe(all)}\nrecords: ${fs.readdirSync(path.dirname(recordDir(name)))} ${JSON.stringify(record(name))}`,
    );
    assert.not.match((await runHutch(['ps'])).stdout, new RegExp(`^${name}\\s`, 'm'));
  } finally {
    await rm(name);
  }
});

const logOf = (name: string) => {
  try {
    return fs.readFileSync(path.join(recordDir(name), 'log'), 'utf8');
  } catch {
    return '';
  }
};

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
    expectExit(await runHutch(['stop', always]), 0);
    assert.not.ok(record(always)?.hutchPid && alive(record(always)!.hutchPid!), 'stop ends the restarting hutch');
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

test("SIGKILL of a detached sandbox's monitor: its pid 1 dies with it, ps -a says exited (137)", async () => {
  const name = await detach('sleep 100');
  try {
    const rec = record(name)!;
    const children = fs.readFileSync(`/proc/${rec.hutchPid}/task/${rec.hutchPid}/children`, 'utf8').trim().split(/\s+/).map(Number);
    const monitor = children.find((pid) => fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'hutch-helper');
    assert.ok(monitor, `the detached hutch's helper among ${children}`);
    process.kill(monitor!, 'SIGKILL');
    await waitFor(() => !alive(rec.initPid!), 20_000, { what: "the sandbox's pid 1 to end" });
    await waitFor(() => record(name)?.status === 'exited', 20_000, { what: 'the record to say exited' });
    assert.is(record(name)?.exitCode, 137);
    await waitFor(() => !alive(rec.hutchPid!), 20_000, { what: 'the detached hutch to end' });
    assert.match(expectExit(await runHutch(['ps', '-a']), 0).stdout, new RegExp(`^${name}\\s.*exited \\(137\\)`, 'm'));
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
    await waitFor(() => fs.readFileSync(path.join(recordDir(name), 'log'), 'utf8').includes('ready'), 30_000, { what: 'server ready' });
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
