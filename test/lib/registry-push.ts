// Pushing test images to a registry without docker: blobs and manifests
// uploaded through the distribution API (monolithic POST + PUT uploads),
// from an OCI layout on disk (the Debian fixture) or from images built here
// (a few files per layer, a multi-platform index).

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { runCmd, tmpDir } from './hutch';

export const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
export const sha512 = (b: Buffer) => `sha512:${createHash('sha512').update(b).digest('hex')}`;

const MT = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
};

async function ok(res: Response, what: string): Promise<Response> {
  if (!res.ok) throw new Error(`${what}: HTTP ${res.status} ${await res.text()}`);
  return res;
}

export async function pushBlob(base: string, repo: string, data: Buffer, algo: 'sha256' | 'sha512' = 'sha256'): Promise<string> {
  const digest = algo === 'sha512' ? sha512(data) : sha256(data);
  const head = await fetch(`${base}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' });
  if (head.status === 200) return digest;
  const start = await ok(await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' }), `start upload ${digest}`);
  const loc = new URL(start.headers.get('location')!, base);
  loc.searchParams.set('digest', digest);
  await ok(await fetch(loc, { method: 'PUT', body: new Uint8Array(data), headers: { 'content-type': 'application/octet-stream' } }), `upload ${digest}`);
  return digest;
}

export async function pushManifest(base: string, repo: string, ref: string, body: Buffer, mediaType: string): Promise<string> {
  await ok(
    await fetch(`${base}/v2/${repo}/manifests/${ref}`, { method: 'PUT', body: new Uint8Array(body), headers: { 'content-type': mediaType } }),
    `manifest ${repo}:${ref}`,
  );
  return sha256(body);
}

export interface Pushed {
  manifestDigest: string;
  layers: string[];
  config: string;
}

/** Push the (first) image of an OCI layout; `docker: true` rewrites it as a Docker schema 2 image. */
export async function pushLayout(base: string, repo: string, tag: string, layout: string, o: { docker?: boolean } = {}): Promise<Pushed> {
  const blob = (d: string) => fs.readFileSync(path.join(layout, 'blobs', ...d.split(':')));
  const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8'));
  const m = JSON.parse(blob(index.manifests[0].digest).toString());
  for (const l of m.layers) await pushBlob(base, repo, blob(l.digest));
  await pushBlob(base, repo, blob(m.config.digest));
  let body = blob(index.manifests[0].digest);
  let mt = MT.ociManifest;
  if (o.docker) {
    mt = MT.dockerManifest;
    const d = {
      schemaVersion: 2,
      mediaType: MT.dockerManifest,
      config: { ...m.config, mediaType: MT.dockerConfig },
      layers: m.layers.map((l: { digest: string; size: number }) => ({ mediaType: MT.dockerLayer, digest: l.digest, size: l.size })),
    };
    body = Buffer.from(JSON.stringify(d));
  }
  return { manifestDigest: await pushManifest(base, repo, tag, body, mt), layers: m.layers.map((l: { digest: string }) => l.digest), config: m.config.digest };
}

export interface Layer {
  blob: Buffer;
  diffId: string;
}

/** A gzipped layer tar of `files` (path -> content), every file root's, mode 0644. */
export async function makeLayer(files: Record<string, string | Buffer>): Promise<Layer> {
  const dir = tmpDir('hutch-layer-');
  for (const [p, c] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    fs.writeFileSync(path.join(dir, p), c, { mode: 0o644 });
  }
  const tarFile = path.join(tmpDir('hutch-layer-tar-'), 'layer.tar');
  const r = await runCmd(['tar', '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', dir, '-cf', tarFile, '.']);
  if (r.code !== 0) throw new Error(`tar: ${r.stderr}`);
  const tar = fs.readFileSync(tarFile);
  return { blob: gzipSync(tar), diffId: sha256(tar) };
}

export interface ImageSpec {
  layers: Layer[];
  arch?: string;
  variant?: string;
  config?: Record<string, unknown>;
  docker?: boolean;
  /** Name the layer blobs by sha512 digests. */
  sha512?: boolean;
}

/** Push the blobs and the manifest of a built image (under `tag`, or only by digest when tag is undefined). */
export async function pushImage(base: string, repo: string, tag: string | undefined, s: ImageSpec): Promise<Pushed & { size: number; body: Buffer }> {
  const config = Buffer.from(
    JSON.stringify({
      architecture: s.arch ?? 'amd64',
      ...(s.variant ? { variant: s.variant } : {}),
      os: 'linux',
      config: s.config ?? { Env: ['PATH=/usr/bin:/bin'] },
      rootfs: { type: 'layers', diff_ids: s.layers.map((l) => l.diffId) },
    }),
  );
  const configDigest = await pushBlob(base, repo, config);
  const algo = s.sha512 ? 'sha512' : 'sha256';
  for (const l of s.layers) await pushBlob(base, repo, l.blob, algo);
  const blobDigest = (b: Buffer) => (s.sha512 ? sha512(b) : sha256(b));
  const mt = s.docker ? MT.dockerManifest : MT.ociManifest;
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: mt,
      config: { mediaType: s.docker ? MT.dockerConfig : MT.ociConfig, digest: configDigest, size: config.length },
      layers: s.layers.map((l) => ({ mediaType: s.docker ? MT.dockerLayer : MT.ociLayer, digest: blobDigest(l.blob), size: l.blob.length })),
    }),
  );
  const manifestDigest = await pushManifest(base, repo, tag ?? sha256(body), body, mt);
  return { manifestDigest, layers: s.layers.map((l) => blobDigest(l.blob)), config: configDigest, size: body.length, body };
}

/** A multi-platform index over images pushed to the same repo. */
export async function pushIndex(
  base: string,
  repo: string,
  tag: string,
  images: { pushed: { manifestDigest: string; size: number }; arch: string; variant?: string }[],
  docker = false,
): Promise<string> {
  const mt = docker ? MT.dockerList : MT.ociIndex;
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: mt,
      manifests: images.map((i) => ({
        mediaType: docker ? MT.dockerManifest : MT.ociManifest,
        digest: i.pushed.manifestDigest,
        size: i.pushed.size,
        platform: { os: 'linux', architecture: i.arch, ...(i.variant ? { variant: i.variant } : {}) },
      })),
    }),
  );
  return pushManifest(base, repo, tag, body, mt);
}
