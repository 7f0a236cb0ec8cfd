// A foreground `hutch run` keeps no Node process for the sandbox's life: once
// the command runs, hutch's process becomes `hutch-helper await`
// (src/cli/handover.ts, helper-c/await.c). Attacked from outside: the process
// the shell waits for and everything under it are read from /proc, signals go
// to that pid as a shell's would, and a SIGKILL of it must leave nothing.

import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describe, descendants, hostPids, hutchCmd, procStatus, runHutch, spawnHutch, waitFor } from '../lib/hutch';

const uid = process.getuid!();
const uniq = () => `h${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
const runtime = process.env.XDG_RUNTIME_DIR || `/tmp/hutch-run-${uid}`;
const hutchBinary = fs.realpathSync(hutchCmd()[0]);
// node running dist/hutch.cjs may have no process.execve: hutch then stays (and says so)
const singleExecutable = path.basename(hutchBinary) !== 'node';

/** What /proc says a process is: its executable (when readable), name and resident memory. */
function whatIs(pid: number): { exe?: string; name: string; rssKiB: number } {
  const s = procStatus(pid);
  if (!s) return { name: '(gone)', rssKiB: 0 };
  let exe: string | undefined;
  try {
    exe = fs.readlinkSync(`/proc/${pid}/exe`);
  } catch {
    /* not dumpable (the monitor, the init): name and memory still tell */
  }
  return { exe, name: s.Name, rssKiB: Number.parseInt(s.VmRSS ?? '0', 10) };
}

/** A Node process: hutch's own single executable, a node binary, or anything of Node's size (> 12 MiB resident). */
function isNode(p: { exe?: string; name: string; rssKiB: number }): boolean {
  const exe = p.exe?.replace(/ \(deleted\)$/, '');
  return (
    exe === hutchBinary ||
    (exe !== undefined && path.basename(exe) === 'node') ||
    p.name === 'node' ||
    p.name === 'hutch' ||
    p.name === 'MainThread' ||
    p.rssKiB > 12 * 1024
  );
}

/** Starts `hutch run -- sh -c 'echo ready; exec sleep 60'` and waits until the handover happened. */
async function startSleeping(name: string) {
  const child = spawnHutch(['run', '--network', 'none', '--name', name, '--', 'sh', '-c', 'echo ready; exec sleep 60']);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  await waitFor(() => out.includes('ready'), 15_000, { what: 'ready' });
  // `ready` is printed by the command: the handover follows its exec within milliseconds
  await waitFor(() => whatIs(child.pid!).name === 'hutch-helper', 5_000, { what: `hutch's process to become hutch-helper await (stderr: ${err})` });
  return { child, exited, stderr: () => err };
}

const skip = (name: string) => test(name, () => console.log(`  skipped: ${name}: hutch runs as ${hutchBinary}, not the single executable`));

