// Manifests and indexes as registries send them, checked before anything is
// fetched on their word: OCI image manifest and index, Docker schema 2
// manifest and manifest list. Pure functions over untrusted bytes (fuzzed in
// test/unit): each returns a typed value or throws a HutchError, nothing else.

import { HutchError } from '../../util/errors';
import { DIGEST_RE } from './reference';
import { parseUntrustedJson } from '../../util/untrusted-keys';

export const MT = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerV1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
} as const;

/** What hutch asks for, best first (the Accept header). */
export const ACCEPT = [MT.ociIndex, MT.dockerList, MT.ociManifest, MT.dockerManifest].join(', ');

export const MAX_MANIFEST_BYTES = 4 << 20; // the distribution spec's advice for registries

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  urls?: string[];
}

export type Compression = 'none' | 'gzip' | 'zstd';

export interface LayerDescriptor extends Descriptor {
  compression: Compression;
}

export type Parsed =
  | { kind: 'index'; mediaType: string; manifests: Descriptor[] }
  | { kind: 'image'; mediaType: string; config: Descriptor; layers: LayerDescriptor[] };

const LAYER_TYPES: Record<string, Compression> = {
  'application/vnd.oci.image.layer.v1.tar': 'none',
  'application/vnd.oci.image.layer.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd': 'zstd',
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'gzip',
  'application/vnd.docker.image.rootfs.diff.tar': 'none',
};
const FOREIGN = /nondistributable|foreign/;

