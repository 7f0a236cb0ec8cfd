// Digests and paths named by an image layout (OCI layout, docker save):
// untrusted input, checked here before anything is read.
//
// Digests: the OCI image spec registers sha256 and sha512; hutch verifies
// both and refuses every other algorithm (an unknown one cannot be
// verified, and an unverified blob is exactly what a forged image wants).
// Paths: every path a layout names must stay inside the layout: relative,
// no `..` component, no NUL; the readers then resolve it and check that the
// real path is still beneath the layout (a symlinked blob cannot lead out).

import { createHash, type Hash } from 'node:crypto';
import { HutchError } from '../util/errors';

export type DigestAlgorithm = 'sha256' | 'sha512';

const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  hex: string;
  /** `algorithm:hex` */
  digest: string;
}

const CORRUPT = 'the image is corrupt or was made by a tool hutch does not support';

/** Parse a digest the layout names; `what` says where it came from ("layer 2 diff_id"). */
export function parseDigest(d: unknown, what: string): ParsedDigest {
  if (typeof d !== 'string' || d === '') throw new HutchError(`${what}: the digest is missing or empty`, { hint: CORRUPT });
  const m = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/.exec(d);
  if (!m) throw new HutchError(`${what}: "${d.slice(0, 200)}" is not a digest (ALGORITHM:HEX)`, { hint: CORRUPT });
  const algorithm = m[1];
  if (algorithm !== 'sha256' && algorithm !== 'sha512') {
    throw new HutchError(`${what}: the digest algorithm "${algorithm}" is not supported`, {
      hint: 'hutch verifies sha256 and sha512, the algorithms the OCI image spec registers; rebuild or re-save the image with one of them',
    });
  }
  const want = HEX_LENGTH[algorithm];
  if (!new RegExp(`^[0-9a-f]{${want}}$`).test(m[2])) {
    throw new HutchError(`${what}: "${d.slice(0, 200)}" is not a ${algorithm} digest (${want} lower-case hex digits)`, { hint: CORRUPT });
  }
  return { algorithm, hex: m[2], digest: d };
}

export function hasher(algorithm: DigestAlgorithm): Hash {
  return createHash(algorithm);
}

export function digestOf(algorithm: DigestAlgorithm, data: Buffer): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

/** `blobs/<algorithm>/<hex>` of a digest (parsed and checked first). */
export function blobPath(digest: unknown, what: string): string {
  const d = parseDigest(digest, what);
  return `blobs/${d.algorithm}/${d.hex}`;
}

/**
 * A path named by a layout, checked to stay inside it: relative, without
 * `..`, NUL or an empty name; returned normalized (`./a//b` -> `a/b`).
 */
export function layoutPath(p: unknown, what: string): string {
  const hint = 'the layout is malformed or hostile; hutch refuses it';
  if (typeof p !== 'string' || p === '') throw new HutchError(`${what}: the path is missing or empty`, { hint });
  if (p.includes('\0')) throw new HutchError(`${what}: the path contains a NUL byte`, { hint });
  if (p.startsWith('/')) throw new HutchError(`${what}: "${p.slice(0, 200)}" is an absolute path; a layout may only name files inside itself`, { hint });
  const parts = p.split('/').filter((x) => x !== '' && x !== '.');
  if (parts.includes('..')) throw new HutchError(`${what}: "${p.slice(0, 200)}" leads outside the layout (..)`, { hint });
  if (!parts.length) throw new HutchError(`${what}: "${p}" names the layout itself, not a file in it`, { hint });
  return parts.join('/');
}

/** True when `real` is `root` or beneath it (both real paths). */
export function isBeneath(real: string, root: string): boolean {
  return real === root || real.startsWith(root === '/' ? '/' : `${root}/`);
}
