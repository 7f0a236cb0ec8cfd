// Profile `setup:` steps as cached layers, `hutch build`, `hutch run
// --profile` building what is missing, and `hutch commit` of a kept sandbox,
// on the Debian image (debootstrap fixture).

import fs from 'node:fs';
import path from 'node:path';
import { test as uvuTest } from 'uvu';
import * as assert from 'uvu/assert';
import { describe, expectExit, runHutch, tmpDir } from '../lib/hutch';
import { debianFixtures, fixtureSuite, DRIVERS, fixture, importImage, onImage } from '../fixtures/debian';

// Skipped, with the reason, when the Debian fixtures are missing.
const test = fixtureSuite(uvuTest);

// A store of this file's own: other test files of the tier share XDG_DATA_HOME.
process.env.XDG_DATA_HOME = tmpDir('hutch-data-');

const dir = tmpDir('hutch-build-');
const profile = path.join(dir, 'p.yaml');

function writeProfile(steps: string[]): void {
  fs.writeFileSync(profile, `rootfs: {image: deb}\nsetup:\n${steps.map((s) => `  - ${s}`).join('\n')}\n`);
}

const STEPS = [
  'run: echo one > /one; rm -f /etc/issue.net; rm -rf /etc/skel; mkdir /etc/skel; echo x > /etc/skel/x; chown 33:33 /one || true',
  'copy: {from: ./files, to: /opt/files}',
  'run: cat /opt/files/a > /two; chmod 600 /two',
];

/** Per step: 'cached' or 'built', from hutch build's progress lines. */
function outcome(stderr: string): string[] {
  return [...stderr.matchAll(/^step (\d+)\/\d+ \(.*?\): (cached|building)/gm)].map((m) => (m[2] === 'cached' ? 'cached' : 'built'));
}

test.before(async () => {
  await debianFixtures();
  await importImage(fixture('rootfs.tar.zst'), 'deb');
  fs.mkdirSync(path.join(dir, 'files'));
  fs.writeFileSync(path.join(dir, 'files', 'a'), 'hello\n');
});

test('hutch build runs every step once; the layers show the steps (whiteouts, opaque dir, copy, owners)', async () => {
  writeProfile(STEPS);
  const r = expectExit(await runHutch(['build', profile], { cwd: dir }));
  assert.equal(outcome(r.stderr), ['built', 'built', 'built'], describe(r));
  for (const driver of DRIVERS) {
    const inside = expectExit(
      await runHutch([
        'run',
        '--network',
        'none',
        '--storage-driver',
        driver,
        '--profile',
        profile,
        '--',
        'sh',
        '-c',
        'cat /one /two /opt/files/a; ls -A /etc/skel; test -e /etc/issue.net || echo gone; stat -c "%a" /two; stat -c "%u" /one',
      ]),
    );
    assert.is(inside.stdout, 'one\nhello\nhello\nx\ngone\n600\n' + (process.getuid!() === 0 ? '0\n' : '33\n'), `${driver}: ${describe(inside)}`);
  }
});

test('an unchanged profile rebuilds from cache in well under a second', async () => {
  const t = Date.now();
  const r = expectExit(await runHutch(['build', profile]));
  const ms = Date.now() - t;
  assert.equal(outcome(r.stderr), ['cached', 'cached', 'cached']);
  assert.ok(ms < 1000, `cached build took ${ms} ms`);
  process.stdout.write(`  cached hutch build: ${ms} ms wall (3 steps)\n`);
});

test('changing one step rebuilds it and the steps after it only', async () => {
  writeProfile([STEPS[0], STEPS[1], 'run: cat /opt/files/a > /two; echo changed >> /two']);
  assert.equal(outcome(expectExit(await runHutch(['build', profile])).stderr), ['cached', 'cached', 'built']);
  fs.writeFileSync(path.join(dir, 'files', 'a'), 'hello again\n'); // the copy step's content changes
  assert.equal(outcome(expectExit(await runHutch(['build', profile])).stderr), ['cached', 'built', 'built']);
  const r = expectExit(await runHutch(['run', '--network', 'none', '--profile', profile, '--', 'cat', '/two']));
  assert.is(r.stdout, 'hello again\nchanged\n');
});

test('--no-cache rebuilds every step', async () => {
  assert.equal(outcome(expectExit(await runHutch(['build', '--no-cache', profile])).stderr), ['built', 'built', 'built']);
});

test('a step built by fuse-overlayfs gives the same result (its whiteout and opaque markers converted)', async () => {
  const r = expectExit(await runHutch(['build', '--no-cache', '--storage-driver', 'fuse-overlayfs', profile]));
  assert.equal(outcome(r.stderr), ['built', 'built', 'built']);
  const inside = expectExit(
    await runHutch(['run', '--network', 'none', '--profile', profile, '--', 'sh', '-c', 'ls -A /etc/skel; test -e /etc/issue.net || echo gone']),
  );
  assert.is(inside.stdout, 'x\ngone\n');
});

test('hutch run --profile builds missing steps first; a failing step is an error and is not cached', async () => {
  writeProfile([STEPS[0], 'run: echo new-step > /three']);
  const r = expectExit(await runHutch(['run', '--network', 'none', '--profile', profile, '--', 'cat', '/three']));
  assert.is(r.stdout, 'new-step\n');
  assert.match(r.stderr, /step 2\/2 .*building/);
  writeProfile([STEPS[0], 'run: echo partial > /partial; exit 3']);
  const bad = await runHutch(['build', profile]);
  assert.is(bad.code, 125, describe(bad));
  assert.match(bad.stderr, /step 2\/2 .* failed with exit status 3/);
  const again = await runHutch(['build', profile]);
  assert.match(again.stderr, /step 2\/2 .*building/, 'the failed step is tried again');
});

test('setup on the host root is refused with a hint', async () => {
  fs.writeFileSync(profile, 'rootfs: host\nsetup:\n  - run: "true"\n');
  const r = await runHutch(['build', profile]);
  assert.is(r.code, 125);
  assert.match(r.stderr, /setup: steps need a root filesystem/);
});

test('hutch commit turns a kept sandbox upper layer into a new image over its image', async () => {
  const keep = path.join(tmpDir(), 'keep');
  expectExit(
    await onImage(
      'deb',
      'echo c > /committed; rm /etc/issue; rm -rf /etc/apt/apt.conf.d; mkdir /etc/apt/apt.conf.d; touch /etc/apt/apt.conf.d/only',
      '--name',
      'k1',
      '--keep',
      keep,
    ),
  );
  const c = expectExit(await runHutch(['commit', 'k1', 'deb-committed']));
  assert.match(c.stdout, /^sha256:/);
  const layers = JSON.parse(expectExit(await runHutch(['image', 'inspect', 'deb-committed'])).stdout).layers;
  assert.is(layers.length, 2);
  const r = expectExit(await onImage('deb-committed', 'cat /committed; test -e /etc/issue || echo gone; ls /etc/apt/apt.conf.d; apt-get --version | head -1'));
  assert.match(r.stdout, /^c\ngone\nonly\napt 2/);
  const missing = await runHutch(['commit', 'nope', 'x']);
  assert.is(missing.code, 125);
});

test.run();
