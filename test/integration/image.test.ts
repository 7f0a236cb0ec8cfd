// Images and layers, with artefacts made by other tools: a debootstrap
// minbase rootfs (as tarballs in four compressions and as a directory), an
// OCI layout made by umoci (2 layers, whiteouts), the same as an OCI tar and
// as a `docker save` archive made by skopeo. Everything runs a real sandbox
// and looks from inside (and at the disk from outside).

import fs from 'node:fs';
import path from 'node:path';
import { test as uvuTest } from 'uvu';
import * as assert from 'uvu/assert';
import { describe, expectExit, isRoot, runCmd, runHutch, spawnHutch, tmpDir, waitFor } from '../lib/hutch';
import { dataDir, debianFixtures, fixtureSuite, fixture, importImage, onImage, subStart } from '../fixtures/debian';

// Skipped, with the reason, when the Debian fixtures are missing.
const test = fixtureSuite(uvuTest);

// A store of this file's own: other test files of the tier share XDG_DATA_HOME.
process.env.XDG_DATA_HOME = tmpDir('hutch-data-');

const squashed = isRoot(); // root has no /etc/subuid entry here: only uid 0 inside

test.before(async () => {
  await debianFixtures();
});

async function layersOf(image: string): Promise<string[]> {
  const r = expectExit(await runHutch(['image', 'inspect', image]));
  return JSON.parse(r.stdout).layers as string[];
}

test('a debootstrap rootfs tarball imports (tar, gz, xz, zst) to the same single layer, and apt-get and id run inside', async () => {
  const digests: string[][] = [];
  for (const ext of ['tar', 'tar.gz', 'tar.xz', 'tar.zst']) {
    const r = await importImage(fixture(`rootfs.${ext}`), `deb-${ext.replace('.', '-')}`);
    assert.match(r.stderr, /8 device nodes skipped|already stored/, describe(r));
    if (squashed) assert.match(r.stderr, /ownership is being squashed/, describe(r));
    else assert.not.match(r.stderr, /squashed/);
    digests.push(await layersOf(`deb-${ext.replace('.', '-')}`));
  }
  for (const d of digests) assert.equal(d, digests[0], 'every compression gives the same layer digest');
  assert.is(digests[0].length, 1);
  const layers = fs.readdirSync(path.join(dataDir(), 'layers')).filter((n) => /^[0-9a-f]{64}$/.test(n));
  assert.is(layers.length, 1, 'stored once');
  const r = expectExit(await onImage('deb-tar', 'apt-get --version | head -1; id; cat /etc/debian_version'));
  assert.match(r.stdout, /^apt 2\.\d/);
  assert.match(r.stdout, /uid=0\(root\) gid=0\(root\)/);
  assert.match(r.stdout, /^12\./m);
});

test('ownership survives import through the subordinate range (or is squashed, and said so)', async () => {
  const shadow = path.join(dataDir(), 'layers', (await layersOf('deb-tar'))[0].slice(7), 'root/etc/shadow');
  const st = fs.statSync(shadow);
  if (squashed) assert.is(st.gid, process.getgid!());
  else assert.is(st.gid, subStart('/etc/subgid')! + 42 - 1, 'gid shadow (42) inside = subgid start + 41 on disk');
  const inside = expectExit(await onImage('deb-tar', 'stat -c "%u %g %a" /etc/shadow /usr/bin/passwd'));
  const [sh, pw] = inside.stdout.trim().split('\n');
  assert.is(sh, squashed ? '0 0 640' : '0 42 640');
  assert.is(pw, '0 0 4755', 'setuid bit kept');
});

test('a directory imports as one layer (the debootstrap tree)', async () => {
  let src = fixture('rootfs');
  if (!isRoot()) {
    // The cached tree is root's (some files 0600); an unprivileged user imports a copy it can read.
    src = path.join(tmpDir(), 'rootfs');
    fs.mkdirSync(src);
    expectExit(await runCmd(['tar', '-C', src, '--no-same-owner', '--exclude=./dev/*', '-xf', fixture('rootfs.tar')]));
    expectExit(await runCmd(['chmod', '-R', 'u+rwX', src]));
  }
  await importImage(src, 'deb-dir');
  const r = expectExit(await onImage('deb-dir', 'apt-get --version | head -1; id -u'));
  assert.match(r.stdout, /^apt 2\.\d+.*\n0\n$/);
  const dirLayer = await layersOf('deb-dir');
  assert.is(dirLayer.length, 1);
});

