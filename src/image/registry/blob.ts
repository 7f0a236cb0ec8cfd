// Fetching one blob into a file, verified while it streams: the bytes are
// hashed (sha256 or sha512, as the digest says) as they arrive and counted
// against the descriptor's size. A connection that breaks mid-blob is
// resumed with `Range: bytes=N-` (the hash state is kept, so nothing is
// read twice); a registry that ignores Range starts over. A blob that ends
// with the wrong digest or size is deleted and refused: nothing unverified
// reaches the layer store.

import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { HutchError } from '../../util/errors';
import { backoffMs, sleep, type RegistryClient } from './client';
import type { Descriptor } from './manifest';
import { NetworkError } from './transport';

export interface FetchOptions {
  onBytes?: (n: number) => void;
  say?: (line: string) => void;
  /** Times a broken transfer is resumed (default 5). */
  resumes?: number;
  /** Checked per chunk: another layer failed, stop. */
  cancelled?: () => boolean;
}

export class Cancelled extends HutchError {}

export class DigestMismatch extends HutchError {}

/** Parse `Content-Range: bytes START-END/TOTAL`; the start, or undefined. Pure. */
export function contentRangeStart(h: string | undefined): number | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(h ?? '');
  return m ? Number(m[1]) : undefined;
}

export async function fetchBlob(client: RegistryClient, desc: Descriptor, file: string, what: string, o: FetchOptions = {}): Promise<void> {
  const algo = desc.digest.startsWith('sha512:') ? 'sha512' : 'sha256';
  let hash = createHash(algo);
  let got = 0;
  const fd = openSync(file, 'w', 0o600);
  try {
    for (let resume = 0; ; resume++) {
      const res = await client.blob(desc.digest, what, got);
      const status = res.statusCode ?? 0;
      if (status === 404) {
        res.resume();
        throw new HutchError(`${what}: blob ${desc.digest} is missing on ${client.registry}`, { hint: 'the image is incomplete on the registry' });
      }
      if (status === 200 && got > 0) {
        // Range not honoured: start over.
        hash = createHash(algo);
        got = 0;
      } else if (status === 206) {
        if (contentRangeStart(res.headers['content-range'] as string | undefined) !== got) {
          res.resume();
          throw new HutchError(`${what}: ${client.registry} resumed at the wrong offset (${res.headers['content-range']})`);
        }
      } else if (status !== 200) {
        res.resume();
        throw new HutchError(`${what}: ${client.registry} answered HTTP ${status} for blob ${desc.digest}`);
      }
      try {
        for await (const c of res) {
          const b = c as Buffer;
          if (o.cancelled?.()) {
            res.destroy();
            throw new Cancelled(`${what}: cancelled`);
          }
          if (got + b.length > desc.size) {
            res.destroy();
            throw new DigestMismatch(`${what}: blob ${desc.digest} is longer than the ${desc.size} bytes its manifest says`, {
              hint: 'the registry sent other bytes than the image names; nothing was stored',
            });
          }
          writeSync(fd, b, 0, b.length, got);
          hash.update(b);
          got += b.length;
          o.onBytes?.(got);
        }
        if (got < desc.size) throw new NetworkError(`the transfer ended after ${got} of ${desc.size} bytes`, 'ESHORT');
        break;
      } catch (e) {
        if (e instanceof HutchError) throw e;
        if (resume + 1 >= (o.resumes ?? 5))
          throw new HutchError(`${what}: the download kept breaking (${(e as Error).message})`, { hint: 'check the network and try again' });
        const ms = backoffMs(resume);
        o.say?.(`${what}: transfer broke at ${got} of ${desc.size} bytes (${(e as Error).message}); resuming in ${(ms / 1000).toFixed(1)}s`);
        await sleep(ms);
      }
    }
    const digest = `${algo}:${hash.digest('hex')}`;
    if (digest !== desc.digest) {
      throw new DigestMismatch(`${what}: digest mismatch: the manifest says ${desc.digest}, the registry sent ${digest}`, {
        hint: 'the registry or something between it and you changed the bytes; nothing was stored',
      });
    }
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(file, { force: true });
    throw e;
  }
  closeSync(fd);
}

/** A small blob (the image config) in memory, verified. */
export async function fetchSmallBlob(client: RegistryClient, desc: Descriptor, what: string, limit = 32 << 20): Promise<Buffer> {
  if (desc.size > limit) throw new HutchError(`${what}: the config is ${desc.size} bytes, more than hutch reads (${limit})`);
  const res = await client.blob(desc.digest, what);
  const status = res.statusCode ?? 0;
  if (status !== 200) {
    res.resume();
    throw new HutchError(`${what}: ${client.registry} answered HTTP ${status} for blob ${desc.digest}`);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res) {
    n += (c as Buffer).length;
    if (n > desc.size) {
      res.destroy();
      break;
    }
    chunks.push(c as Buffer);
  }
  const body = Buffer.concat(chunks);
  const algo = desc.digest.startsWith('sha512:') ? 'sha512' : 'sha256';
  const digest = `${algo}:${createHash(algo).update(body).digest('hex')}`;
  if (digest !== desc.digest) {
    throw new DigestMismatch(`${what}: digest mismatch: the manifest says ${desc.digest}, the registry sent ${digest}`, { hint: 'nothing was stored' });
  }
  return body;
}
