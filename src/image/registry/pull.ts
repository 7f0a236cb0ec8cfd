// `hutch pull REF`: reference -> manifest (platform chosen from an index) ->
// verified config -> layers. Layers whose diff_id is already in the store
// are not fetched (shared base layers are downloaded once); the others are
// downloaded a few at a time, each verified by its digest into a work dir
// under the store's tmp/, then read into the store by the import code
// (ingestLayer: the diff_id checked, whiteouts converted). The image record
// is written last, as for imports; on any failure the work dir and the
// layers this pull stored are removed again.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HutchError } from '../../util/errors';
import type { IdentityInfo } from '../../host/ids';
import type { HutchPaths } from '../../host/paths';
import { openBlob } from '../decompress';
import { imageId } from '../import';
import { ingestLayer } from '../ingest';
import { discardLayers } from '../prune';
import { configFromOci, type ImageRecord, type Store } from '../store';
import { ownershipSquashed } from '../../helper/userns';
import { fetchBlob, fetchSmallBlob } from './blob';
import { NotFound, RegistryClient } from './client';
import { authFiles, lookupCredentials, type Credentials } from './credentials';
import { choosePlatform, formatPlatform, hostPlatform, parseConfigBlob, parseManifest, type LayerDescriptor, type Platform } from './manifest';
import { formatBytes, type MultiProgress } from '../progress';
import { formatReference, parseSearchList, qualify, type Reference } from './reference';

export interface PullOptions {
  store: Store;
  ids: IdentityInfo;
  paths: HutchPaths;
  home: string;
  env: NodeJS.ProcessEnv;
  progress: MultiProgress;
  platform?: Platform;
  tlsVerify: boolean;
  creds?: Credentials;
  /** Layers downloaded at once (default 3). */
  concurrency?: number;
}

/** The short-name search list: hutch's registries.conf, else docker.io. */
export function searchList(paths: HutchPaths): string[] {
  const file = join(paths.configDir, 'registries.conf');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return ['docker.io'];
  }
  return parseSearchList(text, file) ?? ['docker.io'];
}

/** The fully qualified references TEXT may mean, in search order. */
export function candidates(text: string, paths: HutchPaths): Reference[] {
  return qualify(text, searchList(paths));
}

function clientFor(ref: Reference, o: PullOptions): RegistryClient {
  const creds = o.creds ?? lookupCredentials(authFiles(o.env, o.home, o.paths.configDir), ref.registry, ref.repository);
  return new RegistryClient(ref.registry, ref.repository, { tlsVerify: o.tlsVerify, creds, say: (l) => o.progress.line(`hutch: ${l}`) });
}

interface Resolved {
  ref: Reference;
  client: RegistryClient;
  manifestDigest: string;
  config: { digest: string; size: number; mediaType: string };
  layers: LayerDescriptor[];
  platform?: Platform;
}

async function resolveManifest(ref: Reference, o: PullOptions): Promise<Resolved> {
  const client = clientFor(ref, o);
  const name = formatReference(ref);
  let m = await client.manifest(ref.digest ?? ref.tag ?? 'latest', name);
  let parsed = parseManifest(m.body, m.contentType, name);
  let platform: Platform | undefined;
  for (let depth = 0; parsed.kind === 'index'; depth++) {
    if (depth >= 2) throw new HutchError(`${name}: image indexes nested deeper than hutch follows`);
    const want = o.platform ?? hostPlatform();
    const d = choosePlatform(parsed.manifests, want, name);
    platform = d.platform;
    m = await client.manifest(d.digest, `${name} (${d.platform ? formatPlatform(d.platform) : d.digest.slice(0, 19)})`);
    parsed = parseManifest(m.body, m.contentType, name);
  }
  return { ref, client, manifestDigest: m.digest, config: parsed.config, layers: parsed.layers, platform };
}

/** Try each candidate in order; a "not found" moves on to the next registry. */
async function resolveAny(text: string, o: PullOptions): Promise<Resolved> {
  const cands = candidates(text, o.paths);
  const misses: string[] = [];
  for (const ref of cands) {
    const full = formatReference(ref);
    if (full !== text) o.progress.line(`hutch: resolved "${text}" to ${full}`);
    try {
      return await resolveManifest(ref, o);
    } catch (e) {
      if (!(e instanceof NotFound) || cands.length === 1) throw e;
      misses.push(full);
    }
  }
  throw new HutchError(`${text}: not found on any registry of the search list (${misses.join(', ')})`, {
    hint: 'check the name and tag, or write the full reference',
  });
}

/** The store name of a pulled image: the fully qualified reference. */
export function storedName(ref: Reference): string {
  return formatReference(ref);
}