for (const [kind, src] of [
  ['OCI layout directory (umoci)', 'oci'],
  ['OCI layout tar', 'oci.tar'],
  ['docker save tar (skopeo docker-archive)', 'docker.tar'],
] as const) {
  // Each storage driver showing an image root (whiteouts, config) is the storage contract (storage-contract.test.ts).
  test(`${kind}: 2 layers, whiteouts honoured, config applied`, async () => {
    const name = `oci-${src.replace('.', '-')}`;
    await importImage(fixture(src), name);
    const layers = await layersOf(name);
    assert.is(layers.length, 2);
    const cfg = JSON.parse(expectExit(await runHutch(['image', 'inspect', name])).stdout).config;
    assert.ok(cfg.env.includes('HUTCH_FIXTURE=oci'), JSON.stringify(cfg));
    assert.equal(cfg.exposedPorts, ['8080/tcp']);
    const r = expectExit(
      await onImage(
        name,
        'pwd; echo "$HUTCH_FIXTURE"; cat /etc/hutch-fixture; ls -A /etc/skel | tr "\\n" " "; echo; ' +
          'for p in /etc/issue.net /usr/share/doc/dpkg /etc/skel/.bashrc; do test -e $p && echo "VISIBLE $p"; done; apt-get --version | head -1',
      ),
    );
    assert.is(r.stdout, `/srv\noci\nmade by umoci\n.hutch-only \napt ${r.stdout.split('apt ')[1]}`, describe(r));
    assert.not.match(r.stdout, /VISIBLE/);
  });
}

test('the three OCI forms share their layers with each other (stored once)', async () => {
  const a = await layersOf('oci-oci');
  assert.equal(await layersOf('oci-oci-tar'), a);
  assert.equal(await layersOf('oci-docker-tar'), a);
});

// Writes kept apart, and kept away from the layers, on every driver: storage-contract.test.ts.
test('two sandboxes of one image share the lower layers (mountinfo); running sandboxes add no layers', async () => {
  const before = fs.readdirSync(path.join(dataDir(), 'layers')).sort();
  const script = 'grep " / / " /proc/self/mountinfo; sleep 0.5';
  const a = spawnHutch(['run', '--network', 'none', '--rootfs', 'image:oci-oci', '--', 'sh', '-c', script]);
  const b = spawnHutch(['run', '--network', 'none', '--rootfs', 'image:oci-oci', '--', 'sh', '-c', script]);
  const out = (c: typeof a) =>
    new Promise<string>((resolve) => {
      let s = '';
      c.stdout!.on('data', (d) => (s += d));
      c.on('close', () => resolve(s));
    });
  const [oa, ob] = await Promise.all([out(a), out(b)]);
  const lower = (s: string) => /lowerdir=([^,]+)/.exec(s)?.[1];
  const upper = (s: string) => /upperdir=([^,]+)/.exec(s)?.[1];
  assert.ok(lower(oa), oa);
  assert.is(lower(oa), lower(ob), 'same lower layers');
  assert.is(lower(oa)!.split(':').length, 2);
  assert.is(upper(oa), '/R/up/upper', "a private upper in the sandbox's RAM budget tmpfs");
  assert.equal(fs.readdirSync(path.join(dataDir(), 'layers')).sort(), before, 'running sandboxes add no layers');
});

test('layers are read-only on disk', async () => {
  const [l] = await layersOf('oci-oci');
  assert.is(fs.statSync(path.join(dataDir(), 'layers', l.slice(7))).mode & 0o777, 0o500);
});

test('a corrupt blob is refused by its digest and nothing is registered', async () => {
  const copy = path.join(tmpDir(), 'oci');
  expectExit(await runCmd(['cp', '-r', fixture('oci'), copy]));
  const index = JSON.parse(fs.readFileSync(path.join(copy, 'index.json'), 'utf8'));
  const manifest = JSON.parse(fs.readFileSync(path.join(copy, 'blobs/sha256', index.manifests[0].digest.slice(7)), 'utf8'));
  const blob = path.join(copy, 'blobs/sha256', manifest.layers[1].digest.slice(7));
  fs.chmodSync(blob, 0o644);
  const fd = fs.openSync(blob, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, 300);
  b[0] ^= 0xff;
  fs.writeSync(fd, b, 0, 1, 300);
  fs.closeSync(fd);
  // a fresh store, so the good layer 2 is not already there
  const env = { XDG_DATA_HOME: tmpDir() };
  const r = await runHutch(['image', 'import', copy, '--name', 'corrupt'], { env });
  assert.is(r.code, 125, describe(r));
  assert.match(r.stderr, /digest mismatch|corrupt|failed/);
  const ls = expectExit(await runHutch(['image', 'ls', '--json'], { env }));
  assert.equal(JSON.parse(ls.stdout), []);
  // the finished layer 1 goes with the failed import itself: nothing left for prune
  assert.equal(fs.readdirSync(path.join(env.XDG_DATA_HOME, 'hutch', 'layers')), [], 'layers left by the failed import');
  const pr = expectExit(await runHutch(['image', 'prune'], { env }));
  assert.match(pr.stdout, /removed 0 layers/);
});

