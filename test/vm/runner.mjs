// The vm tier of test/run.mjs: hutch's cgroup integration tests on a real,
// pure cgroup v2 kernel. This host (and the CI machine) runs cgroups in
// hybrid mode, so the tests run in a qemu guest: Debian's stock kernel booted
// with cgroup_no_v1=all (guest/build-guest.sh, cached in
// ~/.cache/hutch-test-vm), the host's / shared read-only over 9p with a RAM
// overlay (guest/init), and a cgroup subtree delegated to the unprivileged
// test user the way systemd's Delegate=yes does. One boot runs every
// selected file, one after the other, as that user; each file's output and
// status come back through a writable 9p share and are judged like any
// other tier's (uvu summary -> N passed, N failed).
//
// Without qemu-system-x86_64 the tier fails with a clear line, unless
// HUTCH_SKIP_VM=1 asks to skip it (counted as skipped). .ci/run installs
// qemu-system-x86, busybox-static and xz-utils, so CI always runs it.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { judgeRun, lineSplitter } from '../lib/summary.mjs';
import { ensureTestUser, nodeForUser, readableCopy, which } from '../lib/testuser.mjs';

const HERE = path.dirname(new URL(import.meta.url).pathname);

function shq(s) {
  return `'${String(s).replace(/'/g, `'\\''`)}'`;
}

function row(rel, fields) {
  return { tier: 'vm', rel, passed: 0, failed: 0, skipped: 0, crashed: false, reason: '', output: '', ...fields };
}

function stream(argv, { prefix, say, timeoutMs, env }) {
  return new Promise((resolve) => {
    let output = '';
    let timedOut = false;
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env, detached: true });
    const lines = lineSplitter((l) => say(`${prefix} ${l}`));
    const onData = (d) => {
      output += d;
      lines.push(d);
    };
    child.stdout.setEncoding('utf8').on('data', onData);
    child.stderr.setEncoding('utf8').on('data', onData);
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ code: null, output, timedOut, error });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      lines.flush();
      resolve({ code, output, timedOut });
    });
  });
}

/**
 * files: repo-relative test/vm/*.test.ts (already compiled into build/test/vm).
 * ctx: { root, runDir, packages, compiled(rel) -> absolute .mjs path, say, paint, isRoot }
 * opts: { timeoutS, budgetLeftMs }
 */
export async function runVmTier(files, ctx, opts) {
  if (files.length === 0) return [];
  const { say, paint } = ctx;
  const qemu = which('qemu-system-x86_64');
  if (!qemu || !which('busybox') || !which('xz')) {
    const missing = [!qemu && 'qemu-system-x86_64', !which('busybox') && 'busybox', !which('xz') && 'xz'].filter(Boolean).join(', ');
    if (process.env.HUTCH_SKIP_VM === '1') {
      say(paint('33', `== vm: SKIPPED (HUTCH_SKIP_VM=1; ${missing} not found): the cgroup v2 tests did not run ==`));
      return files.map((rel) => row(rel, { skipped: 1, reason: 'HUTCH_SKIP_VM=1' }));
    }
    const reason = `vm tier cannot run: ${missing} not found (apt-get install qemu-system-x86 busybox-static xz-utils; or set HUTCH_SKIP_VM=1 to skip the cgroup v2 tests explicitly)`;
    say(paint('31', `== vm: ${reason} ==`));
    return files.map((rel) => row(rel, { failed: 1, crashed: true, reason }));
  }

  if (opts.budgetLeftMs <= 60_000) {
    const reason = 'not run: the time budget is spent (the guest needs at least a minute)';
    say(paint('31', `== vm: ${reason} ==`));
    return files.map((rel) => row(rel, { failed: 1, crashed: true, reason }));
  }
  say(paint('1', `== vm: ${files.length} file(s) in a cgroup v2 guest (qemu, TCG) ==`));
  const cache = process.env.HUTCH_VM_CACHE || path.join(os.homedir(), '.cache', 'hutch-test-vm');
  const built = await stream(['sh', path.join(HERE, 'guest', 'build-guest.sh'), cache], {
    prefix: paint('35', '[vm build]'),
    say,
    timeoutMs: 10 * 60 * 1000,
    env: process.env,
  });
  if (built.code !== 0) {
    const reason = `building the guest failed (${built.timedOut ? 'timed out' : `exit ${built.code}`})`;
    return files.map((rel) => row(rel, { failed: 1, crashed: true, reason }));
  }

  // Who runs the tests in the guest, and from where.
  let user;
  let repo = ctx.root;
  let node = process.execPath;
  const vmDir = path.join(ctx.runDir, 'vm');
  const outDir = path.join(vmDir, 'out');
  fs.mkdirSync(outDir, { recursive: true });
  fs.chmodSync(vmDir, 0o755);
  fs.chmodSync(outDir, 0o777);
  if (ctx.isRoot) {
    user = ensureTestUser((m) => say(`# vm: ${m}`));
    repo = path.join(ctx.runDir, 'repo');
    if (!fs.existsSync(path.join(repo, 'dist'))) {
      readableCopy(ctx.root, repo, ['package.json', 'dist', 'build', 'sandbox-profiles', 'test'], ctx.packages);
    }
    node = nodeForUser(user, path.join(ctx.runDir, 'bin'));
  } else {
    user = { uid: process.getuid(), gid: process.getgid(), name: os.userInfo().username };
  }

  // The driver runs in the guest as the test user, inside the delegated cgroup.
  const S = '/run/scratch';
  // TCG runs 5-10x slower than the host (and fuse-overlayfs, the guest root's default driver, slower still): a floor of 10 minutes a file
  const perFile = Math.max(opts.timeoutS, 600);
  const lines = [
    '#!/bin/sh',
    `export HOME=${S}/home XDG_RUNTIME_DIR=${S}/runtime XDG_DATA_HOME=${S}/data XDG_CACHE_HOME=${S}/cache`,
    `export XDG_CONFIG_HOME=${S}/config XDG_STATE_HOME=${S}/state TMPDIR=${S}/tmp`,
    `export PATH=${shq(`${path.dirname(node)}:/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin`)}`,
    `export HUTCH=${shq(`${node} ${path.join(repo, 'dist', 'hutch.cjs')}`)} HUTCH_TEST_TIER=user HUTCH_REPO=${shq(repo)} HUTCH_IN_VM=1 NO_COLOR=1`,
    'mkdir -p -m 700 $HOME $XDG_RUNTIME_DIR $XDG_DATA_HOME $XDG_CACHE_HOME $XDG_CONFIG_HOME $XDG_STATE_HOME $TMPDIR',
    `cd ${shq(repo)}`,
    'echo "hutch-vm: uid $(id -u), cgroup $(cat /proc/self/cgroup), controllers: $(cat /sys/fs/cgroup/deleg/cgroup.controllers)"',
  ];
  files.forEach((rel, i) => {
    const compiled = path.join(repo, path.relative(ctx.root, ctx.compiled(rel)));
    lines.push(
      `echo "== ${rel}"`,
      `{ timeout -s KILL ${perFile} ${shq(node)} --enable-source-maps ${shq(compiled)}; echo $? > ${shq(path.join(outDir, `${i}.rc`))}; } 2>&1 | tee ${shq(path.join(outDir, `${i}.log`))}`,
    );
  });
  const driver = path.join(vmDir, 'driver.sh');
  fs.writeFileSync(driver, lines.join('\n') + '\n', { mode: 0o755 });

  const timeoutMs = Math.min(files.length * perFile * 1000 + 120_000, opts.budgetLeftMs);
  const append = `console=ttyS0 quiet cgroup_no_v1=all panic=-1 hutch_run=${driver} hutch_uid=${user.uid} hutch_out=${outDir}`;
  const started = Date.now();
  const vm = await stream(
    [
      qemu,
      '-accel',
      'tcg,thread=multi,tb-size=256',
      '-cpu',
      'max',
      '-m',
      process.env.HUTCH_VM_MEM || '1G',
      '-smp',
      '2',
      '-nodefaults',
      '-no-user-config',
      '-display',
      'none',
      '-serial',
      'stdio',
      '-monitor',
      'none',
      '-no-reboot',
      '-kernel',
      path.join(cache, 'vmlinux'),
      '-initrd',
      path.join(cache, 'initramfs.cpio.gz'),
      '-append',
      append,
      '-virtfs',
      'local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap',
      '-virtfs',
      `local,path=${outDir},mount_tag=out,security_model=none`,
    ],
    { prefix: paint('36', '[vm]'), say, timeoutMs, env: process.env },
  );
  const guestExit = /HUTCH_VM_EXIT=(\d+)/.exec(vm.output)?.[1];
  say(
    `# vm: qemu ${vm.timedOut ? `timed out after ${timeoutMs / 1000} s` : `exit ${vm.code}`}, guest exit ${guestExit ?? 'none'}, ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );

  return files.map((rel, i) => {
    const log = path.join(outDir, `${i}.log`);
    const rcFile = path.join(outDir, `${i}.rc`);
    const output = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '';
    if (!fs.existsSync(rcFile)) {
      const reason = `no result from the guest (${vm.timedOut ? 'qemu timed out' : guestExit === undefined ? 'the guest did not finish: panic or boot failure, see [vm] lines' : 'the file did not finish'})`;
      return row(rel, { failed: 1, crashed: true, reason, output });
    }
    const code = Number(fs.readFileSync(rcFile, 'utf8').trim());
    const j = judgeRun({ output, code: code === 137 ? null : code, signal: code === 137 ? 'SIGKILL' : null, timedOut: code === 137 });
    const counts = `${j.passed} passed, ${j.failed} failed` + (j.skipped ? `, ${j.skipped} skipped` : '');
    say(`${paint('36', `[vm ${rel}]`)} ${j.failed ? paint('31', 'FAIL') : paint('32', 'ok')} ${counts}${j.reason ? ' - ' + j.reason : ''}`);
    return { tier: 'vm', rel, ...j, output };
  });
}