export async function pullImage(text: string, o: PullOptions): Promise<ImageRecord> {
  const { store, progress } = o;
  const r = await resolveAny(text, o);
  const name = storedName(r.ref);
  const configBody = await fetchSmallBlob(r.client, r.config, `${name}: config`);
  const cfg = parseConfigBlob(configBody, name);
  if (cfg.diffIds.length !== r.layers.length) {
    throw new HutchError(`${name}: the config lists ${cfg.diffIds.length} layer digests but the manifest ${r.layers.length} layers`, {
      hint: 'the image is broken on the registry',
    });
  }
  const want = o.platform ?? hostPlatform();
  if (!r.platform && cfg.platform.architecture && (cfg.platform.architecture !== want.architecture || (cfg.platform.os && cfg.platform.os !== want.os))) {
    const msg = `${name} is built for ${formatPlatform(cfg.platform)}, not ${formatPlatform(want)}`;
    if (o.platform) throw new HutchError(msg, { hint: 'the reference names a single-platform image; choose another tag' });
    progress.line(`hutch: warning: ${msg}; its programs may not run here`);
  }
  store.ensure();
  if (ownershipSquashed(o.ids))
    progress.line(`hutch: ownership is being squashed: ${o.ids.subidNote ?? 'no subordinate ids'}; every file of the image will belong to you (uid 0 inside)`);
  const total = r.layers.reduce((s, l) => s + l.size, 0);
  progress.line(
    `pulling ${name} (${r.layers.length} layer${r.layers.length === 1 ? '' : 's'}, ${formatBytes(total)}${r.platform ? `, ${formatPlatform(r.platform)}` : ''})`,
  );
  const work = mkdtempSync(join(store.tmpDir, 'pull-'));
  writeFileSync(join(work, 'owner.pid'), String(process.pid));
  const digests: string[] = new Array(r.layers.length);
  const stored: string[] = [];
  let failed: unknown;
  // One task per distinct blob (an image may list the same layer twice).
  const byBlob = new Map<string, number[]>();
  for (const [i, l] of r.layers.entries()) byBlob.set(l.digest, [...(byBlob.get(l.digest) ?? []), i]);
  const queue = [...byBlob.entries()];
  const layerTask = async ([blob, idx]: [string, number[]]) => {
    const i = idx[0];
    const l = r.layers[i];
    const diffId = cfg.diffIds[i];
    const what = `layer ${i + 1}/${r.layers.length} ${blob.slice(0, 19)}`;
    const known = diffId.startsWith('sha256:') && store.hasLayer(diffId);
    if (known) {
      for (const j of idx) digests[j] = diffId;
      store.lease([diffId]); // a prune must not take it before the image names it
      progress.line(`${what}: already stored`);
      return;
    }
    const file = join(work, blob.replace(':', '-'));
    progress.start(blob, what, l.size);
    await fetchBlob(r.client, l, file, `${name}: ${what}`, {
      onBytes: (n) => progress.update(blob, n),
      say: (s) => progress.line(`hutch: ${s}`),
      cancelled: () => failed !== undefined,
    });
    progress.update(blob, l.size, 'extracting');
    const b = openBlob(file);
    const res = await ingestLayer(b.data, { store, ids: o.ids, source: `${name} ${what}`, expectedDigest: diffId.startsWith('sha256:') ? diffId : undefined });
    rmSync(file, { force: true });
    if (res.stored) stored.push(res.digest);
    for (const j of idx) digests[j] = res.digest;
    store.lease([res.digest]);
    const notes = [
      res.skippedDevices ? `${res.skippedDevices} device nodes skipped` : '',
      res.clampedIds ? `${res.clampedIds} ids beyond your subordinate range set to nobody` : '',
    ]
      .filter(Boolean)
      .join('; ');
    progress.finish(blob, `${what}: ${res.digest.slice(0, 19)} ${formatBytes(res.size)}${res.stored ? '' : ' (already stored)'}${notes ? `; ${notes}` : ''}`);
  };
  const worker = async () => {
    for (let job = queue.shift(); job && failed === undefined; job = queue.shift()) {
      try {
        await layerTask(job);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency ?? 3, queue.length)) }, worker));
    if (failed !== undefined) throw failed;
    const config = configFromOci(cfg.config);
    const rec: ImageRecord = {
      name,
      id: imageId(digests, config),
      layers: digests,
      config,
      created: new Date().toISOString(),
      source: `registry ${r.ref.registry}/${r.ref.repository}@${r.manifestDigest}`,
    };
    store.writeImage(rec);
    return rec;
  } catch (e) {
    store.releaseLease();
    await discardLayers(store, o.paths, o.ids, stored);
    throw e;
  } finally {
    store.releaseLease();
    rmSync(work, { recursive: true, force: true });
  }
}
