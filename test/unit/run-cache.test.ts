// The launch cache (src/cache/): a hit gives exactly what computing afresh
// gives; every class of input, changed, is a miss; per-sandbox values are
// never taken from the cache; a cache file that is not the user's own
// private, well-formed file is ignored. On the fake host (facts, HostFs), with
// real profile files and a real cache directory in a temp dir.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheOffReason, launchCache, type LaunchArgs } from '../../src/cache/launch';
import { pruneCacheDir, Recorder, readCacheFile, shortDigest } from '../../src/cache/run-cache';
import { loadProfile, type ProfileFs } from '../../src/profile/index';
import { resolveSpec, type SpecOverrides } from '../../src/spec/resolve';
import { assemblePlan } from '../../src/sandbox/assemble';
import { formatPlan } from '../../src/helper/plan';
import { etcFilesFor } from '../../src/net/etc-files';
import type { HostFacts } from '../../src/host/facts';
import { FAKE_ENV, fakeFs, fakeHostFacts, fakeHostTop, fakeIds, fakePaths, fakeSetup, noOverrides, type FakeFsContent } from './lib/fake-host';

const uid = process.getuid!();
const root = mkdtempSync(join(tmpdir(), 'hutch-run-cache-'));
chmodSync(root, 0o700);
let n = 0;
/** A profile file that is the built-in default: the cache is for chains with a file (built-in ones bypass it). */
const PLAIN = join(root, 'plain.yaml');
writeFileSync(PLAIN, 'extends: default\n');

/** A fresh world: profile files, a cache dir, facts of the fake host (the real uid: the cache checks owners). */
function world(files: FakeFsContent = {}) {
  const dir = join(root, `w${n++}`);
  mkdirSync(join(dir, 'profiles'), { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, 'profiles', 'parent.yaml'), 'extends: default\nenv:\n  FROM_PARENT: "1"\n');
  writeFileSync(join(dir, 'profiles', 'child.yaml'), 'extends: ./parent.yaml\nenv:\n  GREETING: "hello ${WHO}"\n');
  const paths = fakePaths({ cacheDir: join(dir, 'cache'), stateDir: '/run/user/1000/hutch' });
  const facts = fakeHostFacts({
    ids: fakeIds({ uid }),
    paths,
    env: { ...FAKE_ENV, WHO: 'world', XDG_CONFIG_HOME: join(dir, 'config') },
    fs: fakeFs(files),
  });
  return { dir, facts, child: join(dir, 'profiles', 'child.yaml'), parent: join(dir, 'profiles', 'parent.yaml') };
}

const args = (o: Partial<SpecOverrides> = {}, profile = PLAIN): LaunchArgs => ({
  o: noOverrides({ command: ['/bin/true'], ...o }),
  profile,
  noCache: false,
  detach: false,
  restart: { kind: 'no' },
  watch: [],
});

/** Without the cache: what `hutch run` computes for sandbox `name`. */
async function fresh(facts: HostFacts, a: LaunchArgs, name: string): Promise<string> {
  const profile = await loadProfile(a.profile, { cwd: facts.cwd, env: facts.env });
  const spec = resolveSpec(profile, { ...a.o, name }, facts);
  return formatPlan(assemblePlan(spec, facts, fakeSetup(name, { etcFiles: etcFilesFor(spec), hostnameFile: true }, facts.paths)));
}

/** As hutch run does it (src/cli/run.ts): spec, then the plan for the sandbox's state dir; the status after each. */
async function launch(facts: HostFacts, a: LaunchArgs, name = 'sb-1') {
  const cache = launchCache(a, false, facts)!;
  const spec = await cache.spec(
    name,
    async (f, pfs: ProfileFs, asName) =>
      resolveSpec(
        await loadProfile(a.profile, { cwd: f.cwd, env: f.env, fs: pfs }),
        { ...a.o, name: asName },
        { env: f.env, cwd: f.cwd, arch: f.arch, fs: f.fs, totalMemory: f.totalMemory },
      ),
    () => ({ values: { setup: [], rootfs: { kind: 'host' } } }) as never,
  );
  const specStatus = cache.status();
  const plan = cache.plan(name, `${facts.paths.stateDir}/${name}`, (s, dir) =>
    fakeSetup('x', { etcFiles: etcFilesFor(s), hostnameFile: true, sandboxDir: dir }),
  )!;
  return { spec, specStatus, status: cache.status(), plan: formatPlan(plan) };
}

