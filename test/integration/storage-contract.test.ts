// The storage contract: every storage driver (src/rootfs/: kernel overlay,
// fuse-overlayfs) passes the same assertions, run for real against each
// driver the host offers (forced with --storage-driver). A driver this host
// cannot run is skipped with the reason hutch gives, printed.
//
// The contract, for host, dir: and image roots:
//  - writes, deletes and renames of directories land only in the upper
//    layer: the lower layer never changes, and with --keep the upper layer
//    holds exactly the changes (new files, whiteouts for deletes) and a second
//    sandbox on the same --keep sees them again;
//  - without --keep nothing is left behind (no state dir, no mount, no
//    process), also when hutch is SIGKILLed;
//  - --read-only refuses writes to the root while tmpfs, binds and volumes on
//    top stay writable; volumes and binds are not part of the upper layer;
//  - an image root shows its layers with their whiteouts, and nothing a
//    sandbox writes reaches the stored layers or another sandbox.
//
// What differs between drivers is declared by the driver
// (StorageDriver.usesDaemon: fuse-overlayfs runs a daemon in the monitor),
// and read from src/rootfs/ here, not from the driver's name.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describe, descendants, expectExit, hostPids, runHutch, spawnHutch, testIf, tmpDir, waitFor, type RunResult } from '../lib/hutch';
import { fixture, fixturesMissing, importImage } from '../fixtures/debian';
import { STORAGE_DRIVERS } from '../../src/profile/schema';
import { overlayDriver } from '../../src/rootfs/overlay';
import { fuseOverlayfsDriver } from '../../src/rootfs/fuse-overlayfs';
import type { StorageDriver, StorageDriverName } from '../../src/rootfs/types';

// A store of this file's own: other test files of the tier share XDG_DATA_HOME.
process.env.XDG_DATA_HOME = tmpDir('hutch-data-');

/** The drivers as src/rootfs declares them (the binary path is not used here). */
const DECLARED: Record<StorageDriverName, StorageDriver> = {
  overlay: overlayDriver,
  'fuse-overlayfs': fuseOverlayfsDriver('fuse-overlayfs'),
};
const DRIVERS = STORAGE_DRIVERS.filter((d): d is StorageDriverName => d !== 'auto');

const mark = () => `m${process.pid}${Math.random().toString(16).slice(2, 8)}`;
const runtimeDir = () => process.env.XDG_RUNTIME_DIR || `/tmp/hutch-run-${process.getuid!()}`;
const stateDir = (name: string) => path.join(runtimeDir(), 'hutch', name);

/**
 * Why `driver` cannot run here, or undefined. Only hutch's own refusal of
 * the driver (exit 125 naming --storage-driver) is a reason to skip; any
 * other failure runs the tests, which then fail and show it.
 */
async function unavailable(driver: StorageDriverName): Promise<string | undefined> {
  const r = await runHutch(['run', '--network', 'none', '--storage-driver', driver, '--', 'true']);
  if (r.code === 125 && r.stderr.includes(`--storage-driver ${driver}:`)) return r.stderr.trim().split('\n')[0];
  return undefined;
}

const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((b) => fs.existsSync(b));
const APPLETS = ['sh', 'ls', 'cat', 'echo', 'mv', 'rm', 'mkdir', 'touch', 'test', 'stat', 'sort', 'tr', 'find', 'true', 'sleep', 'wc', 'head'];

/**
 * A tiny root filesystem of the tier's user: a static busybox and some data
 * (data/keep, data/gone, data/dir/{a,b}). Its contents are the lower layer
 * of a `dir:` root, and entirely the test's.
 */
function busyboxRoot(): string {
  const root = path.join(tmpDir('hutch-root-'), 'root');
  for (const d of ['bin', 'etc', 'tmp', 'data/dir/sub']) fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.copyFileSync(BUSYBOX!, path.join(root, 'bin', 'busybox'));
  fs.chmodSync(path.join(root, 'bin', 'busybox'), 0o755);
  for (const a of APPLETS) fs.symlinkSync('busybox', path.join(root, 'bin', a));
  fs.writeFileSync(path.join(root, 'data', 'keep'), 'lower keep\n');
  fs.writeFileSync(path.join(root, 'data', 'gone'), 'lower gone\n');
  fs.writeFileSync(path.join(root, 'data', 'dir', 'a'), 'a\n');
  fs.writeFileSync(path.join(root, 'data', 'dir', 'sub', 'b'), 'b\n');
  return root;
}

