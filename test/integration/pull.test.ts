// `hutch pull` against a real registry (Debian's docker-registry, the CNCF
// distribution registry) on 127.0.0.1, started here with temp configs:
// images pushed through the registry API (test/lib/registry-push.ts) from the
// Debian fixture's OCI layout and from small images built here. Between
// hutch and the registry, where a test needs it, a proxy that counts requests
// and injects 503s, broken connections and flipped bytes.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test as uvuTest } from 'uvu';
import * as assert from 'uvu/assert';
import { describe, expectExit, killTree, runHutch, spawnHutch, tmpDir, waitFor, type RunOptions } from '../lib/hutch';
import { blobGets, registryMissing, selfSigned, startProxy, startRegistry, startTokenServer, type Registry } from '../lib/registry';
import { makeLayer, pushImage, pushIndex, pushLayout, sha256, sha512, type Layer } from '../lib/registry-push';
import { debianFixtures, fixture, fixtureSuite } from '../fixtures/debian';

const missing = registryMissing();
if (missing) process.stdout.write(`  skip: every test of this file: ${missing}\n`);
// Without a registry binary every test is registered as skipped (counted), the reason printed once.
const test = missing
  ? (Object.assign((name: string, fn: Parameters<typeof uvuTest.skip>[1]) => uvuTest.skip(name, fn), {
      before: () => {},
      after: () => {},
      run: uvuTest.run,
    }) as unknown as typeof uvuTest)
  : fixtureSuite(uvuTest);

process.env.XDG_DATA_HOME = tmpDir('hutch-data-');

let reg: Registry;
let base: Layer;
const stopAll: (() => void)[] = [];

test.before(async () => {
  await debianFixtures();
  reg = await startRegistry();
  stopAll.push(reg.stop);
  base = await makeLayer({ 'etc/os-release': 'ID=hutchtest\n', 'usr/share/base.txt': 'base layer\n' });
});
test.after(() => {
  for (const s of stopAll) s();
});

/** A fresh store (and config dir) for one test. */
function fresh(extra: Record<string, string> = {}): RunOptions {
  return { env: { XDG_DATA_HOME: tmpDir('hutch-data-'), XDG_CONFIG_HOME: tmpDir('hutch-config-'), ...extra }, timeoutMs: 240_000 };
}

function inspect(name: string, o: RunOptions) {
  return runHutch(['image', 'inspect', name], o).then((r) => JSON.parse(expectExit(r).stdout));
}

function storeEmpty(o: RunOptions): void {
  const root = path.join(o.env!.XDG_DATA_HOME!, 'hutch');
  for (const d of ['layers', 'images']) {
    const p = path.join(root, d);
    assert.equal(fs.existsSync(p) ? fs.readdirSync(p) : [], [], `${d}/ after a failed pull`);
  }
  const tmp = path.join(root, 'tmp');
  assert.equal(fs.existsSync(tmp) ? fs.readdirSync(tmp) : [], [], 'tmp/ after a failed pull');
}

