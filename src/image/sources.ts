// What `hutch image import SOURCE` accepts, and how each becomes a list of
// layer streams plus a config:
//   - a directory: one layer, tarred inside the user namespace
//   - an OCI image layout: a directory (oci-layout + index.json + blobs/) or
//     a tar of one
//   - a `docker save` tar (manifest.json + per-layer tars)
//   - a root filesystem tarball: tar, tar.gz, tar.xz, tar.zst
// Compression is detected from content; the layout kind from the members.

import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { HutchError } from '../util/errors';
import type { IdentityInfo } from '../host/ids';
import { detectCompression, openBlob, readHead } from './decompress';
import { configFromOci, type ImageConfig } from './store';
import { indexTarFile, type TarMember } from './tar';
import { spawnInUserns, toolPath } from '../helper/userns';

export interface LayerSource {
  /** For messages: "layer 2/3 sha256:ab12…". */
  what: string;
  /** Uncompressed digest it must have (OCI diff_id), when the source says. */
  diffId?: string;
  /** Raw bytes to read (for progress). */
  size: number;
  /** Start reading; `verify()` after the data is consumed checks the compressed digest. */
  open(onRaw: (n: number) => void): { data: AsyncIterable<Buffer>; verify(): Promise<void> };
}

export interface ImportPlan {
  kind: 'directory' | 'oci-dir' | 'oci-tar' | 'docker-save' | 'tarball';
  layers: LayerSource[];
  config: ImageConfig;
}

const EMPTY_CONFIG: ImageConfig = { env: [], exposedPorts: [] };

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Read access to the files of a layout, whether it is a directory or a tar. */
interface Container {
  exists(p: string): boolean;
  read(p: string): Buffer;
  /** File path + byte range of a member. */
  locate(p: string): { file: string; offset: number; size: number };
  label: string;
}

function dirContainer(dir: string): Container {
  return {
    label: dir,
    exists: (p) => existsSync(join(dir, p)),
    read: (p) => readFileSync(join(dir, p)),
    locate: (p) => ({ file: join(dir, p), offset: 0, size: statSync(join(dir, p)).size }),
  };
}

function tarContainer(file: string, members: Map<string, TarMember>): Container {
  const resolveMember = (p: string, depth = 0): TarMember & { name: string } => {
    const name = posix.normalize(p).replace(/^(\.\/)+/, '');
    const m = members.get(name);
    if (!m) throw new HutchError(`${file}: member ${name} is missing`, { hint: 'the archive is incomplete' });
    if (depth < 8 && m.type === 'symlink') return resolveMember(posix.join(posix.dirname(name), m.linkpath), depth + 1);
    if (depth < 8 && m.type === 'hardlink') return resolveMember(m.linkpath, depth + 1);
    return { ...m, name };
  };
  return {
    label: file,
    exists: (p) => members.has(posix.normalize(p)),
    read: (p) => {
      const m = resolveMember(p);
      const fd = openSync(file, 'r');
      try {
        const b = Buffer.alloc(m.size);
        readSync(fd, b, 0, m.size, m.offset);
        return b;
      } finally {
        closeSync(fd);
      }
    },
    locate: (p) => {
      const m = resolveMember(p);
      return { file, offset: m.offset, size: m.size };
    },
  };
}

function parseJson<T>(c: Container, p: string): T {
  try {
    return JSON.parse(c.read(p).toString('utf8')) as T;
  } catch (e) {
    if (e instanceof HutchError) throw e;
    throw new HutchError(`${c.label}: ${p} is not valid JSON: ${(e as Error).message}`);
  }
}

function blobPath(digest: string): string {
  const m = /^(sha256|sha512):([0-9a-f]+)$/.exec(digest);
  if (!m) throw new HutchError(`unsupported digest "${digest}"`);
  return `blobs/${m[1]}/${m[2]}`;
}

function verifiedBlob(c: Container, digest: string): Buffer {
  const b = c.read(blobPath(digest));
  if (digest.startsWith('sha256:') && sha256(b) !== digest) {
    throw new HutchError(`${c.label}: blob ${digest} does not match its digest`, { hint: 'the image is corrupt' });
  }
  return b;
}

