// Image layouts stay inside themselves; every digest is verified (issue 11,
// point 4). Each test hands `hutch image import` a hostile layout, built
// here byte by byte as an attacker would: a docker-save manifest naming
// `../` and absolute paths, an OCI blob that is a symlink out of the layout
// (with the right digest, so only the path check can stop it), sha512
// digests that do not match, an unknown algorithm, an empty diff_id. The
// import must fail with 125 and register nothing; the honest sha512 layout
// imports, so the checks are not refusing everything.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describe, expectExit, runCmd, runHutch, tmpDir } from '../lib/hutch';

process.env.XDG_DATA_HOME = tmpDir('hutch-data-');

type Alg = 'sha256' | 'sha512';
const digest = (alg: Alg, b: Buffer) => `${alg}:${createHash(alg).update(b).digest('hex')}`;

/** An uncompressed layer tar holding one file. */
async function layerTar(content: string): Promise<Buffer> {
  const d = tmpDir('hutch-layer-');
  fs.mkdirSync(path.join(d, 'root'));
  fs.writeFileSync(path.join(d, 'root', 'hello.txt'), content);
  const out = path.join(d, 'layer.tar');
  expectExit(await runCmd(['tar', '-cf', out, '--numeric-owner', '-C', path.join(d, 'root'), '.']));
  return fs.readFileSync(out);
}

interface OciOpts {
  alg?: Alg;
  /** diff_id as written into the config (default: the right one). */
  diffId?: (right: string) => unknown;
  /** digest the manifest names for the layer (default: the right one). */
  layerDigest?: (right: string) => string;
  /** store the layer blob as a symlink to a copy outside the layout. */
  symlinkLayerOut?: boolean;
}

/** An OCI image layout directory with one layer. */
async function ociLayout(o: OciOpts = {}): Promise<string> {
  const alg = o.alg ?? 'sha256';
  const dir = tmpDir('hutch-oci-');
  const blob = (b: Buffer, name?: string, symlinkOut = false) => {
    const d = name ?? digest(alg, b);
    const [a, hex] = d.split(':');
    fs.mkdirSync(path.join(dir, 'blobs', a), { recursive: true });
    const p = path.join(dir, 'blobs', a, hex);
    if (symlinkOut) {
      const outside = path.join(tmpDir('hutch-outside-'), 'secret-layer.tar');
      fs.writeFileSync(outside, b);
      fs.symlinkSync(outside, p);
    } else fs.writeFileSync(p, b);
    return { digest: d, size: b.length };
  };
  const tar = await layerTar('layer contents\n');
  const right = digest(alg, tar);
  const layerDigest = o.layerDigest ? o.layerDigest(right) : right;
  const layer = blob(tar, layerDigest.startsWith(`${alg}:`) && /^[a-z0-9]+:[0-9a-f]+$/.test(layerDigest) ? layerDigest : undefined, o.symlinkLayerOut);
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [o.diffId ? o.diffId(right) : right] } }),
  );
  const cfg = blob(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.size }],
    }),
  );
  const man = blob(manifest);
  fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  fs.writeFileSync(
    path.join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...man }] }),
  );
  return dir;
}

/** A docker-save directory whose manifest.json names `layerPath` (and `configPath`). */
async function dockerSave(layerPath: (dir: string) => string, configPath?: (dir: string) => string): Promise<string> {
  const dir = tmpDir('hutch-save-');
  const tar = await layerTar('secret outside the layout\n');
  const outsideDir = tmpDir('hutch-outside-');
  fs.writeFileSync(path.join(outsideDir, 'layer.tar'), tar);
  const config = Buffer.from(JSON.stringify({ config: {}, rootfs: { type: 'layers', diff_ids: [digest('sha256', tar)] } }));
  const cfgName = `${createHash('sha256').update(config).digest('hex')}.json`;
  fs.writeFileSync(path.join(dir, cfgName), config);
  fs.writeFileSync(path.join(outsideDir, cfgName), config);
  fs.writeFileSync(
    path.join(dir, 'manifest.json'),
    JSON.stringify([{ Config: configPath ? configPath(outsideDir) : cfgName, RepoTags: ['x:latest'], Layers: [layerPath(outsideDir)] }]),
  );
  return dir;
}

async function refused(source: string, name: string, message: RegExp): Promise<void> {
  const r = await runHutch(['image', 'import', source, '--name', name], { timeoutMs: 120_000 });
  assert.is(r.code, 125, describe(r));
  assert.match(r.stderr, message, describe(r));
  const ls = expectExit(await runHutch(['image', 'ls', '--json']));
  assert.not.ok(ls.stdout.includes(`"${name}"`), `no image ${name} registered: ${ls.stdout}`);
}

