// Issue 11, point 7: no setuid or setgid file left behind in a host
// directory the sandbox can write (read-write binds, --keep), for every
// built-in profile, checked from the host while the sandbox runs and after
// it exits. The attacks are test/integration/attacks/setid.py; a profile
// with `security: {allowSetuid: true}` is the control that shows the host
// side would see such a file.

import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describe, expectExit, runHutch, tmpDir } from '../lib/hutch';
import { runAttack } from '../lib/attacks';

/** Files under `dir` with S_ISUID or S_ISGID (directories aside: a setgid directory only passes its group on). */
function setidFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const st = fs.lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.mode & 0o6000) out.push(`${p} ${(st.mode & 0o7777).toString(8)}`);
    }
  };
  walk(dir);
  return out;
}

function dirFor(): string {
  const dir = tmpDir('setid-');
  fs.chmodSync(dir, 0o777); // subordinate ids inside may write too
  return dir;
}

const refusals: Record<string, string> = {
  'chmod 4755': 'EPERM',
  'chmod 2755': 'EPERM',
  'chmod 6755': 'EPERM',
  'chmod 4000': 'EPERM',
  'chmod 2010': 'EPERM',
  fchmod: 'EPERM',
  fchmodat2: 'EPERM',
  'open O_CREAT': 'EPERM',
  'open O_CREAT setgid': 'EPERM',
  creat: 'EPERM',
  mknod: 'EPERM',
  O_TMPFILE: 'EPERM',
  openat2: 'ENOSYS',
  'control chmod 755': 'ok',
  'control open 644': 'ok',
  'control mkdir': 'ok',
};

for (const profile of ['default', 'untrusted', 'dev-server', 'ci']) {
  test(`${profile}: chmod, creation modes, mknod, O_TMPFILE and openat2 make no setuid/setgid file in a read-write bind (--cap-add ALL)`, async () => {
    const dir = dirFor();
    const target = profile === 'dev-server' ? '/work' : '/w';
    const bind = profile === 'dev-server' ? [] : ['-v', `${dir}:/w`];
    // --limits warn: ci is strict, and this host may not enforce its limits
    const run = await runAttack(
      ['run', '--profile', profile, '--limits', 'warn', '--network', 'none', '--cap-add', 'ALL', ...bind],
      'setid.py',
      [target, 'wait'],
      (report, line) => {
        assert.equal(report, refusals, line);
        assert.equal(setidFiles(dir), [], 'while the sandbox runs');
        assert.ok(fs.existsSync(path.join(dir, 'ordinary')), 'the bind is the directory the host looks at');
      },
      { cwd: dir },
    );
    assert.is(run.code, 0, run.err);
    assert.equal(setidFiles(dir), [], 'after the sandbox exited');
  });
}

test('--keep: a setuid file made in the root filesystem is not kept with its bit', async () => {
  // A root of our own (the host's root directories belong to a root that is
  // not mapped inside, so nothing could be created there as the user), with
  // the host's /usr for the tools.
  const root = tmpDir('setid-root-');
  fs.chmodSync(root, 0o755);
  for (const l of ['bin', 'lib', 'lib64', 'sbin']) fs.symlinkSync(`usr/${l}`, path.join(root, l));
  const keep = path.join(tmpDir('setid-keep-'), 'kept');
  const r = await runHutch([
    'run',
    '--network',
    'none',
    '--cap-add',
    'ALL',
    '--rootfs',
    `dir:${root}`,
    '-v',
    '/usr:/usr:ro',
    '--keep',
    keep,
    '--',
    '/bin/sh',
    '-c',
    'cp /bin/true /su-x && chmod u+s /su-x; echo chmod=$?; install -m 6755 /bin/true /su-y; echo install=$?; ls -l /su-x',
  ]);
  expectExit(r);
  assert.match(r.stdout, /chmod=1\ninstall=1\n-rwx/, describe(r));
  assert.equal(setidFiles(path.join(keep, 'upper')), []);
  assert.ok(fs.existsSync(path.join(keep, 'upper', 'su-x')), 'the file itself is kept');
});

test('security.allowSetuid: true opts in (the control: the host does see the bit then); built-in profiles plan no-setid', async () => {
  const dir = dirFor();
  const profile = path.join(tmpDir(), 'setuid.yaml');
  fs.writeFileSync(profile, 'extends: default\nnetwork: none\nsecurity:\n  allowSetuid: true\n');
  const r = await runHutch(['run', '--profile', profile, '-v', `${dir}:/w`, '--', 'sh', '-c', 'touch /w/f && chmod 4755 /w/f && echo made']);
  assert.is(expectExit(r).stdout, 'made\n');
  assert.equal(setidFiles(dir), [`${path.join(dir, 'f')} 4755`]);
  const planOf = async (p: string) => expectExit(await runHutch(['run', '--dry-run', '--profile', p, '--limits', 'warn', '--', 'true'], { cwd: dir })).stdout;
  assert.not.match(await planOf(profile), /^no-setid$/m);
  for (const p of ['default', 'untrusted', 'dev-server', 'ci']) assert.match(await planOf(p), /^no-setid$/m, p);
});

test.run();
