// A small streaming tar reader and writer (ustar + POSIX pax + GNU long
// names). hutch never writes image files itself: GNU tar does, inside the
// user namespace. This module only reads the stream on its way there, to
// hash it, check its paths and rewrite whiteouts, and writes the few archives
// hutch composes (OCI layout on export, `copy:` build steps).

import { UntrustedKeyMap } from '../util/untrusted-keys';

const BLOCK = 512;

export type EntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarEntry {
  path: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkpath: string;
  devmajor: number;
  devminor: number;
  uname: string;
  gname: string;
  /** Extended attributes (pax SCHILY.xattr.*), values as raw bytes in latin1 strings. */
  xattrs: Record<string, string>;
}

const TYPE_OF: Record<string, EntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};
const FLAG_OF: Record<EntryType, string> = { file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

export class TarFormatError extends Error {}

/** Pulls exact byte counts out of an async chunk source. */
class ByteSource {
  private bufs: Buffer[] = [];
  private have = 0;
  private done = false;
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<boolean> {
    while (this.have < n && !this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else if (r.value.length) {
        this.bufs.push(r.value);
        this.have += r.value.length;
      }
    }
    return this.have >= n;
  }

  /** Exactly n bytes, or null at a clean end of input. */
  async read(n: number): Promise<Buffer | null> {
    if (!(await this.fill(n))) {
      if (this.have === 0) return null;
      throw new TarFormatError(`truncated archive (wanted ${n} bytes, ${this.have} left)`);
    }
    const all = this.bufs.length === 1 ? this.bufs[0] : Buffer.concat(this.bufs);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.bufs = rest.length ? [rest] : [];
    this.have = rest.length;
    return out;
  }

  /** Up to `max` bytes (at least 1), or null at the end. */
  async readSome(max: number): Promise<Buffer | null> {
    if (!(await this.fill(1))) return null;
    const first = this.bufs[0];
    const n = Math.min(max, first.length);
    const out = first.subarray(0, n);
    if (n === first.length) this.bufs.shift();
    else this.bufs[0] = first.subarray(n);
    this.have -= n;
    return out;
  }

  /** Read and drop whatever follows (trailing zero blocks) so the producer is never left blocked. */
  async drain(): Promise<void> {
    this.bufs = [];
    this.have = 0;
    while (!this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
    }
  }
}

function cstr(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return (z >= 0 ? s.subarray(0, z) : s).toString('utf8');
}

function num(b: Buffer, off: number, len: number): number {
  if (b[off] & 0x80) {
    // base-256 (GNU): big-endian, first byte's high bit is the marker
    let v = b[off] & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + b[off + i];
    return v;
  }
  const s = cstr(b, off, len).trim();
  return s ? parseInt(s, 8) : 0;
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
  return sum === num(h, 148, 8);
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(32, i);
    if (sp < 0) break;
    const len = parseInt(data.subarray(i, sp).toString('ascii'), 10);
    if (!Number.isFinite(len) || len <= 0) throw new TarFormatError('bad pax record');
    const rec = data.subarray(sp + 1, i + len - 1); // without the trailing \n
    const eq = rec.indexOf(61);
    const key = rec.subarray(0, eq).toString('utf8');
    // xattr values are raw bytes: keep them byte-exact in latin1
    out[key] = rec.subarray(eq + 1).toString(key.startsWith('SCHILY.xattr.') ? 'latin1' : 'utf8');
    i += len;
  }
  return out;
}

const pad = (n: number) => (BLOCK - (n % BLOCK)) % BLOCK;

/**
 * Reads entries one by one. After `next()` returns an entry, its data must be
 * consumed with `data()` (or `skip()`) before the next `next()`.
 */
export class TarReader {
  private readonly src: ByteSource;
  private pending = 0;
  private globalPax: Record<string, string> = {};

  constructor(chunks: AsyncIterable<Buffer>) {
    this.src = new ByteSource(chunks[Symbol.asyncIterator]());
  }

