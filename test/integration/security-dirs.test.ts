// Runtime and state directories (issue 11, point 3): a second local user
// squats the victim's fallback runtime directory /tmp/hutch-run-UID before
// the victim runs hutch, the way an attacker on a shared machine would (no
// $XDG_RUNTIME_DIR: su, cron, ssh without pam_systemd). The victim must get
// 125 naming the directory, and nothing of theirs may be deleted.
//
// Two accounts of their own: `hutch-squat` (the attacker) and `hutch-victim`
// (no XDG_RUNTIME_DIR, everything else in its own home). Not hutch-test:
// its /tmp/hutch-run-UID is in use by the other test files of the user tier.
// Creating accounts and a squat in another user's name needs root, so this
// runs in the root tier and acts as both users through setpriv/runuser.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describe, hutchCmd, isRoot, repoPath, runCmd, tmpDir, type RunResult } from '../lib/hutch';
import { asUserPrefix, cleanUserEnv, lookupUser, type TestUser } from '../lib/testuser.mjs';

const ROOT_REASON = 'needs root to create the squatting user hutch-squat and the victim hutch-victim (runs in the root tier)';

/** A test that needs root; elsewhere skipped with the reason printed. */
function rootTest(name: string, fn: () => Promise<void>): void {
  if (isRoot()) test(name, fn);
  else {
    process.stdout.write(`  skip: ${name}: ${ROOT_REASON}\n`);
    test.skip(name, fn);
  }
}

function ensureUser(name: string): TestUser {
  const have = lookupUser(name);
  if (have) return have;
  const sbin = `${process.env.PATH}:/usr/sbin:/sbin`;
  const r = spawnSync('useradd', ['-m', '-U', '-s', '/bin/sh', '-c', 'hutch security test', name], { encoding: 'utf8', env: { ...process.env, PATH: sbin } });
  if (r.status !== 0) throw new Error(`useradd ${name}: ${r.stderr}`);
  const u = lookupUser(name);
  if (!u) throw new Error(`useradd ${name} succeeded but the account is not visible`);
  return u;
}

const squatter = isRoot() ? ensureUser('hutch-squat') : undefined;
const victim = isRoot() ? ensureUser('hutch-victim') : undefined;
const fallback = victim ? `/tmp/hutch-run-${victim.uid}` : '';

/** Run argv as `u` (setpriv), no XDG_RUNTIME_DIR: the fallback under /tmp is used. */
function as(u: TestUser, argv: string[]): Promise<RunResult> {
  const env = { ...cleanUserEnv(u), PATH: process.env.PATH ?? '/usr/bin:/bin' };
  return runCmd([...asUserPrefix(u), ...argv], { cleanEnv: true, env, cwd: '/', timeoutMs: 120_000 });
}
const victimHutch = (...args: string[]) => as(victim!, [...hutchCmd(), ...args]);
const squat = async (script: string) => {
  const r = await as(squatter!, ['sh', '-c', script]);
  assert.is(r.code, 0, describe(r));
};

/** The victim's precious files: a directory that looks like a stale sandbox (old, no state.json). */
function plantPrecious(): string {
  const home = victim!.home;
  const dir = path.join(home, 'precious');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'hutch', 'box'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'hutch', 'box', 'keep.txt'), 'mine\n');
  fs.mkdirSync(path.join(dir, 'box'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'box', 'keep.txt'), 'mine\n');
  for (const p of [dir, path.join(dir, 'hutch'), path.join(dir, 'hutch', 'box'), path.join(dir, 'box')]) {
    fs.chownSync(p, victim!.uid, victim!.gid);
    const old = new Date(Date.now() - 3600_000);
    fs.utimesSync(p, old, old);
  }
  for (const f of [path.join(dir, 'hutch', 'box', 'keep.txt'), path.join(dir, 'box', 'keep.txt')]) fs.chownSync(f, victim!.uid, victim!.gid);
  return dir;
}

function clearFallback(): void {
  fs.rmSync(fallback, { recursive: true, force: true }); // a symlink squat: only the link goes
}

const COMMANDS: [string, string[]][] = [
  ['ps', ['ps']],
  ['volume ls', ['volume', 'ls']],
  ['image prune', ['image', 'prune']],
  ['run', ['run', '--network', 'none', '--', 'true']],
];

const SQUATS: [string, (precious: string) => string][] = [
  // a directory of the attacker's, open to all, with `hutch` leading into the victim's home
  ['a world-writable directory of hutch-squat with hutch -> the victim home', (p) => `mkdir -m 777 ${fallback} && ln -s ${p} ${fallback}/hutch`],
  // the fallback itself a symlink into the victim's home
  ['a symlink of hutch-squat to a directory of the victim', (p) => `ln -s ${p} ${fallback}`],
  // a private-looking tree that belongs to the attacker
  ['a directory tree owned by hutch-squat', () => `mkdir -m 755 ${fallback} && mkdir -m 755 ${fallback}/hutch && mkdir -m 755 ${fallback}/hutch/box`],
];

