// The parsers of src/image/registry that read what users type (references,
// --platform, --creds, registries.conf) and what registries send
// (WWW-Authenticate, manifests and indexes, image configs, token responses,
// Content-Range), plus a fuzz pass: random and mutated inputs give a typed
// value or a HutchError, never another exception.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HutchError } from '../../src/util/errors';
import { formatReference, isLoopback, parseSearchList, qualify } from '../../src/image/registry/reference';
import { parseChallenges } from '../../src/image/registry/challenge';
import { choosePlatform, MT, parseConfigBlob, parseManifest, parsePlatform, type Descriptor } from '../../src/image/registry/manifest';
import { backoffMs, errorDetail, parseTokenResponse } from '../../src/image/registry/client';
import { contentRangeStart } from '../../src/image/registry/blob';
import { decodeEntry, parseCredsFlag } from '../../src/image/registry/credentials';
import { fails } from './lib/fails';

const D = (c: string) => `sha256:${c.repeat(64)}`;
const q1 = (t: string, search?: string[]) => formatReference(qualify(t, search)[0]);

test('short names resolve to docker.io/library, with :latest when no tag or digest is given', () => {
  assert.is(q1('debian'), 'docker.io/library/debian:latest');
  assert.is(q1('debian:bookworm'), 'docker.io/library/debian:bookworm');
  assert.is(q1('org/img:1.0'), 'docker.io/org/img:1.0');
  assert.is(q1(`debian@${D('a')}`), `docker.io/library/debian@${D('a')}`);
  assert.is(q1(`debian:12@${D('a')}`), `docker.io/library/debian:12@${D('a')}`);
  assert.is(q1('index.docker.io/library/alpine'), 'docker.io/library/alpine:latest');
});

test('registry names: a first part with a dot, a port, or localhost', () => {
  assert.is(q1('ghcr.io/org/img:tag'), 'ghcr.io/org/img:tag');
  assert.is(q1('host:5000/path/img:tag'), 'host:5000/path/img:tag');
  assert.is(q1('localhost/img'), 'localhost/img:latest');
  assert.is(q1('127.0.0.1:5000/a/b/c:V1.2_x'), '127.0.0.1:5000/a/b/c:V1.2_x');
  assert.is(q1('[::1]:5000/img:1'), '[::1]:5000/img:1');
  assert.is(q1('quay.io/a/b'), 'quay.io/a/b:latest');
});

test('a search list is tried in order; library/ only for docker.io', () => {
  assert.equal(qualify('img:1', ['quay.io', 'docker.io']).map(formatReference), ['quay.io/img:1', 'docker.io/library/img:1']);
  assert.equal(parseSearchList('# mine\nunqualified-search-registries = ["quay.io", \'docker.io\']\n[[registry]]\n', 'f'), ['quay.io', 'docker.io']);
  assert.is(parseSearchList('other = 1\n', 'f'), undefined);
  assert.match(
    fails(() => parseSearchList('unqualified-search-registries = [quay.io]', 'f.conf')).message,
    /f\.conf: .*quay\.io is not a quoted registry host/,
  );
  assert.match(fails(() => qualify('img', [])).message, /names no registry and the search list is empty/);
});

test('invalid references are HutchErrors saying what is wrong', () => {
  for (const [t, why] of [
    ['', /empty/],
    ['Debian', /lower-case/],
    ['a//b', /empty part/],
    ['a:', /not a valid tag/],
    ['a:-x', /not a valid tag/],
    ['a@sha256:abc', /not a sha256/],
    ['a@md5:' + 'a'.repeat(32), /not a sha256/],
    ['a b', /lower-case/],
    ['-a', /lower-case/],
    ['a..b', /lower-case/],
    ['exa_mple.com:99999999/x', /not a valid registry/],
    ['x'.repeat(600), /longer than 512/],
  ] as const) {
    assert.match(fails(() => qualify(t)).message, why, t);
  }
});

test('loopback registries', () => {
  for (const h of ['localhost', 'localhost:5000', '127.0.0.1:5000', '127.9.9.9', '[::1]:5000']) assert.ok(isLoopback(h), h);
  for (const h of ['docker.io', '10.0.0.1:5000', 'localhost.evil.com', '128.0.0.1']) assert.not.ok(isLoopback(h), h);
});

test('WWW-Authenticate: Bearer and Basic challenges, quoted and bare values, several in one header', () => {
  assert.equal(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/debian:pull"'), [
    { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/debian:pull' } },
  ]);
  assert.equal(parseChallenges('Basic realm="Registry Realm"'), [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
  assert.equal(parseChallenges('Basic realm=x, Bearer realm="https://t/", scope="a:b:pull,push"'), [
    { scheme: 'basic', params: { realm: 'x' } },
    { scheme: 'bearer', params: { realm: 'https://t/', scope: 'a:b:pull,push' } },
  ]);
  assert.equal(
    parseChallenges(['Basic realm=a', 'Bearer realm=b']).map((c) => c.scheme),
    ['basic', 'bearer'],
  );
  assert.equal(parseChallenges('Bearer realm="a\\"b", REALM="dup"'), [{ scheme: 'bearer', params: { realm: 'a"b' } }]);
  assert.equal(parseChallenges(undefined), []);
  assert.equal(parseChallenges(''), []);
});

const manifest = (o: Record<string, unknown> = {}) =>
  Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: { mediaType: MT.ociConfig, digest: D('c'), size: 10 },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: D('1'), size: 100 }],
      ...o,
    }),
  );

