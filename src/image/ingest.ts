// Turning one uncompressed layer tar into a stored layer. The stream passes
// through hutch on its way to GNU tar (which runs in the user namespace, see
// userns.ts): hutch hashes it (the layer's digest, checked against the
// manifest's diff_id when there is one), refuses paths that leave the layer,
// converts OCI whiteouts to the overlay form, keeps only the xattrs overlay
// and images need, and drops device nodes (a sandbox gets a fresh /dev; the
// kernel refuses mknod in a user namespace anyway).
//
// Overlay form, understood by kernel overlayfs with `userxattr` in a user
// namespace and by fuse-overlayfs (both checked by the tests):
//   .wh.NAME        -> NAME as a character device 0/0 (mknod 0/0 is allowed
//                      unprivileged: it is how overlayfs itself whites out)
//   DIR/.wh..wh..opq -> user.overlay.opaque=y on DIR (tar re-applies a
//                      directory's attributes when it meets it again)

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { HutchError } from '../util/errors';
import { UntrustedKeyMap } from '../util/untrusted-keys';
import { formatBytes } from './progress';
import { formatSize } from '../profile/schema-dsl';
import type { IdentityInfo } from '../host/ids';
import { fsyncDir, hexOf, type LayerRecord, type Store } from './store';
import { hasher, parseDigest } from './digest';
import { encodeHeader, padding, TAR_END, TarFormatError, TarReader, type TarEntry } from './tar';
import { maxMappedId, ownershipSquashed, removeTree, spawnInUserns, toolPath } from '../helper/userns';

export const OPAQUE_XATTR = 'user.overlay.opaque';
const OPAQUE_ALIASES = new Set(['user.overlay.opaque', 'trusted.overlay.opaque', 'user.fuseoverlayfs.opaque']);

export interface IngestOptions {
  store: Store;
  ids: IdentityInfo;
  /** Shown in messages and kept in layer.json. */
  source: string;
  /** `sha256:...` or `sha512:...` the uncompressed stream must hash to (OCI diff_id). */
  expectedDigest?: string;
  /** Called with the count of uncompressed bytes read so far. */
  onBytes?: (n: number) => void;
  /** Refuse a layer that expands too far (a decompression bomb); undefined: no bound. */
  expansion?: ExpansionBound;
}

/**
 * How far a layer may expand: a compressed archive of 1 MiB can hold 1 GiB
 * of zeros and more. `maxBytes` bounds what the import writes in total
 * (`before` is what its earlier layers wrote); `maxRatio` bounds
 * uncompressed/compressed bytes of this layer once it is past RATIO_FLOOR
 * (small layers compress well for honest reasons too). `raw()` is the count
 * of compressed bytes read so far (0: unknown, no ratio check).
 */
export interface ExpansionBound {
  maxBytes: number;
  maxRatio: number;
  before: number;
  raw: () => number;
}

export const RATIO_FLOOR = 64 * 1024 * 1024;

export function checkExpansion(b: ExpansionBound, n: number, what: string): void {
  const total = b.before + n;
  if (total > b.maxBytes) {
    throw new HutchError(`${what}: the image expands to more than ${formatBytes(b.maxBytes)} (--max-size); import stopped, nothing kept`, {
      hint: `if you trust this archive, raise the bound: hutch image import --max-size ${formatSize(b.maxBytes * 4)} ...`,
    });
  }
  const raw = b.raw();
  if (raw > 0 && n > RATIO_FLOOR && n / raw > b.maxRatio) {
    throw new HutchError(
      `${what}: ${formatBytes(raw)} of compressed data expanded to ${formatBytes(n)} (more than ${b.maxRatio}:1, --max-ratio), a decompression bomb or a very unusual layer; import stopped, nothing kept`,
      { hint: `if you trust this archive, raise the bound: hutch image import --max-ratio ${b.maxRatio * 10} ...` },
    );
  }
}

export interface IngestResult {
  digest: string;
  size: number;
  skippedDevices: number;
  clampedIds: number;
  /** False when an identical layer was already stored (this copy was dropped). */
  stored: boolean;
}