for (const [squatName, script] of SQUATS) {
  for (const [cmdName, args] of COMMANDS) {
    rootTest(`squat (${squatName}): the victim's hutch ${cmdName} exits 125 naming it and deletes nothing`, async () => {
      clearFallback();
      const precious = plantPrecious();
      await squat(script(precious));
      try {
        const r = await victimHutch(...args);
        assert.is(r.code, 125, describe(r));
        assert.match(r.stderr, new RegExp(`/tmp/hutch-run-${victim!.uid}|${precious}`), describe(r));
        assert.match(r.stderr, /XDG_RUNTIME_DIR/, 'the fix is named');
        assert.is(fs.readFileSync(path.join(precious, 'box', 'keep.txt'), 'utf8'), 'mine\n');
        assert.is(fs.readFileSync(path.join(precious, 'hutch', 'box', 'keep.txt'), 'utf8'), 'mine\n');
        if (squatName.includes('tree')) assert.ok(fs.existsSync(`${fallback}/hutch/box`), "the squatter's own directory is left alone too");
      } finally {
        clearFallback();
      }
    });
  }
}

rootTest('without a squat the fallback is created 0700 and owned by the victim; a planted symlink entry is unlinked, not followed', async () => {
  clearFallback();
  const precious = plantPrecious();
  const ps = await victimHutch('ps');
  assert.is(ps.code, 0, describe(ps));
  for (const d of [fallback, `${fallback}/hutch`]) {
    const st = fs.lstatSync(d);
    assert.ok(st.isDirectory(), d);
    assert.is(st.uid, victim!.uid, d);
    assert.is(st.mode & 0o777, 0o700, `${d} mode ${(st.mode & 0o777).toString(8)}`);
  }
  // an entry that is a symlink (stale: no state.json) is reclaimed as the link itself
  fs.symlinkSync(path.join(precious, 'box'), `${fallback}/hutch/evil`);
  fs.lchownSync(`${fallback}/hutch/evil`, victim!.uid, victim!.gid);
  const old = new Date(Date.now() - 3600_000);
  fs.lutimesSync(`${fallback}/hutch/evil`, old, old);
  const ps2 = await victimHutch('ps');
  assert.is(ps2.code, 0, describe(ps2));
  assert.is(fs.readFileSync(path.join(precious, 'box', 'keep.txt'), 'utf8'), 'mine\n');
  clearFallback();
});

rootTest('a later change of the mode to group-writable is refused too', async () => {
  clearFallback();
  assert.is((await victimHutch('ps')).code, 0);
  fs.chmodSync(fallback, 0o770);
  const r = await victimHutch('ps');
  assert.is(r.code, 125, describe(r));
  assert.match(r.stderr, /writable by group or others/);
  clearFallback();
});

// The helper's cleanup op (what removes a sandbox's state directory at exit)
// walks the path from / without following a symlink and wants a private parent.
test('the helper cleanup op refuses a path through a symlink and a parent others can write', async () => {
  const base = tmpDir('hutch-cleanup-');
  fs.mkdirSync(path.join(base, 'real', 'victim'), { recursive: true });
  fs.writeFileSync(path.join(base, 'real', 'victim', 'f'), 'keep\n');
  fs.symlinkSync(path.join(base, 'real'), path.join(base, 'link'));
  const plan = (p: string) => `cleanup\t${p}\nexec\t/bin/true\nend\n`;
  const helper = repoPath('build', 'hutch-helper');
  const run = (text: string) => {
    const f = path.join(base, 'plan');
    fs.writeFileSync(f, text);
    return spawnSync('sh', ['-c', `exec "$0" run 3<"$1"`, helper, f], { encoding: 'utf8' });
  };
  const viaLink = run(plan(path.join(base, 'link', 'victim')));
  assert.is(viaLink.status, 0, viaLink.stderr);
  assert.match(viaLink.stderr, /symbolic link/);
  assert.is(fs.readFileSync(path.join(base, 'real', 'victim', 'f'), 'utf8'), 'keep\n');
  fs.chmodSync(path.join(base, 'real'), 0o777);
  const open = run(plan(path.join(base, 'real', 'victim')));
  assert.match(open.stderr, /not private/);
  assert.ok(fs.existsSync(path.join(base, 'real', 'victim', 'f')));
  fs.chmodSync(path.join(base, 'real'), 0o700);
  const ok = run(plan(path.join(base, 'real', 'victim')));
  assert.is(ok.stderr, '');
  assert.not.ok(fs.existsSync(path.join(base, 'real', 'victim')));
});

test.run();
