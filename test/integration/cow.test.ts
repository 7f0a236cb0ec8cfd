// Copy-on-write means writable: root inside modifies, replaces and deletes
// existing files of the host root and of a `sudo debootstrap` directory
// (owned by host uid 0: outside the map of an unprivileged user's sandbox),
// as apt-get, `sed -i /etc/...` and `echo >> /etc/motd` need, and the host's
// files stay byte-identical. Kernel overlayfs cannot copy up files owned
// outside the map: forced, it says so in --dry-run and the test checks that
// limit is what happens; auto picks fuse-overlayfs for such roots.

import fs from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describe, expectExit, hasCommand, isRoot, runHutch, tmpDir } from '../lib/hutch';
import { debianFixtures, fixture, fixturesMissing } from '../fixtures/debian';

const FILES = ['etc/motd', 'etc/issue', 'etc/issue.net', 'usr/share/common-licenses/GPL-2'];
// What apt-get, sed -i and an appending script do to existing files.
const EDIT = `set -e
echo hutch-cow >> /etc/motd; tail -n 1 /etc/motd | grep -qx hutch-cow
sed -i 's/^/# /' /etc/issue.net; head -n 1 /etc/issue.net | grep -q '^# '
rm /etc/issue; test ! -e /etc/issue
printf 'replaced\\n' > /usr/share/common-licenses/GPL-2.new; mv /usr/share/common-licenses/GPL-2.new /usr/share/common-licenses/GPL-2
grep -qx replaced /usr/share/common-licenses/GPL-2
echo hutch-append >> /usr/share/common-licenses/GPL-2; grep -qx hutch-append /usr/share/common-licenses/GPL-2
echo edited`;

const fuseWhy = !hasCommand('fuse-overlayfs')
  ? 'fuse-overlayfs is not installed'
  : (() => {
      try {
        fs.accessSync('/dev/fuse', fs.constants.R_OK | fs.constants.W_OK);
        return undefined;
      } catch {
        return '/dev/fuse is not accessible to this user';
      }
    })();
const noFixtures = fixturesMissing();

/** `test`, or a skip that prints its reason (counted by the runner). */
function testUnless(why: string | undefined | false, name: string, fn: () => Promise<void>): void {
  if (!why) {
    test(name, fn);
    return;
  }
  process.stdout.write(`  skip: ${name}: ${why}\n`);
  test.skip(name, fn);
}

function digests(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of FILES)
    out[f] = createHash('sha256')
      .update(fs.readFileSync(path.join(root, f)))
      .digest('hex');
  return out;
}

const run = (root: string, driver: string, script: string, ...flags: string[]) =>
  runHutch(['run', '--network', 'none', '--rootfs', root, '--storage-driver', driver, ...flags, '--', 'sh', '-c', script]);

async function writable(root: string, driver: string): Promise<string> {
  const r = expectExit(await runHutch(['run', '--network', 'none', '--rootfs', root, '--storage-driver', driver, '--dry-run', '--', 'true']));
  const line = r.stdout.split('\n').find((l) => l.startsWith('# writable: '));
  assert.ok(line, `--dry-run has a "# writable:" line:\n${r.stdout.slice(0, 500)}`);
  return line!;
}

test.before(async () => {
  if (!noFixtures) await debianFixtures();
});

for (const [label, root, lower, why] of [
  ['host root', 'host', '/', undefined],
  ['dir: root from sudo debootstrap', `dir:${fixture('rootfs')}`, fixture('rootfs'), noFixtures],
] as const) {
  for (const driver of ['auto', 'overlay', 'fuse-overlayfs']) {
    const skip = why ?? (driver === 'fuse-overlayfs' ? fuseWhy : undefined);
    // Unprivileged, the lower's files are owned by host uid 0, outside the map:
    // kernel overlayfs leaves them read-only (and says so); as root they are mapped.
    const limited = driver === 'overlay' && !isRoot();
    testUnless(
      skip,
      `${label}, ${driver}: ${limited ? 'files owned outside the map are read-only, as --dry-run says' : 'root modifies, replaces and deletes existing files'}; the host's stay byte-identical`,
      async () => {
        const before = digests(lower);
        const line = await writable(root, driver);
        const r = await run(root, driver, EDIT);
        if (limited) {
          assert.match(line, /read-only inside/);
          assert.ok(r.code !== 0, describe(r));
          assert.match(r.stderr, /Permission denied/);
        } else {
          assert.match(line, /copy-on-write writable/);
          expectExit(r);
          assert.match(r.stdout, /^edited$/m);
        }
        assert.equal(digests(lower), before, 'the lower files are unchanged');
      },
    );
  }
}

