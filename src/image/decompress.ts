// Reading a (possibly compressed) blob out of a file: gzip through zlib, xz
// and zstd through the xz/zstd tools (Node 20 has neither), detected by their
// magic bytes, never by file name. The raw bytes can be hashed on the way
// (an OCI blob's digest is that of the compressed bytes).

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, constants, createReadStream, openSync, readSync } from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { HutchError } from '../util/errors';
import { toolPath } from '../helper/userns';

export type Compression = 'none' | 'gzip' | 'xz' | 'zstd' | 'bzip2';

export function detectCompression(head: Buffer): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return 'zstd';
  if (head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  return 'none';
}

export function readHead(path: string, offset = 0, n = 512, flags: number = constants.O_RDONLY): Buffer {
  const fd = openSync(path, flags);
  try {
    const b = Buffer.alloc(n);
    const got = readSync(fd, b, 0, n, offset);
    return b.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

export interface BlobStream {
  /** Uncompressed bytes. */
  data: AsyncIterable<Buffer>;
  /** After `data` is consumed: the digest (`algorithm:hex`) of the raw (compressed) bytes. */
  rawDigest(): string;
  compression: Compression;
}

/**
 * The blob at [offset, offset+size) of `path` (whole file when size is
 * undefined), hashed with `algorithm`. `path` is a real path already checked
 * by the caller: opened with O_NOFOLLOW, a symlink swapped in is refused.
 */
export function openBlob(path: string, offset = 0, size?: number, onRaw?: (n: number) => void, algorithm: 'sha256' | 'sha512' = 'sha256'): BlobStream {
  const flags = constants.O_RDONLY | constants.O_NOFOLLOW;
  const compression = detectCompression(readHead(path, offset, 8, flags));
  const fd = openSync(path, flags);
  const raw = createReadStream('', size === undefined ? { fd, start: offset } : { fd, start: offset, end: offset + size - 1, highWaterMark: 1 << 20 });
  const hash = createHash(algorithm);
  let n = 0;
  raw.on('data', (c) => {
    hash.update(c as Buffer);
    n += (c as Buffer).length;
    onRaw?.(n);
  });
  let digest = '';
  const rawDigest = () => (digest ||= `${algorithm}:${hash.digest('hex')}`);
  return { data: decompress(raw, compression, path), rawDigest, compression };
}

function decompress(raw: Readable, c: Compression, what: string): AsyncIterable<Buffer> {
  if (c === 'none') return raw;
  if (c === 'gzip') {
    const g = createGunzip();
    raw.on('error', (e) => g.destroy(e));
    return raw.pipe(g);
  }
  if (c === 'bzip2') throw new HutchError(`${what}: bzip2 archives are not supported`, { hint: 'recompress with gzip, xz or zstd' });
  const tool = c === 'xz' ? toolPath('xz') : toolPath('zstd');
  const child = spawn(tool, ['-d', '-c'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  raw.pipe(child.stdin);
  child.stdin.on('error', () => {});
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  child.stdout.pipe(out, { end: false });
  child.on('close', (code) => {
    if (code === 0) out.end();
    else out.destroy(new HutchError(`${what}: ${c} decompression failed: ${stderr.trim() || `exit ${code}`}`));
  });
  child.on('error', (e) => out.destroy(e));
  return out;
}
