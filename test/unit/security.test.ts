// The checks behind issue 11's points 3-5, on their own: private directories
// (src/host/private-dir.ts), layout paths and digests (src/image/digest.ts),
// the tar index's bounds, the home directories to hide (src/host/facts.ts).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ensurePrivateDir, notPrivate, removeEntry, unsafeParent } from '../../src/host/private-dir';
import { blobPath, digestOf, isBeneath, layoutPath, parseDigest } from '../../src/image/digest';
import { encodeHeader, entry, indexTarFile, TarFormatError } from '../../src/image/tar';
import { homeDirs } from '../../src/host/facts';
import { fails } from './lib/fails';

const uid = process.getuid!();
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'hutch-unit-sec-'));
test.after(() => fs.rmSync(scratch, { recursive: true, force: true }));

// ---------------------------------------------------------------- digests

test('sha256 and sha512 digests parse; others are refused by name', () => {
  const d256 = digestOf('sha256', Buffer.from('x'));
  const d512 = digestOf('sha512', Buffer.from('x'));
  assert.is(parseDigest(d256, 'w').algorithm, 'sha256');
  assert.is(parseDigest(d512, 'w').hex.length, 128);
  assert.is(blobPath(d512, 'w'), `blobs/sha512/${d512.slice(7)}`);
  assert.match(fails(() => parseDigest(`md5:${'a'.repeat(32)}`, 'layer 1')).message, /layer 1: the digest algorithm "md5" is not supported/);
  assert.match(fails(() => parseDigest(`sha384:${'a'.repeat(96)}`, 'w')).hint ?? '', /sha256 and sha512/);
});

test('an empty, missing or malformed digest is an error, never a skipped check', () => {
  for (const bad of ['', undefined, null, 42]) assert.match(fails(() => parseDigest(bad, 'diff_id')).message, /missing or empty/);
  for (const bad of [
    'sha256:',
    'sha256:abc',
    `sha256:${'A'.repeat(64)}`,
    `sha512:${'a'.repeat(64)}`,
    'sha256',
    `sha256:${'a'.repeat(64)}\n`,
    `sha256:../${'a'.repeat(61)}`,
  ]) {
    fails(() => parseDigest(bad, 'w'));
  }
});

// ---------------------------------------------------------------- layout paths

test('layout paths stay inside the layout', () => {
  assert.is(layoutPath('./blobs//sha256/ab', 'w'), 'blobs/sha256/ab');
  assert.is(layoutPath('abc/layer.tar', 'w'), 'abc/layer.tar');
  for (const [bad, why] of [
    ['../x', /leads outside/],
    ['a/../../x', /leads outside/],
    ['a/..', /leads outside/],
    ['/etc/passwd', /absolute path/],
    ['', /missing or empty/],
    ['.', /names the layout itself/],
    ['a\0b', /NUL/],
  ] as const) {
    assert.match(fails(() => layoutPath(bad, 'manifest.json layer 1')).message, why, bad);
  }
  fails(() => layoutPath(undefined, 'w'));
  assert.ok(isBeneath('/a/b/c', '/a/b'));
  assert.not.ok(isBeneath('/a/bc', '/a/b'));
  assert.ok(isBeneath('/x', '/'));
});

test('the tar index refuses a member larger than the rest of the file', () => {
  const h = encodeHeader(entry({ path: 'big', type: 'file', size: 1 << 30 }));
  const data = Buffer.concat([h, Buffer.alloc(1024)]);
  const readSync = (_fd: number, b: Buffer, o: number, l: number, p: number) => data.copy(b, o, p, p + l);
  assert.throws(
    () => indexTarFile(0, data.length, readSync),
    (e: unknown) => e instanceof TarFormatError && /truncated/.test((e as Error).message),
  );
});

// ---------------------------------------------------------------- private directories

test('ensurePrivateDir creates 0700 directories and returns the real path', () => {
  const p = path.join(scratch, 'a', 'b', 'hutch');
  const real = ensurePrivateDir(p, uid);
  assert.is(real, fs.realpathSync(p));
  assert.is(fs.statSync(p).mode & 0o777, 0o700);
  assert.is(fs.statSync(path.join(scratch, 'a')).mode & 0o777, 0o700, 'missing parents are made 0700 too');
  // through a symlinked parent of our own: accepted, and the real path comes back
  fs.symlinkSync(path.join(scratch, 'a'), path.join(scratch, 'alink'));
  assert.is(ensurePrivateDir(path.join(scratch, 'alink', 'b', 'hutch'), uid), real);
});

