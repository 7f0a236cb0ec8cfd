// Storage drivers: kernel overlayfs and fuse-overlayfs give the same root
// filesystem contract (host / or a directory as a read-only lower layer,
// writes to a private upper layer, nothing reaching the lower layer).

import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describe, descendants, expectExit, hostPids, runHutch, spawnHutch, tmpDir, waitFor } from '../lib/hutch';

const DRIVERS = ['overlay', 'fuse-overlayfs'];
const mark = () => `m${process.pid}${Math.random().toString(16).slice(2, 8)}`;

for (const driver of DRIVERS) {
  const run = (args: string[], script: string) =>
    runHutch(['run', '--network', 'none', '--storage-driver', driver, ...args, '--', 'sh', '-c', script]);

  test(`${driver}: host root, writes stay in the sandbox`, async () => {
    const m = mark();
    const r = expectExit(await run([], `echo x > /etc/${m} && cat /etc/${m} && rm /etc/hostname && test ! -e /etc/hostname && echo gone; ls /usr/bin/env`));
    assert.match(r.stdout, /^x$/m);
    assert.match(r.stdout, /^gone$/m);
    assert.not.ok(fs.existsSync(`/etc/${m}`));
    assert.ok(fs.existsSync('/etc/hostname'), 'the host file is untouched');
  });

  test(`${driver}: the home directory is hidden`, async () => {
    const home = process.env.HOME!;
    const r = expectExit(await run([], `ls -A ${home} | wc -l`));
    assert.is(r.stdout.trim(), '0', describe(r));
  });

  test(`${driver}: dir: root from a directory, lower layer unchanged`, async () => {
    const dir = tmpDir();
    fs.mkdirSync(path.join(dir, 'data'));
    fs.writeFileSync(path.join(dir, 'data', 'f'), 'lower');
    // The helper is static: a usable command in an otherwise empty root.
    const r = await runHutch([
      'run', '--network', 'none', '--storage-driver', driver, '--rootfs', `dir:${dir}`,
      '-v', `${path.resolve('dist/hutch-helper')}:/helper:ro`, '--', '/helper', '--version',
    ], { cwd: process.env.HUTCH_REPO });
    expectExit(r);
    assert.equal(fs.readdirSync(dir).sort(), ['data'], 'no mount points created in the lower dir');
  });

  test(`${driver}: --keep keeps the upper layer`, async () => {
    const keep = path.join(tmpDir(), 'keep');
    const m = mark();
    expectExit(await run(['--keep', keep], `echo kept > /etc/${m}`));
    const candidates = [path.join(keep, 'upper', 'etc', m)];
    assert.ok(candidates.some((c) => fs.existsSync(c)), `kept file in ${keep}`);
  });
}

test('fuse-overlayfs: SIGKILL to hutch leaves no daemon, mount or upper dir behind', async () => {
  const name = `fk${process.pid}`;
  const child = spawnHutch(['run', '--network', 'none', '--storage-driver', 'fuse-overlayfs', '--name', name, '--', 'sh', '-c', 'echo x > /etc/f; echo ready; exec sleep 60']);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  await waitFor(() => out.includes('ready'), 15_000, { what: 'ready' });
  const tree = descendants(child.pid!);
  const comms = tree.map((p) => {
    try {
      return fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim();
    } catch {
      return '';
    }
  });
  assert.ok(comms.includes('fuse-overlayfs'), `the daemon runs outside the sandbox's pid namespace: ${comms}`);
  const runtime = process.env.XDG_RUNTIME_DIR || `/tmp/hutch-run-${process.getuid!()}`;
  const stateDir = path.join(runtime, 'hutch', name);
  // The upper layer lives in the sandbox's RAM budget: a tmpfs on <state dir>/ram in the monitor's mount namespace.
  const daemon = tree[comms.indexOf('fuse-overlayfs')];
  const cmdline = fs.readFileSync(`/proc/${daemon}/cmdline`, 'utf8');
  assert.ok(cmdline.includes(`upperdir=${path.join(stateDir, 'ram', 'upper')}`), `fuse-overlayfs upper: ${cmdline}`);
  assert.match(fs.readFileSync(`/proc/${daemon}/mountinfo`, 'utf8'), new RegExp(` ${path.join(stateDir, 'ram')} .* - tmpfs tmpfs `), 'the budget tmpfs');
  process.kill(child.pid!, 'SIGKILL');
  await waitFor(() => tree.every((p) => !hostPids().includes(p)), 10_000, { what: 'sandbox and daemon to exit' });
  await waitFor(() => !fs.existsSync(stateDir), 5_000, { what: 'state dir with the upper layer removed' });
  assert.not.match(fs.readFileSync('/proc/self/mountinfo', 'utf8'), new RegExp(name));
});

test('--storage-driver fuse-overlayfs without fuse-overlayfs: exit 125 with the package to install', async () => {
  const r = await runHutch(['run', '--network', 'none', '--storage-driver', 'fuse-overlayfs', '--', 'true'], {
    env: { PATH: '/nonexistent', HUTCH_STRICT_PATH: '1' },
  });
  assert.is(r.code, 125, describe(r));
  assert.match(r.stderr, /fuse-overlayfs/);
  assert.match(r.stderr, /apt install fuse-overlayfs/);
});

test.run();
