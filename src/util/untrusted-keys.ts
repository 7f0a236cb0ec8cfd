// Names that come from an image or a registry, used as keys of hash tables.
//
// Why this exists: the single executable starts without rehashing its V8
// startup snapshot (build.mjs, --no-rehash-snapshot), so its string-hash seed
// is the one drawn when that binary was built, the same at every start. Who
// holds a copy of a shared binary could compute names that all land in one
// bucket, and turn a table of N of them into N² work: an image whose tar or
// config is made of such names would stall `hutch pull` or `image import`
// (it cannot escape anything; it costs time). Two bounds close that:
//  - tables keyed by member names use a per-process random prefix, which the
//    attacker cannot know, so their collisions do not survive it;
//  - a JSON document read from an image or a registry may hold at most
//    MAX_JSON_KEYS keys: the few hundred of a real manifest or config pass, a
//    flood of a million does not.

import { randomBytes } from 'node:crypto';
import { HutchError } from './errors';

let salt: string | undefined;
/** Drawn at the first use, never at load: a module's load state is frozen into the startup snapshot. */
function processSalt(): string {
  salt ??= randomBytes(12).toString('base64');
  return salt;
}

/** A Map keyed by names from untrusted input (tar member paths): the same calls, salted keys. */
export class UntrustedKeyMap<V> {
  private readonly m = new Map<string, V>();
  private readonly s = processSalt();
  get size(): number {
    return this.m.size;
  }
  get(k: string): V | undefined {
    return this.m.get(this.s + k);
  }
  has(k: string): boolean {
    return this.m.has(this.s + k);
  }
  set(k: string, v: V): this {
    this.m.set(this.s + k, v);
    return this;
  }
  delete(k: string): boolean {
    return this.m.delete(this.s + k);
  }
}

/** More keys than any manifest, index or image config has (a config with 1000 history entries has about 5000). */
export const MAX_JSON_KEYS = 20_000;

/** The number of object keys in JSON text: colons outside strings (a bound that is exact for valid JSON). */
export function jsonKeyCount(text: string): number {
  let colons = 0;
  for (let i = text.indexOf(':'); i !== -1; i = text.indexOf(':', i + 1)) if (++colons > MAX_JSON_KEYS) break;
  if (colons <= MAX_JSON_KEYS) return colons; // every key has its colon: no more keys than colons
  // many colons (URLs, timestamps in strings): count only those outside strings
  let keys = 0;
  for (const m of text.matchAll(/"(?:[^"\\]|\\[\s\S])*"|:/g)) if (m[0] === ':') keys++;
  return keys;
}

/**
 * JSON.parse for a document from an image or a registry, refused (a
 * HutchError naming `what`) when it has more than MAX_JSON_KEYS keys.
 * Syntax errors are JSON.parse's, for the caller to word.
 */
export function parseUntrustedJson(text: string, what: string): unknown {
  const keys = jsonKeyCount(text);
  if (keys > MAX_JSON_KEYS)
    throw new HutchError(`${what}: ${keys} keys in one JSON document, more than the ${MAX_JSON_KEYS} hutch reads from an image or a registry`, {
      hint: 'a real manifest or image config has a few hundred; this image cannot be used',
    });
  return JSON.parse(text);
}