  async next(): Promise<TarEntry | null> {
    if (this.pending) await this.skip();
    let pax: Record<string, string> = {};
    let longName: string | undefined;
    let longLink: string | undefined;
    for (;;) {
      const h = await this.src.read(BLOCK);
      if (!h) return null;
      if (h.every((x) => x === 0)) {
        await this.src.drain();
        return null;
      }
      if (!checksumOk(h)) throw new TarFormatError('bad header checksum (not a tar archive, or corrupt)');
      const flag = String.fromCharCode(h[156]);
      const size = num(h, 124, 12);
      if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
        const body = (await this.src.read(size + pad(size))) ?? Buffer.alloc(0);
        const data = body.subarray(0, size);
        if (flag === 'x') pax = { ...pax, ...parsePax(data) };
        else if (flag === 'g') this.globalPax = { ...this.globalPax, ...parsePax(data) };
        else if (flag === 'L') longName = cstr(data, 0, data.length);
        else longLink = cstr(data, 0, data.length);
        continue;
      }
      const type = TYPE_OF[flag];
      if (!type) throw new TarFormatError(`unsupported tar entry type ${JSON.stringify(flag)}`);
      const p = { ...this.globalPax, ...pax };
      const prefix = cstr(h, 345, 155);
      let path = p.path ?? longName ?? (prefix ? `${prefix}/${cstr(h, 0, 100)}` : cstr(h, 0, 100));
      const e: TarEntry = {
        path,
        type,
        mode: num(h, 100, 8) & 0o7777,
        uid: p.uid !== undefined ? Number(p.uid) : num(h, 108, 8),
        gid: p.gid !== undefined ? Number(p.gid) : num(h, 116, 8),
        size: p.size !== undefined ? Number(p.size) : size,
        mtime: p.mtime !== undefined ? Math.floor(Number(p.mtime)) : num(h, 136, 12),
        linkpath: p.linkpath ?? longLink ?? cstr(h, 157, 100),
        devmajor: num(h, 329, 8),
        devminor: num(h, 337, 8),
        uname: p.uname ?? cstr(h, 265, 32),
        gname: p.gname ?? cstr(h, 297, 32),
        xattrs: {},
      };
      for (const [k, v] of Object.entries(p)) if (k.startsWith('SCHILY.xattr.')) e.xattrs[k.slice(13)] = v;
      if (type === 'dir' && path.endsWith('/') && path.length > 1) path = path.replace(/\/+$/, '');
      e.path = path;
      // Only regular files carry data (a hardlink's size field is 0 in sane archives).
      this.pending = type === 'file' ? e.size : 0;
      this.pendingPad = pad(this.pending);
      if (type !== 'file') e.size = 0;
      return e;
    }
  }

  private pendingPad = 0;

  /** The current entry's data, in chunks. */
  async *data(): AsyncGenerator<Buffer> {
    while (this.pending > 0) {
      const b = await this.src.readSome(Math.min(this.pending, 1 << 20));
      if (!b) throw new TarFormatError('truncated archive (file data cut short)');
      this.pending -= b.length;
      yield b;
    }
    if (this.pendingPad) {
      await this.src.read(this.pendingPad);
      this.pendingPad = 0;
    }
  }

  async skip(): Promise<void> {
    for await (const _ of this.data()) {
      /* discard */
    }
  }
}

// ------------------------------------------------------------- writer

function octal(n: number, len: number): string {
  return n.toString(8).padStart(len - 1, '0') + '\0';
}

function paxRecord(key: string, value: string, enc: BufferEncoding): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), Buffer.from(value, enc), Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len), 'ascii'), body]);
}

function rawHeader(name: string, flag: string, e: Partial<TarEntry> & { size: number }): Buffer {
  const h = Buffer.alloc(BLOCK);
  const fits = (s: string, n: number) => Buffer.byteLength(s) <= n;
  h.write(fits(name, 100) ? name : name.slice(0, 99), 0, 100, 'utf8');
  h.write(octal(e.mode ?? 0o644, 8), 100, 'ascii');
  h.write(octal(Math.min(e.uid ?? 0, 0o7777777), 8), 108, 'ascii');
  h.write(octal(Math.min(e.gid ?? 0, 0o7777777), 8), 116, 'ascii');
  h.write(octal(Math.min(e.size, 0o77777777777), 12), 124, 'ascii');
  h.write(octal(Math.max(0, Math.min(e.mtime ?? 0, 0o77777777777)), 12), 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write(flag, 156, 'ascii');
  const link = e.linkpath ?? '';
  h.write(fits(link, 100) ? link : '', 157, 100, 'utf8');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write((e.uname ?? '').slice(0, 31), 265, 'utf8');
  h.write((e.gname ?? '').slice(0, 31), 297, 'utf8');
  h.write(octal(e.devmajor ?? 0, 8), 329, 'ascii');
  h.write(octal(e.devminor ?? 0, 8), 337, 'ascii');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i];
  h.write(octal(sum, 7), 148, 'ascii');
  return h;
}

