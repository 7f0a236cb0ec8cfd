// Bounded by default, and the user's data left alone:
// - one RAM budget per sandbox: writes to /tmp, /dev/shm, /run, the home
//   tmpfs and the root's throw-away layer together end with ENOSPC at the
//   budget (kernel overlayfs and fuse-overlayfs), untrusted's is 1 GiB;
// - an import expands a gzip bomb no further than its bounds, and leaves
//   nothing behind; prune gives back the disk space it reports (du), and a
//   removal that fails is reported, never swallowed;
// - --keep refuses a directory of the user's that is not empty;
// - dev-server run from $HOME says what it exposes; run from / it refuses.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describe, expectExit, isRoot, runHutch, tmpDir } from '../lib/hutch';

const MiB = 1024 * 1024;
const DRIVERS = ['overlay', 'fuse-overlayfs'];

/**
 * Writes `mb` MiB to each path in turn (dd stops at ENOSPC), then prints
 * "size PATH BYTES" (bytes allocated) for each and the dd errors.
 */
function fillScript(paths: string[], mb: number): string {
  const writes = paths.map((p) => `dd if=/dev/zero of=${p} bs=1M count=${mb} 2>&1 | grep -o 'No space left on device' | head -1`).join('; ');
  // allocated bytes, not st_size: fuse-overlayfs caches writes and reports a file's ENOSPC only at close
  const sizes = paths.map((p) => `sync; echo "size ${p} $(du -B1 ${p} 2>/dev/null | cut -f1)"`).join('; ');
  return `${writes}; ${sizes}`;
}

function sizes(out: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const l of out.split('\n')) {
    const x = /^size (\S+) (\d+)$/.exec(l.trim());
    if (x) m.set(x[1], Number(x[2]));
    else if (/^size (\S+) ?$/.test(l.trim())) m.set(l.trim().split(' ')[1], 0);
  }
  return m;
}

for (const driver of DRIVERS) {
  test(`${driver}: --tmpfs-budget 64m bounds /tmp + /dev/shm + /run + home + the root's upper layer together (ENOSPC)`, async () => {
    const home = os.homedir();
    const places = ['/tmp/a', '/dev/shm/b', '/run/c', `${home}/d`, '/e'];
    const r = expectExit(
      await runHutch([
        'run',
        '--network',
        'none',
        '--storage-driver',
        driver,
        '--tmpfs-budget',
        '64m',
        '--',
        'sh',
        '-c',
        `${fillScript(places, 20)}; df -k /tmp | tail -1`,
      ]),
    );
    const got = sizes(r.stdout);
    assert.is(got.size, places.length, describe(r));
    const total = [...got.values()].reduce((a, b) => a + b, 0);
    assert.match(r.stdout, /No space left on device/, `no ENOSPC after writing ${total} bytes: ${describe(r)}`);
    assert.ok(total <= 64 * MiB, `wrote ${total} bytes (${[...got].join(', ')}) into a 64 MiB budget`);
    assert.ok(total >= 56 * MiB, `only ${total} bytes fit in a 64 MiB budget: ${[...got].join(', ')}`);
    assert.ok(got.get('/tmp/a')! === 20 * MiB && got.get('/dev/shm/b')! === 20 * MiB, 'the first writes fit');
  });
}