/** Every path under `dir` with its type and content (files) or target (links). */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const n of fs.readdirSync(path.join(dir, rel)).sort()) {
      const p = path.join(rel, n);
      const st = fs.lstatSync(path.join(dir, p));
      if (st.isDirectory()) {
        out.push(`${p}/`);
        walk(p);
      } else if (st.isSymbolicLink()) out.push(`${p} -> ${fs.readlinkSync(path.join(dir, p))}`);
      else if (!st.isFile()) out.push(`${p} special ${st.mode.toString(8)} ${st.rdev}`);
      else out.push(`${p} ${st.size} ${p.startsWith('bin/') ? '' : fs.readFileSync(path.join(dir, p), 'utf8')}`);
    }
  };
  walk('');
  return out;
}

/** Names, sizes and modification times under `dir`; what this user cannot read is listed as such (image layers hold other ids' files). */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    let names: string[];
    try {
      names = fs.readdirSync(path.join(dir, rel)).sort();
    } catch (e) {
      out.push(`${rel}/ ${(e as NodeJS.ErrnoException).code}`);
      return;
    }
    for (const n of names) {
      const p = path.join(rel, n);
      const st = fs.lstatSync(path.join(dir, p));
      out.push(`${p} ${st.mode.toString(8)} ${st.size} ${st.mtimeMs}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk('');
  return out;
}

/** Entries of an upper layer that are content, not the drivers' whiteout or opaque markers (`.wh.*`). */
const contentOf = (upper: string[]) => upper.filter((p) => !path.basename(p.split(' ')[0]).startsWith('.wh.'));

/** An overlay whiteout for `name` in the upper directory `dir`: a 0/0 char device, or fuse-overlayfs's `.wh.` file. */
function isWhiteout(dir: string, name: string): boolean {
  try {
    const st = fs.lstatSync(path.join(dir, name));
    if (st.isCharacterDevice() && st.rdev === 0) return true;
  } catch {
    /* not there: maybe the .wh. form */
  }
  return fs.existsSync(path.join(dir, `.wh.${name}`));
}

/** The caller's subordinate uid range (/etc/subuid), if any. */
function subordinateRange(): { start: number; count: number } | undefined {
  const name = os.userInfo().username;
  for (const line of fs.readFileSync('/etc/subuid', 'utf8').split('\n')) {
    const [who, start, count] = line.split(':');
    if (who === name || who === String(process.getuid!())) return { start: Number(start), count: Number(count) };
  }
  return undefined;
}

const noMountNamed = (name: string) => !fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(name);

// The image for the image-root part: the umoci OCI layout of the fixtures (2 layers, whiteouts).
let imported: Promise<RunResult> | undefined;
const ociImage = () => (imported ??= importImage(fixture('oci'), 'contract-oci'));

for (const driver of DRIVERS) {
  const declared = DECLARED[driver];
  const why = await unavailable(driver);
  const t = (name: string, fn: () => Promise<void>, skipBecause: string | undefined = why) => testIf(test, !skipBecause, `${driver}: ${name}`, fn, skipBecause);
  const noBusybox = why ?? (BUSYBOX ? undefined : 'no static busybox on this host for a dir: root (apt install busybox-static)');
  const noImages = why ?? fixturesMissing();

  const run = (args: string[], script: string, opts: { cwd?: string } = {}) =>
    runHutch(['run', '--network', 'none', '--storage-driver', driver, ...args, '--', 'sh', '-c', script], opts);

  // ------------------------------------------------------------ host root

  t('host root: writes, deletes and new top-level directories stay in the sandbox', async () => {
    const m = mark();
    const r = expectExit(
      await run(
        [],
        // (not /etc/hostname or /etc/hosts: hutch binds its own files there)
        `echo x > /etc/${m} && echo y > /usr/${m} && mkdir /${m} && echo z > /${m}/f && rm /etc/passwd && ` +
          `test ! -e /etc/passwd && echo gone; cat /etc/${m} /usr/${m} /${m}/f; ls /usr/bin/env`,
      ),
    );
    assert.is(r.stdout, 'gone\nx\ny\nz\n/usr/bin/env\n', describe(r));
    for (const p of [`/etc/${m}`, `/usr/${m}`, `/${m}`]) assert.not.ok(fs.existsSync(p), `${p} reached the host`);
    assert.ok(fs.existsSync('/etc/passwd'), 'the host file is untouched');
    const again = expectExit(await run([], `test -e /etc/${m} && echo leaked; test -e /etc/passwd && echo clean`));
    assert.is(again.stdout, 'clean\n', "a second sandbox sees none of the first one's changes");
  });

  // Who owns a file of the host's root once root inside changed it. The
  // sandbox maps the caller to 0 and, with subordinate ids, 1..N to them; the
  // host's uid 0 is in that map only when the caller is root. Outside the
  // map a file shows as the overflow id (nobody, 65534) and:
  //  - kernel overlayfs refuses the change (no capability over an unmapped inode);
  //  - fuse-overlayfs copies it up keeping the owner it showed: nobody before
  //    and after, and in the upper layer the file is really owned by the
  //    subordinate id that 65534 inside maps to (its chown needs no more than
  //    that id being mapped). Not the caller: overlay semantics keep the owner,
  //    and the kernel gives the daemon no other name for host root than 65534.
  //    With only uid 0 mapped (no subordinate ids) squash_to_root shows every
  //    file as root's instead, before and after.
  t("host root: a file of the host's root changed inside: its owner before and after the copy-up", async () => {
    const file = '/etc/passwd';
    assert.is(fs.statSync(file).uid, 0, `${file} belongs to the host's root`);
    const keep = path.join(tmpDir(), 'keep');
    const r = await run(
      ['--keep', keep],
      `stat -c %u:%g ${file}; echo '#hutch-was-here' >> ${file} 2>/dev/null && echo written; stat -c %u:%g ${file}; tail -n 1 ${file}`,
    );
    const [before, ...rest] = r.stdout.trim().split('\n');
    const overflow = fs.readFileSync('/proc/sys/kernel/overflowuid', 'utf8').trim();
    const range = subordinateRange();
    const hostRootMapped = process.getuid!() === 0;
    const squashed = declared.usesDaemon && !range; // fuse-overlayfs with one id mapped
    const shown = hostRootMapped || squashed ? '0:0' : `${overflow}:${overflow}`;
    assert.is(before, shown, `before: ${describe(r)}`);
    if (!hostRootMapped && !declared.usesDaemon) {
      // kernel overlayfs: read-only for root inside (src/rootfs/ownership.ts chooses fuse-overlayfs when writes are asked for)
      assert.equal(rest, [shown, fs.readFileSync(file, 'utf8').trimEnd().split('\n').at(-1)], `refused: ${describe(r)}`);
      return;
    }
    assert.equal(rest, ['written', shown, '#hutch-was-here'], `after: ${describe(r)}`);
    assert.not.match(fs.readFileSync(file, 'utf8'), /hutch-was-here/, 'the host file is untouched');
    const copy = fs.statSync(path.join(keep, 'upper', 'etc', 'passwd'));
    if (hostRootMapped) assert.is(copy.uid, 0);
    else if (range && Number(overflow) < range.count + 1)
      assert.is(copy.uid, range.start + Number(overflow) - 1, 'the copy belongs to the subordinate id of nobody inside');
    else assert.is(copy.uid, process.getuid!(), 'the copy belongs to the caller');
  });

  t('host root: the home directory is hidden', async () => {
    const r = expectExit(await run([], `ls -A ${os.homedir()} | wc -l`));
    assert.is(r.stdout.trim(), '0', describe(r));
  });

  t('host root: --keep keeps the upper layer, and a second sandbox on it sees the changes', async () => {
    const keep = path.join(tmpDir(), 'keep');
    const m = mark();
    expectExit(await run(['--keep', keep], `echo kept > /etc/${m}`));
    assert.is(fs.readFileSync(path.join(keep, 'upper', 'etc', m), 'utf8'), 'kept\n');
    assert.not.ok(fs.existsSync(`/etc/${m}`));
    const again = expectExit(await run(['--keep', keep], `cat /etc/${m}`));
    assert.is(again.stdout, 'kept\n');
  });

  t('host root: --read-only refuses writes to the root; /tmp, a bind, a bind under /usr and the home tmpfs stay writable', async () => {
    const dir = tmpDir();
    const sub = tmpDir();
    const home = os.homedir();
    const r = await run(
      // /usr/local/share exists on the host: an unprivileged user cannot create
      // mount points in directories that belong to the host's root.
      ['--read-only', '-v', `${dir}:/data`, '-v', `${sub}:/usr/local/share`],
      'touch /etc/x 2>/dev/null && echo ETC; touch /x 2>/dev/null && echo ROOT; touch /usr/x 2>/dev/null && echo USR; ' +
        `touch /tmp/x && echo TMP; touch /data/x && echo DATA; touch /usr/local/share/a && echo USRBIND; touch ${home}/f && echo HOME`,
    );
    assert.is(r.stdout.trim().split('\n').join(' '), 'TMP DATA USRBIND HOME', describe(r));
    assert.equal(fs.readdirSync(dir), ['x']);
    assert.equal(fs.readdirSync(sub), ['a']);
  });

  // ------------------------------------------------------------ dir: root

  t(
    'dir: root: writes, deletes and a directory rename land only in the upper layer; --keep brings them back',
    async () => {
      const root = busyboxRoot();
      const lower = snapshot(root);
      const keep = path.join(tmpDir(), 'keep');
      const script =
        'echo new > /data/new && echo changed > /data/keep && rm /data/gone && mv /data/dir /data/moved && mkdir /data/made && ' +
        'echo n > /data/made/f && rm -r /data/moved/sub && mkdir /top && echo t > /top/f';
      expectExit(await run(['--rootfs', `dir:${root}`, '--keep', keep], script));
      const view = 'cd /data && find . | sort | tr "\\n" " "; echo; cat keep new moved/a made/f /top/f';
      const expected = '. ./keep ./made ./made/f ./moved ./moved/a ./new \nchanged\nnew\na\nn\nt\n';
      // The lower layer is exactly as it was: no file, whiteout or mount point added.
      assert.equal(snapshot(root), lower, 'the lower layer changed');
      // The upper layer holds the changes: new and changed files, whiteouts for what was removed.
      const up = path.join(keep, 'upper');
      assert.is(fs.readFileSync(path.join(up, 'data', 'new'), 'utf8'), 'new\n');
      assert.is(fs.readFileSync(path.join(up, 'data', 'keep'), 'utf8'), 'changed\n');
      assert.is(fs.readFileSync(path.join(up, 'data', 'made', 'f'), 'utf8'), 'n\n');
      assert.is(fs.readFileSync(path.join(up, 'top', 'f'), 'utf8'), 't\n');
      assert.ok(isWhiteout(path.join(up, 'data'), 'gone'), `no whiteout for data/gone in ${up}: ${fs.readdirSync(path.join(up, 'data'))}`);
      assert.ok(isWhiteout(path.join(up, 'data'), 'dir'), `no whiteout for the renamed data/dir in ${up}: ${fs.readdirSync(path.join(up, 'data'))}`);
      assert.ok(fs.statSync(path.join(up, 'data', 'moved')).isDirectory(), 'the renamed directory is in the upper layer');
      // A second sandbox on the kept upper layer sees the same tree; one without it sees the lower layer.
      const again = expectExit(await run(['--rootfs', `dir:${root}`, '--keep', keep], view));
      assert.is(again.stdout, expected, describe(again));
      const fresh = expectExit(await run(['--rootfs', `dir:${root}`], 'cd /data && find . | sort | tr "\\n" " "; cat gone'));
      assert.is(fresh.stdout, '. ./dir ./dir/a ./dir/sub ./dir/sub/b ./gone ./keep lower gone\n', describe(fresh));
    },
    noBusybox,
  );

  t(
    'dir: root without --keep: the changes are gone with the sandbox, nothing is left behind',
    async () => {
      const root = busyboxRoot();
      const lower = snapshot(root);
      const name = `sc${process.pid}${driver.length}`;
      const r = expectExit(await run(['--rootfs', `dir:${root}`, '--name', name], 'echo x > /data/keep; rm /data/gone; mv /data/dir /data/d2; cat /data/keep'));
      assert.is(r.stdout, 'x\n');
      assert.equal(snapshot(root), lower);
      assert.not.ok(fs.existsSync(stateDir(name)), 'state dir (and a scratch upper layer in it) left behind');
      assert.ok(noMountNamed(name), 'a mount of the sandbox left behind');
    },
    noBusybox,
  );

  t(
    'dir: root: --read-only refuses writes; a tmpfs, a bind and a named volume on top stay writable and outside the upper layer',
    async () => {
      const root = busyboxRoot();
      const lower = snapshot(root);
      const keep = path.join(tmpDir(), 'keep');
      const bind = tmpDir();
      const vol = `cv${process.pid}${driver.length}`;
      const common = ['--rootfs', `dir:${root}`, '-v', `${bind}:/bind`, '-v', `${vol}:/vol`, '--tmpfs', '/scratch'];
      const r = await run(
        [...common, '--read-only', '--keep', keep],
        'echo x > /data/keep 2>/dev/null && echo ROOT; mkdir /new 2>/dev/null && echo MKDIR; rm /data/gone 2>/dev/null && echo RM; ' +
          'touch /scratch/f && echo TMPFS; echo b > /bind/f && echo BIND; echo v > /vol/f && echo VOL; touch /tmp/t && echo TMP',
      );
      assert.is(r.stdout.trim().split('\n').join(' '), 'TMPFS BIND VOL TMP', describe(r));
      assert.equal(snapshot(root), lower);
      assert.is(fs.readFileSync(path.join(bind, 'f'), 'utf8'), 'b\n');
      const upper = fs.existsSync(path.join(keep, 'upper')) ? snapshot(path.join(keep, 'upper')) : [];
      assert.not.ok(
        contentOf(upper).some((p) => /^(bind|vol|scratch|data)\/./.test(p)),
        `mounts on top or a refused write reached the upper layer: ${upper}`,
      );
      // Read-write again, the same bind and volume: their contents, not the upper layer's.
      const again = expectExit(await run([...common, '--keep', keep], 'cat /bind/f /vol/f; ls /scratch | wc -l'));
      assert.is(again.stdout, 'b\nv\n0\n', describe(again));
      const upper2 = snapshot(path.join(keep, 'upper'));
      assert.not.ok(
        contentOf(upper2).some((p) => /^(bind|vol)\/./.test(p)),
        `a volume's content is in the upper layer: ${upper2}`,
      );
      expectExit(await runHutch(['volume', 'rm', vol]));
    },
    noBusybox,
  );

  // ------------------------------------------------------------ lifetime

  t(`SIGKILL to hutch leaves no process, mount or state dir behind${declared.usesDaemon ? ' (the daemon ran outside the sandbox)' : ''}`, async () => {
    const name = `sk${process.pid}${driver.length}`;
    const child = spawnHutch([
      'run',
      '--network',
      'none',
      '--storage-driver',
      driver,
      '--name',
      name,
      '--',
      'sh',
      '-c',
      'echo x > /etc/f; echo ready; exec sleep 60',
    ]);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    await waitFor(() => out.includes('ready'), 15_000, { what: 'ready' });
    const tree = descendants(child.pid!);
    const comms = tree.map((p) => {
      try {
        return fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim();
      } catch {
        return '';
      }
    });
    // StorageDriver.usesDaemon: the daemon is a child of the monitor, outside the sandbox's pid namespace.
    assert.is(comms.includes('fuse-overlayfs'), declared.usesDaemon, `processes of the sandbox: ${comms}`);
    assert.ok(fs.existsSync(stateDir(name)), 'the state dir exists while it runs');
    process.kill(child.pid!, 'SIGKILL');
    await waitFor(() => tree.every((p) => !hostPids().includes(p)), 10_000, { what: 'every process of the sandbox to exit' });
    await waitFor(() => !fs.existsSync(stateDir(name)), 5_000, { what: 'state dir removed' });
    assert.ok(noMountNamed(name), 'a mount of the sandbox left behind');
  });

  // ------------------------------------------------------------ image root

  t(
    'image root: the layers with their whiteouts and the image config, a private upper layer',
    async () => {
      await ociImage();
      const r = expectExit(
        await run(
          ['--rootfs', 'image:contract-oci'],
          'pwd; echo "$HUTCH_FIXTURE"; cat /etc/hutch-fixture; ls -A /etc/skel | tr "\\n" " "; echo; ' +
            'for p in /etc/issue.net /usr/share/doc/dpkg /etc/skel/.bashrc; do test -e $p && echo "VISIBLE $p"; done; apt-get --version | head -1',
        ),
      );
      assert.is(r.stdout, `/srv\noci\nmade by umoci\n.hutch-only \napt ${r.stdout.split('apt ')[1]}`, describe(r));
      assert.not.match(r.stdout, /VISIBLE/);
    },
    noImages,
  );

  t(
    'image root: writes never reach the stored layers, another sandbox, or the layer store inside',
    async () => {
      await ociImage();
      const layers = JSON.parse(expectExit(await runHutch(['image', 'inspect', 'contract-oci'])).stdout).layers as string[];
      const store = path.join(process.env.XDG_DATA_HOME!, 'hutch', 'layers');
      const before = layers.map((l) => listing(path.join(store, l.slice(7), 'root')));
      const m = mark();
      const r = expectExit(
        await run(
          ['--rootfs', 'image:contract-oci'],
          `ls /L 2>&1; echo x > /usr/${m}; echo y > /etc/hutch-fixture; rm /etc/skel/.hutch-only; mv /etc/skel /etc/skel2; echo ok`,
        ),
      );
      assert.match(r.stdout, /No such file or directory\nok\n$/, describe(r));
      for (const l of layers) assert.not.ok(fs.existsSync(path.join(store, l.slice(7), 'root', 'usr', m)), `a write reached layer ${l}`);
      assert.equal(
        layers.map((l) => listing(path.join(store, l.slice(7), 'root'))),
        before,
        'a stored layer changed',
      );
      const again = expectExit(await run(['--rootfs', 'image:contract-oci'], `test -e /usr/${m} && echo LEAK; cat /etc/hutch-fixture; ls -A /etc/skel`));
      assert.is(again.stdout, 'made by umoci\n.hutch-only\n', 'a second sandbox sees the image as it was');
    },
    noImages,
  );

  t(
    'image root: two sandboxes at once keep their writes apart',
    async () => {
      await ociImage();
      // Both write, then look while the other one runs (each sleeps a second after its writes).
      const script = (me: string) => `echo ${me} > /srv/${me}; touch /usr/bin/${me}; sleep 1; echo $(ls /srv) $(ls /usr/bin | grep -x -e a -e b)`;
      const start = (me: string) =>
        spawnHutch(['run', '--network', 'none', '--storage-driver', driver, '--rootfs', 'image:contract-oci', '--', 'sh', '-c', script(me)]);
      const out = (c: ReturnType<typeof start>) =>
        new Promise<string>((resolve) => {
          let s = '';
          c.stdout!.on('data', (d) => (s += d));
          c.on('close', () => resolve(s));
        });
      const [oa, ob] = await Promise.all([out(start('a')), out(start('b'))]);
      assert.is(oa, 'a a\n', `a sees only its own writes: ${oa}`);
      assert.is(ob, 'b b\n', `b sees only its own writes: ${ob}`);
    },
    noImages,
  );
}

test.run();
