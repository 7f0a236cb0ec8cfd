// `hutch image export NAME FILE`: an OCI image layout in one tar file, the
// format every other tool reads (skopeo copy oci-archive:FILE, podman load).
// Each layer is tarred inside the user namespace (owners as the image sees
// them) and its whiteouts turned back into the OCI form: a char 0/0 device
// becomes `.wh.NAME`, an opaque directory gets a `.wh..wh..opq` entry.
// Layers are stored uncompressed; the file appears only when complete.

import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, createReadStream, createWriteStream, fsyncSync, mkdtempSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { HutchError } from '../util/errors';
import type { IdentityInfo } from '../host/ids';
import { OPAQUE_XATTR } from './ingest';
import type { Progress } from './progress';
import { configToOci, type ImageRecord, type Store } from './store';
import { encodeHeader, entry, padding, TAR_END, TarReader, type TarEntry } from './tar';
import { spawnInUserns, toolPath } from '../helper/userns';

const HOST_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** Tar a layer (overlay form) into `file` in OCI form; returns the digest and size. */
async function exportLayer(store: Store, ids: IdentityInfo, digest: string, file: string): Promise<{ digest: string; size: number }> {
  const argv = [toolPath('tar'), '-c', '--numeric-owner', '--xattrs', '--xattrs-include=user.*', '--sort=name', '-C', store.layerRoot(digest), '-f', '-', '.'];
  const p = spawnInUserns(ids, argv, { stdin: 'ignore', stdout: 'pipe' });
  const out = createWriteStream(file);
  const hash = createHash('sha256');
  let size = 0;
  const write = async (b: Buffer) => {
    hash.update(b);
    size += b.length;
    if (!out.write(b)) await once(out, 'drain');
  };
  const reader = new TarReader(p.child.stdout!);
  for (let e = await reader.next(); e; e = await reader.next()) {
    const path = e.path.replace(/^\.\//, '');
    if (path === '.' || path === './' || path === '') {
      if (e.xattrs[OPAQUE_XATTR] === 'y') throw new HutchError(`layer ${digest}: the layer root is opaque, which OCI cannot express`);
      continue;
    }
    if (e.type === 'char' && e.devmajor === 0 && e.devminor === 0) {
      const i = path.lastIndexOf('/');
      const wh = i < 0 ? `.wh.${path}` : `${path.slice(0, i)}/.wh.${path.slice(i + 1)}`;
      await write(encodeHeader(entry({ path: wh, type: 'file', mode: 0o644, mtime: e.mtime })));
      continue;
    }
    const opaque = e.type === 'dir' && e.xattrs[OPAQUE_XATTR] === 'y';
    const x: TarEntry = { ...e, path, xattrs: Object.fromEntries(Object.entries(e.xattrs).filter(([k]) => !k.startsWith('user.overlay.'))) };
    await write(encodeHeader(x));
    if (e.type === 'file') {
      for await (const c of reader.data()) await write(c);
      await write(padding(e.size));
    }
    if (opaque) await write(encodeHeader(entry({ path: `${path}/.wh..wh..opq`, type: 'file', mode: 0o644, mtime: e.mtime })));
  }
  await write(TAR_END);
  out.end();
  await once(out, 'close');
  const r = await p.done;
  if (r.code !== 0) throw new HutchError(`reading layer ${digest} failed: ${r.stderr.trim()}`);
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

export async function exportImage(store: Store, ids: IdentityInfo, img: ImageRecord, file: string, progress: Progress): Promise<void> {
  const work = mkdtempSync(join(dirname(file), '.hutch-export-'));
  try {
    const blobs: { name: string; path?: string; data?: Buffer; size: number }[] = [];
    const layers: { digest: string; size: number }[] = [];
    for (const [i, l] of img.layers.entries()) {
      progress.start(`layer ${i + 1}/${img.layers.length}`, 0);
      const path = join(work, `layer${i}`);
      const r = await exportLayer(store, ids, l, path);
      layers.push(r);
      blobs.push({ name: `blobs/sha256/${r.digest.slice(7)}`, path, size: r.size });
      progress.finish(`layer ${i + 1}/${img.layers.length}: ${r.digest.slice(0, 19)}`);
    }
    const json = (o: unknown) => Buffer.from(JSON.stringify(o));
    const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
    const config = json({
      architecture: HOST_ARCH[process.arch] ?? process.arch,
      os: 'linux',
      created: img.created,
      config: configToOci(img.config),
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    });
    const manifest = json({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: l.digest, size: l.size })),
    });
    const index = json({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: digestOf(manifest),
          size: manifest.length,
          annotations: { 'org.opencontainers.image.ref.name': img.name.replace(/^.*:/, '') === img.name ? 'latest' : img.name.replace(/^.*:/, '') },
        },
      ],
    });
    blobs.push({ name: `blobs/sha256/${digestOf(config).slice(7)}`, data: config, size: config.length });
    blobs.push({ name: `blobs/sha256/${digestOf(manifest).slice(7)}`, data: manifest, size: manifest.length });
    const files = [
      { name: 'oci-layout', data: json({ imageLayoutVersion: '1.0.0' }) },
      { name: 'index.json', data: index },
    ];
    const tmp = join(work, 'out.tar');
    const out = createWriteStream(tmp);
    const w = async (b: Buffer) => {
      if (!out.write(b)) await once(out, 'drain');
    };
    for (const d of ['blobs', 'blobs/sha256']) await w(encodeHeader(entry({ path: d, type: 'dir' })));
    for (const f of [...files.map((f) => ({ ...f, size: f.data.length, path: undefined })), ...blobs]) {
      await w(encodeHeader(entry({ path: f.name, type: 'file', size: f.size })));
      if (f.data) await w(f.data);
      else for await (const c of createReadStream(f.path!)) await w(c as Buffer);
      await w(padding(f.size));
    }
    await w(TAR_END);
    out.end();
    await once(out, 'close');
    const fd = openSync(tmp, 'r');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, file);
    progress.line(`exported ${img.name} to ${file} (${statSync(file).size} bytes)`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