test('untrusted: the default budget is 1 GiB in total; /dev/shm is still a world-writable sticky tmpfs', async () => {
  const r = expectExit(
    await runHutch([
      'run',
      '--profile',
      'untrusted',
      '--',
      'sh',
      '-c',
      `stat -c '%a %U' /dev/shm /tmp; stat -f -c %T /dev/shm; ${fillScript(['/tmp/a', '/dev/shm/b', '/c'], 600)}`,
    ]),
  );
  const [shm, tmp, fstype] = r.stdout.split('\n');
  assert.is(shm, '1777 root', describe(r));
  assert.is(tmp, '1777 root');
  assert.is(fstype, 'tmpfs');
  const got = sizes(r.stdout);
  const total = [...got.values()].reduce((a, b) => a + b, 0);
  assert.match(r.stdout, /No space left on device/, describe(r));
  assert.ok(total <= 1024 * MiB && total > 1000 * MiB, `untrusted wrote ${total} bytes (${[...got].join(', ')})`);
  const dry = expectExit(await runHutch(['run', '--profile', 'untrusted', '--dry-run', '--', 'true']));
  assert.match(dry.stdout, /"tmpfsBudget": 1073741824/, 'the spec shows the budget');
  assert.match(dry.stdout, /^# RAM budget 1g /m, 'the plan says what the budget covers');
  assert.match(dry.stdout, /^scratch\t\S+\t1073741824/m, 'the plan mounts one tmpfs of the budget');
  assert.not.match(dry.stdout, /^tmpfs\t\/newroot\/(tmp|dev|run)\b/m, 'no tmpfs of its own outside the budget');
  const flag = expectExit(await runHutch(['run', '--profile', 'untrusted', '--tmpfs-budget', '200m', '--dry-run', '--', 'true']));
  assert.match(flag.stdout, /^scratch\t\S+\t209715200/m, '--tmpfs-budget overrides the profile');
  const bad = await runHutch(['run', '--tmpfs-budget', 'lots', '--', 'true']);
  assert.is(bad.code, 125, describe(bad));
  assert.match(bad.stderr, /--tmpfs-budget: "lots" is not a size/);
});

/** A tar.gz holding one file of `size` zero bytes: about 1 MiB per GiB. */
async function gzipBomb(file: string, size: number): Promise<void> {
  const header = Buffer.alloc(512);
  header.write('zeros', 0);
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  header.write(
    `${Math.floor(Date.now() / 1000)
      .toString(8)
      .padStart(11, '0')}\0`,
    136,
  );
  header.write('        ', 148);
  header.write('0', 156);
  header.write('ustar\x0000', 257);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const chunk = Buffer.alloc(MiB);
  async function* tar() {
    yield header;
    for (let left = size; left > 0; left -= MiB) yield left >= MiB ? chunk : chunk.subarray(0, left);
    yield Buffer.alloc(1024);
  }
  await pipeline(Readable.from(tar()), zlib.createGzip({ level: 9 }), fs.createWriteStream(file));
}

/** Disk usage in bytes (du -s --block-size=1: what the files really take). */
const du = (dir: string) => Number(execFileSync('du', ['-s', '--block-size=1', dir], { encoding: 'utf8' }).split('\t')[0]);

const bomb = path.join(tmpDir('hutch-bomb-'), 'bomb.tar.gz');
const bombReady = gzipBomb(bomb, 1024 * MiB);

test('a gzip bomb (1 MiB -> 1 GiB) is refused by the ratio bound and by --max-size, with nothing left behind', async () => {
  await bombReady;
  assert.ok(fs.statSync(bomb).size < 2 * MiB, 'the bomb is small');
  const data = tmpDir('hutch-bomb-data-');
  const env = { XDG_DATA_HOME: data };
  const store = path.join(data, 'hutch');
  const r = await runHutch(['image', 'import', bomb, '--name', 'bomb', '-q'], { env });
  assert.is(r.code, 125, describe(r));
  assert.match(r.stderr, /expanded to .* \(more than 100:1, --max-ratio\), a decompression bomb/, describe(r));
  assert.match(r.stderr, /hint: .*--max-ratio 1000/);
  const sized = await runHutch(['image', 'import', bomb, '--name', 'bomb', '-q', '--max-ratio', '100000', '--max-size', '256m'], { env });
  assert.is(sized.code, 125, describe(sized));
  assert.match(sized.stderr, /expands to more than 256 MiB \(--max-size\)/, describe(sized));
  for (const d of ['layers', 'images', 'tmp']) assert.equal(fs.readdirSync(path.join(store, d)), [], `${d}/ after the refused imports`);
  assert.ok(du(store) < MiB, `the store holds ${du(store)} bytes after two refused imports`);
  const ls = expectExit(await runHutch(['image', 'ls', '--json'], { env }));
  assert.equal(JSON.parse(ls.stdout), []);
});

test('prune gives back the disk space it reports (du before and after), and rm + prune of the bomb empties the store', async () => {
  await bombReady;
  const data = tmpDir('hutch-prune-data-');
  const env = { XDG_DATA_HOME: data };
  const store = path.join(data, 'hutch');
  expectExit(await runHutch(['image', 'import', bomb, '--name', 'bomb', '-q', '--max-ratio', '100000'], { env, timeoutMs: 300_000 }));
  const full = du(store);
  assert.ok(full > 1000 * MiB, `the imported layer takes ${full} bytes`);
  expectExit(await runHutch(['image', 'rm', 'bomb'], { env }));
  const pr = expectExit(await runHutch(['image', 'prune'], { env }));
  assert.match(pr.stdout, /^removed 1 layers \(1\.0 GiB\)/m, describe(pr));
  const after = du(store);
  assert.ok(after < MiB, `prune said "removed 1 layers (1.0 GiB)" but ${after} bytes are still on disk`);
  assert.equal(fs.readdirSync(path.join(store, 'layers')), []);
  assert.equal(fs.readdirSync(path.join(store, 'tmp')), []);
});

test('a layer prune cannot remove is reported (exit 125), not counted as removed', async () => {
  const data = tmpDir('hutch-prune-err-');
  const env = { XDG_DATA_HOME: data };
  const src = tmpDir('hutch-prune-src-');
  fs.writeFileSync(path.join(src, 'f'), `x ${process.pid}\n`);
  fs.mkdirSync(path.join(src, 'sub'));
  fs.writeFileSync(path.join(src, 'sub', 'g'), 'y\n');
  expectExit(await runHutch(['image', 'import', src, '--name', 'small', '-q'], { env }));
  const [digest] = JSON.parse(expectExit(await runHutch(['image', 'inspect', 'small'], { env })).stdout).layers as string[];
  const hex = digest.replace(/^sha256:/, '');
  const layers = path.join(data, 'hutch', 'layers');
  expectExit(await runHutch(['image', 'rm', 'small'], { env }));
  // Make the removal fail the way it can for each of us: the unprivileged
  // user cannot move a layer out of a read-only layers/ directory; root
  // (whose DAC checks pass) cannot remove, inside its user namespace, files
  // in a directory owned by an id that namespace does not map.
  let undo: () => void;
  if (isRoot()) {
    fs.chownSync(path.join(layers, hex, 'root', 'sub'), 65534, 65534);
    undo = () => execFileSync('chown', ['-R', '0:0', data]); // wherever prune left it
  } else {
    fs.chmodSync(layers, 0o500);
    undo = () => fs.chmodSync(layers, 0o700);
  }
  try {
    const r = await runHutch(['image', 'prune'], { env });
    assert.is(r.code, 125, describe(r));
    assert.match(r.stderr, new RegExp(`could not remove layer ${digest}`), describe(r));
    assert.not.match(r.stdout, new RegExp(`^removed layer ${digest}`, 'm'), 'a layer still on disk is reported removed');
    assert.match(r.stdout, /^removed 0 layers \(0 B\)/m, describe(r));
  } finally {
    undo();
  }
  // Fixed: the next prune removes it (from layers/, or as a leftover in tmp/).
  const again = expectExit(await runHutch(['image', 'prune'], { env }));
  assert.match(again.stdout, /removed (1 layers|0 layers .*, 1 leftovers)/, describe(again));
  assert.not.ok(fs.existsSync(path.join(layers, hex)));
  assert.equal(fs.readdirSync(path.join(data, 'hutch', 'tmp')), []);
});

test('--keep refuses a non-empty directory hutch did not make, and leaves it untouched', async () => {
  const mine = tmpDir('hutch-keep-');
  fs.mkdirSync(path.join(mine, 'work'));
  fs.writeFileSync(path.join(mine, 'work', 'precious'), 'user data\n');
  fs.writeFileSync(path.join(mine, 'notes.txt'), 'more\n');
  const r = await runHutch(['run', '--network', 'none', '--keep', mine, '--', 'sh', '-c', 'echo x > /etc/kept-file']);
  assert.is(r.code, 125, describe(r));
  assert.match(r.stderr, /--keep .*: the directory is not empty and was not made by hutch/, describe(r));
  assert.equal(fs.readdirSync(mine).sort(), ['notes.txt', 'work']);
  assert.is(fs.readFileSync(path.join(mine, 'work', 'precious'), 'utf8'), 'user data\n');
  // an empty directory is adopted and marked; a directory hutch made is reused
  const empty = tmpDir('hutch-keep-empty-');
  expectExit(await runHutch(['run', '--network', 'none', '--keep', empty, '--', 'sh', '-c', 'echo 1 > /etc/kept-file']));
  assert.ok(fs.existsSync(path.join(empty, '.hutch-keep')), 'marked');
  expectExit(await runHutch(['run', '--network', 'none', '--keep', empty, '--', 'sh', '-c', 'cat /etc/kept-file; echo 2 > /etc/kept-2']));
  assert.is(fs.readFileSync(path.join(empty, 'upper', 'etc', 'kept-2'), 'utf8'), '2\n');
  const fresh = path.join(tmpDir(), 'new', 'keep');
  expectExit(await runHutch(['run', '--network', 'none', '--keep', fresh, '--', 'true']));
  assert.ok(fs.existsSync(path.join(fresh, '.hutch-keep')), 'a directory hutch creates is marked');
});

test('dev-server from $HOME warns what it exposes; from / it refuses (125) and runs nothing', async () => {
  const home = os.homedir();
  const r = await runHutch(['run', '--profile', 'dev-server', '--network', 'none', '--', 'true'], { cwd: home });
  expectExit(r);
  assert.match(
    r.stderr,
    new RegExp(`warning: profile dev-server: mounts\\[0\\] mounts your home directory ${home} read-write at /work: everything in it \\(ssh keys, tokens`),
    describe(r),
  );
  const root = await runHutch(['run', '--profile', 'dev-server', '--network', 'none', '--', 'sh', '-c', 'echo ran'], { cwd: '/' });
  assert.is(root.code, 125, describe(root));
  assert.not.match(root.stdout, /ran/);
  assert.match(root.stderr, /\/:\/work would mount the host's whole root filesystem read-write/, describe(root));
  assert.match(root.stderr, /hint: run hutch from your project directory/);
  const parent = await runHutch(['run', '--network', 'none', '-v', `${path.dirname(home)}:/h:ro`, '--', 'true']);
  expectExit(parent);
  assert.match(parent.stderr, new RegExp(`mounts ${path.dirname(home)}, which contains your home directory ${home} read-only at /h`), describe(parent));
  const project = tmpDir('hutch-proj-');
  const quiet = expectExit(await runHutch(['run', '--profile', 'dev-server', '--network', 'none', '--', 'true'], { cwd: project }));
  assert.not.match(quiet.stderr, /home directory/, 'a project directory is mounted without a warning');
});

test.run();