test('manifests: OCI and Docker schema 2, the media type from the body or the Content-Type', () => {
  const m = parseManifest(manifest(), undefined, 'x');
  assert.is(m.kind, 'image');
  if (m.kind === 'image')
    assert.equal(
      m.layers.map((l) => l.compression),
      ['gzip'],
    );
  const d = parseManifest(
    manifest({
      mediaType: undefined,
      config: { mediaType: MT.dockerConfig, digest: D('c'), size: 1 },
      layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: `sha512:${'f'.repeat(128)}`, size: 1 }],
    }),
    `${MT.dockerManifest}; charset=utf-8`,
    'x',
  );
  assert.is(d.mediaType, MT.dockerManifest);
  const idx = parseManifest(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        manifests: [{ mediaType: MT.ociManifest, digest: D('a'), size: 5, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } }],
      }),
    ),
    MT.dockerList,
    'x',
  );
  assert.is(idx.kind, 'index');
  if (idx.kind === 'index') assert.equal(idx.manifests[0].platform, { os: 'linux', architecture: 'arm', variant: 'v7' });
});

test('manifests hutch refuses, each with a sentence', () => {
  const cases: [Buffer, RegExp][] = [
    [Buffer.from('not json'), /invalid manifest: not JSON/],
    [Buffer.from('[]'), /not a JSON object/],
    [Buffer.from('{"schemaVersion":1,"fsLayers":[]}'), /schema 1 manifest/],
    [manifest({ schemaVersion: 3 }), /schemaVersion is not 2/],
    [manifest({ mediaType: 'application/vnd.cncf.helm.chart.content.v1.tar+gzip' }), /not a container image/],
    [manifest({ config: { mediaType: 'application/vnd.cncf.helm.config.v1+json', digest: D('c'), size: 1 } }), /not a container image config/],
    [manifest({ layers: [{ mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', digest: D('1'), size: 1 }] }), /foreign/],
    [manifest({ layers: [{ mediaType: 'text/plain', digest: D('1'), size: 1 }] }), /not a container layer/],
    [manifest({ layers: [{ mediaType: MT.ociConfig, digest: 'sha256:xyz', size: 1 }] }), /layers\[0\]\.digest/],
    [manifest({ layers: [{ mediaType: MT.ociConfig, digest: D('1'), size: -1 }] }), /layers\[0\]\.size/],
    [manifest({ layers: 'x' }), /no layers list/],
    [Buffer.alloc(5 << 20, 32), /larger than/],
  ];
  for (const [b, re] of cases) assert.match(fails(() => parseManifest(b, undefined, 'ref')).message, re);
});

test('image config: diff_ids checked, platform read', () => {
  const c = parseConfigBlob(Buffer.from(JSON.stringify({ architecture: 'arm64', os: 'linux', config: { Env: ['A=1'] }, rootfs: { diff_ids: [D('1')] } })), 'x');
  assert.equal(c.diffIds, [D('1')]);
  assert.equal(c.platform.architecture, 'arm64');
  assert.match(fails(() => parseConfigBlob(Buffer.from('{"rootfs":{"diff_ids":["x"]}}'), 'x')).message, /diff_ids/);
});

test('platform choice from an index: os/arch, the variant when asked (arm64 = v8), attestations skipped, a 125 listing what there is', () => {
  const m = (arch: string, variant?: string, os = 'linux'): Descriptor => ({
    mediaType: MT.ociManifest,
    digest: D(arch.length.toString(16).slice(-1)),
    size: 1,
    platform: { os, architecture: arch, ...(variant ? { variant } : {}) },
  });
  const list = [m('unknown', undefined, 'unknown'), m('amd64'), m('arm', 'v6'), m('arm', 'v7'), m('arm64', 'v8')];
  assert.is(choosePlatform(list, { os: 'linux', architecture: 'amd64' }, 'x'), list[1]);
  assert.is(choosePlatform(list, parsePlatform('linux/arm/v7'), 'x'), list[3]);
  assert.is(choosePlatform(list, parsePlatform('linux/arm64'), 'x'), list[4]);
  assert.is(choosePlatform([m('arm64')], parsePlatform('linux/arm64/v8'), 'x').platform?.architecture, 'arm64');
  const e = fails(() => choosePlatform(list, parsePlatform('linux/s390x'), 'img'));
  assert.match(e.message, /img has no image for linux\/s390x/);
  assert.match(e.hint!, /it has: linux\/amd64, linux\/arm\/v6, linux\/arm\/v7, linux\/arm64\/v8; choose one with --platform/);
  const single: Descriptor = { mediaType: MT.ociManifest, digest: D('e'), size: 1 };
  assert.is(choosePlatform([single], parsePlatform('linux/amd64'), 'x'), single);
  assert.match(fails(() => parsePlatform('amd64')).message, /--platform: "amd64" is not os\/arch/);
});

test('token responses, error bodies, Content-Range, backoff', () => {
  assert.equal(parseTokenResponse(Buffer.from('{"token":"abc","expires_in":300}')), { token: 'abc', expiresIn: 300 });
  assert.equal(parseTokenResponse(Buffer.from('{"access_token":"x"}')), { token: 'x', expiresIn: 60 });
  assert.is(parseTokenResponse(Buffer.from('{"token":"a\\nb"}')), undefined, 'a token that would break the header');
  assert.is(parseTokenResponse(Buffer.from('nope')), undefined);
  assert.is(errorDetail(Buffer.from('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')), ': MANIFEST_UNKNOWN manifest unknown');
  assert.is(errorDetail(Buffer.from('<html>')), '');
  assert.is(contentRangeStart('bytes 100-199/200'), 100);
  assert.is(contentRangeStart('bytes 0-9/*'), 0);
  assert.is(contentRangeStart('items 1-2/3'), undefined);
  assert.equal(
    [0, 1, 2, 3, 10].map((a) => backoffMs(a)),
    [250, 500, 1000, 2000, 8000],
  );
  assert.is(backoffMs(0, '3'), 3000);
  assert.is(backoffMs(0, '3600'), 10_000, 'Retry-After capped');
});

test('credentials: auth.json entries and --creds', () => {
  assert.equal(decodeEntry({ auth: Buffer.from('u:p:q').toString('base64') }, 'f'), { username: 'u', password: 'p:q', from: 'f' });
  assert.equal(decodeEntry({ username: 'a', password: 'b' }, 'f'), { username: 'a', password: 'b', from: 'f' });
  assert.is(decodeEntry({ auth: 'bm9jb2xvbg==' }, 'f'), undefined);
  assert.is(decodeEntry(undefined, 'f'), undefined);
  assert.equal(parseCredsFlag('bob:pa:ss'), { username: 'bob', password: 'pa:ss', from: '--creds' });
  assert.match(fails(() => parseCredsFlag('bob')).message, /--creds: expected USER:PASSWORD/);
});

/** A small deterministic PRNG (fuzzing is reproducible). */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function mutate(b: Buffer, r: () => number): Buffer {
  const out = Buffer.from(b);
  const n = 1 + Math.floor(r() * 4);
  for (let i = 0; i < n && out.length; i++) out[Math.floor(r() * out.length)] = Math.floor(r() * 256);
  return r() < 0.2 ? out.subarray(0, Math.floor(r() * out.length)) : out;
}

test('fuzz: mutated manifests, configs, challenges and references give a value or a HutchError, nothing else', () => {
  const r = rng(14);
  const seeds = [
    manifest(),
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MT.ociIndex,
        manifests: [{ mediaType: MT.ociManifest, digest: D('a'), size: 5, platform: { os: 'linux', architecture: 'amd64' } }],
      }),
    ),
  ];
  const challenge = Buffer.from('Bearer realm="https://auth/token",service="reg",scope="repository:a/b:pull", Basic realm=x');
  const refs = Buffer.from(`ghcr.io:443/org/img:tag@${D('b')}`);
  for (let i = 0; i < 3000; i++) {
    const input = mutate(seeds[i % 2], r);
    try {
      const m = parseManifest(input, r() < 0.5 ? MT.dockerList : undefined, 'f');
      if (m.kind === 'index') choosePlatform(m.manifests, { os: 'linux', architecture: 'amd64' }, 'f');
    } catch (e) {
      if (!(e instanceof HutchError)) throw new Error(`parseManifest(${JSON.stringify(input.toString('latin1'))}) threw ${e}`);
    }
    try {
      parseConfigBlob(input, 'f');
    } catch (e) {
      if (!(e instanceof HutchError)) throw new Error(`parseConfigBlob threw ${e}`);
    }
    const h = mutate(challenge, r).toString('latin1');
    const c = parseChallenges(h);
    assert.ok(Array.isArray(c) && c.every((x) => typeof x.scheme === 'string'), h);
    const t = mutate(refs, r).toString('latin1');
    try {
      for (const q of qualify(t)) assert.ok(formatReference(q).length > 0);
    } catch (e) {
      if (!(e instanceof HutchError)) throw new Error(`qualify(${JSON.stringify(t)}) threw ${e}`);
    }
    parseTokenResponse(input);
  }
});

test.run();