function layerFromContainer(c: Container, path: string, what: string, diffId?: string, blobDigest?: string): LayerSource {
  const loc = c.locate(path);
  return {
    what,
    diffId,
    size: loc.size,
    open(onRaw) {
      const b = openBlob(loc.file, loc.offset, loc.size, onRaw);
      return {
        data: b.data,
        async verify() {
          if (blobDigest && blobDigest.startsWith('sha256:') && b.rawDigest() !== blobDigest) {
            throw new HutchError(`${what}: blob digest mismatch: expected ${blobDigest}, got ${b.rawDigest()}`, { hint: 'the image is corrupt' });
          }
        },
      };
    },
  };
}

interface Descriptor {
  mediaType?: string;
  digest: string;
  size?: number;
  platform?: { architecture?: string; os?: string };
  annotations?: Record<string, string>;
}

const HOST_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

function pickManifest(c: Container, ref: string | undefined): Descriptor {
  const index = parseJson<{ manifests?: Descriptor[] }>(c, 'index.json');
  let cands = index.manifests ?? [];
  if (ref) {
    const named = cands.filter((m) => m.annotations?.['org.opencontainers.image.ref.name'] === ref || m.annotations?.['io.containerd.image.name']?.endsWith(`:${ref}`));
    if (!named.length) {
      const refs = cands.map((m) => m.annotations?.['org.opencontainers.image.ref.name']).filter(Boolean);
      throw new HutchError(`--ref ${ref}: no such reference in ${c.label}`, { hint: refs.length ? `references: ${refs.join(', ')}` : 'the layout names no references; leave out --ref' });
    }
    cands = named;
  }
  // Nested image indexes (multi-platform): pick this host's platform.
  for (let depth = 0; depth < 4; depth++) {
    const nested = cands.filter((m) => m.mediaType?.includes('image.index') || m.mediaType?.includes('manifest.list'));
    if (!nested.length) break;
    const next: Descriptor[] = [];
    for (const n of nested) next.push(...(parseJson<{ manifests?: Descriptor[] }>({ ...c, read: () => verifiedBlob(c, n.digest) }, n.digest).manifests ?? []));
    cands = [...cands.filter((m) => !nested.includes(m)), ...next];
  }
  const arch = HOST_ARCH[process.arch] ?? process.arch;
  const forHost = cands.filter((m) => !m.platform || (m.platform.os === 'linux' && m.platform.architecture === arch));
  if (forHost.length === 1) return forHost[0];
  if (forHost.length === 0) throw new HutchError(`${c.label}: no image for linux/${arch}`, { hint: 'import an image built for this machine' });
  const refs = forHost.map((m) => m.annotations?.['org.opencontainers.image.ref.name'] ?? m.digest);
  throw new HutchError(`${c.label} holds ${forHost.length} images`, { hint: `choose one with --ref: ${refs.join(', ')}` });
}

function ociPlan(c: Container, kind: 'oci-dir' | 'oci-tar', ref: string | undefined): ImportPlan {
  const desc = pickManifest(c, ref);
  const manifest = JSON.parse(verifiedBlob(c, desc.digest).toString('utf8')) as { config: Descriptor; layers: Descriptor[] };
  const config = JSON.parse(verifiedBlob(c, manifest.config.digest).toString('utf8')) as { config?: Record<string, unknown>; rootfs?: { diff_ids?: string[] } };
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== manifest.layers.length) {
    throw new HutchError(`${c.label}: the config lists ${diffIds.length} layer digests but the manifest ${manifest.layers.length} layers`, { hint: 'the image is corrupt' });
  }
  const layers = manifest.layers.map((l, i) => {
    if (l.mediaType && /nondistributable|foreign/.test(l.mediaType) && !c.exists(blobPath(l.digest))) {
      throw new HutchError(`${c.label}: layer ${i + 1} is a foreign layer that is not in the layout`);
    }
    return layerFromContainer(c, blobPath(l.digest), `layer ${i + 1}/${manifest.layers.length} ${l.digest.slice(0, 19)}`, diffIds[i], l.digest);
  });
  return { kind, layers, config: configFromOci(config.config) };
}

