// Image references as users type them (`debian:bookworm`, `ghcr.io/org/img:tag`,
// `localhost:5000/a/b@sha256:...`), parsed by the grammar of the
// distribution spec / docker's reference package. Pure: no I/O, so it is
// unit-tested and fuzzed directly.
//
// Short names (no registry part) are not guessed here: `qualify()` expands
// them against a search list (default: docker.io only, where a one-part name
// means `library/NAME`), like podman's `unqualified-search-registries`.

import { HutchError } from '../../util/errors';

export interface Reference {
  /** Registry host[:port] as written (docker.io for Docker Hub). */
  registry: string;
  /** Repository path, e.g. library/debian. */
  repository: string;
  tag?: string;
  /** `sha256:...` / `sha512:...` when pinned. */
  digest?: string;
}

export interface ParsedName {
  /** Registry part when the name has one (first component with a '.' or ':', or localhost). */
  registry?: string;
  path: string;
  tag?: string;
  digest?: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;
export const DIGEST_RE = /^(?:sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$/;

export const DOCKER_HUB = 'docker.io';

function bad(text: string, why: string): HutchError {
  return new HutchError(`"${text}" is not a valid image reference: ${why}`, {
    hint: 'e.g. debian:bookworm, ghcr.io/org/img:tag, localhost:5000/img:tag or img@sha256:<64 hex digits>',
  });
}

/** Split a reference into its parts; throws HutchError naming what is wrong. */
export function parseName(text: string): ParsedName {
  if (!text) throw bad(text, 'it is empty');
  if (text.length > 512) throw bad(`${text.slice(0, 40)}...`, 'it is longer than 512 characters');
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) throw bad(text, `"${digest}" is not a sha256:<64 hex> or sha512:<128 hex> digest`);
  }
  let tag: string | undefined;
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(text, `"${tag}" is not a valid tag (letters, digits, _ . -, up to 128, not starting with . or -)`);
  }
  const parts = rest.split('/');
  let registry: string | undefined;
  if (parts.length > 1 && (parts[0].includes('.') || parts[0].includes(':') || parts[0] === 'localhost')) {
    registry = parts.shift()!;
    if (!HOST.test(registry)) throw bad(text, `"${registry}" is not a valid registry host[:port]`);
  }
  if (!parts.length || parts.some((p) => p === '')) throw bad(text, 'the repository name has an empty part');
  for (const p of parts) {
    if (!COMPONENT.test(p)) throw bad(text, `"${p}" must be lower-case letters and digits, separated by . _ __ or -`);
  }
  const path = parts.join('/');
  if ((registry ? registry.length + 1 : 0) + path.length > 255) throw bad(text, 'the name is longer than 255 characters');
  return { registry, path, tag, digest };
}

/** Docker Hub's one-part names live under library/. */
function repoFor(registry: string, path: string): string {
  return registry === DOCKER_HUB && !path.includes('/') ? `library/${path}` : path;
}

/** The fully qualified references to try for TEXT, in order (one unless it is a short name). */
export function qualify(text: string, searchRegistries: string[] = [DOCKER_HUB]): Reference[] {
  const p = parseName(text);
  const tag = p.tag ?? (p.digest ? undefined : 'latest');
  if (p.registry) {
    const registry = p.registry === 'index.docker.io' || p.registry === 'registry-1.docker.io' ? DOCKER_HUB : p.registry;
    return [{ registry, repository: repoFor(registry, p.path), tag, digest: p.digest }];
  }
  if (!searchRegistries.length) {
    throw new HutchError(`"${text}" names no registry and the search list is empty`, { hint: 'write the full name, e.g. docker.io/library/debian:bookworm' });
  }
  return searchRegistries.map((registry) => ({ registry, repository: repoFor(registry, p.path), tag, digest: p.digest }));
}

/** `docker.io/library/debian:bookworm`, `host:5000/a@sha256:...` (tag and digest both when both given). */
export function formatReference(r: Reference): string {
  return `${r.registry}/${r.repository}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
}

/** Where the registry API is: Docker Hub's API host differs from its name. */
export function apiHost(registry: string): string {
  return registry === DOCKER_HUB ? 'registry-1.docker.io' : registry;
}

/** localhost, 127.0.0.0/8, ::1: a registry on this machine. */
export function isLoopback(registry: string): boolean {
  const host = registry.startsWith('[') ? registry.slice(1, registry.indexOf(']')) : registry.replace(/:\d+$/, '');
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * The search list: `unqualified-search-registries = ["docker.io", "quay.io"]`
 * in hutch's registries.conf (podman's key and TOML syntax; other keys are ignored).
 */
export function parseSearchList(conf: string, file: string): string[] | undefined {
  const m = /^\s*unqualified-search-registries\s*=\s*\[([^\]]*)\]/m.exec(conf);
  if (!m) return undefined;
  const out: string[] = [];
  for (const item of m[1].split(',')) {
    const s = item.trim();
    if (!s) continue;
    const q = /^"([^"]+)"$|^'([^']+)'$/.exec(s);
    const host = q?.[1] ?? q?.[2];
    if (!host || !HOST.test(host)) {
      throw new HutchError(`${file}: unqualified-search-registries: ${s} is not a quoted registry host`, {
        hint: 'e.g. unqualified-search-registries = ["docker.io", "quay.io"]',
      });
    }
    out.push(host);
  }
  return out;
}
