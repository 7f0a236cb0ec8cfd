// Many detached sandboxes at once (issue 15 point 4): all start, none
// fails, and after stop + rm nothing of them is left: processes, mounts,
// cgroups, records, state directories, NAT processes. The suite starts
// HUTCH_TEST_SCALE sandboxes (default 12) per network: 100 at once on a
// 2-core machine takes minutes, which is the bench's job (`npm run bench
// -- --group scale`, 100 by default). No timing is asserted here.

import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describe, descendants, procStatus, runHutch, sleep, tmpDir } from '../lib/hutch';

const COUNT = Number(process.env.HUTCH_TEST_SCALE || 12);

interface Seen {
  pid: number;
  name: string;
}

/** The process is still the one we saw (not gone, not a zombie, same name). */
function still(p: Seen): boolean {
  const s = procStatus(p.pid);
  return !!s && s.Name === p.name && !s.State.startsWith('Z');
}

function mountsUnder(dirs: string[]): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((mp) => mp && dirs.some((d) => mp.startsWith(d)));
}

/**
 * The NAT process of a sandbox: no hutch stays for a detached sandbox, so
 * slirp4netns is nobody's child; it names the sandbox's pid 1 on its
 * command line (it joins through /proc/INITPID/ns).
 */
function natOf(initPid: number | undefined): number[] {
  if (!initPid) return [];
  const out: number[] = [];
  for (const p of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const argv = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (/^(slirp4netns|pasta)/.test(path.basename(argv[0])) && argv.some((a) => a === String(initPid) || a.includes(`/proc/${initPid}/`)))
        out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

function entries(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

for (const [label, flags] of [
  ['network none', ['--network', 'none']],
  ['the default profile (user-mode NAT)', []],
] as const) {
  test(`${COUNT} detached sandboxes at once, ${label}: all start, all run, nothing left after stop + rm`, async () => {
    const dir = tmpDir('hutch-scale-');
    fs.chmodSync(dir, 0o755);
    const out = path.join(dir, 'out');
    fs.mkdirSync(out, { mode: 0o777 });
    fs.chmodSync(out, 0o777);
    const env: Record<string, string> = {};
    for (const [k, sub] of [
      ['XDG_RUNTIME_DIR', 'rt'],
      ['XDG_DATA_HOME', 'd'],
      ['XDG_STATE_HOME', 's'],
      ['XDG_CACHE_HOME', 'c'],
    ]) {
      env[k] = path.join(dir, sub);
      fs.mkdirSync(env[k], { mode: 0o700 });
    }
    const names = Array.from({ length: COUNT }, (_, i) => `scale${process.pid}-${i}`);
    const starts = await Promise.all(
      names.map((n) =>
        runHutch(['run', '-d', '--name', n, ...flags, '-e', `NAME=${n}`, '-v', `${out}:/out`, '--', 'sh', '-c', 'touch "/out/$NAME"; exec sleep 100000'], {
          env,
          timeoutMs: 300_000,
        }),
      ),
    );
    try {
      for (const [i, r] of starts.entries()) assert.is(r.code, 0, `${names[i]} did not start\n${describe(r)}`);
      // every command ran: its file exists
      for (let i = 0; i < 600 && entries(out).length < COUNT; i++) await sleep(100);
      assert.equal(entries(out).sort(), [...names].sort(), 'every sandbox ran its command');
      // what belongs to them, seen while they run
      const ins = await runHutch(['inspect', ...names], { env });
      assert.is(ins.code, 0, describe(ins));
      const recs = JSON.parse(ins.stdout) as { status: string; state?: { cgroup?: string }; record?: { pid?: number; initPid?: number } }[];
      assert.is(recs.length, COUNT);
      const procs: Seen[] = [];
      const cgroups: string[] = [];
      for (const r of recs) {
        assert.is(r.status, 'running');
        const top = r.record?.pid;
        assert.ok(top, 'the record names the process that keeps the sandbox (its monitor)');
        for (const pid of [top, ...descendants(top), ...natOf(r.record?.initPid)]) {
          const s = procStatus(pid);
          if (s) procs.push({ pid, name: s.Name });
        }
        if (r.state?.cgroup) cgroups.push(r.state.cgroup);
      }
      assert.ok(procs.filter((p) => p.name === 'sleep').length === COUNT, 'each tree holds its command');
      if (!flags.length)
        assert.ok(
          procs.some((p) => /^(slirp4netns|pasta)/.test(p.name)),
          'each sandbox has its NAT process',
        );
      const stop = await runHutch(['stop', '-t', '10', ...names], { env, timeoutMs: 120_000 });
      assert.is(stop.code, 0, describe(stop));
      const rm = await runHutch(['rm', ...names], { env });
      assert.is(rm.code, 0, describe(rm));
      const left = () => [
        ...procs.filter(still).map((p) => `process ${p.pid} ${p.name}`),
        ...mountsUnder([dir]).map((m) => `mount ${m}`),
        ...cgroups.filter((c) => fs.existsSync(c)).map((c) => `cgroup ${c}`),
        ...entries(path.join(env.XDG_RUNTIME_DIR, 'hutch'))
          .filter((e) => !e.startsWith('.') && e !== 'networks')
          .map((e) => `state dir ${e}`),
        ...entries(path.join(env.XDG_STATE_HOME, 'hutch', 'records')).map((e) => `record ${e}`),
      ];
      // the kernel finishes tearing down namespaces just after the processes exit
      for (let i = 0; i < 50 && left().length; i++) await sleep(100);
      assert.equal(left(), [], 'nothing of the sandboxes is left');
    } finally {
      await runHutch(['rm', '-f', ...names], { env });
    }
  });
}

test.run();
