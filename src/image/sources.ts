// What `hutch image import SOURCE` accepts, and how each becomes a list of
// layer streams plus a config:
//   - a directory: one layer, tarred inside the user namespace
//   - an OCI image layout: a directory (oci-layout + index.json + blobs/) or
//     a tar of one
//   - a `docker save` tar (manifest.json + per-layer tars)
//   - a root filesystem tarball: tar, tar.gz, tar.xz, tar.zst
// Compression is detected from content; the layout kind from the members.

import { closeSync, constants, existsSync, fstatSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { HutchError } from '../util/errors';
import { parseUntrustedJson, type UntrustedKeyMap } from '../util/untrusted-keys';
import type { IdentityInfo } from '../host/ids';
import { detectCompression, openBlob, readHead } from './decompress';
import { blobPath, digestOf, isBeneath, layoutPath, parseDigest, type ParsedDigest } from './digest';
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

/** Read access to the files of a layout, whether it is a directory or a tar. */
interface Container {
  exists(p: string): boolean;
  read(p: string): Buffer;
  /** File path + byte range of a member. */
  locate(p: string): { file: string; offset: number; size: number };
  label: string;
}

/**
 * A layout directory. Every path is checked (layoutPath: relative, no `..`),
 * resolved, and its real path must stay beneath the layout's real path: a
 * blob that is a symlink out of the layout is refused. The file is opened by
 * that real path with O_NOFOLLOW, so what is read is what was checked.
 */
function dirContainer(dir: string): Container {
  const root = realpathSync(dir);
  const resolveIn = (p: string): string | undefined => {
    const rel = layoutPath(p, `${dir}: ${p}`);
    let real: string;
    try {
      real = realpathSync(join(root, rel));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new HutchError(`${dir}: ${rel}: ${(e as Error).message}`);
    }
    if (!isBeneath(real, root) || real === root) {
      throw new HutchError(`${dir}: ${rel} leads outside the layout (to ${real})`, { hint: 'the layout is malformed or hostile; hutch refuses it' });
    }
    return real;
  };
  const need = (p: string): string => {
    const real = resolveIn(p);
    if (!real) throw new HutchError(`${dir}: ${p} is missing`, { hint: 'the layout is incomplete' });
    return real;
  };
  const openFile = (real: string): number => {
    const fd = openSync(real, constants.O_RDONLY | constants.O_NOFOLLOW);
    if (!fstatSync(fd).isFile()) {
      closeSync(fd);
      throw new HutchError(`${dir}: ${real} is not a regular file`, { hint: 'the layout is malformed' });
    }
    return fd;
  };
  return {
    label: dir,
    exists: (p) => resolveIn(p) !== undefined,
    read: (p) => {
      const fd = openFile(need(p));
      try {
        const size = fstatSync(fd).size;
        const b = Buffer.alloc(size);
        let got = 0;
        while (got < size) {
          const n = readSync(fd, b, got, size - got, got);
          if (n === 0) break;
          got += n;
        }
        return b.subarray(0, got);
      } finally {
        closeSync(fd);
      }
    },
    locate: (p) => {
      const real = need(p);
      const fd = openFile(real);
      try {
        return { file: real, offset: 0, size: fstatSync(fd).size };
      } finally {
        closeSync(fd);
      }
    },
  };
}

/**
 * A layout inside a tar: members are looked up by name, so nothing outside
 * the tar can be read; names that a manifest gives, and symlink members'
 * targets, are still checked not to leave the layout.
 */
function tarContainer(file: string, members: UntrustedKeyMap<TarMember>): Container {
  const resolveMember = (p: string, depth = 0): TarMember & { name: string } => {
    const name = layoutPath(p, `${file}: ${p}`);
    const m = members.get(name);
    if (!m) throw new HutchError(`${file}: member ${name} is missing`, { hint: 'the archive is incomplete' });
    if (depth >= 8 && (m.type === 'symlink' || m.type === 'hardlink')) throw new HutchError(`${file}: ${name}: too many levels of links`);
    if (m.type === 'symlink') {
      if (m.linkpath.startsWith('/'))
        throw new HutchError(`${file}: ${name} is a symlink to an absolute path (${m.linkpath}), which leads outside the layout`, {
          hint: 'the archive is malformed or hostile; hutch refuses it',
        });
      const target = posix.normalize(posix.join(posix.dirname(name), m.linkpath));
      if (target === '..' || target.startsWith('../'))
        throw new HutchError(`${file}: ${name} is a symlink leading outside the layout (${m.linkpath})`, {
          hint: 'the archive is malformed or hostile; hutch refuses it',
        });
      return resolveMember(target, depth + 1);
    }
    if (m.type === 'hardlink') return resolveMember(m.linkpath, depth + 1);
    if (m.type !== 'file') throw new HutchError(`${file}: ${name} is not a regular file`, { hint: 'the archive is malformed' });
    return { ...m, name };
  };
  return {
    label: file,
    exists: (p) => {
      try {
        return members.has(layoutPath(p, `${file}: ${p}`));
      } catch {
        return false;
      }
    },
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
    return parseUntrustedJson(c.read(p).toString('utf8'), `${c.label}: ${p}`) as T;
  } catch (e) {
    if (e instanceof HutchError) throw e;
    throw new HutchError(`${c.label}: ${p} is not valid JSON: ${(e as Error).message}`);
  }
}

function verifiedBlob(c: Container, digest: unknown, what: string): Buffer {
  const d = parseDigest(digest, `${c.label}: ${what}`);
  const b = c.read(blobPath(d.digest, what));
  if (digestOf(d.algorithm, b) !== d.digest) {
    throw new HutchError(`${c.label}: ${what} ${d.digest} does not match its digest`, { hint: 'the image is corrupt' });
  }
  return b;
}

function layerFromContainer(c: Container, path: string, what: string, diffId?: ParsedDigest, blobDigest?: ParsedDigest): LayerSource {
  const loc = c.locate(path);
  return {
    what,
    diffId: diffId?.digest,
    size: loc.size,
    open(onRaw) {
      const b = openBlob(loc.file, loc.offset, loc.size, onRaw, blobDigest?.algorithm ?? 'sha256');
      return {
        data: b.data,
        async verify() {
          if (blobDigest && b.rawDigest() !== blobDigest.digest) {
            throw new HutchError(`${what}: blob digest mismatch: expected ${blobDigest.digest}, got ${b.rawDigest()}`, { hint: 'the image is corrupt' });
          }
        },
      };
    },
  };
}

/** A docker-save path that names its content by digest (`<hex>.json`, `blobs/<alg>/<hex>`): the digest it must have. */
function digestInName(p: string): ParsedDigest | undefined {
  const blob = /(?:^|\/)blobs\/(sha256|sha512)\/([0-9a-f]+)$/.exec(p);
  if (blob) return parseDigest(`${blob[1]}:${blob[2]}`, p);
  const hex = /(?:^|\/)([0-9a-f]{64})(\.json)?$/.exec(p)?.[1];
  return hex ? parseDigest(`sha256:${hex}`, p) : undefined;
}

function diffIdsOf(c: Container, config: { rootfs?: { diff_ids?: unknown } }, count: number, counted: string): ParsedDigest[] {
  const raw = config.rootfs?.diff_ids;
  if (!Array.isArray(raw)) throw new HutchError(`${c.label}: the image config has no rootfs.diff_ids`, { hint: 'the image is corrupt' });
  if (raw.length !== count) {
    throw new HutchError(`${c.label}: the config lists ${raw.length} layer digests but ${counted} ${count} layers`, { hint: 'the image is corrupt' });
  }
  return raw.map((d, i) => parseDigest(d, `${c.label}: layer ${i + 1} diff_id`));
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
  let cands = Array.isArray(index?.manifests) ? index.manifests.filter((m): m is Descriptor => !!m && typeof m === 'object') : [];
  if (ref) {
    const named = cands.filter(
      (m) => m.annotations?.['org.opencontainers.image.ref.name'] === ref || m.annotations?.['io.containerd.image.name']?.endsWith(`:${ref}`),
    );
    if (!named.length) {
      const refs = cands.map((m) => m.annotations?.['org.opencontainers.image.ref.name']).filter(Boolean);
      throw new HutchError(`--ref ${ref}: no such reference in ${c.label}`, {
        hint: refs.length ? `references: ${refs.join(', ')}` : 'the layout names no references; leave out --ref',
      });
    }
    cands = named;
  }
  // Nested image indexes (multi-platform): pick this host's platform.
  for (let depth = 0; depth < 4; depth++) {
    const nested = cands.filter((m) => m.mediaType?.includes('image.index') || m.mediaType?.includes('manifest.list'));
    if (!nested.length) break;
    const next: Descriptor[] = [];
    for (const n of nested)
      next.push(...(parseJson<{ manifests?: Descriptor[] }>({ ...c, read: () => verifiedBlob(c, n.digest, 'image index') }, String(n.digest)).manifests ?? []));
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
  const manifest = jsonOf<{ config?: Descriptor; layers?: Descriptor[] }>(c, verifiedBlob(c, desc.digest, 'manifest'), 'manifest');
  if (!manifest.config || !Array.isArray(manifest.layers))
    throw new HutchError(`${c.label}: the manifest has no config or no layers`, { hint: 'the image is corrupt' });
  const config = jsonOf<{ config?: Record<string, unknown>; rootfs?: { diff_ids?: unknown } }>(c, verifiedBlob(c, manifest.config.digest, 'config'), 'config');
  const layersList = manifest.layers;
  const diffIds = diffIdsOf(c, config, layersList.length, 'the manifest');
  const layers = layersList.map((l, i) => {
    const blob = parseDigest(l?.digest, `${c.label}: layer ${i + 1}`);
    const path = blobPath(blob.digest, `layer ${i + 1}`);
    if (l.mediaType && /nondistributable|foreign/.test(l.mediaType) && !c.exists(path)) {
      throw new HutchError(`${c.label}: layer ${i + 1} is a foreign layer that is not in the layout`);
    }
    return layerFromContainer(c, path, `layer ${i + 1}/${layersList.length} ${blob.digest.slice(0, 19)}`, diffIds[i], blob);
  });
  return { kind, layers, config: configFromOci(config.config) };
}

function jsonOf<T>(c: Container, b: Buffer, what: string): T {
  let v: unknown;
  try {
    v = parseUntrustedJson(b.toString('utf8'), `${c.label}: the ${what}`);
  } catch (e) {
    if (e instanceof HutchError) throw e;
    throw new HutchError(`${c.label}: the ${what} is not valid JSON: ${(e as Error).message}`);
  }
  if (!v || typeof v !== 'object') throw new HutchError(`${c.label}: the ${what} is not a JSON object`, { hint: 'the image is corrupt' });
  return v as T;
}

function dockerSavePlan(c: Container): ImportPlan {
  const list = parseJson<{ Config?: unknown; Layers?: unknown; RepoTags?: string[] }[]>(c, 'manifest.json');
  if (!Array.isArray(list) || list.length === 0) throw new HutchError(`${c.label}: manifest.json lists no image`);
  if (list.length > 1) throw new HutchError(`${c.label} holds ${list.length} images; hutch imports one at a time`, { hint: 'docker save one image per file' });
  const m = list[0];
  if (!m || typeof m !== 'object' || !Array.isArray(m.Layers))
    throw new HutchError(`${c.label}: manifest.json has no Layers list`, { hint: 'the image is corrupt' });
  const configPath = layoutPath(m.Config, `${c.label}: manifest.json Config`);
  const raw = c.read(configPath);
  const named = digestInName(configPath);
  if (named && digestOf(named.algorithm, raw) !== named.digest)
    throw new HutchError(`${c.label}: ${configPath} does not match its digest`, { hint: 'the image is corrupt' });
  const config = jsonOf<{ config?: Record<string, unknown>; rootfs?: { diff_ids?: unknown } }>(c, raw, 'config');
  const paths = (m.Layers as unknown[]).map((p, i) => layoutPath(p, `${c.label}: manifest.json layer ${i + 1}`));
  const diffIds = diffIdsOf(c, config, paths.length, 'manifest.json');
  const layers = paths.map((p, i) =>
    layerFromContainer(
      c,
      p,
      `layer ${i + 1}/${paths.length} ${diffIds[i].digest.slice(0, 19)}`,
      diffIds[i],
      /(?:^|\/)blobs\//.test(p) ? digestInName(p) : undefined,
    ),
  );
  return { kind: 'docker-save', layers, config: configFromOci(config.config) };
}

function directoryLayer(dir: string, ids: IdentityInfo): LayerSource {
  return {
    what: `directory ${dir}`,
    size: 0,
    open() {
      const argv = [
        toolPath('tar'),
        '-c',
        '--numeric-owner',
        '--xattrs',
        '--xattrs-include=user.*',
        '--sort=name',
        '--one-file-system',
        '-C',
        dir,
        '-f',
        '-',
        '.',
      ];
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
  let st: ReturnType<typeof statSync> | undefined;
  try {
    st = statSync(source);
  } catch {
    throw new HutchError(`import source ${source} does not exist`, { hint: 'give a tarball, a directory, an OCI layout or a docker save tar' });
  }
  if (st.isDirectory()) {
    if (existsSync(join(source, 'oci-layout')) && existsSync(join(source, 'index.json'))) return ociPlan(dirContainer(source), 'oci-dir', ref);
    if (existsSync(join(source, 'manifest.json')) && !existsSync(join(source, 'etc')) && !existsSync(join(source, 'usr')))
      return dockerSavePlan(dirContainer(source));
    return { kind: 'directory', layers: [directoryLayer(source, ids)], config: { ...EMPTY_CONFIG } };
  }
  if (!st.isFile()) throw new HutchError(`import source ${source} is neither a file nor a directory`);
  const comp = detectCompression(readHead(source, 0, 8));
  if (comp === 'none') {
    const fd = openSync(source, 'r');
    let members: UntrustedKeyMap<TarMember>;
    try {
      members = indexTarFile(fd, fstatSync(fd).size, readSync);
    } catch (e) {
      throw new HutchError(`${source}: not a tar archive (${(e as Error).message})`, {
        hint: 'give a tar, tar.gz, tar.xz or tar.zst file, a directory or an OCI layout',
      });
    } finally {
      closeSync(fd);
    }
    const c = tarContainer(source, members);
    if (members.has('oci-layout') && members.has('index.json')) return ociPlan(c, 'oci-tar', ref);
    if (members.has('manifest.json') && !members.has('etc') && !members.has('usr')) return dockerSavePlan(c);
  }
  // the file the user named (a symlink to it is fine: the user chose it)
  const real = realpathSync(source);
  const layer = layerFromContainer(
    { label: source, exists: () => true, read: () => Buffer.alloc(0), locate: () => ({ file: real, offset: 0, size: statSync(real).size }) },
    real,
    `root filesystem ${source}`,
  );
  return { kind: 'tarball', layers: [layer], config: { ...EMPTY_CONFIG } };
}
