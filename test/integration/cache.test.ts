// The launch cache (issue 15, src/cache/): `hutch run` serves the resolved
// spec and plan of the same inputs from $XDG_CACHE_HOME/hutch/run, and the
// next run after any input changed behaves as the change says at once: a
// profile file, its extends parent, an environment variable the profile
// reads, a file the spec reads (--env-file), a user profile appearing, the
// subordinate ids. Sandboxes served from one entry get their own names and
// state; HUTCH_TRACE=1 and --dry-run say what the cache did; HUTCH_NO_CACHE=1
// and --no-cache bypass it.

import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describe, expectExit, runHutch, tier, tmpDir } from '../lib/hutch';

const dir = tmpDir('hutch-cache-');
const child = path.join(dir, 'child.yaml');
const parent = path.join(dir, 'parent.yaml');
const envFile = path.join(dir, 'vars.env');
fs.writeFileSync(parent, 'extends: default\nenv:\n  FROM_PARENT: p1\n');
fs.writeFileSync(child, 'extends: ./parent.yaml\nenv:\n  GREETING: "hi-${WHO}"\n');
fs.writeFileSync(envFile, 'FROM_FILE=f1\n');

const SHOW = ['/bin/sh', '-c', 'echo "$GREETING $FROM_PARENT $FROM_FILE"; grep -c . /proc/self/uid_map'];

/** One traced run of the child profile: its output and what the cache did (the plan's status). */
async function run(env: Record<string, string | undefined> = {}, extra: string[] = []) {
  const r = expectExit(
    await runHutch(['run', '--network', 'none', '--profile', child, '--env-file', envFile, ...extra, '--', ...SHOW], {
      env: { WHO: 'a', HUTCH_TRACE: '1', ...env },
    }),
  );
  const status = [...r.stderr.matchAll(/^hutch-trace \S+ ms run: plan \(cache: (.*)\)$/gm)].map((m) => m[1]).pop() ?? '';
  const specStatus = /run: spec resolved \(cache: (.*)\)$/m.exec(r.stderr)?.[1] ?? '';
  const [vars, idLines] = r.stdout.trim().split('\n');
  return { vars, idLines: Number(idLines), status, specStatus, r };
}

const isHit = (s: string) => /^hit [0-9a-f]{16}$/.test(s);
const isMiss = (s: string) => /^miss \(.*\) [0-9a-f]{16}$/.test(s);

test('a second run is served from the cache, and behaves the same', async () => {
  const first = await run();
  assert.ok(isMiss(first.status), `first run: ${first.status}\n${describe(first.r)}`);
  const second = await run();
  assert.ok(isHit(second.status), `second run: ${second.status}\n${describe(second.r)}`);
  assert.ok(isHit(second.specStatus), second.specStatus);
  assert.is(second.vars, 'hi-a p1 f1');
  assert.is(second.vars, first.vars);
  assert.is(second.idLines, first.idLines);
});

test('the cache file is private: 0600 in a 0700 directory of the user', () => {
  const d = path.join(process.env.XDG_CACHE_HOME!, 'hutch', 'run');
  assert.is(fs.statSync(d).mode & 0o777, 0o700);
  assert.is(fs.statSync(d).uid, process.getuid!());
  const files = fs.readdirSync(d).filter((f) => f.endsWith('.json'));
  assert.ok(files.length >= 1, 'a cache file');
  for (const f of files) assert.is(fs.statSync(path.join(d, f)).mode & 0o777, 0o600, f);
});

test('an edit of the profile file shows at once, even with its size and mtime kept', async () => {
  await run();
  const st = fs.statSync(child);
  fs.writeFileSync(child, fs.readFileSync(child, 'utf8').replace('hi-', 'yo-'));
  fs.utimesSync(child, st.atime, st.mtime);
  const r = await run();
  assert.ok(isMiss(r.specStatus), r.specStatus);
  assert.is(r.vars, 'yo-a p1 f1');
  assert.ok(isHit((await run()).status));
});

test('an edit of the extends parent shows at once', async () => {
  await run();
  fs.writeFileSync(parent, 'extends: default\nenv:\n  FROM_PARENT: p2\n');
  const r = await run();
  assert.ok(isMiss(r.specStatus), r.specStatus);
  assert.is(r.vars, 'yo-a p2 f1');
});

test('a variable the profile reads shows at once; one it does not read keeps the hit', async () => {
  await run({ UNREAD_BY_PROFILE: '1' });
  const other = await run({ UNREAD_BY_PROFILE: '2' });
  assert.ok(isHit(other.status), `a value nothing reads: ${other.status}`);
  const r = await run({ WHO: 'b' });
  assert.ok(isMiss(r.specStatus), r.specStatus);
  assert.is(r.vars, 'yo-b p2 f1');
});

test('a file the spec reads (--env-file) shows at once', async () => {
  await run();
  fs.writeFileSync(envFile, 'FROM_FILE=f2\n');
  const r = await run();
  assert.ok(isMiss(r.specStatus), r.specStatus);
  assert.is(r.vars, 'yo-a p2 f2');
});

