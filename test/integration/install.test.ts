// The single executable and install.sh: dist/hutch works from anywhere with
// the helper taken out of the binary (a private unnamed copy per process, so
// nothing planted in the cache ever runs; a noexec cache survived), and install.sh
// installs, is idempotent, and --uninstall removes exactly what it added.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describe, descendants, expectExit, isRoot, killTree, procStatus, repoPath, runCmd, spawnCmd, tmpDir, waitFor } from '../lib/hutch';

const SEA = repoPath('dist', 'hutch');
const HELPER = repoPath('dist', 'hutch-helper');

/** A copy of dist/hutch alone in a directory, and a private cache dir. */
function isolated(): { bin: string; cache: string; env: Record<string, string | undefined> } {
  const dir = tmpDir('sea-');
  const bin = path.join(dir, 'only', 'hutch');
  fs.mkdirSync(path.dirname(bin));
  fs.copyFileSync(SEA, bin);
  fs.chmodSync(bin, 0o755);
  const cache = path.join(dir, 'cache');
  return { bin, cache, env: { XDG_CACHE_HOME: cache, HUTCH_HELPER: undefined } };
}

const helperDir = (cache: string) => path.join(cache, 'hutch', 'helper');

test('dist/hutch copied anywhere runs a sandbox with the helper from inside the binary, from a copy with no name', async () => {
  const { bin, cache, env } = isolated();
  const r = await runCmd([bin, 'run', '--network', 'none', '--', '/bin/sh', '-c', 'echo inside'], { env });
  expectExit(r, 0);
  assert.is(r.stdout, 'inside\n');
  // the private copy is an O_TMPFILE: nothing in the cache has a name that could be swapped
  assert.equal(fs.readdirSync(helperDir(cache)), [], 'no named helper file');
  assert.is(fs.statSync(helperDir(cache)).mode & 0o777, 0o700);
  if (isRoot()) {
    // root can look at the (not dumpable) monitor: it runs exactly dist/hutch-helper
    const child = spawnCmd([bin, 'run', '--network', 'none', '--', 'sleep', '30'], { env, stdio: ['ignore', 'ignore', 'ignore'] });
    try {
      const monitor = await waitFor(() => descendants(child.pid!).find((p) => procStatus(p)?.Name === 'hutch-helper'), 30_000, { what: 'the monitor' });
      assert.ok(fs.readFileSync(`/proc/${monitor}/exe`).equals(fs.readFileSync(HELPER)), 'the monitor runs dist/hutch-helper');
      assert.match(fs.readlinkSync(`/proc/${monitor}/exe`), /\(deleted\)$/, 'an unnamed file');
    } finally {
      killTree(child);
    }
  }
});

test('a helper planted in the cache (the name older versions used) is never executed', async () => {
  const { bin, cache, env } = isolated();
  expectExit(await runCmd([bin, 'run', '--network', 'none', '--', '/bin/true'], { env }), 0);
  const sha = execFileSync('sha256sum', [HELPER], { encoding: 'utf8' }).split(' ')[0];
  const marker = path.join(path.dirname(cache), 'pwned');
  const script = `#!/bin/sh\ntouch ${marker}\nexit 0\n`;
  for (const f of [path.join(helperDir(cache), sha, 'hutch-helper'), path.join(helperDir(cache), 'hutch-helper'), path.join(cache, 'hutch', 'hutch-helper')]) {
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, script, { mode: 0o755 });
  }
  const r = await runCmd([bin, 'run', '--network', 'none', '--', '/bin/sh', '-c', 'echo ran'], { env });
  expectExit(r, 0);
  assert.is(r.stdout, 'ran\n');
  assert.not.ok(fs.existsSync(marker), 'the planted file was executed');
  const doc = await runCmd([bin, 'doctor'], { env });
  assert.ok(doc.code === 0 || doc.code === 1, describe(doc));
  assert.not.ok(fs.existsSync(marker), 'the planted file was executed by doctor');
});

