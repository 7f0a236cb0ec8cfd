// Named volumes: created on first use, outlive their sandbox, shared by
// sandboxes that mount them together, refused removal while in use, and
// round-tripped through export/import with owners and modes intact.

import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describe, expectExit, isRoot, runCmd, runHutch, spawnHutch, tmpDir, waitFor } from '../lib/hutch';

// A store of this file's own: other test files of the tier share XDG_DATA_HOME.
process.env.XDG_DATA_HOME = tmpDir('hutch-data-');

const squashed = isRoot(); // root has no subordinate range here: only uid 0 inside
const sh = (script: string, ...flags: string[]) => runHutch(['run', '--network', 'none', ...flags, '--', 'sh', '-c', script]);

test('-v NAME:/path creates the volume on first use and its data outlives the sandbox', async () => {
  const r1 = expectExit(await sh('echo persisted > /data/f; chmod 640 /data/f', '-v', 'v1:/data'));
  assert.match(r1.stderr, /created volume v1/);
  const ls = JSON.parse(expectExit(await runHutch(['volume', 'ls', '--json'])).stdout);
  assert.equal(
    ls.map((v: { name: string }) => v.name),
    ['v1'],
  );
  const r2 = expectExit(await sh('cat /data/f; stat -c %a /data/f', '-v', 'v1:/data'));
  assert.is(r2.stdout, 'persisted\n640\n');
  assert.not.match(r2.stderr, /created volume/);
  const inspect = JSON.parse(expectExit(await runHutch(['volume', 'inspect', 'v1'])).stdout);
  assert.is(fs.readFileSync(path.join(inspect.mountpoint, 'f'), 'utf8'), 'persisted\n');
});

test('a read-only volume mount refuses writes', async () => {
  const r = await sh('echo x > /data/g', '-v', 'v1:/data:ro');
  assert.is.not(r.code, 0);
  assert.match(r.stderr, /Read-only file system/);
});

test('two running sandboxes share a volume; rm refuses it while in use', async () => {
  const a = spawnHutch([
    'run',
    '--network',
    'none',
    '-v',
    'shared:/s',
    '--',
    'sh',
    '-c',
    'echo from-a > /s/a; while [ ! -e /s/b ]; do sleep 0.05; done; cat /s/b',
  ]);
  let out = '';
  a.stdout!.on('data', (d) => (out += d));
  // listened for from the start: `a` may end before b's run returns
  const closed = new Promise((r) => a.on('close', r));
  try {
    await waitFor(
      async () =>
        JSON.parse(expectExit(await runHutch(['volume', 'ls', '--json'])).stdout).some(
          (v: { name: string; usedBy: string[] }) => v.name === 'shared' && v.usedBy.length,
        ),
      15_000,
      { what: 'volume in use' },
    );
    const rm = await runHutch(['volume', 'rm', 'shared']);
    assert.is(rm.code, 125, describe(rm));
    assert.match(rm.stderr, /in use by running sandbox/);
    const b = expectExit(await sh('while [ ! -e /s/a ]; do sleep 0.05; done; cat /s/a; echo from-b > /s/b', '-v', 'shared:/s'));
    assert.is(b.stdout, 'from-a\n');
    await closed;
    assert.is(out, 'from-b\n');
  } finally {
    a.kill('SIGKILL');
  }
  expectExit(await runHutch(['volume', 'rm', 'shared']));
  assert.is((await runHutch(['volume', 'inspect', 'shared'])).code, 125);
});

test('export and import round-trip a volume with owners and modes', async () => {
  const script = squashed
    ? 'mkdir -m 750 /v/d; echo s > /v/d/secret; chmod 600 /v/d/secret; ln -s d/secret /v/link'
    : 'mkdir -m 750 /v/d; echo s > /v/d/secret; chmod 600 /v/d/secret; chown -R 33:44 /v/d; ln -s d/secret /v/link';
  expectExit(await sh(script, '-v', 'src:/v'));
  const file = path.join(tmpDir(), 'v.tar');
  expectExit(await runHutch(['volume', 'export', 'src', file]));
  const list = expectExit(await runCmd(['tar', '-tvf', file, '--numeric-owner'])).stdout;
  assert.match(list, squashed ? /-rw------- 0\/0 .*\.\/d\/secret/ : /-rw------- 33\/44 .*\.\/d\/secret/, list);
  const imp = expectExit(await runHutch(['volume', 'import', 'dst', file]));
  if (squashed) assert.match(imp.stderr, /squashed/);
  const r = expectExit(await sh('stat -c "%n %u %g %a" /v/d /v/d/secret; readlink /v/link; cat /v/link', '-v', 'dst:/v'));
  const owner = squashed ? '0 0' : '33 44';
  assert.is(r.stdout, `/v/d ${owner} 750\n/v/d/secret ${owner} 600\nd/secret\ns\n`);
});

test('bind mounts of host paths keep working next to volumes', async () => {
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, 'host-file'), 'from host\n');
  const r = expectExit(await sh('cat /h/host-file; echo back > /h/out; ls /v', '-v', `${dir}:/h`, '-v', 'v1:/v'));
  assert.is(r.stdout, 'from host\nf\n');
  assert.is(fs.readFileSync(path.join(dir, 'out'), 'utf8'), 'back\n');
});

test('volume prune removes unused volumes only with --force; bad names are refused', async () => {
  const dry = await runHutch(['volume', 'prune']);
  assert.is(dry.code, 125);
  assert.match(dry.stdout, /would remove/);
  const bad = await runHutch(['volume', 'create', 'bad/name']);
  assert.is(bad.code, 125);
  expectExit(await runHutch(['volume', 'prune', '--force']));
  assert.equal(JSON.parse(expectExit(await runHutch(['volume', 'ls', '--json'])).stdout), []);
});

test.run();
