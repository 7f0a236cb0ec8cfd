// A profile's `setup:` steps -> cached read-only layers.
//
// Each `run:` step runs in a real sandbox over the layers below it (the
// profile's root: an image's layers or a directory, then the steps before),
// with its upper layer kept in a work dir; when it exits 0 that upper layer
// is read back (inside the user namespace) and stored as a new layer. A
// `copy:` step needs no sandbox: hutch writes the tar itself. Every step's
// layer is recorded in the build cache under the step's key (cache.ts), so
// the next build, or `hutch run`, finds it.
//
// Build steps get no mounts and no published ports (their result must not
// depend on the host); network is none, or host when the profile asks for
// any network (user-mode NAT needs `hutch run`'s machinery around it).

import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HutchError } from '../util/errors';
import type { HostFacts } from '../host/facts';
import { ingestLayer } from '../image/ingest';
import { Progress, formatBytes } from '../image/progress';
import { imageLayers } from '../sandbox/image-root';
import { Store, type ImageConfig } from '../image/store';
import { removeTree, spawnInUserns, toolPath } from '../helper/userns';
import type { ResolvedProfile } from '../profile/index';
import type { SetupStep } from '../profile/merge';
import type { StorageDriver } from '../rootfs/types';
import type { SandboxSetup } from '../sandbox/assemble';
import { runSandbox } from '../sandbox/lifecycle';
import type { SandboxSpec } from '../spec/types';
import { baseKey, readCache, stepKey, walk, writeCache } from './cache';
import { encodeHeader, entry, padding, TAR_END, type TarEntry } from '../image/tar';

export interface BuildOptions {
  noCache?: boolean;
  dryRun?: boolean;
  progress?: Progress;
}

export interface BuildResult {
  /** Store layers of the root, bottom first (base image layers, then steps). */
  layers: string[];
  /** For SandboxSetup.imageLayers. */
  lowers: NonNullable<SandboxSetup['imageLayers']>;
  config: ImageConfig;
  hits: number;
  built: number;
}

const describeStep = (s: SetupStep) => ('run' in s ? `run: ${s.run}` : `copy: ${s.copy.from} -> ${s.copy.to}`);

export async function ensureBuilt(
  profile: ResolvedProfile,
  spec: SandboxSpec,
  host: HostFacts,
  storage: StorageDriver,
  o: BuildOptions = {},
): Promise<BuildResult> {
  const store = new Store(host.paths.dataDir);
  const progress = o.progress ?? new Progress();
  const steps = profile.values.setup;
  let layers: string[] = [];
  let parent: string;
  let base: string | undefined;
  let config: ImageConfig = { env: [], exposedPorts: [] };
  if (spec.rootfs.kind === 'image') {
    const img = store.requireImage(spec.rootfs.name, 'rootfs image');
    layers = [...img.layers];
    config = img.config;
    parent = baseKey('image', img.id);
  } else if (spec.rootfs.kind === 'dir') {
    base = spec.rootfs.path;
    parent = baseKey('dir', base);
  } else {
    throw new HutchError('setup: steps need a root filesystem to build on, not the host', {
      location: profile.originOf('setup'),
      hint: 'set rootfs: {image: NAME} (hutch image import ...) or rootfs: {dir: PATH}',
    });
  }
  const label = spec.rootfs.kind === 'image' ? `image ${spec.rootfs.name}` : `dir ${base}`;
  const lowersOf = (ls: string[]) => ({ ...imageLayers(store, ls), base, label: `${label} + setup` });
  let hits = 0;
  let built = 0;
  try {
    for (const [i, step] of steps.entries()) {
      const key = stepKey(parent, step);
      const what = `step ${i + 1}/${steps.length} (${describeStep(step)})`;
      const cached = o.noCache ? undefined : readCache(store, key);
      if (cached) {
        layers.push(cached.layer);
        hits++;
        if (o.progress) progress.line(`${what}: cached ${cached.layer.slice(0, 19)}`);
      } else {
        if (o.dryRun) {
          progress.line(`hutch: ${what} is not built yet; the plan below stops before it (hutch build builds it)`);
          break;
        }
        progress.line(`${what}: building`);
        const t = Date.now();
        const layer =
          'run' in step
            ? await runStep(store, profile, spec, host, storage, layers, lowersOf(layers), step.run, what)
            : await copyStep(store, host, step.copy, what);
        store.lease([...layers, layer]);
        writeCache(store, { key, layer, step, created: new Date().toISOString() });
        layers.push(layer);
        built++;
        progress.line(`${what}: ${layer.slice(0, 19)} (${formatBytes(store.layer(layer)?.size ?? 0)}) in ${((Date.now() - t) / 1000).toFixed(1)}s`);
      }
      parent = key;
    }
  } finally {
    store.releaseLease();
  }
  return { layers, lowers: { ...imageLayers(store, layers), base, label: `${label} + setup` }, config, hits, built };
}

