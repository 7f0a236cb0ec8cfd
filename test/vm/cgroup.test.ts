// hutch's cgroup v2 limits, for real: run by test/vm/runner.mjs inside a
// qemu guest booted with cgroup_no_v1=all, as an unprivileged user whose
// cgroup subtree is delegated the way systemd's Delegate=yes does it. The
// guest has no network: every sandbox uses --network none. TCG emulation is
// 5-10x slower than the host: thresholds are loose, timeouts generous.

import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describe, runCmd, runHutch, sleep, spawnHutch, tmpDir, waitFor } from '../lib/hutch';

const run = (args: string[], timeoutMs = 120_000) => runHutch(['run', '--network', 'none', ...args], { timeoutMs });
const uniq = (p: string) => `${p}${Math.random().toString(16).slice(2, 7)}`;
const MiB = 1024 * 1024;

interface PsEntry {
  name: string;
  pid: number;
  cgroup?: string;
  limits?: Record<string, unknown>;
}

async function ps(): Promise<PsEntry[]> {
  const r = await runHutch(['ps', '--json']);
  assert.is(r.code, 0, describe(r));
  return JSON.parse(r.stdout) as PsEntry[];
}

/** Start a named sandbox in the background; resolves once it has a cgroup. */
async function startNamed(name: string, args: string[], script: string) {
  const child = spawnHutch(['run', '--network', 'none', '--name', name, ...args, '--', 'sh', '-c', script]);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdout!.resume();
  let done = false;
  const exited = new Promise<number | null>((r) => child.on('close', (code) => ((done = true), r(code))));
  const entry = await waitFor(
    async () => {
      if (done) throw new Error(`hutch exited early: ${stderr}`);
      return (await ps()).find((e) => e.name === name && e.cgroup);
    },
    60_000,
    { what: `sandbox ${name} in hutch ps` },
  );
  // The cgroup exists before the command does (and fuse-overlayfs, the default driver for the
  // guest's root, makes the first exec slow under TCG): measure nothing before the command,
  // pid 2 or more in the sandbox's pid namespace (pid 1 is the init), has been exec'd in it.
  const inside = (pid: string) => Number(/^NSpid:.*\s(\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  const command = script.startsWith('sleep ') ? 'sleep\u0000' : 'sh\u0000-c\u0000';
  await waitFor(
    () => {
      if (done) throw new Error(`hutch exited early: ${stderr}`);
      return cgRead(entry.cgroup!, 'cgroup.procs')
        .split('\n')
        .filter(Boolean)
        .some((pid) => {
          try {
            return inside(pid) >= 2 && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith(command);
          } catch {
            return false;
          }
        });
    },
    120_000,
    { what: `the command of ${name} running in its cgroup` },
  );
  return { child, entry, cg: entry.cgroup!, exited, stderr: () => stderr };
}

const cgRead = (cg: string, file: string) => fs.readFileSync(path.join(cg, file), 'utf8').trim();
const keyed = (cg: string, file: string): Record<string, number> =>
  Object.fromEntries(
    cgRead(cg, file)
      .split('\n')
      .map((l) => l.split(' '))
      .map(([k, v]) => [k, Number(v)]),
  );

test('the guest really is cgroup v2 only, with a delegated subtree', () => {
  const own = fs.readFileSync('/proc/self/cgroup', 'utf8');
  assert.match(own, /^0::\/deleg/m);
  assert.ok(!fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(' - cgroup '), 'a cgroup v1 hierarchy is mounted');
});

test('--dry-run says every limit is enforced and how', async () => {
  const r = await runHutch([
    'run',
    '--network',
    'none',
    '--dry-run',
    '--memory',
    '256m',
    '--cpus',
    '0.5',
    '--pids-limit',
    '64',
    '--timeout',
    '10s',
    '--',
    'true',
  ]);
  assert.is(r.code, 0, describe(r));
  assert.match(r.stdout, /# limit --memory \(memory 256 MiB\): enforced: cgroup v2 memory.max = 268435456/);
  assert.match(r.stdout, /# limit --cpus \(cpus 0.5\): enforced: cgroup v2 cpu.max = 50000 100000/);
  assert.match(r.stdout, /# limit --pids-limit \(pids 64\): enforced: cgroup v2 pids.max = 64/);
  assert.match(r.stdout, /# limit --timeout \(10s\): enforced: the whole sandbox cgroup is killed/);
  assert.not.match(r.stderr, /warning/);
});

test('memory hog: OOM-killed, reported, exit 137, hutch survives', async () => {
  const report = path.join(tmpDir(), 'r.json');
  const r = await run(['--memory', '128m', '--memory-swap', '128m', '--report', report, '--', 'sh', '-c', 'head -c 400m /dev/zero | tail > /dev/null']);
  assert.is(r.code, 137, describe(r));
  assert.match(r.stderr, /hutch: killed: out of memory, limit 128 MiB, peak 1[0-9][0-9](\.\d)? MiB/, describe(r));
  const rep = JSON.parse(fs.readFileSync(report, 'utf8'));
  process.stdout.write(`  measured: ${r.stderr.split('\n').find((l) => l.includes('out of memory'))}, exit ${r.code}\n`);
  assert.is(rep.killedBy, 'oom');
  assert.is(rep.exitCode, 137);
  assert.ok(rep.memory.oomKills >= 1, JSON.stringify(rep.memory));
  assert.is(rep.memory.limitBytes, 128 * MiB);
  assert.ok(rep.memory.peakBytes > 100 * MiB && rep.memory.peakBytes <= 128 * MiB, `peak ${rep.memory.peakBytes}`);
  // hutch itself was not the victim: it wrote the report; the next sandbox runs fine.
  const again = await run(['--memory', '128m', '--', 'echo', 'alive']);
  assert.is(again.code, 0, describe(again));
  assert.is(again.stdout.trim(), 'alive');
});

test('memory hog after the handover (no --report: hutch-helper await): OOM message, exit 137, its cgroup removed', async () => {
  // past spawn.ts HANDOVER_DELAY_MS (1 s): hutch's process is hutch-helper await when the kernel kills
  const name = uniq('oom');
  const s = await startNamed(name, ['--memory', '128m', '--memory-swap', '128m'], 'sleep 3; head -c 400m /dev/zero | tail > /dev/null');
  await waitFor(() => fs.readFileSync(`/proc/${s.child.pid}/comm`, 'utf8').trim() === 'hutch-helper', 30_000, { what: 'the handover' });
  const code = await s.exited;
  assert.is(code, 137, s.stderr());
  assert.match(s.stderr(), /hutch: killed: out of memory, limit 128 MiB, peak 1[0-9][0-9](\.\d)? MiB/);
  assert.ok(!fs.existsSync(s.cg), `${s.cg} is still there`);
});

test('fork bomb stops at the pids limit; the machine stays usable; --timeout ends it', async () => {
  const report = path.join(tmpDir(), 'r.json');
  const name = uniq('bomb');
  // the default storage driver (fuse-overlayfs for the guest's 9p root): its daemon is outside the cgroup
  const bomb = spawnHutch([
    'run',
    '--network',
    'none',
    '--name',
    name,
    '--pids-limit',
    '24',
    '--timeout',
    '45s',
    '--report',
    report,
    '--',
    'sh',
    '-c',
    // the shell forks nothing after the bomb (a fork refused there would end the sandbox before --timeout)
    'sleep 120 & b() { b | b & }; b; wait',
  ]);
  bomb.stdout!.resume();
  let stderr = '';
  bomb.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((r) => bomb.on('close', (c) => r(c)));
  const entry = await waitFor(async () => (await ps()).find((e) => e.name === name && e.cgroup), 60_000, { what: 'the bomb in hutch ps' });
  await waitFor(() => keyed(entry.cgroup!, 'pids.events').max > 0, 120_000, { what: 'pids.events max > 0' });
  const current = Number(cgRead(entry.cgroup!, 'pids.current'));
  assert.ok(current <= 24, `pids.current ${current} above the limit`);
  // Outside the sandbox, forking still works.
  const outside = await runCmd(['sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do /bin/true & done; wait; echo ok']);
  assert.is(outside.stdout.trim(), 'ok', describe(outside));
  const code = await exited;
  assert.is(code, 124, stderr);
  assert.match(stderr, /killed: timeout 45s reached/);
  const rep = JSON.parse(fs.readFileSync(report, 'utf8'));
  process.stdout.write(`  measured: fork bomb under --pids-limit 24: peak pids ${rep.pids.peak}, forks refused ${rep.pids.refusedForks}\n`);
  assert.is(rep.killedBy, 'timeout');
  assert.ok(rep.pids.peak <= 24 && rep.pids.peak >= 20, `peak pids ${rep.pids.peak}`);
  assert.ok(rep.pids.refusedForks > 0);
  assert.ok(!fs.existsSync(entry.cgroup!), 'the sandbox cgroup was not removed');
});

test('fuse-overlayfs: the daemon is not in the sandbox cgroup, its threads do not count against --pids-limit', async () => {
  const name = uniq('fuse');
  const s = await startNamed(name, ['--storage-driver', 'fuse-overlayfs', '--pids-limit', '8', '--timeout', '60s'], 'sleep 1 & sleep 2 & sleep 3 & sleep 100');
  try {
    // the command runs: its `sleep 100` is in the cgroup (the monitor, in it until the init exists, is out by then)
    const procs = () => cgRead(s.cg, 'cgroup.procs').split('\n').filter(Boolean).map(Number);
    const cmdline = (pid: number) => {
      try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        return '';
      }
    };
    await waitFor(() => procs().some((pid) => cmdline(pid) === 'sleep\u0000100\u0000'), 60_000, { what: 'sleep 100 in the sandbox cgroup' });
    const daemons = (await runCmd(['pgrep', '-x', 'fuse-overlayfs'])).stdout.trim().split(/\s+/).filter(Boolean).map(Number);
    const ours = daemons.filter((pid) => cmdline(pid).includes(`/${name}/merged`));
    assert.is(ours.length, 1, `the sandbox's fuse-overlayfs daemon among ${daemons}`);
    const threads = fs.readdirSync(`/proc/${ours[0]}/task`).length;
    assert.not.ok(procs().includes(ours[0]), `the daemon ${ours[0]} is in the sandbox cgroup: ${procs()}`);
    // inside: the init, sh and its sleeps (and nothing else): all of them fit under 8
    const current = Number(cgRead(s.cg, 'pids.current'));
    process.stdout.write(`  measured: fuse-overlayfs daemon with ${threads} thread(s) outside; pids.current ${current} (the init, sh, its sleeps)\n`);
    assert.ok(current >= 3 && current <= 6, `pids.current ${current}: not just the sandbox's own processes (${procs().map(cmdline)})`);
    assert.is(keyed(s.cg, 'pids.events').max, 0, 'a fork was refused');
  } finally {
    s.child.kill('SIGTERM');
    await s.exited;
  }
});

test('--cpus 0.2: a busy loop gets about 20% of a CPU (cpu.stat)', async () => {
  const name = uniq('cpu');
  const s = await startNamed(name, ['--cpus', '0.2', '--timeout', '60s'], 'while :; do :; done');
  // the loop spins (its first pages came through the storage driver): then measure
  await waitFor(() => keyed(s.cg, 'cpu.stat').usage_usec > 300_000, 30_000, { what: 'the busy loop to use the CPU' });
  const a = keyed(s.cg, 'cpu.stat');
  const t0 = Date.now();
  await sleep(4000);
  const b = keyed(s.cg, 'cpu.stat');
  const share = (b.usage_usec - a.usage_usec) / ((Date.now() - t0) * 1000);
  process.stdout.write(
    `  measured: --cpus 0.2 busy loop got ${(share * 100).toFixed(1)}% of a CPU over 4 s (nr_throttled +${b.nr_throttled - a.nr_throttled})\n`,
  );
  assert.ok(share > 0.1 && share < 0.3, `CPU share ${share.toFixed(3)}`);
  assert.ok(b.nr_throttled > a.nr_throttled, 'never throttled');
  const st = await runHutch(['stats', '--no-stream', '--json', name]);
  assert.is(st.code, 0, describe(st));
  const row = JSON.parse(st.stdout)[0];
  assert.ok(row.cpuPercent > 5 && row.cpuPercent < 35, `hutch stats CPU % ${row.cpuPercent}`);
  s.child.kill('SIGTERM');
  await s.exited;
});

test('pause stops progress, resume restarts it', async () => {
  const dir = tmpDir();
  fs.chmodSync(dir, 0o777);
  const name = uniq('frz');
  const s = await startNamed(name, ['-v', `${dir}:/out`, '--timeout', '120s'], 'i=0; while :; do i=$((i+1)); echo $i > /out/c; sleep 0.1; done');
  const counter = () => Number(fs.readFileSync(path.join(dir, 'c'), 'utf8').trim() || 0);
  await waitFor(() => counter() > 3, 30_000, { what: 'the counter to run' });
  const p = await runHutch(['pause', name]);
  assert.is(p.code, 0, describe(p));
  assert.is(keyed(s.cg, 'cgroup.events').frozen, 1);
  const a = counter();
  await sleep(2000);
  assert.is(counter(), a, 'the counter moved while paused');
  const st = JSON.parse((await runHutch(['stats', '--no-stream', '--json', name])).stdout)[0];
  assert.is(st.frozen, true);
  const r = await runHutch(['resume', name]);
  assert.is(r.code, 0, describe(r));
  await waitFor(() => counter() > a + 3, 30_000, { what: 'the counter to move after resume' });
  s.child.kill('SIGTERM');
  await s.exited;
});

test('update changes live limits', async () => {
  const name = uniq('upd');
  const s = await startNamed(name, ['--memory', '256m', '--timeout', '120s'], 'sleep 100');
  assert.is(cgRead(s.cg, 'memory.max'), String(256 * MiB));
  const u = await runHutch(['update', name, '--memory', '96m', '--cpus', '0.5', '--pids-limit', '50']);
  assert.is(u.code, 0, describe(u));
  assert.is(cgRead(s.cg, 'memory.max'), String(96 * MiB));
  assert.is(cgRead(s.cg, 'cpu.max'), '50000 100000');
  assert.is(cgRead(s.cg, 'pids.max'), '50');
  const entry = (await ps()).find((e) => e.name === name)!;
  assert.is(entry.limits!.memory, 96 * MiB);
  assert.is(entry.limits!.pidsLimit, 50);
  const bad = await runHutch(['update', name, '--memory', 'lots']);
  assert.is(bad.code, 125);
  assert.match(bad.stderr, /--memory: "lots" is not a size/);
  s.child.kill('SIGTERM');
  await s.exited;
});

test('--timeout kills everything in the sandbox, also what left the process group', async () => {
  const t0 = Date.now();
  const r = await run(['--timeout', '3s', '--', 'sh', '-c', 'sleep 300 & setsid sleep 301 & (sleep 302 &) ; wait']);
  assert.is(r.code, 124, describe(r));
  assert.ok(Date.now() - t0 < 30_000);
  assert.match(r.stderr, /hutch: killed: timeout 3s reached/);
  const left = fs
    .readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .filter((n) => {
      try {
        return /^sleep 30[012]/.test(fs.readFileSync(`/proc/${n}/cmdline`, 'utf8').replace(/\0/g, ' '));
      } catch {
        return false;
      }
    });
  assert.equal(left, [], 'processes survived the timeout');
});

test("the report's figures match cpu.stat and memory.peak", async () => {
  const dir = tmpDir();
  const report = path.join(dir, 'r.json');
  const name = uniq('rep');
  const child = spawnHutch([
    'run',
    '--network',
    'none',
    '--name',
    name,
    '--report',
    report,
    '--summary',
    '--',
    'sh',
    '-c',
    'end=$(($(date +%s) + 2)); while [ $(date +%s) -lt $end ]; do :; done; head -c 60m /dev/zero | tail > /dev/null; touch /tmp/done; sleep 4',
  ]);
  child.stdout!.resume();
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  let done = false;
  void exited.then(() => (done = true));
  const entry = await waitFor(
    async () => {
      if (done) throw new Error(`hutch exited early: ${stderr}`);
      return (await ps()).find((e) => e.name === name && e.cgroup);
    },
    60_000,
    { what: 'the sandbox' },
  );
  // Wait until the work is done (peak reached, CPU burnt), then sample during the sleep.
  await waitFor(() => Number(cgRead(entry.cgroup!, 'memory.peak')) > 60 * MiB && keyed(entry.cgroup!, 'cpu.stat').usage_usec > 1_500_000, 60_000, {
    what: 'the work',
  });
  await sleep(1500);
  const cpu = keyed(entry.cgroup!, 'cpu.stat');
  const peak = Number(cgRead(entry.cgroup!, 'memory.peak'));
  assert.is(await exited, 0, stderr);
  const rep = JSON.parse(fs.readFileSync(report, 'utf8'));
  // The report is read at exit, after the sample: never less, and only the
  // tail of the run more (sleep's exit, init's teardown). Under qemu's TCG that
  // tail has been measured at up to 1.2 s of cgroup CPU time on a loaded host,
  // so the bound is relative to what the run used (5%), 300 ms at least.
  const slack = Math.max(300_000, cpu.usage_usec * 0.05);
  assert.ok(
    rep.cpu.usageUsec >= cpu.usage_usec && rep.cpu.usageUsec - cpu.usage_usec < slack,
    `report ${rep.cpu.usageUsec} vs cpu.stat ${cpu.usage_usec} (slack ${slack})`,
  );
  assert.ok(Math.abs(rep.cpu.userUsec + rep.cpu.systemUsec - rep.cpu.usageUsec) < 50_000, JSON.stringify(rep.cpu));
  process.stdout.write(
    `  measured: report cpu ${rep.cpu.usageUsec} us vs cpu.stat ${cpu.usage_usec} us during the sleep; report peak ${rep.memory.peakBytes} vs memory.peak ${peak}\n`,
  );
  assert.ok(Math.abs(rep.memory.peakBytes - peak) < 2 * MiB, `report peak ${rep.memory.peakBytes} vs memory.peak ${peak}`);
  assert.is(rep.exitCode, 0);
  assert.ok(rep.wallMs >= 5000, `wall ${rep.wallMs}`);
  assert.match(stderr, new RegExp(`hutch: ${name}: exit 0, wall \\d+\\.\\d\\d s, cpu \\d+\\.\\d\\d s user \\+ \\d+\\.\\d\\d s system, peak memory`));
});

test('a sandbox cgroup left by a killed hutch and monitor is removed by the next run', async () => {
  const name = uniq('crash');
  const s = await startNamed(name, [], 'sleep 300');
  // A SIGKILL of hutch alone leaves nothing now (the monitor, watching hutch's pid, removes the
  // cgroup: handover.test.ts): the monitor is killed too, in the same instant, before either can.
  const monitor = (fs.readFileSync(`/proc/${s.child.pid}/task/${s.child.pid}/children`, 'utf8').trim().split(/\s+/).map(Number) as number[]).find(
    (p) => fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'hutch-helper',
  );
  assert.ok(monitor, 'the monitor under hutch');
  process.kill(monitor!, 'SIGKILL'); // its init follows (PR_SET_PDEATHSIG)
  s.child.kill('SIGKILL');
  await s.exited;
  await waitFor(() => fs.existsSync(s.cg) && keyed(s.cg, 'cgroup.events').populated === 0, 30_000, { what: 'the sandbox to die' });
  assert.ok(fs.existsSync(s.cg), 'expected the dead run to leave its cgroup behind');
  const r = await run(['--memory', '64m', '--', 'true']);
  assert.is(r.code, 0, describe(r));
  assert.ok(!fs.existsSync(s.cg), `${s.cg} is still there`);
  const base = path.dirname(s.cg);
  assert.equal(
    fs.readdirSync(base).filter((n) => n.startsWith('hutch.') && n !== 'hutch.leaf'),
    [],
    'sandbox cgroups left over',
  );
});

test.run();