const hit = (s: string) => s.startsWith('hit ');
const miss = (s: string) => s.startsWith('miss ');

test('a hit gives the plan computing afresh gives, for each sandbox its own name and state directory', async () => {
  const w = world();
  const a = args({ volumes: ['/srv:/srv'] }, w.child);
  const first = await launch(w.facts, a, 'sb-1');
  assert.ok(miss(first.specStatus), first.specStatus);
  assert.ok(miss(first.status), first.status);
  const second = await launch(w.facts, a, 'sb-2');
  assert.ok(hit(second.specStatus), second.specStatus);
  assert.ok(hit(second.status), second.status);
  assert.is(first.plan, await fresh(w.facts, a, 'sb-1'));
  assert.is(second.plan, await fresh(w.facts, a, 'sb-2'));
  assert.is(second.spec.name, 'sb-2');
  assert.is(second.spec.hostname, 'sb-2');
  assert.ok(second.plan.includes('/run/user/1000/hutch/sb-2'));
  assert.not.ok(second.plan.includes('sb-1'), 'nothing of the first sandbox');
  assert.not.ok(/hutch-cache-/.test(second.plan + JSON.stringify(second.spec)), 'no placeholder left');
  // the key of a hit is the key of the miss that stored it
  assert.is(second.status.split(' ')[1], first.status.split(' ').pop());
});

test('a given --name is filled in like a made one: the cached entry serves another name', async () => {
  const w = world();
  await launch(w.facts, args({ name: 'alpha' }), 'alpha');
  const b = await launch(w.facts, args({ name: 'beta' }), 'beta');
  assert.ok(hit(b.status), b.status);
  assert.is(b.plan, await fresh(w.facts, args(), 'beta'));
});

test('miss: the profile file edited, with the same size and mtime', async () => {
  const w = world();
  const a = args({}, w.child);
  await launch(w.facts, a);
  const st = statSync(w.child);
  writeFileSync(w.child, readFileSync(w.child, 'utf8').replace('hello', 'howdy'));
  utimesSync(w.child, st.atime, st.mtime);
  const r = await launch(w.facts, a);
  assert.ok(miss(r.specStatus) && r.specStatus.includes('profile.readText'), r.specStatus);
  assert.is(r.spec.env.GREETING, 'howdy world');
  assert.ok(hit((await launch(w.facts, a)).status));
});

test('miss: the extends parent edited', async () => {
  const w = world();
  const a = args({}, w.child);
  await launch(w.facts, a);
  writeFileSync(w.parent, 'extends: default\nenv:\n  FROM_PARENT: "2"\n');
  const r = await launch(w.facts, a);
  assert.ok(miss(r.specStatus), r.specStatus);
  assert.is(r.spec.env.FROM_PARENT, '2');
});

test('miss: an environment variable the profile reads; hit: one it does not read', async () => {
  const w = world();
  const a = args({}, w.child);
  await launch(w.facts, a);
  const other = { ...w.facts, env: { ...w.facts.env, UNRELATED_VAR: 'x' } } as HostFacts;
  // a new name changes what `passEnv: LC_*` could match: the names are an input, not the values of others
  const changedValue = { ...w.facts, env: { ...w.facts.env, EDITOR: 'nano' } } as HostFacts;
  assert.ok(hit((await launch(changedValue, a)).status), 'EDITOR is not read');
  const r = await launch({ ...w.facts, env: { ...w.facts.env, WHO: 'you' } } as HostFacts, a);
  assert.ok(miss(r.specStatus) && r.specStatus.includes('WHO'), r.specStatus);
  assert.is(r.spec.env.GREETING, 'hello you');
  const added = await launch(other, a);
  assert.ok(miss(added.specStatus), added.specStatus);
  const lc = await launch({ ...w.facts, env: { ...w.facts.env, LC_TIME: 'C' } } as HostFacts, a);
  assert.ok(miss(lc.specStatus), lc.specStatus);
  assert.is(lc.spec.env.LC_TIME, 'C');
});

test('miss: a user profile appears that shadows the built-in a profile extends', async () => {
  const w = world();
  const dir = join(w.facts.env.XDG_CONFIG_HOME!, 'hutch', 'profiles');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'mine.yaml'), 'extends: default\nenv:\n  MINE: "1"\n');
  await launch(w.facts, args({}, 'mine'));
  assert.ok(hit((await launch(w.facts, args({}, 'mine'))).status));
  writeFileSync(join(dir, 'default.yaml'), 'extends: default\nworkdir: /srv\n');
  const r = await launch(w.facts, args({}, 'mine'));
  assert.ok(miss(r.specStatus) && r.specStatus.includes('profile.exists'), r.specStatus);
  assert.is(r.spec.workdir, '/srv');
  assert.is(r.spec.env.MINE, '1');
});