test('an OCI-manifest tag of the Debian image pulls to the same stored image as importing its layout, and runs', async () => {
  const pushed = await pushLayout(reg.url, 'debian', 'oci', fixture('oci'));
  const o = fresh();
  const r = expectExit(await runHutch(['pull', `${reg.host}/debian:oci`], o));
  assert.match(r.stderr, /pulling .*debian:oci \(2 layers/, describe(r));
  const pulled = await inspect(`${reg.host}/debian:oci`, o);
  expectExit(await runHutch(['image', 'import', fixture('oci'), '--name', 'imported'], o));
  const imported = await inspect('imported', o);
  assert.equal(pulled.layers, imported.layers, 'same layers (diff_ids) as the import');
  assert.equal(pulled.config, imported.config, 'the image config applied as for imports');
  assert.is(pulled.id, imported.id);
  assert.match(pulled.source, new RegExp(`registry ${reg.host}/debian@${pushed.manifestDigest}`));
  const run = expectExit(
    await runHutch(['run', '--network', 'none', '--rootfs', `image:${reg.host}/debian:oci`, '--', 'sh', '-c', 'cat /etc/debian_version; echo $PATH'], o),
  );
  assert.match(run.stdout, /^12\./);
  // A Docker schema 2 tag of the same image: the same layers, none fetched again.
  await pushLayout(reg.url, 'debian', 'docker', fixture('oci'), { docker: true });
  const before = pushed.layers.map((d) => blobGets(reg.log(), d).length);
  const d = expectExit(await runHutch(['pull', `${reg.host}/debian:docker`], o));
  assert.match(d.stderr, /layer 1\/2 .*already stored/, describe(d));
  assert.equal((await inspect(`${reg.host}/debian:docker`, o)).layers, pulled.layers);
  assert.equal(
    pushed.layers.map((x) => blobGets(reg.log(), x).length),
    before,
    'no layer blob fetched for the docker tag (registry access log)',
  );
});

test('an image pushed by skopeo (OCI layout made by umoci, and as Docker schema 2) pulls and runs', async () => {
  // The other tests push with test/lib/registry-push.ts (to build odd cases);
  // this one uses the tools people push with, so the pulls cannot be shaped
  // by the same hands as the pusher.
  const which = spawnSync('sh', ['-c', 'command -v skopeo'], { encoding: 'utf8' });
  assert.ok(which.status === 0, 'skopeo is not installed (.ci/run installs it with the image fixtures)');
  for (const [tag, format] of [
    ['skopeo-oci', 'oci'],
    ['skopeo-v2s2', 'v2s2'],
  ]) {
    const push = spawnSync(
      'skopeo',
      ['copy', '--quiet', '--dest-tls-verify=false', '--format', format, `oci:${fixture('oci')}:bookworm`, `docker://${reg.host}/debian:${tag}`],
      {
        encoding: 'utf8',
        timeout: 240_000,
      },
    );
    assert.is(push.status, 0, `skopeo copy: ${push.stderr}`);
    const o = fresh();
    expectExit(await runHutch(['pull', `${reg.host}/debian:${tag}`], o));
    const run = expectExit(await runHutch(['run', '--network', 'none', '--rootfs', `image:${reg.host}/debian:${tag}`, '--', 'cat', '/etc/debian_version'], o));
    assert.match(run.stdout, /^12\./, `${tag}: ${describe(run)}`);
  }
});

test('a second image sharing the base layer fetches only its new layer (registry access log)', async () => {
  const a = await makeLayer({ 'app/a.txt': 'image a\n' });
  const b = await makeLayer({ 'app/b.txt': 'image b\n' });
  await pushImage(reg.url, 'share/a', 'v1', { layers: [base, a] });
  await pushImage(reg.url, 'share/b', 'v1', { layers: [base, b] });
  const o = fresh();
  expectExit(await runHutch(['pull', `${reg.host}/share/a:v1`], o));
  const r = expectExit(await runHutch(['pull', `${reg.host}/share/b:v1`], o));
  assert.match(r.stderr, /layer 1\/2 .*already stored/, describe(r));
  const log = reg.log();
  assert.is(blobGets(log, sha256(base.blob)).length, 1, 'the base layer fetched once for both images');
  assert.is(blobGets(log, sha256(b.blob)).length, 1);
  const img = await inspect(`${reg.host}/share/b:v1`, o);
  assert.equal(img.layers, [base.diffId, b.diffId]);
  const top = path.join(o.env!.XDG_DATA_HOME!, 'hutch', 'layers', b.diffId.slice(7), 'root', 'app', 'b.txt');
  assert.is(fs.readFileSync(top, 'utf8'), 'image b\n');
});

test('a multi-arch index: the host platform by default, --platform picks another, an absent one is a 125 naming what there is', async () => {
  const amd = await pushImage(reg.url, 'multi', undefined, { layers: [await makeLayer({ arch: 'amd64\n' })], arch: 'amd64' });
  const arm = await pushImage(reg.url, 'multi', undefined, { layers: [await makeLayer({ arch: 'arm64\n' })], arch: 'arm64', variant: 'v8' });
  for (const [tag, docker] of [
    ['oci', false],
    ['docker', true],
  ] as const) {
    await pushIndex(
      reg.url,
      'multi',
      tag,
      [
        { pushed: amd, arch: 'amd64' },
        { pushed: arm, arch: 'arm64', variant: 'v8' },
      ],
      docker,
    );
    const o = fresh();
    const host = process.arch === 'arm64' ? 'arm64' : 'amd64';
    const r = expectExit(await runHutch(['pull', `${reg.host}/multi:${tag}`], o));
    assert.match(r.stderr, new RegExp(`linux/${host}`), describe(r));
    const layer = (await inspect(`${reg.host}/multi:${tag}`, o)).layers[0];
    assert.is(fs.readFileSync(path.join(o.env!.XDG_DATA_HOME!, 'hutch', 'layers', layer.slice(7), 'root', 'arch'), 'utf8'), `${host}\n`);
    const other = host === 'amd64' ? 'arm64' : 'amd64';
    expectExit(await runHutch(['pull', '--platform', `linux/${other}`, `${reg.host}/multi:${tag}`], o));
    const l2 = (await inspect(`${reg.host}/multi:${tag}`, o)).layers[0];
    assert.is(fs.readFileSync(path.join(o.env!.XDG_DATA_HOME!, 'hutch', 'layers', l2.slice(7), 'root', 'arch'), 'utf8'), `${other}\n`);
    const none = await runHutch(['pull', '--platform', 'linux/s390x', `${reg.host}/multi:${tag}`], o);
    assert.is(none.code, 125, describe(none));
    assert.match(none.stderr, /has no image for linux\/s390x[\s\S]*it has: linux\/amd64, linux\/arm64\/v8/);
  }
});

test('a digest reference pulls that manifest and is stored under name@digest; a tag or repository that does not exist is a 125', async () => {
  const p = await pushImage(reg.url, 'pinned', 'v1', {
    layers: [base],
    config: { Env: ['A=1'], WorkingDir: '/srv', Cmd: ['/bin/true'], ExposedPorts: { '8080/tcp': {} }, User: '0:0' },
  });
  const o = fresh();
  const r = expectExit(await runHutch(['pull', `${reg.host}/pinned@${p.manifestDigest}`], o));
  assert.match(r.stdout, new RegExp(`^${reg.host}/pinned@${p.manifestDigest} sha256:`));
  const img = await inspect(`${reg.host}/pinned@${p.manifestDigest}`, o);
  assert.equal(img.config, { env: ['A=1'], workdir: '/srv', cmd: ['/bin/true'], exposedPorts: ['8080/tcp'], user: '0:0' });
  for (const ref of [`${reg.host}/pinned:nope`, `${reg.host}/no/such:v1`, `${reg.host}/pinned@sha256:${'0'.repeat(64)}`]) {
    const n = await runHutch(['pull', ref], o);
    assert.is(n.code, 125, describe(n));
    assert.match(n.stderr, new RegExp(`${ref.replace(/[.]/g, '\\.')}: not found on ${reg.host.replace(/[.]/g, '\\.')}`), describe(n));
  }
});

test('a blob whose bytes do not match its digest is refused (exit 125) and nothing is left in the store', async () => {
  const good = await makeLayer({ 'ok.txt': 'fine\n' });
  const bad = await makeLayer({ 'bad.txt': 'x'.repeat(5000) });
  await pushImage(reg.url, 'corrupt', 'v1', { layers: [good, bad] });
  const badUrl = `/blobs/${sha256(bad.blob)}`;
  const proxy = await startProxy(reg.url, (req) => (req.url.endsWith(badUrl) ? { flipAt: 100 } : undefined));
  stopAll.push(proxy.stop);
  const o = fresh();
  const r = await runHutch(['pull', `${proxy.host}/corrupt:v1`], o);
  assert.is(r.code, 125, describe(r));
  assert.match(r.stderr, /digest mismatch: the manifest says sha256:[0-9a-f]{64}, the registry sent sha256:/);
  assert.match(r.stderr, /corrupt:v1/, 'the message names the reference');
  storeEmpty(o);
});

test('sha512 blob digests are verified as they stream: the image pulls, a flipped byte is refused', async () => {
  const l = await makeLayer({ 'sha512.txt': 'named by sha512\n' });
  const p = await pushImage(reg.url, 'five-twelve', 'v1', { layers: [l], sha512: true });
  assert.match(p.layers[0], /^sha512:[0-9a-f]{128}$/);
  const proxy = await startProxy(reg.url, (req) => (req.url.endsWith(`/blobs/${sha512(l.blob)}`) && req.url.includes('flip') ? { flipAt: 10 } : undefined));
  stopAll.push(proxy.stop);
  const o = fresh();
  expectExit(await runHutch(['pull', `${proxy.host}/five-twelve:v1`], o));
  assert.equal((await inspect(`${proxy.host}/five-twelve:v1`, o)).layers, [l.diffId]);
  await pushImage(reg.url, 'flip/five-twelve', 'v1', { layers: [l], sha512: true });
  const o2 = fresh();
  const r = await runHutch(['pull', `${proxy.host}/flip/five-twelve:v1`], o2);
  assert.is(r.code, 125, describe(r));
  assert.match(r.stderr, /digest mismatch: the manifest says sha512:[0-9a-f]{128}, the registry sent sha512:/);
  storeEmpty(o2);
});

test('transient 503s are retried with backoff; a connection cut mid-blob is resumed with a Range request', async () => {
  const big = await makeLayer({ 'big.bin': randomBytes(1 << 19) }); // incompressible: the blob is 512 KiB too
  const p = await pushImage(reg.url, 'flaky', 'v1', { layers: [base, big] });
  const bigUrl = `/blobs/${sha256(big.blob)}`;
  const proxy = await startProxy(reg.url, (req, n) => {
    if (req.url.includes('/manifests/') && n <= 2) return { status: 503 };
    if (req.url.endsWith(bigUrl) && n === 1) return { cutAfter: 100_000 };
    return undefined;
  });
  stopAll.push(proxy.stop);
  const o = fresh();
  const r = expectExit(await runHutch(['pull', `${proxy.host}/flaky:v1`], o));
  assert.match(r.stderr, /HTTP 503 .*retrying in/, describe(r));
  assert.match(r.stderr, /transfer broke at \d+ of \d+ bytes.*resuming/, describe(r));
  const gets = proxy.requests.filter((q) => q.url.endsWith(bigUrl));
  assert.is(gets.length, 2, 'the big blob: the cut transfer and one resumption');
  assert.match(gets[1].range ?? '', /^bytes=[1-9]\d*-$/, 'the resumption asks for the rest only');
  assert.equal((await inspect(`${proxy.host}/flaky:v1`, o)).layers, [base.diffId, big.diffId]);
  void p;
});

test('a pull killed mid-download leaves no image; the next pull completes and prune finds the leftovers gone', async () => {
  const big = await makeLayer({ 'big.bin': Buffer.alloc(1 << 20, 7) });
  await pushImage(reg.url, 'killed', 'v1', { layers: [big] });
  const proxy = await startProxy(reg.url, (req, n) => (req.url.endsWith(`/blobs/${sha256(big.blob)}`) && n === 1 ? { stall: true } : undefined));
  stopAll.push(proxy.stop);
  const o = fresh();
  const c = spawnHutch(['pull', `${proxy.host}/killed:v1`], o);
  await waitFor(() => proxy.requests.some((q) => q.url.endsWith(`/blobs/${sha256(big.blob)}`)), 30_000, { what: 'the blob request' });
  killTree(c);
  await new Promise((res) => c.on('close', res));
  const ls = expectExit(await runHutch(['image', 'ls', '--json'], o));
  assert.equal(JSON.parse(ls.stdout), []);
  expectExit(await runHutch(['pull', `${proxy.host}/killed:v1`], o));
  const pr = expectExit(await runHutch(['image', 'prune'], o));
  assert.match(pr.stdout, /removed 0 layers .*1 leftovers/, describe(pr));
});

test('Basic auth: refused without credentials, wrong ones are a 125; --creds, hutch login (0600 file), docker config.json work; logout', async () => {
  const guarded = await startRegistry({ storage: reg.storage, htpasswd: { user: 'alice', password: 's3cret' } });
  stopAll.push(guarded.stop);
  await pushImage(reg.url, 'private/app', 'v1', { layers: [base] });
  const ref = `${guarded.host}/private/app:v1`;
  const o = fresh();
  const anon = await runHutch(['pull', ref], o);
  assert.is(anon.code, 125, describe(anon));
  assert.match(anon.stderr, /requires a login[\s\S]*hutch login/);
  const wrong = await runHutch(['pull', '--creds', 'alice:nope', ref], o);
  assert.is(wrong.code, 125);
  assert.match(wrong.stderr, /refused access as alice/, describe(wrong));
  storeEmpty(o);
  expectExit(await runHutch(['pull', '--creds', 'alice:s3cret', ref], o));
  const badLogin = await runHutch(['login', '-u', 'alice', '--password-stdin', guarded.host], { ...o, input: 'nope\n' });
  assert.is(badLogin.code, 125, describe(badLogin));
  const login = expectExit(await runHutch(['login', '-u', 'alice', '--password-stdin', guarded.host], { ...o, input: 's3cret\n' }));
  assert.match(login.stdout, /Login Succeeded/);
  const authFile = path.join(o.env!.XDG_CONFIG_HOME!, 'hutch', 'auth.json');
  assert.is(fs.statSync(authFile).mode & 0o777, 0o600);
  expectExit(await runHutch(['image', 'rm', ref], o));
  expectExit(await runHutch(['pull', ref], o));
  expectExit(await runHutch(['logout', guarded.host], o));
  assert.is((await runHutch(['pull', ref], o)).code, 125, 'logged out');
  // docker's file (DOCKER_CONFIG) is read as podman reads it
  const docker = tmpDir('hutch-docker-');
  fs.writeFileSync(path.join(docker, 'config.json'), JSON.stringify({ auths: { [guarded.host]: { auth: Buffer.from('alice:s3cret').toString('base64') } } }));
  expectExit(await runHutch(['image', 'rm', ref], o));
  expectExit(await runHutch(['pull', ref], { ...o, env: { ...o.env, DOCKER_CONFIG: docker } }));
  // and podman's ($XDG_RUNTIME_DIR/containers/auth.json)
  const runtime = tmpDir('hutch-runtime-');
  fs.mkdirSync(path.join(runtime, 'containers'));
  fs.writeFileSync(
    path.join(runtime, 'containers', 'auth.json'),
    JSON.stringify({ auths: { [guarded.host]: { auth: Buffer.from('alice:s3cret').toString('base64') } } }),
  );
  expectExit(await runHutch(['image', 'rm', ref], o));
  expectExit(await runHutch(['pull', ref], { ...o, env: { ...o.env, XDG_RUNTIME_DIR: runtime } }));
});

test('Bearer token auth: an anonymous token for a public repository, credentials for a private one', async () => {
  const tokens = await startTokenServer((user, password, repo) => {
    if (repo.startsWith('public/')) return ['pull'];
    if (user === 'bob' && password === 'hunter2') return ['pull'];
    if (user) return 'deny';
    return [];
  });
  stopAll.push(tokens.stop);
  const guarded = await startRegistry({ storage: reg.storage, token: tokens });
  stopAll.push(guarded.stop);
  await pushImage(reg.url, 'public/img', 'v1', { layers: [base] });
  await pushImage(reg.url, 'secret/img', 'v1', { layers: [base] });
  const o = fresh();
  const pub = expectExit(await runHutch(['pull', `${guarded.host}/public/img:v1`], o));
  assert.ok(
    tokens.requests.some((t) => t.user === '' && t.scope === 'repository:public/img:pull'),
    JSON.stringify(tokens.requests),
  );
  void pub;
  const anon = await runHutch(['pull', `${guarded.host}/secret/img:v1`], o);
  assert.is(anon.code, 125, describe(anon));
  assert.match(anon.stderr, /refused access anonymously/);
  const wrong = await runHutch(['pull', '--creds', 'bob:nope', `${guarded.host}/secret/img:v1`], o);
  assert.is(wrong.code, 125);
  assert.match(wrong.stderr, /token server .* refused the credentials of bob/, describe(wrong));
  expectExit(await runHutch(['pull', '--creds', 'bob:hunter2', `${guarded.host}/secret/img:v1`], o));
  assert.ok(tokens.requests.some((t) => t.user === 'bob' && t.scope === 'repository:secret/img:pull'));
});

test('TLS: a self-signed registry is refused unless --tls-verify=false', async () => {
  const tls = await selfSigned();
  const secure = await startRegistry({ storage: reg.storage, tls });
  stopAll.push(secure.stop);
  await pushImage(reg.url, 'tls/img', 'v1', { layers: [base] });
  const o = fresh();
  const r = await runHutch(['pull', `${secure.host}/tls/img:v1`], o);
  assert.is(r.code, 125, describe(r));
  assert.match(r.stderr, /TLS certificate .* is not trusted[\s\S]*--tls-verify=false/);
  storeEmpty(o);
  expectExit(await runHutch(['pull', '--tls-verify=false', `${secure.host}/tls/img:v1`], o));
});

test('run --rootfs image:REF pulls what is missing, not again; --pull always asks the registry, --pull never refuses', async () => {
  const pushed = await pushLayout(reg.url, 'ondemand/debian', 'bookworm', fixture('oci'));
  const proxy = await startProxy(reg.url);
  stopAll.push(proxy.stop);
  const o = fresh();
  const ref = `${proxy.host}/ondemand/debian:bookworm`;
  const never = await runHutch(['run', '--pull', 'never', '--network', 'none', '--rootfs', `image:${ref}`, '--', 'true'], o);
  assert.is(never.code, 125, describe(never));
  assert.match(never.stderr, /--pull never/);
  const first = expectExit(await runHutch(['run', '--network', 'none', '--rootfs', `image:${ref}`, '--', 'cat', '/etc/debian_version'], o));
  assert.match(first.stderr, /pulling .*not stored yet/, describe(first));
  assert.match(first.stdout, /^12\./);
  const n = proxy.requests.length;
  // A profile's rootfs: {image: REF} is the same image, stored now: no request.
  const profile = path.join(tmpDir(), 'p.yaml');
  fs.writeFileSync(profile, `rootfs: {image: ${ref}}\nnetwork: none\n`);
  expectExit(await runHutch(['run', '--profile', profile, '--', 'true'], o));
  assert.is(proxy.requests.length, n, 'no registry request for a stored image');
  const always = expectExit(await runHutch(['run', '--pull', 'always', '--network', 'none', '--rootfs', `image:${ref}`, '--', 'true'], o));
  assert.ok(
    proxy.requests.slice(n).some((q) => q.url.includes('/manifests/bookworm')),
    describe(always),
  );
  const layerGets = proxy.requests.slice(n).filter((q) => pushed.layers.some((l) => q.url.endsWith(`/blobs/${l}`)));
  assert.equal(layerGets, [], 'no layer fetched again');
});

test('short names go through the search list of registries.conf in order, the resolved name printed', async () => {
  await pushImage(reg.url, 'org/searched', 'v2', { layers: [base] });
  const empty = await startProxy(reg.url, () => ({ status: 404 })); // a registry that has nothing
  stopAll.push(empty.stop);
  const o = fresh();
  fs.mkdirSync(path.join(o.env!.XDG_CONFIG_HOME!, 'hutch'));
  fs.writeFileSync(path.join(o.env!.XDG_CONFIG_HOME!, 'hutch', 'registries.conf'), `unqualified-search-registries = ["${empty.host}", "${reg.host}"]\n`);
  const r = expectExit(await runHutch(['pull', 'org/searched:v2'], o));
  assert.match(
    r.stderr,
    new RegExp(`resolved "org/searched:v2" to ${empty.host}/org/searched:v2[\\s\\S]*resolved "org/searched:v2" to ${reg.host}/org/searched:v2`),
    describe(r),
  );
  assert.match(r.stdout, new RegExp(`^${reg.host}/org/searched:v2 `));
  const none = await runHutch(['pull', 'nowhere:v1'], o);
  assert.is(none.code, 125, describe(none));
  assert.match(none.stderr, new RegExp(`nowhere:v1: not found on any registry of the search list \\(${empty.host}/nowhere:v1, ${reg.host}/nowhere:v1\\)`));
  // run --rootfs image:SHORT finds the pulled image under its full name: no second pull
  const n = empty.requests.length;
  expectExit(await runHutch(['run', '--network', 'none', '--rootfs', 'image:org/searched:v2', '--dry-run'], o));
  assert.is(empty.requests.length, n);
});

test('errors name the reference: a bad reference, an unreachable registry', async () => {
  const o = fresh();
  const bad = await runHutch(['pull', 'Debian:bookworm'], o);
  assert.is(bad.code, 125);
  assert.match(bad.stderr, /"Debian:bookworm" is not a valid image reference/);
  const down = await runHutch(['pull', '127.0.0.1:1/x:y'], o);
  assert.is(down.code, 125, describe(down));
  assert.match(down.stderr, /127\.0\.0\.1:1\/x:y: cannot reach 127\.0\.0\.1:1/);
});

test.run();