/** `./a/b/` -> `a/b`; '' for the layer root; throws on `..`. */
export function normalizeMember(p: string, what: string): string {
  let s = p.replace(/^\/+/, '');
  while (s.startsWith('./')) s = s.slice(2).replace(/^\/+/, '');
  s = s.replace(/\/+$/, '');
  if (s === '.' || s === '') return '';
  const parts = s.split('/').filter((x) => x !== '' && x !== '.');
  if (parts.includes('..')) {
    throw new HutchError(`${what}: the archive member "${p}" points outside the layer`, { hint: 'the archive is malformed or hostile; hutch refuses it' });
  }
  return parts.join('/');
}

function splitPath(p: string): { dir: string; base: string } {
  const i = p.lastIndexOf('/');
  return i < 0 ? { dir: '', base: p } : { dir: p.slice(0, i), base: p.slice(i + 1) };
}

function keepXattrs(x: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(x)) {
    if (OPAQUE_ALIASES.has(k)) {
      if (v === 'y') out[OPAQUE_XATTR] = 'y';
    } else if (k.startsWith('user.') && !k.startsWith('user.overlay.') && !k.startsWith('user.fuseoverlayfs.')) {
      out[k] = v; // the overlay's own bookkeeping (origin, impure, ...) must not travel
    }
  }
  return out;
}

async function* tap(input: AsyncIterable<Buffer>, hashes: ReturnType<typeof createHash>[], count: (n: number) => void): AsyncGenerator<Buffer> {
  let n = 0;
  for await (const c of input) {
    const b = Buffer.isBuffer(c) ? c : Buffer.from(c);
    for (const h of hashes) h.update(b);
    n += b.length;
    count(n);
    yield b;
  }
}

/** Writer with backpressure that notices the reader (tar) dying. */
function pipeWriter(w: Writable): { write: (b: Buffer) => Promise<void>; end: () => Promise<void>; failed: () => Error | undefined } {
  let err: Error | undefined;
  w.on('error', (e) => (err = e));
  return {
    failed: () => err,
    async write(b: Buffer) {
      if (err) throw err;
      if (w.write(b)) return;
      await new Promise<void>((resolve) => {
        const done = () => {
          w.off('drain', done);
          w.off('close', done);
          resolve();
        };
        w.on('drain', done);
        w.on('close', done);
      });
    },
    async end() {
      if (!err) w.end();
    },
  };
}

