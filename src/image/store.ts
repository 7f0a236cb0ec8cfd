// The layer store under $XDG_DATA_HOME/hutch:
//
//   layers/<hex>/root         the layer's files, overlay form (whiteouts are
//                             char 0/0 devices, opaque dirs carry
//                             user.overlay.opaque=y); <hex> is the sha256 of
//                             the uncompressed layer tar (the OCI diff_id)
//   layers/<hex>/layer.json   size, source, creation time
//   images/<name>.json        ordered layer list (bottom first) + config
//   build-cache/<key>.json    setup step cache: key -> layer
//   tmp/<random>/             work in progress (owner.pid inside); nothing
//                             here is ever used by a sandbox
//   leases/<pid>.json         layers an unfinished import/build relies on
//
// A layer or image exists only once it is complete: it is written under tmp/,
// synced, then renamed into place. Layer directories are mode 0500 so that
// nothing adds to or renames inside them by accident; sandboxes get them as
// read-only overlay lowers through a read-only bind.
//
// Only fs calls here (no work at import time): `hutch run` on an image reads
// the image record through this module on its launch path.

import { closeSync, existsSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HutchError } from '../util/errors';
import { ensurePrivateDir } from '../host/private-dir';
import { suggest } from '../util/suggest';

// Pulled images are named by their full reference: tags may hold upper case, digests '@'.
export const IMAGE_NAME_RE = /^[a-z0-9][a-zA-Z0-9_.:/@-]{0,254}$/;

export interface ImageConfig {
  env: string[];
  workdir?: string;
  entrypoint?: string[];
  cmd?: string[];
  exposedPorts: string[];
  user?: string;
}

export interface ImageRecord {
  name: string;
  /** sha256 of the layer list and config: identifies the content. */
  id: string;
  /** Layer digests (`sha256:<hex>`), bottom first. */
  layers: string[];
  config: ImageConfig;
  created: string;
  /** Where it came from (import source, build profile, commit). */
  source: string;
}

export interface LayerRecord {
  digest: string;
  /** Bytes of the uncompressed layer tar. */
  size: number;
  created: string;
  source: string;
  /** True when the layer was written without subordinate ids (every file owned by the user). */
  squashed: boolean;
}

export class Store {
  readonly root: string;
  constructor(dataDir: string) {
    this.root = dataDir;
  }
  get layersDir(): string {
    return join(this.root, 'layers');
  }
  get imagesDir(): string {
    return join(this.root, 'images');
  }
  get cacheDir(): string {
    return join(this.root, 'build-cache');
  }
  get tmpDir(): string {
    return join(this.root, 'tmp');
  }
  get leasesDir(): string {
    return join(this.root, 'leases');
  }

  /** Create (0700) and verify the store's directories (src/host/private-dir.ts): 125 when another user could change them. */
  ensure(): void {
    ensurePrivateDir(this.root, undefined, 'the data directory');
    for (const d of [this.layersDir, this.imagesDir, this.cacheDir, this.tmpDir, this.leasesDir]) ensurePrivateDir(d, undefined, 'the data directory');
  }

  layerDir(digest: string): string {
    return join(this.layersDir, hexOf(digest));
  }
  /** The directory a sandbox uses as an overlay lower. */
  layerRoot(digest: string): string {
    return join(this.layerDir(digest), 'root');
  }
  hasLayer(digest: string): boolean {
    return existsSync(join(this.layerDir(digest), 'layer.json'));
  }
  layer(digest: string): LayerRecord | undefined {
    try {
      return JSON.parse(readFileSync(join(this.layerDir(digest), 'layer.json'), 'utf8')) as LayerRecord;
    } catch {
      return undefined;
    }
  }
  listLayers(): string[] {
    try {
      return readdirSync(this.layersDir)
        .filter((h) => /^[0-9a-f]{64}$/.test(h))
        .map((h) => `sha256:${h}`);
    } catch {
      return [];
    }
  }