test('an import killed halfway leaves nothing registered; prune removes the leftovers', async () => {
  const env = { XDG_DATA_HOME: tmpDir() };
  const tmp = path.join(env.XDG_DATA_HOME, 'hutch', 'tmp');
  const child = spawnHutch(['image', 'import', fixture('rootfs.tar.xz'), '--name', 'killed'], { env });
  await waitFor(() => fs.existsSync(tmp) && fs.readdirSync(tmp).some((n) => fs.existsSync(path.join(tmp, n, 'root', 'usr'))), 60_000, {
    what: 'extraction under way',
  });
  process.kill(-child.pid!, 'SIGKILL');
  await new Promise((r) => child.on('close', r));
  const ls = expectExit(await runHutch(['image', 'ls', '--json'], { env }));
  assert.equal(JSON.parse(ls.stdout), []);
  assert.is(fs.readdirSync(path.join(env.XDG_DATA_HOME, 'hutch', 'layers')).length, 0, 'no layer registered');
  assert.ok(fs.readdirSync(tmp).length > 0, 'the work dir is left behind');
  const pr = expectExit(await runHutch(['system', 'prune'], { env }));
  assert.match(pr.stdout, /1 leftovers/, describe(pr));
  assert.is(fs.readdirSync(tmp).length, 0);
});

test('export writes an OCI layout tar that imports back with the same content and whiteouts', async () => {
  const file = path.join(tmpDir(), 'out.oci.tar');
  expectExit(await runHutch(['image', 'export', 'oci-oci', file]));
  const list = expectExit(await runCmd(['tar', '-tf', file])).stdout;
  assert.match(list, /^oci-layout$/m);
  assert.match(list, /^index\.json$/m);
  await importImage(file, 'roundtrip');
  const r = expectExit(
    await onImage(
      'roundtrip',
      'cat /etc/hutch-fixture; ls -A /etc/skel; test -e /etc/issue.net || echo gone; echo $HUTCH_FIXTURE; stat -c "%u %g" /etc/shadow',
    ),
  );
  assert.is(r.stdout, `made by umoci\n.hutch-only\ngone\noci\n0 ${squashed ? 0 : 42}\n`);
});

test('prune keeps a layer a running sandbox uses, even after its image is removed', async () => {
  await importImage(fixture('rootfs.tar.zst'), 'doomed');
  const c = spawnHutch(['run', '--network', 'none', '--rootfs', 'image:doomed', '--', 'sh', '-c', 'echo up; sleep 30']);
  let out = '';
  c.stdout!.on('data', (d) => (out += d));
  try {
    await waitFor(() => out.includes('up'), 15_000, { what: 'sandbox up' });
    const rm = await runHutch(['image', 'rm', 'doomed']);
    assert.is(rm.code, 125, 'rm refuses an image a running sandbox uses');
    expectExit(await runHutch(['image', 'rm', '--force', 'doomed']));
    expectExit(await runHutch(['image', 'rm', '--force', 'deb-tar', 'deb-tar-gz', 'deb-tar-xz', 'deb-tar-zst']));
    const pr = expectExit(await runHutch(['image', 'prune']));
    assert.match(pr.stdout, /removed 0 layers/, describe(pr));
    assert.match(expectExit(await runHutch(['image', 'prune', '--dry-run'])).stdout, /would remove 0 layers/);
  } finally {
    c.kill('SIGTERM');
    await new Promise((r) => c.on('close', r));
  }
  const pr = expectExit(await runHutch(['image', 'prune']));
  assert.match(pr.stdout, /removed 1 layers/, describe(pr));
});

test('clear errors: unknown image, bad source, bad name', async () => {
  const r1 = await runHutch(['run', '--rootfs', 'image:oci-oxi', '--', 'true']);
  assert.is(r1.code, 125);
  assert.match(r1.stderr, /rootfs image "oci-oxi" does not exist[\s\S]*did you mean "oci-oci"/);
  const r2 = await runHutch(['image', 'import', '/nonexistent', '--name', 'x']);
  assert.is(r2.code, 125);
  const f = path.join(tmpDir(), 'junk');
  fs.writeFileSync(f, 'not a tar at all'.repeat(100));
  const r3 = await runHutch(['image', 'import', f, '--name', 'junk']);
  assert.is(r3.code, 125);
  assert.match(r3.stderr, /not a tar archive/);
  const r4 = await runHutch(['image', 'import', f, '--name', 'Bad Name']);
  assert.is(r4.code, 125);
  assert.match(r4.stderr, /--name/);
});

test.run();