test('a noexec cache directory: the helper goes to the next location, and hutch still runs', async () => {
  const { bin, cache } = isolated();
  const runtime = tmpDir('sea-run-');
  fs.mkdirSync(cache);
  // A private mount namespace (as root, or in a user namespace) with a noexec tmpfs on the cache.
  const wrap = ['unshare', '-Urm', 'sh', '-c', `mount -t tmpfs -o noexec,mode=700 t '${cache}' && exec "$@"`, 'sh'];
  const env = { XDG_CACHE_HOME: cache, XDG_RUNTIME_DIR: runtime, HUTCH_HELPER: undefined };
  const r = await runCmd([...wrap, bin, 'doctor', '--json'], { env, timeoutMs: 60_000 });
  assert.ok(r.code === 0 || r.code === 1, describe(r));
  const helper = (JSON.parse(r.stdout).checks as { id: string; facts?: Record<string, string> }[]).find((c) => c.id === 'hutch.helper')!;
  assert.ok(helper.facts!.path.startsWith(path.join(runtime, 'hutch') + '/'), helper.facts!.path);
  assert.match(helper.facts!.note, /noexec/);
  const run = await runCmd([...wrap, bin, 'run', '--network', 'none', '--', '/bin/sh', '-c', 'echo ok'], { env, timeoutMs: 60_000 });
  expectExit(run, 0);
  assert.is(run.stdout, 'ok\n');
  // Every candidate noexec: a clear error naming the fix, not EACCES.
  const tmpx = tmpDir('sea-tmpx-');
  const all = `for d in '${cache}' '${runtime}' '${tmpx}'; do mount -t tmpfs -o noexec,mode=700 t "$d" || exit 99; done; exec "$@"`;
  const bad = await runCmd(['unshare', '-Urm', 'sh', '-c', all, 'sh', bin, 'run', '--network', 'none', '--', '/bin/true'], {
    env: { ...env, XDG_DATA_HOME: path.join(cache, 'data'), TMPDIR: tmpx },
    timeoutMs: 60_000,
  });
  expectExit(bad, 125);
  assert.match(bad.stderr, /cannot place the helper in an executable directory/);
  assert.match(bad.stderr, /hint: set XDG_CACHE_HOME/);
});

// ---------------------------------------------------------------- install.sh

function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      out.push(path.relative(dir, p) + (e.isDirectory() ? '/' : ''));
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

/**
 * Runs install.sh. As root, /etc/subuid and /etc/subgid are copies bound over
 * the real ones in a private mount namespace, so the test can watch the lines
 * it adds and removes without touching this machine's files.
 */
async function install(script: string, args: string[], home: string, etc?: string) {
  // install.sh may build (node build.mjs): it gets node on PATH, which the tier's PATH lacks.
  const PATH = `${path.dirname(process.execPath)}:${process.env.PATH}`;
  const env = { HOME: home, PATH, XDG_DATA_HOME: undefined, XDG_CACHE_HOME: path.join(home, '.cache'), HUTCH_HELPER: undefined, CI: 'true' };
  const argv = etc
    ? [
        'unshare',
        '-m',
        'sh',
        '-c',
        `mount --bind '${etc}/subuid' /etc/subuid && mount --bind '${etc}/subgid' /etc/subgid && exec sh "$@"`,
        'sh',
        script,
        ...args,
      ]
    : ['sh', script, ...args];
  return runCmd(argv, { env, timeoutMs: 300_000 });
}

function etcCopy(): string | undefined {
  if (!isRoot()) return undefined;
  const etc = tmpDir('install-etc-');
  for (const f of ['subuid', 'subgid']) {
    const src = `/etc/${f}`;
    const text = fs.existsSync(src) ? fs.readFileSync(src, 'utf8') : '';
    // Drop root's own line (if any) so that the "add a range" path runs.
    fs.writeFileSync(
      path.join(etc, f),
      text
        .split('\n')
        .filter((l) => l && !l.startsWith('root:') && !l.startsWith('0:'))
        .map((l) => `${l}\n`)
        .join(''),
    );
  }
  return etc;
}