if (!singleExecutable) {
  skip('after the start no Node process of hutch is left');
} else {
  test('after the start no Node process of hutch is left: the waited-for pid is hutch-helper await, its children the monitor, init, command', async () => {
    const name = uniq();
    const { child, exited } = await startSleeping(name);
    const pid = child.pid!;
    const self = whatIs(pid);
    assert.is(self.name, 'hutch-helper', `hutch's pid ${pid} is ${JSON.stringify(self)}`);
    assert.ok(!isNode(self), `hutch's pid ${pid} is still Node: ${JSON.stringify(self)}`);
    assert.match(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, 2).join(' '), /^hutch-helper await$/);
    const tree = descendants(pid);
    assert.ok(tree.length >= 3, `expected monitor, init and command under ${pid}: ${tree}`);
    const nodes = [pid, ...tree].map((p) => ({ pid: p, ...whatIs(p) })).filter(isNode);
    assert.equal(nodes, [], 'Node processes in the tree of hutch run');
    process.kill(pid, 'SIGTERM');
    const r = await exited;
    assert.is(r.code, 143, JSON.stringify(r));
  });

  test('SIGTERM and SIGINT to the hutch pid end the command with 143 and 130', async () => {
    for (const [sig, code] of [
      ['SIGTERM', 143],
      ['SIGINT', 130],
    ] as const) {
      const { child, exited, stderr } = await startSleeping(uniq());
      const tree = descendants(child.pid!);
      process.kill(child.pid!, sig);
      const r = await exited;
      assert.is(r.code, code, `${sig}: ${JSON.stringify(r)} ${stderr()}`);
      await waitFor(() => tree.every((p) => !hostPids().includes(p)), 10_000, { what: `the sandbox's processes to exit after ${sig}` });
    }
  });

  test('SIGKILL of the hutch pid leaves no process, mount, state directory or cgroup', async () => {
    const name = uniq();
    const { child, exited } = await startSleeping(name);
    const tree = descendants(child.pid!);
    const stateDir = path.join(runtime, 'hutch', name);
    assert.ok(fs.existsSync(stateDir), `state dir ${stateDir} exists while running`);
    const cgroup = (JSON.parse(fs.readFileSync(path.join(stateDir, 'state.json'), 'utf8')) as { cgroup?: string }).cgroup;
    process.kill(child.pid!, 'SIGKILL');
    const r = await exited;
    assert.is(r.signal, 'SIGKILL');
    await waitFor(() => tree.every((p) => !hostPids().includes(p)), 10_000, { what: 'the monitor, init and command to exit' });
    await waitFor(() => !fs.existsSync(stateDir), 5_000, { what: `state dir ${stateDir} removed` });
    if (cgroup) await waitFor(() => !fs.existsSync(cgroup), 5_000, { what: `cgroup ${cgroup} removed` });
    assert.not.match(fs.readFileSync('/proc/self/mountinfo', 'utf8'), new RegExp(name));
  });

  test('SIGKILL of the monitor: hutch exits 137 and removes the state directory the monitor could not', async () => {
    const name = uniq();
    const { child, exited } = await startSleeping(name);
    const monitor = descendants(child.pid!).find((p) => Number(procStatus(p)?.PPid) === child.pid);
    assert.ok(monitor, 'a monitor under hutch');
    const stateDir = path.join(runtime, 'hutch', name);
    process.kill(monitor!, 'SIGKILL');
    const r = await exited;
    assert.is(r.code, 137, JSON.stringify(r));
    assert.not.ok(fs.existsSync(stateDir), `state dir ${stateDir} left`);
  });
}

test("the exit status of the command is hutch's, after the handover too", async () => {
  // past spawn.ts HANDOVER_DELAY_MS (1 s): the status comes through hutch-helper await
  const r = await runHutch(['run', '--network', 'none', '--', 'sh', '-c', 'sleep 1.6; echo out; echo err >&2; exit 7']);
  assert.is(r.code, 7, describe(r));
  assert.is(r.stdout, 'out\n');
  assert.match(r.stderr, /^err$/m);
  const quick = await runHutch(['run', '--network', 'none', '--', 'sh', '-c', 'exit 7']); // before any handover
  assert.is(quick.code, 7, describe(quick));
  const killed = await runHutch(['run', '--network', 'none', '--', 'sh', '-c', 'sleep 1.6; kill -USR1 $$']);
  assert.is(killed.code, 128 + 10, describe(killed));
});

test('--dry-run and HUTCH_TRACE say whether hutch hands over or stays, and why', async () => {
  const plain = await runHutch(['run', '--dry-run', '--network', 'none', '--', 'true']);
  const report = await runHutch(['run', '--dry-run', '--network', 'none', '--report', '/dev/null', '--', 'true']);
  if (singleExecutable) {
    assert.match(plain.stdout, /^# after the start: hutch execs hutch-helper await in its process \(no Node stays\)$/m, describe(plain));
    assert.match(plain.stdout, /^# handover: /m, 'the plan notes the handover');
  } else assert.match(plain.stdout, /^# after the start: hutch stays resident \(this node .* has no process.execve\)$/m, describe(plain));
  assert.match(report.stdout, /^# after the start: hutch stays resident \((--report|this node .*)\)$/m, describe(report));
  const traced = await runHutch(['run', '--network', 'none', '--', 'true'], { env: { HUTCH_TRACE: '1' } });
  assert.match(traced.stderr, singleExecutable ? /run: hands over to hutch-helper await/ : /run: hutch stays resident/, describe(traced));
  const stays = await runHutch(['run', '--network', 'none', '--summary', '--', 'true'], { env: { HUTCH_TRACE: '1' } });
  assert.match(stays.stderr, /run: hutch stays resident \((--summary|this node .*)\)/, describe(stays));
});

test.run();
