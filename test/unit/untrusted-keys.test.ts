// src/util/untrusted-keys.ts: the bounds that stand in for a per-start hash
// seed (build.mjs runs the single executable with --no-rehash-snapshot). The
// key count must be exact for valid JSON (colons in strings, escapes), a
// document past the cap is refused with a sentence wherever hutch reads one
// from an image or a registry, and the salted map behaves as a Map.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HutchError } from '../../src/util/errors';
import { jsonKeyCount, MAX_JSON_KEYS, parseUntrustedJson, UntrustedKeyMap } from '../../src/util/untrusted-keys';
import { parseConfigBlob, parseManifest } from '../../src/image/registry/manifest';
import { parseTokenResponse } from '../../src/image/registry/client';
import { fails } from './lib/fails';

/** The keys of a parsed value, counted by walking it. */
function walkKeys(v: unknown): number {
  if (Array.isArray(v)) return v.reduce((n: number, x) => n + walkKeys(x), 0);
  if (v && typeof v === 'object') return Object.entries(v).reduce((n, [, x]) => n + 1 + walkKeys(x), 0);
  return 0;
}

/** A deterministic pseudo-random generator (the fuzz repeats). */
function rng(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

function randomString(r: () => number): string {
  const alphabet = ['a', ':', '"', '\\', '{', '}', ',', ' ', 'é', '\n', '::', 'http://x:1/'];
  let s = '';
  for (let i = Math.floor(r() * 6); i > 0; i--) s += alphabet[Math.floor(r() * alphabet.length)];
  return s;
}

function randomValue(r: () => number, depth: number): unknown {
  const k = r();
  if (depth > 3 || k < 0.3) return k < 0.1 ? 1 : k < 0.2 ? null : randomString(r);
  if (k < 0.6) return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = Math.floor(r() * 5); i > 0; i--) o[randomString(r) + i] = randomValue(r, depth + 1);
  return o;
}

test('the key count of valid JSON is exact once colons pass the cap: colons inside strings and escaped quotes do not count', () => {
  const r = rng(7);
  for (let i = 0; i < 300; i++) {
    const v = randomValue(r, 0);
    // padding of colons in a string pushes the count onto the exact path
    const text = JSON.stringify({ pad: ':'.repeat(MAX_JSON_KEYS + 1), v }, null, i % 3 === 0 ? 2 : undefined);
    assert.is(jsonKeyCount(text), walkKeys(JSON.parse(text)), text.slice(0, 200));
  }
});

test('below the cap the count is the colons: never fewer than the keys', () => {
  const r = rng(11);
  for (let i = 0; i < 300; i++) {
    const text = JSON.stringify(randomValue(r, 0));
    assert.ok(jsonKeyCount(text) >= walkKeys(JSON.parse(text)), text);
  }
});

const many = (n: number) => JSON.stringify(Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i])));

test('a document with more keys than the cap is refused with a sentence naming it; one at the cap is read', () => {
  assert.is(walkKeys(parseUntrustedJson(many(MAX_JSON_KEYS), 'x')), MAX_JSON_KEYS);
  const e = fails(() => parseUntrustedJson(many(MAX_JSON_KEYS + 1), 'docker.io/library/x: the image config'));
  assert.instance(e, HutchError);
  assert.match(e.message, /^docker\.io\/library\/x: the image config: 20001 keys in one JSON document, more than the 20000/);
  // keys spread over nested objects count together
  const nested = JSON.stringify(Array.from({ length: 101 }, () => JSON.parse(many(200))));
  assert.match(fails(() => parseUntrustedJson(nested, 'n')).message, /20200 keys/);
  // colons in values are not keys: a history of URLs is fine
  const urls = JSON.stringify({ history: Array.from({ length: 30_000 }, (_, i) => `https://example.org:443/${i}`) });
  assert.is((parseUntrustedJson(urls, 'u') as { history: string[] }).history.length, 30_000);
  // a syntax error stays JSON.parse's, for the caller to word
  assert.throws(
    () => parseUntrustedJson('{"a":', 's'),
    (e: unknown) => e instanceof SyntaxError,
  );
});

test('registry manifests, image configs and token responses go through the cap; their own errors keep their words', () => {
  const flood = Buffer.from(many(MAX_JSON_KEYS + 5));
  assert.match(fails(() => parseManifest(flood, undefined, 'reg/img:1')).message, /^reg\/img:1: 20005 keys in one JSON document/);
  assert.match(fails(() => parseConfigBlob(flood, 'reg/img:1')).message, /^reg\/img:1: 20005 keys/);
  assert.match(fails(() => parseManifest(Buffer.from('{'), undefined, 'reg/img:1')).message, /not JSON/);
  assert.is(parseTokenResponse(flood), undefined);
  assert.equal(parseTokenResponse(Buffer.from('{"token":"abc","expires_in":5}')), { token: 'abc', expiresIn: 5 });
});

test('UntrustedKeyMap answers as a Map does, for any name (empty, __proto__, array indices)', () => {
  const m = new UntrustedKeyMap<number>();
  const ref = new Map<string, number>();
  const names = ['', '__proto__', 'constructor', '0', '4294967295', 'a/b', 'a/b/', '.wh..wh..opq', 'é', 'x'.repeat(300)];
  names.forEach((n, i) => {
    m.set(n, i);
    ref.set(n, i);
  });
  assert.is(m.size, ref.size);
  for (const n of names) {
    assert.is(m.get(n), ref.get(n));
    assert.ok(m.has(n));
  }
  assert.not.ok(m.has('missing'));
  assert.is(m.get('missing'), undefined);
  assert.ok(m.delete('a/b'));
  assert.not.ok(m.has('a/b'));
  assert.is(m.size, names.length - 1);
  // two maps of one process agree (one salt per process)
  const other = new UntrustedKeyMap<number>().set('a', 1);
  assert.is(other.get('a'), 1);
});

test.run();