function fail(what: string, why: string): HutchError {
  return new HutchError(`${what}: the registry sent an invalid manifest: ${why}`, {
    hint: 'the registry or the image is broken; report it to whoever publishes the image',
  });
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function descriptor(v: unknown, where: string, what: string): Descriptor {
  if (!isObj(v)) throw fail(what, `${where} is not an object`);
  const { mediaType, digest, size, platform, urls } = v;
  if (typeof mediaType !== 'string' || mediaType.length > 255) throw fail(what, `${where}.mediaType is missing`);
  if (typeof digest !== 'string' || !DIGEST_RE.test(digest)) throw fail(what, `${where}.digest is not a sha256 or sha512 digest`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw fail(what, `${where}.size is not a byte count`);
  const d: Descriptor = { mediaType, digest, size };
  if (platform !== undefined) {
    if (!isObj(platform) || typeof platform.os !== 'string' || typeof platform.architecture !== 'string')
      throw fail(what, `${where}.platform needs os and architecture`);
    d.platform = { os: platform.os, architecture: platform.architecture };
    if (typeof platform.variant === 'string' && platform.variant) d.platform.variant = platform.variant;
  }
  if (Array.isArray(urls)) d.urls = urls.filter((u): u is string => typeof u === 'string');
  return d;
}

/** Parse a manifest or index; `contentType` is the response's Content-Type (the body's mediaType wins when both are given). */
export function parseManifest(body: Buffer, contentType: string | undefined, what: string): Parsed {
  if (body.length > MAX_MANIFEST_BYTES) throw fail(what, `it is larger than ${MAX_MANIFEST_BYTES} bytes`);
  let j: unknown;
  try {
    j = parseUntrustedJson(body.toString('utf8'), what);
  } catch (e) {
    if (e instanceof HutchError) throw e;
    throw fail(what, `not JSON (${(e as Error).message.slice(0, 80)})`);
  }
  if (!isObj(j)) throw fail(what, 'not a JSON object');
  const header = contentType?.split(';')[0].trim().toLowerCase();
  const mediaType = typeof j.mediaType === 'string' ? j.mediaType : header && header !== 'application/json' ? header : undefined;
  if (j.schemaVersion === 1 || mediaType === MT.dockerV1Signed || mediaType === 'application/vnd.docker.distribution.manifest.v1+json') {
    throw new HutchError(`${what}: the image uses Docker's schema 1 manifest, which hutch does not read`, {
      hint: 'schema 1 was retired in 2019; ask the publisher for a rebuilt image',
    });
  }
  if (j.schemaVersion !== 2) throw fail(what, 'schemaVersion is not 2');
  const isIndex = mediaType === MT.ociIndex || mediaType === MT.dockerList || (mediaType === undefined && Array.isArray(j.manifests) && !('layers' in j));
  if (isIndex) {
    if (!Array.isArray(j.manifests)) throw fail(what, 'the index has no manifests list');
    if (j.manifests.length > 1000) throw fail(what, 'the index lists more than 1000 manifests');
    return { kind: 'index', mediaType: mediaType ?? MT.ociIndex, manifests: j.manifests.map((m, i) => descriptor(m, `manifests[${i}]`, what)) };
  }
  if (mediaType !== undefined && mediaType !== MT.ociManifest && mediaType !== MT.dockerManifest) {
    throw new HutchError(`${what}: the registry sent a ${mediaType}, not a container image`, {
      hint: 'the reference names something else (an artifact, a chart, a signature)',
    });
  }
  const config = descriptor(j.config, 'config', what);
  if (config.mediaType !== MT.ociConfig && config.mediaType !== MT.dockerConfig) {
    throw new HutchError(`${what}: the manifest's config is a ${config.mediaType}, not a container image config`, {
      hint: 'the reference names an artifact, not an image',
    });
  }
  if (!Array.isArray(j.layers)) throw fail(what, 'the manifest has no layers list');
  if (j.layers.length > 500) throw fail(what, 'the manifest lists more than 500 layers');
  const layers = j.layers.map((l, i): LayerDescriptor => {
    const d = descriptor(l, `layers[${i}]`, what);
    if (FOREIGN.test(d.mediaType)) {
      throw new HutchError(`${what}: layer ${i + 1} is a foreign (non-distributable) layer, which hutch does not fetch`, {
        hint: 'such layers belong to Windows images',
      });
    }
    const compression = LAYER_TYPES[d.mediaType];
    if (compression === undefined) throw new HutchError(`${what}: layer ${i + 1} has media type ${d.mediaType}, which is not a container layer`);
    return { ...d, compression };
  });
  return { kind: 'image', mediaType: mediaType ?? MT.ociManifest, config, layers };
}

export interface ImageConfigBlob {
  config?: Record<string, unknown>;
  diffIds: string[];
  platform: Platform;
}

/** The image config (its digest already checked): diff_ids and the runtime config. */
export function parseConfigBlob(body: Buffer, what: string): ImageConfigBlob {
  let j: unknown;
  try {
    j = parseUntrustedJson(body.toString('utf8'), what);
  } catch (e) {
    if (e instanceof HutchError) throw e;
    throw fail(what, `the image config is not JSON (${(e as Error).message.slice(0, 80)})`);
  }
  if (!isObj(j)) throw fail(what, 'the image config is not a JSON object');
  const rootfs = isObj(j.rootfs) ? j.rootfs : {};
  const ids = Array.isArray(rootfs.diff_ids) ? rootfs.diff_ids : [];
  if (!ids.every((d): d is string => typeof d === 'string' && DIGEST_RE.test(d))) throw fail(what, 'rootfs.diff_ids holds something that is not a digest');
  return {
    config: isObj(j.config) ? j.config : undefined,
    diffIds: ids,
    platform: {
      os: typeof j.os === 'string' ? j.os : '',
      architecture: typeof j.architecture === 'string' ? j.architecture : '',
      variant: typeof j.variant === 'string' ? j.variant : undefined,
    },
  };
}

const NODE_ARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
};

export function hostPlatform(): Platform {
  return { os: 'linux', architecture: NODE_ARCH[process.arch] ?? process.arch };
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** `--platform os/arch[/variant]`. */
export function parsePlatform(text: string): Platform {
  const m = /^([a-z0-9]+)\/([a-z0-9_]+)(?:\/([a-z0-9]+))?$/.exec(text);
  if (!m) throw new HutchError(`--platform: "${text}" is not os/arch[/variant]`, { hint: 'e.g. --platform linux/arm64 or linux/arm/v7' });
  return { os: m[1], architecture: m[2], variant: m[3] };
}

/** arm64 without a variant means v8 (as containerd's platform matcher says). */
function variantOf(p: Platform): string | undefined {
  return p.variant ?? (p.architecture === 'arm64' ? 'v8' : undefined);
}

/** The index entry for `want`: os and architecture equal, and the variant when `want` names one. */
export function choosePlatform(manifests: Descriptor[], want: Platform, what: string): Descriptor {
  const images = manifests.filter((m) => m.platform && m.platform.os !== 'unknown');
  const match = images.filter(
    (m) => m.platform!.os === want.os && m.platform!.architecture === want.architecture && (!want.variant || variantOf(m.platform!) === variantOf(want)),
  );
  if (match.length) return match[0];
  // An index of one image that names no platform (OCI allows it): that image.
  const untyped = manifests.filter((m) => !m.platform && (m.mediaType === MT.ociManifest || m.mediaType === MT.dockerManifest));
  if (untyped.length === 1 && images.length === 0) return untyped[0];
  const have = [...new Set(images.map((m) => formatPlatform(m.platform!)))];
  throw new HutchError(`${what} has no image for ${formatPlatform(want)}`, {
    hint: have.length
      ? `it has: ${have.join(', ')}; choose one with --platform (a sandbox runs only this machine's architecture natively)`
      : 'its index names no platforms',
  });
}
