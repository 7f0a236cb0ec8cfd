// --userns keep-id: the caller keeps its uid and gid inside (not root), the
// subordinate ids are mapped around them as podman does, files written in a
// bind mount are the caller's on the host, `whoami` and $HOME resolve, the
// command holds no capabilities. As real root, keep-id is just root.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describe, expectExit, isRoot, runHutch, tmpDir } from '../lib/hutch';
import { debianFixtures, fixture, fixturesMissing, subStart } from '../fixtures/debian';

const uid = process.getuid!();
const gid = process.getgid!();
const me = os.userInfo().username;
const noFixtures = fixturesMissing();
const hasSubids = subStart('/etc/subuid') !== undefined && subStart('/etc/subgid') !== undefined;

function testUnless(why: string | undefined | false, name: string, fn: () => Promise<void>): void {
  if (!why) {
    test(name, fn);
    return;
  }
  process.stdout.write(`  skip: ${name}: ${why}\n`);
  test.skip(name, fn);
}

const keepId = (root: string, script: string, ...flags: string[]) =>
  runHutch(['run', '--network', 'none', '--userns', 'keep-id', '--rootfs', root, ...flags, '--', 'sh', '-c', script]);

test.before(async () => {
  if (!noFixtures) await debianFixtures();
});

const SCRIPT = `echo "ids=$(id -u):$(id -g) name=$(whoami) group=$(id -gn)"
grep -E '^Cap(Prm|Eff|Amb)' /proc/self/status | tr -s '\\t' ' '
echo "home=$HOME"; touch "$HOME/.hutch-probe" && echo home-writable
touch /work/made && echo bind-written`;

for (const [label, root, why] of [
  ['host root', 'host', undefined],
  ['dir: root from sudo debootstrap (no passwd entry for the caller)', `dir:${fixture('rootfs')}`, noFixtures],
] as const) {
  testUnless(
    !isRoot() && !hasSubids ? `keep-id needs subordinate ids for ${me}` : why,
    `${label}: keep-id keeps the caller's ids; a bind file is the caller's; whoami resolves`,
    async () => {
      const work = tmpDir();
      const passwdBefore = root === 'host' ? fs.readFileSync('/etc/passwd') : fs.readFileSync(fixture('rootfs', 'etc', 'passwd'));
      const r = expectExit(await keepId(root, SCRIPT, '-v', `${work}:/work`));
      const want = isRoot() ? 'ids=0:0 name=root' : `ids=${uid}:${gid} name=${me}`;
      assert.match(r.stdout, new RegExp(`^${want} group=\\S+$`, 'm'), describe(r));
      if (!isRoot()) {
        // not root: no capabilities, as podman (the bounding set stays the profile's)
        assert.match(r.stdout, /^CapPrm: 0000000000000000$/m);
        assert.match(r.stdout, /^CapEff: 0000000000000000$/m);
        assert.match(r.stdout, /^CapAmb: 0000000000000000$/m);
      }
      assert.match(r.stdout, /^home-writable$/m, describe(r));
      assert.match(r.stdout, /^bind-written$/m);
      const st = fs.statSync(path.join(work, 'made'));
      assert.is(`${st.uid}:${st.gid}`, `${uid}:${gid}`, 'the file in the bind is owned by the caller on the host');
      const passwdAfter = root === 'host' ? fs.readFileSync('/etc/passwd') : fs.readFileSync(fixture('rootfs', 'etc', 'passwd'));
      assert.ok(passwdAfter.equals(passwdBefore), "the root's own /etc/passwd is unchanged");
    },
  );
}

test("default stays root inside; a bind file written by root is the caller's", async () => {
  const work = tmpDir();
  const r = expectExit(await runHutch(['run', '--network', 'none', '-v', `${work}:/work`, '--', 'sh', '-c', 'id -u; touch /work/r']));
  assert.match(r.stdout, /^0$/m);
  assert.is(fs.statSync(path.join(work, 'r')).uid, uid);
});

testUnless(
  isRoot() ? 'as root keep-id is root' : !hasSubids && `keep-id needs subordinate ids for ${me}`,
  '--dry-run shows the keep-id maps: 0..uid-1 and uid+1.. subordinate, uid -> the caller',
  async () => {
    const sub = subStart('/etc/subuid')!;
    const r = expectExit(await runHutch(['run', '--network', 'none', '--userns', 'keep-id', '--dry-run', '--', 'true']));
    assert.match(r.stdout, new RegExp(`^uidmap\\t0\\t${sub}\\t${uid}$`, 'm'), r.stdout.slice(0, 2000));
    assert.match(r.stdout, new RegExp(`^uidmap\\t${uid}\\t${uid}\\t1$`, 'm'));
    assert.match(r.stdout, new RegExp(`^uidmap\\t${uid + 1}\\t${sub + uid}\\t\\d+$`, 'm'));
    assert.match(r.stdout, new RegExp(`^user\\t${uid}:${gid}$`, 'm'));
    assert.match(r.stdout, /^# uid map \(inside -> host\): /m);
  },
);

testUnless(
  isRoot() && 'as root keep-id is root (a single-id map is enough)',
  'keep-id without subordinate ids: exit 125 naming the flag and the fix',
  async () => {
    const r = await runHutch(['run', '--network', 'none', '--userns', 'keep-id', '--', 'true'], { env: { HUTCH_NO_SUBIDS: '1' } });
    assert.is(r.code, 125, describe(r));
    assert.match(r.stderr, /--userns keep-id: needs subordinate ids/);
    assert.match(r.stderr, /\/etc\/subuid/);
  },
);

testUnless(!isRoot() && 'root only', 'as root, keep-id is root: the plan is the default one', async () => {
  const plain = expectExit(await runHutch(['run', '--network', 'none', '--name', 'kid-same', '--dry-run', '--', 'true']));
  const kept = expectExit(await runHutch(['run', '--network', 'none', '--name', 'kid-same', '--userns', 'keep-id', '--dry-run', '--', 'true']));
  const plan = (s: string) => s.slice(s.indexOf('# helper plan'));
  assert.is(plan(kept.stdout), plan(plain.stdout));
});

test('--userns with an unknown mode: exit 125 naming the modes', async () => {
  const r = await runHutch(['run', '--userns', 'keepid', '--', 'true']);
  assert.is(r.code, 125, describe(r));
  assert.match(r.stderr, /--userns: "keepid" is not one of root, keep-id/);
});

test('profile userns: keep-id is the same as the flag', async () => {
  const dir = tmpDir();
  const prof = path.join(dir, 'k.yaml');
  fs.writeFileSync(prof, 'extends: default\nuserns: keep-id\nnetwork: none\n');
  const r =
    isRoot() || hasSubids
      ? expectExit(await runHutch(['run', '--profile', prof, '--dry-run', '--', 'true']))
      : await runHutch(['run', '--profile', prof, '--dry-run', '--', 'true']);
  if (isRoot()) assert.match(r.stdout, /"userns": "keep-id"/);
  else if (hasSubids) assert.match(r.stdout, new RegExp(`^user\\t${uid}:${gid}$`, 'm'));
  else assert.match(r.stderr, /keep-id: needs subordinate ids/);
});

test.run();