/** Header block(s) for an entry: a pax header first when names, ids or xattrs do not fit ustar. */
export function encodeHeader(e: TarEntry): Buffer {
  const name = e.type === 'dir' && e.path !== '.' && !e.path.endsWith('/') ? `${e.path}/` : e.path;
  const recs: Buffer[] = [];
  if (Buffer.byteLength(name) > 100 || /[^\x20-\x7e]/.test(name)) recs.push(paxRecord('path', name, 'utf8'));
  if (Buffer.byteLength(e.linkpath) > 100 || /[^\x20-\x7e]/.test(e.linkpath)) recs.push(paxRecord('linkpath', e.linkpath, 'utf8'));
  if (e.uid > 0o7777777) recs.push(paxRecord('uid', String(e.uid), 'utf8'));
  if (e.gid > 0o7777777) recs.push(paxRecord('gid', String(e.gid), 'utf8'));
  if (e.size > 0o77777777777) recs.push(paxRecord('size', String(e.size), 'utf8'));
  for (const [k, v] of Object.entries(e.xattrs)) recs.push(paxRecord(`SCHILY.xattr.${k}`, v, 'latin1'));
  const main = rawHeader(name, FLAG_OF[e.type], e);
  if (!recs.length) return main;
  const body = Buffer.concat(recs);
  const ph = rawHeader('././@PaxHeader', 'x', { size: body.length, mode: 0o644 });
  return Buffer.concat([ph, body, Buffer.alloc(pad(body.length)), main]);
}

export function padding(size: number): Buffer {
  return Buffer.alloc(pad(size));
}

/** Two zero blocks end an archive. */
export const TAR_END = Buffer.alloc(BLOCK * 2);

export function entry(partial: Partial<TarEntry> & { path: string; type: EntryType }): TarEntry {
  return {
    mode: partial.type === 'dir' ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    size: 0,
    mtime: 0,
    linkpath: '',
    devmajor: 0,
    devminor: 0,
    uname: '',
    gname: '',
    xattrs: {},
    ...partial,
  };
}

// ------------------------------------------------ index of a tar file

/** Member name -> byte range, for reading blobs out of an OCI or `docker save` tar without unpacking it. */
export interface TarMember {
  offset: number;
  size: number;
  type: EntryType;
  linkpath: string;
}

/** Scan a plain (uncompressed) tar file's headers; stops after `limit` entries when given. */
export function indexTarFile(
  fd: number,
  fileSize: number,
  readSync: (fd: number, b: Buffer, o: number, l: number, p: number) => number,
  limit = Infinity,
): UntrustedKeyMap<TarMember> {
  const out = new UntrustedKeyMap<TarMember>();
  let pos = 0;
  let paxPath: string | undefined;
  let longName: string | undefined;
  const h = Buffer.alloc(BLOCK);
  while (pos + BLOCK <= fileSize && out.size < limit) {
    if (readSync(fd, h, 0, BLOCK, pos) !== BLOCK) break;
    if (h.every((x) => x === 0)) break;
    if (!checksumOk(h)) throw new TarFormatError('bad header checksum');
    const flag = String.fromCharCode(h[156]);
    const size = num(h, 124, 12);
    const dataAt = pos + BLOCK;
    // a member cannot be larger than what is left of the file: readers allocate its size
    if (dataAt + size > fileSize) throw new TarFormatError(`truncated archive (a member of ${size} bytes at offset ${dataAt}, the file has ${fileSize})`);
    pos = dataAt + size + pad(size);
    if (flag === 'x' || flag === 'L') {
      const b = Buffer.alloc(size);
      readSync(fd, b, 0, size, dataAt);
      if (flag === 'x') paxPath = parsePax(b).path ?? paxPath;
      else longName = cstr(b, 0, size);
      continue;
    }
    if (flag === 'g' || flag === 'K') continue;
    const prefix = cstr(h, 345, 155);
    const raw = paxPath ?? longName ?? (prefix ? `${prefix}/${cstr(h, 0, 100)}` : cstr(h, 0, 100));
    paxPath = longName = undefined;
    const name = raw.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
    out.set(name, { offset: dataAt, size, type: TYPE_OF[flag] ?? 'file', linkpath: cstr(h, 157, 100) });
  }
  return out;
}