function dockerSavePlan(c: Container): ImportPlan {
  const list = parseJson<{ Config: string; Layers: string[]; RepoTags?: string[] }[]>(c, 'manifest.json');
  if (!Array.isArray(list) || list.length === 0) throw new HutchError(`${c.label}: manifest.json lists no image`);
  if (list.length > 1) throw new HutchError(`${c.label} holds ${list.length} images; hutch imports one at a time`, { hint: 'docker save one image per file' });
  const m = list[0];
  const raw = c.read(m.Config);
  const hexName = /([0-9a-f]{64})(\.json)?$/.exec(m.Config)?.[1];
  if (hexName && sha256(raw) !== `sha256:${hexName}`) throw new HutchError(`${c.label}: ${m.Config} does not match its digest`, { hint: 'the image is corrupt' });
  const config = JSON.parse(raw.toString('utf8')) as { config?: Record<string, unknown>; rootfs?: { diff_ids?: string[] } };
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== m.Layers.length) throw new HutchError(`${c.label}: ${m.Layers.length} layers but ${diffIds.length} layer digests in the config`);
  const layers = m.Layers.map((p, i) => {
    const blobHex = /blobs\/sha256\/([0-9a-f]{64})$/.exec(p)?.[1];
    return layerFromContainer(c, p, `layer ${i + 1}/${m.Layers.length} ${diffIds[i].slice(0, 19)}`, diffIds[i], blobHex ? `sha256:${blobHex}` : undefined);
  });
  return { kind: 'docker-save', layers, config: configFromOci(config.config) };
}

function directoryLayer(dir: string, ids: IdentityInfo): LayerSource {
  return {
    what: `directory ${dir}`,
    size: 0,
    open() {
      const argv = [toolPath('tar'), '-c', '--numeric-owner', '--xattrs', '--xattrs-include=user.*', '--sort=name', '--one-file-system', '-C', dir, '-f', '-', '.'];
      const p = spawnInUserns(ids, argv, { stdin: 'ignore', stdout: 'pipe' });
      return {
        data: p.child.stdout!,
        async verify() {
          const r = await p.done;
          if (r.code !== 0) {
            throw new HutchError(`reading ${dir} failed: ${r.stderr.trim().split('\n').slice(-3).join('; ')}`, {
              hint: 'every file must be readable by you (inside your user namespace); files of other users are not',
            });
          }
        },
      };
    },
  };
}

/** Decide what SOURCE is and how to read it. */
export function planImport(source: string, ids: IdentityInfo, ref?: string): ImportPlan {
  let st;
  try {
    st = statSync(source);
  } catch {
    throw new HutchError(`import source ${source} does not exist`, { hint: 'give a tarball, a directory, an OCI layout or a docker save tar' });
  }
  if (st.isDirectory()) {
    if (existsSync(join(source, 'oci-layout')) && existsSync(join(source, 'index.json'))) return ociPlan(dirContainer(source), 'oci-dir', ref);
    if (existsSync(join(source, 'manifest.json')) && !existsSync(join(source, 'etc')) && !existsSync(join(source, 'usr'))) return dockerSavePlan(dirContainer(source));
    return { kind: 'directory', layers: [directoryLayer(source, ids)], config: { ...EMPTY_CONFIG } };
  }
  if (!st.isFile()) throw new HutchError(`import source ${source} is neither a file nor a directory`);
  const comp = detectCompression(readHead(source, 0, 8));
  if (comp === 'none') {
    const fd = openSync(source, 'r');
    let members: Map<string, TarMember>;
    try {
      members = indexTarFile(fd, fstatSync(fd).size, readSync);
    } catch (e) {
      throw new HutchError(`${source}: not a tar archive (${(e as Error).message})`, { hint: 'give a tar, tar.gz, tar.xz or tar.zst file, a directory or an OCI layout' });
    } finally {
      closeSync(fd);
    }
    const c = tarContainer(source, members);
    if (members.has('oci-layout') && members.has('index.json')) return ociPlan(c, 'oci-tar', ref);
    if (members.has('manifest.json') && !members.has('etc') && !members.has('usr')) return dockerSavePlan(c);
  }
  const layer = layerFromContainer(dirContainer('/'), source, `root filesystem ${source}`);
  return { kind: 'tarball', layers: [layer], config: { ...EMPTY_CONFIG } };
}