test('a chain of built-ins only (a name no user profile has) bypasses the cache: it is computed faster', () => {
  const w = world();
  assert.is(launchCache(args({}, 'default'), false, w.facts), undefined);
  assert.is(launchCache(args({}, 'builtin:ci'), false, w.facts), undefined);
  assert.is(cacheOffReason(args({}, 'default'), false, w.facts.env), 'a built-in profile: computed faster than looked up');
  const dir = join(w.facts.env.XDG_CONFIG_HOME!, 'hutch', 'profiles');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'default.yaml'), 'extends: default\n');
  assert.ok(launchCache(args({}, 'default'), false, w.facts), 'a user default.yaml: a file in the chain');
});

test('miss: the flags', async () => {
  const w = world();
  await launch(w.facts, args());
  const r = await launch(w.facts, args({ env: ['A=1'] }));
  assert.ok(miss(r.specStatus), r.specStatus);
  assert.is(r.spec.env.A, '1');
});

test('miss: host facts (subordinate ids, helper, cwd, the host /, homes, a file the spec reads)', async () => {
  const w = world({ files: { '/tmp/e.env': 'X=1\n' } });
  const a = args({ envFiles: ['/tmp/e.env'] });
  await launch(w.facts, a);
  const variants: [string, HostFacts][] = [
    ['subuid', { ...w.facts, ids: fakeIds({ uid, uidMap: [{ inside: 0, outside: uid, count: 1 }] }) } as HostFacts],
    ['helper', { ...w.facts, helper: '/other/hutch-helper' } as HostFacts],
    ['cwd', { ...w.facts, cwd: '/srv' } as HostFacts],
    ['env file', { ...w.facts, fs: fakeFs({ files: { '/tmp/e.env': 'X=2\n' } }) } as HostFacts],
  ];
  for (const [what, f] of variants) {
    const r = await launch(f, a);
    assert.ok(miss(r.specStatus), `${what}: ${r.specStatus}`);
    assert.is(r.plan, await fresh(f, a, 'sb-1'), what);
  }
  // the spec is the same, the plan's inputs are not
  const top = fakeHostTop().filter((e) => e.name !== 'srv');
  for (const [what, f] of [
    ['hostTop', { ...w.facts, hostTop: top }],
    ['homes', { ...w.facts, homes: { own: ['/home/u'], all: ['/home', '/home/u'] } }],
  ] as [string, HostFacts][]) {
    await launch(w.facts, a); // back to the stored state
    const r = await launch(f, a);
    assert.ok(hit(r.specStatus), `${what}: the spec does not read it`);
    assert.ok(miss(r.status) && r.status.includes(`facts.${what}`), `${what}: ${r.status}`);
    assert.is(r.plan, await fresh(f, a, 'sb-1'), what);
  }
});

test('the recorder: reads through facts, env and the profile loader are noted with their answers', () => {
  const rec = new Recorder();
  const f = rec.facts(fakeHostFacts());
  f.fs.isDir('/srv');
  void f.env.HOME;
  void Object.keys(f.env);
  void f.hostTop;
  rec.profileFs().exists('/nonexistent/x.yaml');
  assert.equal(
    rec.reads.map((r) => r.q),
    ['fs.isDir', 'env', 'env*', 'facts.hostTop', 'profile.exists'],
  );
  assert.throws(() => {
    (f.env as Record<string, string>).HOME = 'x';
  });
});

/** The one cache file of a world. */
function cacheFile(w: ReturnType<typeof world>): string {
  const d = join(w.facts.paths.cacheDir, 'run');
  const names = readdirSync(d).filter((x) => x.endsWith('.json'));
  assert.is(names.length, 1);
  return join(d, names[0]);
}

test('the cache file: 0600 in a 0700 directory of the user', async () => {
  const w = world();
  await launch(w.facts, args());
  const f = cacheFile(w);
  assert.is(statSync(f).mode & 0o777, 0o600);
  assert.is(statSync(join(w.facts.paths.cacheDir, 'run')).mode & 0o777, 0o700);
  assert.is(statSync(f).uid, uid);
});