test('docker-save: a layer named ../x (relative to the layout) is refused', async () => {
  // both scratch dirs are in TMPDIR: ../<outside>/layer.tar is a real, readable tar
  const dir = await dockerSave((outside) => `../${path.basename(outside)}/layer.tar`);
  await refused(dir, 'dotdot', /leads outside the layout/);
});

test('docker-save: a layer named by an absolute path is refused', async () => {
  const dir = await dockerSave((outside) => path.join(outside, 'layer.tar'));
  await refused(dir, 'absolute', /absolute path/);
});

test('docker-save: a config named by ../ is refused', async () => {
  const dir = await dockerSave(
    () => 'layer.tar',
    (outside) => `../${path.basename(outside)}/${fs.readdirSync(outside).find((f) => f.endsWith('.json'))}`,
  );
  await refused(dir, 'dotdotconfig', /leads outside the layout/);
});

test('docker-save tar: members named ../ are refused', async () => {
  const dir = await dockerSave(() => '../../etc/layer.tar');
  const tarFile = path.join(tmpDir('hutch-savetar-'), 'save.tar');
  expectExit(await runCmd(['tar', '-cf', tarFile, '-C', dir, '.']));
  await refused(tarFile, 'dotdottar', /leads outside the layout/);
});

test('OCI layout: a blob that is a symlink out of the layout is refused (its digest is right)', async () => {
  const dir = await ociLayout({ symlinkLayerOut: true });
  await refused(dir, 'symlinkblob', /leads outside the layout/);
});

test('OCI layout: index.json as a symlink out of the layout is refused', async () => {
  const dir = await ociLayout();
  const outside = path.join(tmpDir('hutch-outside-'), 'index.json');
  fs.renameSync(path.join(dir, 'index.json'), outside);
  fs.symlinkSync(outside, path.join(dir, 'index.json'));
  await refused(dir, 'symlinkindex', /index.json leads outside the layout/);
});

test('OCI layout: a symlink that stays inside the layout is fine', async () => {
  const dir = await ociLayout();
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8'));
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'blobs', 'sha256', index.manifests[0].digest.slice(7)), 'utf8'));
  const blob = path.join(dir, 'blobs', 'sha256', manifest.layers[0].digest.slice(7));
  fs.renameSync(blob, path.join(dir, 'layer.tar'));
  fs.symlinkSync('../../layer.tar', blob);
  expectExit(await runHutch(['image', 'import', dir, '--name', 'innerlink'], { timeoutMs: 120_000 }));
});

test('OCI layout with sha512 digests imports when they match', async () => {
  const dir = await ociLayout({ alg: 'sha512' });
  const r = expectExit(await runHutch(['image', 'import', dir, '--name', 'sha512ok'], { timeoutMs: 120_000 }));
  assert.match(r.stderr + r.stdout, /layer 1\/1 sha512:/, describe(r));
  const inspect = JSON.parse(expectExit(await runHutch(['image', 'inspect', 'sha512ok'])).stdout);
  assert.is(inspect.layers.length, 1);
});

test('OCI layout: a sha512 layer blob that does not match is refused', async () => {
  const dir = await ociLayout({ alg: 'sha512', layerDigest: () => `sha512:${'0'.repeat(128)}` });
  // the blob is stored under the wrong name: the layout looks complete, only the hash tells
  await refused(dir, 'sha512bad', /digest mismatch|does not match/);
});

test('OCI layout: a sha512 diff_id that does not match is refused', async () => {
  const dir = await ociLayout({ alg: 'sha512', diffId: () => `sha512:${'a'.repeat(128)}` });
  await refused(dir, 'sha512diff', /layer digest mismatch/);
});

test('OCI layout: an unknown digest algorithm is refused by name', async () => {
  const dir = await ociLayout({ diffId: () => `md5:${'a'.repeat(32)}` });
  await refused(dir, 'md5', /digest algorithm "md5" is not supported/);
});

for (const [label, value] of [
  ['an empty', ''],
  ['a missing', undefined],
] as const) {
  test(`OCI layout: ${label} diff_id is an error, not a skipped check`, async () => {
    const dir = await ociLayout({ diffId: () => value });
    await refused(dir, `diffid-${label.split(' ')[1]}`, /diff_id: the digest is missing or empty/);
  });
}

test.run();
