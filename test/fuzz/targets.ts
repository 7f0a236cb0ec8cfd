// The fuzz targets: hutch's readers of untrusted input, each a function of
// one byte string. A target may reject its input with the errors hutch means
// to give (HutchError, the tar reader's TarFormatError); any other exception
// (TypeError, RangeError, a failed internal assertion...) is a bug, and so is
// a hang. Bundled by test/fuzz/run.mjs with esbuild and run under its
// coverage-guided loop.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HutchError } from '../../src/util/errors';
import { encodeHeader, entry, indexTarFile, padding, TAR_END, TarFormatError, TarReader } from '../../src/image/tar';
import { planImport } from '../../src/image/sources';
import { layoutPath, parseDigest } from '../../src/image/digest';
import { loadProfile } from '../../src/profile/load';
import type { IdentityInfo } from '../../src/host/ids';

export interface Target {
  name: string;
  /** What it reads, for the report. */
  about: string;
  run(data: Buffer): Promise<void>;
}

export function expected(e: unknown): boolean {
  return e instanceof HutchError || e instanceof TarFormatError;
}

// RAM-backed when there is one: every exec writes its input to a file
const scratch = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'hutch-fuzz-'));
process.on('exit', () => fs.rmSync(scratch, { recursive: true, force: true }));

const IDS: IdentityInfo = {
  uid: 1000,
  gid: 1000,
  user: 'u',
  home: '/home/u',
  uidMap: [{ inside: 0, outside: 1000, count: 1 }],
  gidMap: [{ inside: 0, outside: 1000, count: 1 }],
};

async function* chunks(data: Buffer): AsyncGenerator<Buffer> {
  // uneven chunk sizes, so the reader's buffering is exercised too
  for (let i = 0, n = 1; i < data.length; i += n, n = (n * 7 + 3) % 1500 || 1) yield data.subarray(i, i + n);
}

/**
 * Layout input: files as `NAME\0CONTENT\0NAME\0CONTENT...`, packed into a
 * valid tar here, so mutations reach the JSON and the names rather than
 * dying on a tar checksum. A NAME ending in `@` is a symlink whose target is
 * the CONTENT.
 */
export function packLayout(data: Buffer): Buffer {
  const parts = data.toString('latin1').split('\0');
  const out: Buffer[] = [];
  for (let i = 0; i + 1 < parts.length && out.length < 200; i += 2) {
    const name = parts[i].slice(0, 99);
    if (!name) continue;
    if (name.endsWith('@')) {
      out.push(encodeHeader(entry({ path: name.slice(0, -1) || 'x', type: 'symlink', linkpath: parts[i + 1].slice(0, 99) })));
      continue;
    }
    const body = Buffer.from(parts[i + 1], 'latin1');
    out.push(encodeHeader(entry({ path: name, type: 'file', size: body.length })), body, padding(body.length));
  }
  out.push(TAR_END);
  return Buffer.concat(out);
}

/**
 * Recompute the checksum of every block that looks like a ustar header, so
 * that mutated headers get past the checksum to the parsing behind it (the
 * checksum check itself is still reached by inputs of odd length, left as
 * they are).
 */
export function fixChecksums(data: Buffer): Buffer {
  if (data.length % 2) return data;
  const b = Buffer.from(data);
  for (let at = 0; at + 512 <= b.length; at += 512) {
    if (b.toString('latin1', at + 257, at + 262) !== 'ustar') continue;
    b.fill(0x20, at + 148, at + 156);
    let sum = 0;
    for (let i = at; i < at + 512; i++) sum += b[i];
    b.write(`${sum.toString(8).padStart(6, '0')}\0 `, at + 148, 'latin1');
  }
  return b;
}

export const TARGETS: Target[] = [
  {
    name: 'tar',
    about: 'the streaming tar reader (every entry and its data) and the tar file index',
    async run(raw) {
      const data = fixChecksums(raw);
      const r = new TarReader(chunks(data));
      for (let e = await r.next(); e; e = await r.next()) {
        if (e.type === 'file') for await (const _ of r.data()) void _;
      }
      const readSync = (_fd: number, b: Buffer, o: number, l: number, p: number) => data.copy(b, o, p, p + l);
      indexTarFile(0, data.length, readSync);
    },
  },
  {
    name: 'layout',
    about: 'OCI layout and docker-save readers (index.json, manifests, configs, digests, member paths) through planImport',
    async run(data) {
      const file = path.join(scratch, 'layout.tar');
      fs.writeFileSync(file, packLayout(data));
      planImport(file, IDS);
      // the path and digest checks on their own, with the raw text
      const text = data.toString('latin1');
      for (const check of [() => layoutPath(text, 'fuzz'), () => parseDigest(text, 'fuzz')]) {
        try {
          check();
        } catch (e) {
          if (!expected(e)) throw e;
        }
      }
    },
  },
  {
    name: 'profile',
    about: 'the profile loader: YAML, schema validation, extends of built-ins, merge',
    async run(data) {
      const file = path.join(scratch, 'p.yaml');
      fs.writeFileSync(file, data);
      await loadProfile(file, { cwd: scratch, env: { HOME: '/home/u', PATH: '/usr/bin:/bin', XDG_CONFIG_HOME: path.join(scratch, 'config') } });
    },
  },
];