async function installCycle(script: string, extra: string[], binary = SEA) {
  const home = tmpDir('install-home-');
  fs.mkdirSync(path.join(home, 'keep'));
  fs.writeFileSync(path.join(home, 'keep', 'mine.txt'), 'not hutch');
  const before = tree(home);
  const etc = etcCopy();
  const etcBefore = etc && ['subuid', 'subgid'].map((f) => fs.readFileSync(path.join(etc, f), 'utf8'));

  const first = await install(script, extra, home, etc);
  assert.ok(first.code === 0, describe(first));
  const target = path.join(home, '.local', 'bin', 'hutch');
  assert.ok(fs.readFileSync(target).equals(fs.readFileSync(binary)), 'installed binary == dist/hutch');
  assert.match(first.stdout, /hutch can run here/, 'ends with hutch doctor');
  expectExit(
    await runCmd([target, 'run', '--network', 'none', '--', '/bin/true'], {
      env: { HOME: home, XDG_CACHE_HOME: path.join(home, '.cache'), HUTCH_HELPER: undefined },
    }),
    0,
  );
  const manifest = path.join(home, '.local', 'share', 'hutch', 'install-manifest');
  const m1 = fs.readFileSync(manifest, 'utf8');
  if (etc) {
    const added = fs
      .readFileSync(path.join(etc, 'subuid'), 'utf8')
      .split('\n')
      .find((l) => l.startsWith('root:'));
    assert.ok(added && /^root:\d+:65536$/.test(added), `subuid range added for root: ${added}`);
    assert.ok(m1.includes(`line /etc/subuid ${added}`), m1);
    assert.match(first.stdout, /subordinate ids \(tried for real\)|mapped 65536 subordinate uids/);
  }

  // Second run: nothing changes.
  const mtime = fs.statSync(target).mtimeMs;
  const second = await install(script, extra, home, etc);
  assert.ok(second.code === 0, describe(second));
  assert.match(second.stdout, /already this version/);
  assert.is(fs.statSync(target).mtimeMs, mtime);
  assert.is(fs.readFileSync(manifest, 'utf8'), m1, 'manifest unchanged by a second run');
  if (etc) assert.match(second.stdout, /already has ranges/);

  // Uninstall: exactly what was added goes.
  const un = await install(script, ['--uninstall'], home, etc);
  assert.ok(un.code === 0, describe(un));
  assert.not.ok(fs.existsSync(target));
  assert.not.ok(fs.existsSync(manifest));
  const after = tree(home).filter((p) => !p.startsWith('.cache/'));
  assert.equal(after, before, 'home back to what it was (hutch cache aside)');
  assert.is(fs.readFileSync(path.join(home, 'keep', 'mine.txt'), 'utf8'), 'not hutch');
  if (etc)
    assert.equal(
      ['subuid', 'subgid'].map((f) => fs.readFileSync(path.join(etc, f), 'utf8')),
      etcBefore,
      '/etc/subuid and subgid restored',
    );
  const again = await install(script, ['--uninstall'], home, etc);
  assert.ok(again.code === 0 && /nothing to uninstall/.test(again.stdout), describe(again));
  return { first, second };
}

test('install.sh --binary: install, second run idempotent, --uninstall removes only its own', async () => {
  await installCycle(repoPath('install.sh'), ['--binary', SEA]);
});

if (isRoot() && fs.existsSync(repoPath('.git'))) {
  // From a clean checkout of this tree (tracked and new files, no build output),
  // sharing node_modules so that no network is needed: install.sh builds.
  test('install.sh from a clean checkout builds dist/hutch, then the same cycle', async () => {
    const repo = repoPath();
    const clone = tmpDir('install-clone-');
    const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: repo, encoding: 'utf8' }).split('\0').filter(Boolean);
    for (const f of files) {
      if (!fs.existsSync(path.join(repo, f))) continue; // deleted but still tracked
      fs.mkdirSync(path.dirname(path.join(clone, f)), { recursive: true });
      fs.copyFileSync(path.join(repo, f), path.join(clone, f));
      fs.chmodSync(path.join(clone, f), fs.statSync(path.join(repo, f)).mode & 0o777);
    }
    fs.symlinkSync(path.join(repo, 'node_modules'), path.join(clone, 'node_modules'));
    assert.not.ok(fs.existsSync(path.join(clone, 'dist')));
    // The same cycle (root's /etc/subuid line goes to the bound copies, never the real files).
    const { first, second } = await installCycle(path.join(clone, 'install.sh'), ['--no-packages'], path.join(clone, 'dist', 'hutch'));
    assert.match(first.stdout, /building dist\/hutch/);
    assert.match(second.stdout, /dist\/hutch is up to date/);
  });
}

test.run();