async function runStep(
  store: Store,
  profile: ResolvedProfile,
  spec: SandboxSpec,
  host: HostFacts,
  storage: StorageDriver,
  below: string[],
  lowers: NonNullable<SandboxSetup['imageLayers']>,
  command: string,
  what: string,
): Promise<string> {
  store.ensure();
  store.lease(below);
  const work = mkdtempSync(join(store.tmpDir, 'build-'));
  writeFileSync(join(work, 'owner.pid'), String(process.pid));
  const keep = join(work, 'keep');
  mkdirSync(keep, { mode: 0o700 });
  const name = `build-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
  const stepSpec: SandboxSpec = {
    ...spec,
    name,
    hostname: 'build',
    command: ['/bin/sh', '-c', command],
    keep,
    readOnly: false,
    mounts: [],
    network: spec.network === 'none' ? 'none' : 'host',
    ports: [],
    // steps run as root, with the ids layers are stored under (keep-id would shift them)
    userns: 'root',
    // Package managers set setuid bits (dpkg: passwd, sudo, mount). A step
    // writes only its upper layer, inside hutch's private (0700) store: no
    // directory another user can reach, so the no-setid filter is not needed.
    allowSetuid: true,
  };
  try {
    const { exitCode } = await runSandbox({
      spec: stepSpec,
      facts: host,
      setup: { storage, imageLayers: lowers, syncBeforeStart: false },
      layers: below,
      state: { profile: spec.profiles, command: stepSpec.command, rootfs: 'build', network: stepSpec.network },
    }).catch((e: unknown) => {
      // a setup failure of the step's sandbox: say which step (its sentence names the part that failed)
      if (e instanceof HutchError && !e.location) throw new HutchError(`setup ${what}: ${e.message}`, { location: profile.originOf('setup'), hint: e.hint });
      throw e;
    });
    if (exitCode !== 0) {
      throw new HutchError(`setup ${what} failed with exit status ${exitCode}`, {
        location: profile.originOf('setup'),
        hint: 'fix the step; the steps before it stay cached',
      });
    }
    const upper = join(keep, 'upper');
    const argv = [toolPath('tar'), '-c', '--numeric-owner', '--xattrs', '--xattrs-include=*', '--sort=name', '-C', upper, '-f', '-', '.'];
    const tar = spawnInUserns(host.ids, argv, { stdin: 'ignore', stdout: 'pipe' });
    const r = await ingestLayer(tar.child.stdout!, { store, ids: host.ids, source: `setup ${what}` });
    const t = await tar.done;
    if (t.code !== 0) throw new HutchError(`reading the result of setup ${what} failed: ${t.stderr.trim()}`);
    return r.digest;
  } finally {
    await removeTree(host.ids, work).catch(() => {});
  }
}

/** A `copy:` step: a tar written by hutch (owner root inside, modes kept), stored like any layer. */
async function copyStep(store: Store, host: HostFacts, copy: { from: string; to: string }, what: string): Promise<string> {
  const files = walk(copy.from);
  const to = copy.to.replace(/^\/+/, '').replace(/\/+$/, '');
  async function* stream(): AsyncGenerator<Buffer> {
    for (const f of files) {
      const path = f.rel ? (to ? `${to}/${f.rel}` : f.rel) : to;
      if (!path) continue;
      const base = { path, mode: f.st.mode & 0o7777, mtime: Math.floor(Number(f.st.mtimeMs) / 1000) };
      let e: TarEntry;
      if (f.st.isDirectory()) e = entry({ ...base, type: 'dir' });
      else if (f.st.isSymbolicLink()) e = entry({ ...base, type: 'symlink', linkpath: readlinkSync(f.path) });
      else if (f.st.isFile()) {
        const data = readFileSync(f.path);
        yield encodeHeader(entry({ ...base, type: 'file', size: data.length }));
        yield data;
        yield padding(data.length);
        continue;
      } else continue; // sockets, fifos, devices: not copied
      yield encodeHeader(e);
    }
    yield TAR_END;
  }
  const r = await ingestLayer(stream(), { store, ids: host.ids, source: `setup ${what}` });
  return r.digest;
}