// What kernel overlayfs gives a host root, fuse-overlayfs must give too: / is
// 0755, a host directory the caller cannot read (/root) is empty and writable
// (a volume can be mounted below it).
for (const driver of ['overlay', 'fuse-overlayfs']) {
  testUnless(driver === 'fuse-overlayfs' && fuseWhy, `host root, ${driver}: / is 0755; an unreadable host directory is empty and writable`, async () => {
    const r = expectExit(
      await run('host', driver, 'stat -c %a /; ls -A /root | grep -vcx .cache; mkdir -p /root/.cache/x && echo made', '-v', `${tmpDir()}:/root/.cache/v`),
    );
    assert.match(r.stdout, /^755\n/, describe(r));
    assert.match(r.stdout, /^made$/m);
    if (!isRoot()) assert.match(r.stdout, /^0$/m, "/root holds only the mount point for a user who cannot read the host's");
  });
}

testUnless(
  isRoot() ? 'as root the host root is owned by mapped ids' : fuseWhy,
  'unprivileged: auto picks fuse-overlayfs for a root owned outside the map, and says why',
  async () => {
    const r = expectExit(await runHutch(['run', '--network', 'none', '--dry-run', '--', 'true']));
    assert.match(r.stdout, /^# storage driver: fuse-overlayfs \(the root has files owned outside the sandbox's id map \(\/ \(host uid 0\)\)/m);
  },
);

test('auto under --read-only keeps kernel overlayfs (nothing to copy up)', async () => {
  const r = expectExit(await runHutch(['run', '--network', 'none', '--read-only', '--dry-run', '--', 'true']));
  assert.match(r.stdout, /^# storage driver: overlay /m);
  assert.match(r.stdout, /^# writable: nothing of the root \(--read-only\)$/m);
});

// Root maps only uid 0: a file of group utmp is unmapped even for root, and
// squash_to_root makes it root's, so it is writable; the fixture stays as it was.
testUnless(
  !isRoot() ? 'root only (a single-id map)' : (noFixtures ?? fuseWhy),
  'root, fuse-overlayfs: a file of an unmapped group (utmp) is writable through squash_to_root',
  async () => {
    const wtmp = fixture('rootfs', 'var', 'log', 'wtmp');
    const before = fs.readFileSync(wtmp);
    const line = await writable(`dir:${fixture('rootfs')}`, 'fuse-overlayfs');
    assert.match(line, /squash_to_root/);
    const r = expectExit(await run(`dir:${fixture('rootfs')}`, 'fuse-overlayfs', 'echo x >> /var/log/wtmp && stat -c %u:%g /var/log/wtmp'));
    assert.match(r.stdout, /^0:0$/m);
    assert.ok(fs.readFileSync(wtmp).equals(before), 'the fixture file is unchanged');
  },
);

// Kernel overlayfs on a dir: root owned outside the map: its top-level
// directories are writable (mount points such as /etc/hosts, new files).
testUnless(noFixtures, 'dir: root, overlay: new files and mount points in top-level directories work', async () => {
  const r = expectExit(await run(`dir:${fixture('rootfs')}`, 'overlay', 'echo n > /etc/hutch-new && cat /etc/hutch-new && grep -c localhost /etc/hosts'));
  assert.match(r.stdout, /^n$/m);
  assert.not.ok(fs.existsSync(fixture('rootfs', 'etc', 'hutch-new')));
});

test.run();
