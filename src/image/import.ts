// `hutch image import`: read the source's layers one by one into the store
// (skipping layers already there), then register the image. The image record
// is written last, after every layer is complete and synced: a killed import
// leaves at most finished, unreferenced layers (which `prune` removes) and a
// tmp/ work dir (removed by the next prune), never a registered image.

import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { HutchError } from '../util/errors';
import type { IdentityInfo } from '../host/ids';
import { ingestLayer } from './ingest';
import { formatBytes, Progress } from './progress';
import { planImport } from './sources';
import { IMAGE_NAME_RE, type ImageConfig, type ImageRecord, type Store } from './store';
import { ownershipSquashed } from '../helper/userns';
import type { HutchPaths } from '../host/paths';
import { discardLayers } from './prune';

export function imageId(layers: string[], config: ImageConfig): string {
  return `sha256:${createHash('sha256').update(JSON.stringify({ layers, config })).digest('hex')}`;
}

export function checkImageName(name: string, what = '--name'): void {
  if (!IMAGE_NAME_RE.test(name)) {
    throw new HutchError(`${what}: "${name}" is not a valid image name`, { hint: 'a lower-case letter or digit, then letters, digits and _ . : / @ - (up to 255), e.g. debian:bookworm' });
  }
}

export interface ImportOptions {
  store: Store;
  ids: IdentityInfo;
  name: string;
  ref?: string;
  progress: Progress;
  /** When given, layers this import stored are removed again if it fails. */
  paths?: HutchPaths;
}

export async function importImage(source: string, o: ImportOptions): Promise<ImageRecord> {
  checkImageName(o.name);
  const abs = resolve(source);
  const plan = planImport(abs, o.ids, o.ref);
  const { store, progress } = o;
  store.ensure();
  if (ownershipSquashed(o.ids)) {
    progress.line(`hutch: ownership is being squashed: ${o.ids.subidNote ?? 'no subordinate ids'}; every file of the image will belong to you (uid 0 inside)`);
  }
  progress.line(`importing ${abs} (${plan.kind}, ${plan.layers.length} layer${plan.layers.length === 1 ? '' : 's'}) as ${o.name}`);
  const digests: string[] = [];
  const storedHere: string[] = [];
  let ok = false;
  try {
    for (const l of plan.layers) {
      if (l.diffId?.startsWith('sha256:') && store.hasLayer(l.diffId)) {
        progress.line(`${l.what}: already stored`);
        digests.push(l.diffId);
        store.lease(digests);
        continue;
      }
      progress.start(l.what, l.size);
      const s = l.open((n) => progress.update(n));
      const r = await ingestLayer(s.data, { store, ids: o.ids, source: l.what, expectedDigest: l.diffId });
      await s.verify();
      digests.push(r.digest);
      if (r.stored) storedHere.push(r.digest);
      store.lease(digests); // a concurrent prune must not take it before the image names it
      const notes = [r.skippedDevices ? `${r.skippedDevices} device nodes skipped (a sandbox has its own /dev)` : '', r.clampedIds ? `${r.clampedIds} ids beyond your subordinate range set to nobody` : '']
        .filter(Boolean)
        .join('; ');
      progress.finish(`${l.what}: ${r.digest.slice(0, 19)} ${formatBytes(r.size)}${r.stored ? '' : ' (already stored)'}${notes ? `; ${notes}` : ''}`);
    }
    const rec: ImageRecord = {
      name: o.name,
      id: imageId(digests, plan.config),
      layers: digests,
      config: plan.config,
      created: new Date().toISOString(),
      source: `${plan.kind} ${abs}`,
    };
    store.writeImage(rec);
    ok = true;
    return rec;
  } finally {
    store.releaseLease();
    // A failed import leaves nothing behind: not the layers it stored before it failed.
    if (!ok && o.paths) await discardLayers(store, o.paths, o.ids, storedHere);
  }
}