test('ensurePrivateDir refuses a symlink, a non-directory, a group/other-writable dir or parent', () => {
  const target = path.join(scratch, 'elsewhere');
  fs.mkdirSync(target, { mode: 0o700 });
  fs.symlinkSync(target, path.join(scratch, 'link'));
  assert.match(
    fails(() => ensurePrivateDir(path.join(scratch, 'link'), uid, 'the runtime directory')).message,
    /the runtime directory .*link is a symbolic link/,
  );
  fs.writeFileSync(path.join(scratch, 'file'), '');
  assert.match(fails(() => ensurePrivateDir(path.join(scratch, 'file'), uid)).message, /is not a directory/);
  fs.mkdirSync(path.join(scratch, 'open'), { mode: 0o700 });
  fs.chmodSync(path.join(scratch, 'open'), 0o770);
  const e = fails(() => ensurePrivateDir(path.join(scratch, 'open'), uid));
  assert.match(e.message, /writable by group or others \(mode 0770\)/);
  assert.match(e.hint ?? '', /XDG_RUNTIME_DIR/);
  fs.chmodSync(path.join(scratch, 'open'), 0o777);
  assert.match(fails(() => ensurePrivateDir(path.join(scratch, 'open', 'hutch'), uid)).message, /open is writable by every user and not sticky/);
  // another owner (checked with a uid that is not ours)
  assert.match(notPrivate(fs.lstatSync(target), uid + 1) ?? '', /belongs to uid/);
  assert.match(unsafeParent({ uid: uid + 1, mode: 0o40755 }, uid === 0 ? 5 : uid) ?? '', /belongs to uid/);
  assert.is(unsafeParent({ uid: 0, mode: 0o41777 }, uid), undefined, '/tmp (sticky) is a fine parent');
});

test('removeEntry unlinks a symlink instead of following it', () => {
  const base = ensurePrivateDir(path.join(scratch, 'state'), uid);
  const precious = path.join(scratch, 'precious');
  fs.mkdirSync(precious);
  fs.writeFileSync(path.join(precious, 'keep'), 'x');
  fs.symlinkSync(precious, path.join(base, 'evil'));
  removeEntry(base, 'evil', uid);
  assert.not.ok(fs.existsSync(path.join(base, 'evil')));
  assert.ok(fs.existsSync(path.join(precious, 'keep')));
  fs.mkdirSync(path.join(base, 'stale', 'sub'), { recursive: true });
  removeEntry(base, 'stale', uid);
  assert.not.ok(fs.existsSync(path.join(base, 'stale')));
  assert.throws(() => removeEntry(base, '..', uid));
});

// ---------------------------------------------------------------- homes

test('the homes to hide: the account home and $HOME; all adds /home and /root, parents first', () => {
  const isDir = (p: string) => p === '/home' || p === '/root';
  const h = homeDirs({ HOME: '/nonexistent-fake-home' }, '/nonexistent-account', { isDir });
  assert.equal(h.own, ['/nonexistent-account', '/nonexistent-fake-home']);
  const sys = ['/home', '/root'].map((d) => (fs.existsSync(d) ? fs.realpathSync(d) : d));
  assert.equal([...h.all].sort(), [...new Set([...sys, '/home', '/root', '/nonexistent-account', '/nonexistent-fake-home'])].sort());
  const nested = homeDirs({ HOME: '/home/u' }, '/home/u', { isDir });
  assert.ok(nested.all.indexOf('/home') < nested.all.indexOf('/home/u'), `parents first: ${nested.all}`);
  assert.equal(
    homeDirs({ HOME: '/' }, '/nonexistent-account', { isDir: () => false }).own,
    ['/nonexistent-account'],
    'HOME=/ hides nothing more (never all of /)',
  );
  assert.equal(homeDirs({}, '/nonexistent-account', { isDir: () => false }).all, ['/nonexistent-account']);
});

test.run();