export async function ingestLayer(input: AsyncIterable<Buffer>, o: IngestOptions): Promise<IngestResult> {
  const { store, ids } = o;
  store.ensure();
  const work = mkdtempSync(join(store.tmpDir, 'layer-'));
  writeFileSync(join(work, 'owner.pid'), String(process.pid));
  const root = join(work, 'root');
  mkdirSync(root, { mode: 0o755 });
  const squashed = ownershipSquashed(ids);
  const maxUid = maxMappedId(ids.uidMap);
  const maxGid = maxMappedId(ids.gidMap);
  const argv = [toolPath('tar'), '-x', '-p', '--numeric-owner', '--xattrs', '--xattrs-include=user.*', '-C', root, '-f', '-'];
  if (squashed) argv.splice(3, 0, '--no-same-owner');
  const tar = spawnInUserns(ids, argv, { stdin: 'pipe', stdout: 'ignore' });
  const out = pipeWriter(tar.child.stdin!);
  // the store names layers by sha256; a sha512 diff_id is verified with a second hash
  const expected = o.expectedDigest === undefined ? undefined : parseDigest(o.expectedDigest, `${o.source}: diff_id`);
  const hash = createHash('sha256');
  const check = expected && expected.algorithm !== 'sha256' ? hasher(expected.algorithm) : undefined;
  let size = 0;
  let skippedDevices = 0;
  let clampedIds = 0;
  try {
    const reader = new TarReader(
      tap(input, check ? [hash, check] : [hash], (n) => {
        size = n;
        if (o.expansion) checkExpansion(o.expansion, n, o.source);
        o.onBytes?.(n);
      }),
    );
    const dirs = new UntrustedKeyMap<TarEntry>(); // names from the image (src/util/untrusted-keys.ts)
    const emit = async (e: TarEntry, data?: AsyncIterable<Buffer>) => {
      if (e.uid > maxUid) (e.uid = 65534 <= maxUid ? 65534 : 0), clampedIds++;
      if (e.gid > maxGid) (e.gid = 65534 <= maxGid ? 65534 : 0), clampedIds++;
      await out.write(encodeHeader(e));
      if (data) {
        for await (const c of data) await out.write(c);
        await out.write(padding(e.size));
      }
    };
    for (let e = await reader.next(); e; e = await reader.next()) {
      const path = normalizeMember(e.path, o.source);
      const { dir, base } = splitPath(path);
      e.xattrs = keepXattrs(e.xattrs);
      if (base === '.wh..wh..opq') {
        // Opaque marker: the parent directory again, now with the xattr.
        const parent = dirs.get(dir);
        const d: TarEntry = parent ? { ...parent, xattrs: { ...parent.xattrs } } : { ...e, path: dir, type: 'dir', mode: 0o755, size: 0, linkpath: '' };
        d.path = dir === '' ? '.' : dir;
        d.xattrs[OPAQUE_XATTR] = 'y';
        await emit(d);
        continue;
      }
      if (base.startsWith('.wh..wh.')) continue; // aufs bookkeeping (.wh..wh.plnk, ...)
      // fuse-overlayfs marks its own `.wh.` entries with whiteouts (`.wh..opq` as char 0/0): not image content.
      if (base.startsWith('.wh.') && e.type === 'char') continue;
      if (base.startsWith('.wh.')) {
        await emit({
          ...e,
          path: dir ? `${dir}/${base.slice(4)}` : base.slice(4),
          type: 'char',
          mode: 0,
          size: 0,
          devmajor: 0,
          devminor: 0,
          linkpath: '',
          xattrs: {},
        });
        continue;
      }
      if ((e.type === 'char' || e.type === 'block') && !(e.type === 'char' && e.devmajor === 0 && e.devminor === 0)) {
        skippedDevices++;
        continue;
      }
      e.path = path === '' ? '.' : path;
      if (e.type === 'hardlink') e.linkpath = normalizeMember(e.linkpath, o.source);
      if (e.type === 'dir') dirs.set(path, { ...e, xattrs: { ...e.xattrs } });
      await emit(e, e.type === 'file' ? reader.data() : undefined);
    }
    await out.write(TAR_END);
    await out.end();
    const r = await tar.done;
    if (r.code !== 0) {
      throw new HutchError(`${o.source}: extracting the layer failed: ${r.stderr.trim().split('\n').slice(-3).join('; ') || `tar exit ${r.code}`}`);
    }
    const digest = `sha256:${hash.digest('hex')}`;
    const got = check && expected ? `${expected.algorithm}:${check.digest('hex')}` : digest;
    if (expected && expected.digest !== got) {
      throw new HutchError(`${o.source}: layer digest mismatch: expected ${expected.digest}, got ${got}`, {
        hint: 'the file is corrupt or was changed; fetch it again',
      });
    }
    const rec: LayerRecord = { digest, size, created: new Date().toISOString(), source: o.source, squashed };
    writeFileSync(join(work, 'layer.json'), `${JSON.stringify(rec, null, 2)}\n`, { mode: 0o400 });
    await syncfs(root);
    const stored = commitDir(store, work, digest);
    if (!stored) await removeTree(ids, work);
    return { digest, size, skippedDevices, clampedIds, stored };
  } catch (e) {
    tar.child.kill('SIGKILL');
    await tar.done;
    await removeTree(ids, work).catch(() => {});
    if (e instanceof TarFormatError) throw new HutchError(`${o.source}: ${e.message}`);
    const pipeErr = out.failed();
    if (pipeErr && !(e instanceof HutchError)) {
      const r = await tar.done;
      throw new HutchError(`${o.source}: extracting the layer failed: ${r.stderr.trim() || pipeErr.message}`);
    }
    throw e;
  }
}

/** Flush the filesystem holding `path` (syncfs through coreutils' `sync -f`). */
export async function syncfs(path: string): Promise<void> {
  await new Promise<void>((resolve) => {
    const c = spawn(toolPath('sync'), ['-f', path], { stdio: 'ignore' });
    c.on('close', () => resolve());
    c.on('error', () => resolve());
  });
}

/** Rename a finished work dir into the store. False when the layer exists already. */
function commitDir(store: Store, work: string, digest: string): boolean {
  if (store.hasLayer(digest)) return false;
  const dest = store.layerDir(digest);
  hexOf(digest);
  try {
    renameSync(work, dest);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') return false;
    throw e;
  }
  fsyncDir(store.layersDir);
  chmodSync(dest, 0o500);
  return true;
}