test('ignored: a corrupt, truncated, group-readable, symlinked or foreign cache file', async () => {
  const w = world();
  const a = args();
  const good = await launch(w.facts, a);
  const f = cacheFile(w);
  const text = readFileSync(f, 'utf8');
  const again = async (why: RegExp) => {
    const r = await launch(w.facts, a);
    assert.ok(miss(r.specStatus) && why.test(r.specStatus), r.specStatus);
    assert.is(r.plan, good.plan);
  };
  writeFileSync(f, 'not json');
  await again(/corrupt/);
  for (const cut of [1, 100, Math.floor(text.length / 2), text.length - 1]) {
    writeFileSync(f, text.slice(0, cut), { mode: 0o600 });
    await again(/corrupt/);
  }
  // a digest that matches, a shape that does not
  const body = JSON.stringify({ format: 1, entries: [{ ...JSON.parse(text.slice(17)).entries[0], spec: '{"name":' }] });
  writeFileSync(f, `${shortDigest(body)}\n${body}`);
  await again(/corrupt/);
  writeFileSync(f, text);
  chmodSync(f, 0o640);
  await again(/mode 640/);
  rmSync(f);
  const elsewhere = join(w.dir, 'planted.json');
  writeFileSync(elsewhere, text, { mode: 0o600 });
  symlinkSync(elsewhere, f);
  await again(/symlink/);
  rmSync(f);
  if (uid === 0) {
    writeFileSync(f, text, { mode: 0o600 });
    chownSync(f, 4242, 4242);
    await again(/uid 4242/);
  }
});

test('fuzz: any mutation of a cache file is a miss, never a crash nor a changed plan', async () => {
  const w = world();
  const a = args({ volumes: ['/srv:/srv'] });
  const good = await launch(w.facts, a);
  const f = cacheFile(w);
  const text = readFileSync(f, 'utf8');
  let seed = 12345;
  const rand = (k: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % k;
  };
  const alphabet = '{}[]",:0123456789abcdefghijklmnopqrstuvwxyz\\/ \n\u0000';
  for (let i = 0; i < 150; i++) {
    const chars = [...text];
    for (let m = 1 + rand(4); m > 0; m--) {
      const at = rand(chars.length);
      const kind = rand(3);
      if (kind === 0) chars[at] = alphabet[rand(alphabet.length)];
      else if (kind === 1) chars.splice(at, 1 + rand(20));
      else chars.splice(at, 0, alphabet[rand(alphabet.length)]);
    }
    if (chars.join('') === text) continue; // a character replaced by itself
    writeFileSync(f, chars.join(''), { mode: 0o600 });
    chmodSync(f, 0o600);
    const r = await launch(w.facts, a);
    // the digest line: every change is a miss, and the plan is computed afresh
    assert.ok(miss(r.specStatus), `mutation ${i}: ${r.specStatus}`);
    assert.is(r.plan, good.plan, `mutation ${i}`);
  }
});

test('HUTCH_NO_CACHE=1 and --no-cache: no cache at all', () => {
  const w = world();
  assert.is(launchCache({ ...args(), noCache: true }, false, w.facts), undefined);
  assert.is(launchCache(args(), false, { ...w.facts, env: { ...w.facts.env, HUTCH_NO_CACHE: '1' } } as HostFacts), undefined);
  assert.is(launchCache({ ...args(), detach: true }, false, w.facts), undefined);
  assert.is(launchCache(args({ rootfs: 'image:debian' }), false, w.facts), undefined);
});

test('readCacheFile: a missing file is a miss with a reason', () => {
  assert.is(readCacheFile(join(root, 'nope.json'), uid).why, 'no entry');
});

test('the cache directory is bounded: past 64 files the least recently written go', () => {
  const d = join(root, 'prune');
  mkdirSync(d, { mode: 0o700 });
  for (let i = 0; i < 70; i++) {
    writeFileSync(join(d, `${i}.json`), '');
    utimesSync(join(d, `${i}.json`), 1000 + i, 1000 + i);
  }
  pruneCacheDir(d, '0.json');
  const left = readdirSync(d);
  assert.is(left.length, 49, 'three quarters kept, and the file being written');
  assert.ok(left.includes('0.json'), 'the one being written stays');
  assert.not.ok(left.includes('1.json'), 'the oldest go');
  assert.ok(left.includes('69.json'));
});

test.after(() => rmSync(root, { recursive: true, force: true }));

test.run();
