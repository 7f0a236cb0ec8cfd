// What users run is what is tested (issue 10): the single executable takes
// its arguments and environment as typed (node's own NODE_OPTIONS and
// --env-file do not act), errors are sentences, failed imports leave nothing
// behind, and podman habits get a plain answer. The bundle gets a smoke test.

import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describe, expectExit, hasCommand, hutchCmd, parseCommand, runCmd, runHutch, tmpDir } from '../lib/hutch';
import { fixture, fixturesMissing } from '../fixtures/debian';

const dataDir = () => path.join(process.env.XDG_DATA_HOME!, 'hutch');
const noStack = (s: string) => assert.not.match(s, /^\s+at \S+ \(|internal error/m, `a stack trace or internal error:\n${s}`);

/** Entries of DIR (recursively, relative), or [] when it does not exist. */
function listing(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      out.push(path.relative(dir, p));
      if (e.isDirectory() && !p.includes('/layers/')) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

test('the tests run the single executable, with no node on PATH', () => {
  const cmd = hutchCmd();
  assert.is(cmd.length, 1, `HUTCH is one executable, not node + a script: ${cmd.join(' ')}`);
  assert.match(path.basename(cmd[0]), /^hutch$/);
  assert.not.ok(hasCommand('node'), "node is on this tier's PATH");
  assert.not.ok(hasCommand('npm'), "npm is on this tier's PATH");
});

test('the bundle (node dist/hutch.cjs) still runs: smoke test', async () => {
  const bundle = parseCommand(process.env.HUTCH_BUNDLE ?? '');
  assert.ok(bundle.length === 2 && bundle[1].endsWith('hutch.cjs'), `HUTCH_BUNDLE: ${process.env.HUTCH_BUNDLE}`);
  const v = expectExit(await runCmd([...bundle, '--version']), 0);
  assert.match(v.stdout, /^hutch \S+\n$/);
  const r = expectExit(await runCmd([...bundle, 'run', '--network', 'none', '--', 'echo', 'from-bundle']), 0);
  assert.is(r.stdout, 'from-bundle\n');
});

test("--env-file of a missing file is hutch's error (125), not node's (9)", async () => {
  const dir = tmpDir('envfile-');
  const r = await runHutch(['run', '--network', 'none', '--env-file', './missing.env', '--', 'true'], { cwd: dir });
  assert.is(r.code, 125, describe(r));
  assert.match(r.stderr, /^hutch: --env-file: .*missing\.env/m, describe(r));
  assert.not.match(r.stderr, /^\S+: \.\/missing\.env: not found$/m, "node's own message");
  // and a file that exists is read by hutch
  fs.writeFileSync(path.join(dir, 'ok.env'), 'GREETING=from-env-file\n');
  const ok = expectExit(await runHutch(['run', '--network', 'none', '--env-file=./ok.env', '--', 'sh', '-c', 'echo $GREETING'], { cwd: dir }), 0);
  assert.is(ok.stdout, 'from-env-file\n');
});

test('NODE_OPTIONS does not reach the node inside hutch (a --require file never runs)', async () => {
  const dir = tmpDir('nodeopts-');
  const marker = path.join(dir, 'ran');
  const x = path.join(dir, 'x.js');
  fs.writeFileSync(x, `require('fs').writeFileSync(${JSON.stringify(marker)}, 'ran');`);
  const r = await runHutch(['--version'], { env: { NODE_OPTIONS: `--require=${x}` } });
  expectExit(r, 0);
  assert.match(r.stdout, /^hutch \S+\n$/);
  assert.not.ok(fs.existsSync(marker), 'x.js ran');
  // an option node would refuse does not stop hutch either
  expectExit(await runHutch(['--version'], { env: { NODE_OPTIONS: '--no-such-node-option' } }), 0);
  // the sandbox's own environment is not affected: NODE_OPTIONS is not passed in by default
  const inside = expectExit(
    await runHutch(['run', '--network', 'none', '-e', 'NODE_OPTIONS', '--', 'sh', '-c', 'echo "$NODE_OPTIONS"'], {
      env: { NODE_OPTIONS: '--max-old-space-size=64' },
    }),
    0,
  );
  assert.is(inside.stdout, '--max-old-space-size=64\n', '-e NODE_OPTIONS still copies it into the sandbox as typed');
});

test("podman's flags hutch lacks are named plainly; -i, -t, -it are podman's (test/integration/terminal.test.ts)", async () => {
  for (const [flag, re] of [['-d', /-d: hutch exec has no -d, --detach \(podman's\)[\s\S]*hutch run -d/]] as const) {
    const r = await runHutch(['exec', flag, 'some-name', 'true']);
    assert.is(r.code, 125, describe(r));
    assert.match(r.stderr, re, describe(r));
    assert.not.match(r.stderr, /did you mean/, `${flag} suggests an unrelated flag:\n${r.stderr}`);
  }
  // -it is a bundle of -i and -t, as podman writes it
  expectExit(await runHutch(['run', '-it', '--network', 'none', '--', 'true']), 0);
  // a real typo of a long flag still gets its suggestion
  assert.match((await runHutch(['run', '--tmpfss', '/x', '--', 'true'])).stderr, /did you mean --tmpfs\?/);
});

test('hutch run IMAGE CMD (podman habit) points at --rootfs image:IMAGE', async () => {
  for (const img of ['alpine', 'debian:bookworm', 'ghcr.io/x/y:tag']) {
    const r = await runHutch(['run', '--network', 'none', img, 'echo', 'hi']);
    assert.is(r.code, 127, describe(r));
    assert.match(r.stderr, new RegExp(`hint: if "${img.replace(/[.]/g, '\\.')}" is an image: .*--rootfs image:`), describe(r));
  }
  // a command that exists and exits 127 itself gets no hint
  const own = await runHutch(['run', '--network', 'none', 'sh', '-c', 'exit 127']);
  assert.is(own.code, 127);
  assert.not.match(own.stderr, /hint:/);
});

/** A test that needs the Debian fixtures: skipped, with the reason printed, without them. */
function withFixtures(name: string, fn: () => Promise<void>): void {
  const why = fixturesMissing();
  if (!why) {
    test(name, fn);
    return;
  }
  process.stdout.write(`  skip: ${name}: ${why}\n`);
  test.skip(name, fn);
}

withFixtures('hutch run NAME CMD for an image in the store names it exactly', async () => {
  const name = 'uxhintimg';
  expectExit(await runHutch(['image', 'import', fixture('rootfs.tar.zst'), '--name', name, '-q'], { timeoutMs: 300_000 }), 0);
  const r = await runHutch(['run', '--network', 'none', name, 'echo', 'hi']);
  assert.is(r.code, 127, describe(r));
  assert.match(r.stderr, new RegExp(`hint: "${name}" is an image: hutch runs images with --rootfs, e\\.g\\. hutch run --rootfs image:${name} -- echo hi`));
  expectExit(await runHutch(['image', 'rm', name]), 0);
});

test('a failed volume import leaves no volume behind and says why in a sentence', async () => {
  const dir = tmpDir('volimp-');
  const r = await runHutch(['volume', 'import', 'uxvol', './missing.tar'], { cwd: dir });
  assert.is(r.code, 125, describe(r));
  assert.match(r.stderr, /^hutch: \.\/missing\.tar: no such file$/m);
  noStack(r.stderr);
  assert.not.match(expectExit(await runHutch(['volume', 'ls']), 0).stdout, /^uxvol\s/m, 'empty volume left behind');
  assert.not.ok(fs.existsSync(path.join(dataDir(), 'volumes', 'uxvol')));
  // not a tar: tar's complaint, no volume, no .import-* dir
  fs.writeFileSync(path.join(dir, 'junk.tar'), 'this is not a tar archive\n'.repeat(100));
  const j = await runHutch(['volume', 'import', 'uxvol', './junk.tar'], { cwd: dir });
  assert.is(j.code, 125, describe(j));
  assert.match(j.stderr, /^hutch: importing \.\/junk\.tar into volume uxvol failed: .*tar/m);
  noStack(j.stderr);
  assert.not.ok(fs.existsSync(path.join(dataDir(), 'volumes', 'uxvol')), 'volume dir left behind');
  // an existing volume keeps its data when an import into it fails
  expectExit(await runHutch(['volume', 'create', 'uxkeep']), 0);
  expectExit(await runHutch(['run', '--network', 'none', '-v', 'uxkeep:/v', '--', 'sh', '-c', 'echo kept > /v/f']), 0);
  assert.is((await runHutch(['volume', 'import', 'uxkeep', './junk.tar'], { cwd: dir })).code, 125);
  const vol = JSON.parse(expectExit(await runHutch(['volume', 'inspect', 'uxkeep']), 0).stdout);
  assert.is(fs.readFileSync(path.join(vol.mountpoint, 'f'), 'utf8'), 'kept\n');
  assert.equal(fs.readdirSync(path.join(dataDir(), 'volumes', 'uxkeep')).sort(), ['_data', 'volume.json']);
  expectExit(await runHutch(['volume', 'rm', 'uxkeep']), 0);
});

test('a failed image import leaves no image, no layer, no temp dir', async () => {
  const dir = tmpDir('imgimp-');
  const before = listing(dataDir());
  const missing = await runHutch(['image', 'import', './missing.tar', '--name', 'uxmissing'], { cwd: dir });
  assert.is(missing.code, 125, describe(missing));
  assert.match(missing.stderr, /^hutch: import source .*missing\.tar does not exist$/m);
  noStack(missing.stderr);
  // a tarball cut short: the layer never completes
  const tar = path.join(dir, 'cut.tar');
  const made = await runCmd(['sh', '-c', `tar -C /etc -cf - passwd group hostname | head -c 1500 > '${tar}'`]);
  expectExit(made, 0);
  const cut = await runHutch(['image', 'import', tar, '--name', 'uxcut', '-q']);
  assert.is(cut.code, 125, describe(cut));
  assert.match(cut.stderr, /^hutch: .*cut\.tar: .*truncated/m, describe(cut));
  noStack(cut.stderr);
  assert.not.match(expectExit(await runHutch(['image', 'ls']), 0).stdout, /^uxcut\s/m);
  const after = listing(dataDir()).filter((p) => !before.includes(p));
  assert.equal(
    after.filter((p) => !/^(images|layers|tmp|build-cache|leases)$/.test(p) && !/^leases\//.test(p)),
    [],
    'left behind',
  );
  assert.equal(fs.existsSync(path.join(dataDir(), 'tmp')) ? fs.readdirSync(path.join(dataDir(), 'tmp')) : [], [], 'temp dirs left in tmp/');
});

withFixtures('an OCI import whose second layer is corrupt removes the first layer it stored', async () => {
  const oci = tmpDir('ocibad-');
  fs.cpSync(fixture('oci'), oci, { recursive: true });
  // the manifest's last layer: overwrite its blob with other bytes of the same size
  const index = JSON.parse(fs.readFileSync(path.join(oci, 'index.json'), 'utf8'));
  const blob = (d: string) => path.join(oci, 'blobs', ...d.split(':'));
  const manifest = JSON.parse(fs.readFileSync(blob(index.manifests[0].digest), 'utf8'));
  const last = manifest.layers[manifest.layers.length - 1].digest as string;
  const size = fs.statSync(blob(last)).size;
  fs.rmSync(blob(last));
  fs.writeFileSync(blob(last), Buffer.alloc(size, 7));
  const layersBefore = fs.existsSync(path.join(dataDir(), 'layers')) ? fs.readdirSync(path.join(dataDir(), 'layers')).sort() : [];
  const r = await runHutch(['image', 'import', oci, '--name', 'uxoci', '-q'], { timeoutMs: 300_000 });
  assert.is(r.code, 125, describe(r));
  noStack(r.stderr);
  assert.not.match(expectExit(await runHutch(['image', 'ls']), 0).stdout, /^uxoci\s/m);
  const layersAfter = fs.existsSync(path.join(dataDir(), 'layers')) ? fs.readdirSync(path.join(dataDir(), 'layers')).sort() : [];
  assert.equal(layersAfter, layersBefore, 'layers stored by the failed import are gone');
  assert.equal(fs.readdirSync(path.join(dataDir(), 'tmp')), [], 'temp dirs left in tmp/');
});

withFixtures('a build step that fails registers nothing and leaves no work dir', async () => {
  const dir = tmpDir('buildstep-');
  const p = path.join(dir, 'p.yaml');
  expectExit(await runHutch(['image', 'import', fixture('rootfs.tar.zst'), '--name', 'uxbase', '-q'], { timeoutMs: 300_000 }), 0);
  fs.writeFileSync(p, 'rootfs: {image: uxbase}\nnetwork: none\nsetup:\n  - run: "echo partial > /etc/partial; exit 3"\n');
  const f = await runHutch(['build', p, '--tag', 'uxbuilt'], { timeoutMs: 300_000 });
  assert.is(f.code, 125, describe(f));
  assert.match(f.stderr, /setup step 1\/1 .* failed with exit status 3/, describe(f));
  noStack(f.stderr);
  assert.not.match(expectExit(await runHutch(['image', 'ls']), 0).stdout, /^uxbuilt\s/m);
  assert.equal(fs.readdirSync(path.join(dataDir(), 'tmp')), [], 'build work dirs left in tmp/');
  expectExit(await runHutch(['image', 'rm', 'uxbase']), 0);
});

test('a failed build and a failed commit say why in a sentence and register nothing', async () => {
  const dir = tmpDir('buildfail-');
  const c = await runHutch(['commit', 'no-such-sandbox', 'uxcommit']);
  assert.is(c.code, 125, describe(c));
  assert.match(c.stderr, /^hutch: no kept sandbox named "no-such-sandbox"$/m);
  noStack(c.stderr);
  const p = path.join(dir, 'p.yaml');
  fs.writeFileSync(p, 'rootfs: {image: ux-no-such-image}\nsetup:\n  - run: "true"\n');
  const b = await runHutch(['build', p, '--tag', 'uxbuilt']);
  assert.is(b.code, 125, describe(b));
  assert.match(b.stderr, /^hutch: rootfs image "ux-no-such-image" does not exist/m, describe(b));
  noStack(b.stderr);
  assert.not.match(expectExit(await runHutch(['image', 'ls']), 0).stdout, /^ux(commit|built)\s/m);
});

test('an unexpected system error prints one sentence; the stack only with HUTCH_DEBUG=1', async () => {
  // exporting a volume under a path whose parent is a file fails in open(), deep inside
  const dir = tmpDir('internal-');
  const file = path.join(dir, 'not-a-dir');
  fs.writeFileSync(file, '');
  expectExit(await runHutch(['volume', 'create', 'uxv']));
  const r = await runHutch(['volume', 'export', 'uxv', path.join(file, 'x.tar')]);
  assert.is(r.code, 125, describe(r));
  noStack(r.stderr);
  assert.match(r.stderr, /^hutch: .*not-a-dir.*: not a directory \(open, ENOTDIR\)$/m, describe(r));
  assert.match(r.stderr, /hint: HUTCH_DEBUG=1 shows where it happened/);
  const d = await runHutch(['volume', 'export', 'uxv', path.join(file, 'x.tar')], { env: { HUTCH_DEBUG: '1' } });
  assert.is(d.code, 125, describe(d));
  assert.match(d.stderr, /^\s+at /m, `HUTCH_DEBUG=1 shows the stack:\n${d.stderr}`);
  expectExit(await runHutch(['volume', 'rm', 'uxv']));
});

test('image prune really removes an unused layer (its directory is read-only on disk)', async () => {
  const dir = tmpDir('prune-');
  const tar = path.join(dir, 'small.tar');
  fs.mkdirSync(path.join(dir, 'src', 'etc'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'src', 'etc', 'ux-prune'), `unique ${process.pid} ${Date.now()}\n`);
  expectExit(await runCmd(['tar', '-C', path.join(dir, 'src'), '-cf', tar, '.']), 0);
  const layers = () => fs.readdirSync(path.join(dataDir(), 'layers')).sort();
  expectExit(await runHutch(['image', 'import', tar, '--name', 'uxprune', '-q']), 0);
  const [digest] = JSON.parse(expectExit(await runHutch(['image', 'inspect', 'uxprune']), 0).stdout).layers as string[];
  const hex = digest.replace(/^sha256:/, '');
  assert.ok(layers().includes(hex), `layer ${hex} stored: ${layers().join(' ')}`);
  expectExit(await runHutch(['image', 'rm', 'uxprune']), 0);
  const r = expectExit(await runHutch(['image', 'prune']), 0);
  assert.match(r.stdout, new RegExp(`^removed layer ${digest}$`, 'm'));
  assert.not.ok(layers().includes(hex), `the layer is still on disk after "removed": ${describe(r)}`);
});

test.run();