test('the subordinate ids (HUTCH_NO_SUBIDS=1 stands for an /etc/subuid without the user) show at once', async () => {
  const withIds = await run();
  const r = await run({ HUTCH_NO_SUBIDS: '1' });
  assert.ok(isMiss(r.specStatus), r.specStatus);
  assert.is(r.idLines, 1, 'only the caller mapped');
  // hutch-test has ranges in /etc/subuid, root has none: only there does the map differ
  if (tier() === 'user') assert.ok(withIds.idLines > 1, `the user's ranges are mapped: ${withIds.idLines}`);
  const back = await run();
  assert.is(back.idLines, withIds.idLines);
});

test('a user default.yaml that appears is used at once by a profile extending default', async () => {
  const profiles = path.join(process.env.XDG_CONFIG_HOME!, 'hutch', 'profiles');
  fs.mkdirSync(profiles, { recursive: true });
  fs.writeFileSync(path.join(profiles, 'mine.yaml'), 'extends: default\n');
  const argv = ['run', '--network', 'none', '--profile', 'mine', '--', '/bin/sh', '-c', 'pwd'];
  const env = { HUTCH_TRACE: '1' };
  expectExit(await runHutch(argv, { env }));
  const before = expectExit(await runHutch(argv, { env }));
  assert.match(before.stderr, /run: plan \(cache: hit /);
  assert.is(before.stdout.trim(), '/');
  fs.writeFileSync(path.join(profiles, 'default.yaml'), 'extends: default\nworkdir: /tmp\n');
  try {
    const after = expectExit(await runHutch(argv, { env }));
    assert.match(after.stderr, /run: spec resolved \(cache: miss /);
    assert.is(after.stdout.trim(), '/tmp');
  } finally {
    fs.rmSync(path.join(profiles, 'default.yaml'));
    fs.rmSync(path.join(profiles, 'mine.yaml'));
  }
});

test('a built-in profile bypasses the cache (computed faster than looked up), and --dry-run says so', async () => {
  const r = expectExit(await runHutch(['run', '--network', 'none', '--dry-run', '--', '/bin/true']));
  assert.match(r.stdout, /^# cache: off \(a built-in profile: computed faster than looked up\)$/m);
});

test('two sandboxes at once from one entry: each its own name, hostname and state', async () => {
  const argv = ['run', '--network', 'none', '--profile', child, '--env-file', envFile, '--', '/bin/sh', '-c', 'hostname; sleep 1'];
  expectExit(await runHutch(argv, { env: { WHO: 'a', HUTCH_TRACE: '1' } }));
  const [a, b] = await Promise.all([runHutch(argv, { env: { WHO: 'a', HUTCH_TRACE: '1' } }), runHutch(argv, { env: { WHO: 'a', HUTCH_TRACE: '1' } })]);
  expectExit(a);
  expectExit(b);
  assert.match(a.stderr, /run: plan \(cache: hit /);
  assert.match(b.stderr, /run: plan \(cache: hit /);
  assert.match(a.stdout.trim(), /^hutch-[0-9a-f]{6}$/);
  assert.is.not(a.stdout.trim(), b.stdout.trim());
  assert.not.match(a.stdout + b.stdout, /hutch-cache-/);
});

test('--dry-run shows the cache; HUTCH_NO_CACHE=1 and --no-cache bypass it; the plan is the same', async () => {
  const argv = ['run', '--network', 'none', '--name', 'cached-dry', '--profile', child, '--env-file', envFile, '--dry-run', '--', '/bin/true'];
  await runHutch(argv, { env: { WHO: 'a' } });
  const hit = expectExit(await runHutch(argv, { env: { WHO: 'a' } }));
  assert.match(hit.stdout, /^# cache: hit [0-9a-f]{16}$/m);
  const off = expectExit(await runHutch(argv, { env: { WHO: 'a', HUTCH_NO_CACHE: '1' } }));
  assert.match(off.stdout, /^# cache: off \(HUTCH_NO_CACHE=1\)$/m);
  const flag = expectExit(await runHutch(['run', '--no-cache', ...argv.slice(1)], { env: { WHO: 'a' } }));
  assert.match(flag.stdout, /^# cache: off \(--no-cache\)$/m);
  const body = (s: string) => s.replace(/^# cache: .*\n/m, '');
  assert.is(body(hit.stdout), body(off.stdout));
  assert.is(body(flag.stdout), body(off.stdout));
});

test('a cache file that is not the user own private file is ignored, and the run still works', async () => {
  await run();
  const d = path.join(process.env.XDG_CACHE_HOME!, 'hutch', 'run');
  for (const f of fs.readdirSync(d)) fs.writeFileSync(path.join(d, f), '{"format":1,"entries":[');
  const r = await run();
  assert.ok(isMiss(r.specStatus) && /corrupt/.test(r.specStatus), r.specStatus);
  assert.is(r.vars, 'yo-a p2 f2');
  for (const f of fs.readdirSync(d)) fs.chmodSync(path.join(d, f), 0o644);
  const g = await run();
  assert.ok(isMiss(g.specStatus) && /mode 644/.test(g.specStatus), g.specStatus);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test.run();