  imagePath(name: string): string {
    return join(this.imagesDir, `${encodeURIComponent(name)}.json`);
  }
  image(name: string): ImageRecord | undefined {
    try {
      return JSON.parse(readFileSync(this.imagePath(name), 'utf8')) as ImageRecord;
    } catch {
      return undefined;
    }
  }
  listImages(): ImageRecord[] {
    let files: string[];
    try {
      files = readdirSync(this.imagesDir).filter((f) => f.endsWith('.json'));
    } catch {
      return [];
    }
    const out: ImageRecord[] = [];
    for (const f of files.sort()) {
      const r = this.image(decodeURIComponent(f.slice(0, -5)));
      if (r) out.push(r);
    }
    return out;
  }

  /** The image, or a HutchError naming the near miss. */
  requireImage(name: string, what = 'image'): ImageRecord {
    const r = this.image(name);
    if (r) return r;
    const near = suggest(
      name,
      this.listImages().map((i) => i.name),
    );
    throw new HutchError(`${what} "${name}" does not exist`, {
      hint: near ? `did you mean "${near}"? (hutch image ls)` : `import one first: hutch image import SOURCE --name ${name}`,
    });
  }

  /** Register an image (atomically replaces one of the same name). Its layers must exist. */
  writeImage(rec: ImageRecord): void {
    for (const l of rec.layers) if (!this.hasLayer(l)) throw new Error(`internal: image ${rec.name} names missing layer ${l}`);
    this.ensure();
    writeFileAtomic(this.imagePath(rec.name), `${JSON.stringify(rec, null, 2)}\n`);
  }

  /** False when there was no such image; any other failure is thrown (125). */
  removeImage(name: string): boolean {
    try {
      unlinkSync(this.imagePath(name));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw new HutchError(`cannot remove image ${name}: ${(e as Error).message}`, { hint: `check the permissions of ${this.imagesDir}` });
    }
    fsyncDir(this.imagesDir);
    return true;
  }

  // ---- leases: layers an unfinished import or build relies on
  lease(layers: string[]): void {
    this.ensure();
    const file = join(this.leasesDir, `${process.pid}.json`);
    let cur: string[] = [];
    try {
      cur = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      /* first lease */
    }
    writeFileAtomic(file, JSON.stringify([...new Set([...cur, ...layers])]));
  }
  releaseLease(): void {
    rmSync(join(this.leasesDir, `${process.pid}.json`), { force: true });
  }
}

export function hexOf(digest: string): string {
  const m = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (!m) throw new HutchError(`"${digest}" is not a sha256 digest`);
  return m[1];
}

export function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    /* best effort: some filesystems refuse fsync on directories */
  }
}

/** Write via a temp file + fsync + rename, so readers see the old or the new content, never half. */
export function writeFileAtomic(path: string, data: string | Buffer, mode = 0o600): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeFileSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDir(join(path, '..'));
}

export function configFromOci(c: Record<string, unknown> | undefined): ImageConfig {
  const cfg = (c ?? {}) as {
    Env?: string[];
    WorkingDir?: string;
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    ExposedPorts?: Record<string, unknown>;
    User?: string;
  };
  return {
    env: Array.isArray(cfg.Env) ? cfg.Env.filter((e) => typeof e === 'string') : [],
    workdir: cfg.WorkingDir || undefined,
    entrypoint: Array.isArray(cfg.Entrypoint) && cfg.Entrypoint.length ? cfg.Entrypoint : undefined,
    cmd: Array.isArray(cfg.Cmd) && cfg.Cmd.length ? cfg.Cmd : undefined,
    exposedPorts: Object.keys(cfg.ExposedPorts ?? {}),
    user: cfg.User || undefined,
  };
}

export function configToOci(c: ImageConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (c.env.length) out.Env = c.env;
  if (c.workdir) out.WorkingDir = c.workdir;
  if (c.entrypoint) out.Entrypoint = c.entrypoint;
  if (c.cmd) out.Cmd = c.cmd;
  if (c.exposedPorts.length) out.ExposedPorts = Object.fromEntries(c.exposedPorts.map((p) => [p, {}]));
  if (c.user) out.User = c.user;
  return out;
}
