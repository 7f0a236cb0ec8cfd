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
import { formatBytes, type Progress } from './progress';
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
    throw new HutchError(`${what}: "${name}" is not a valid image name`, {
      hint: 'a lower-case letter or digit, then letters, digits and _ . : / @ - (up to 255), e.g. debian:bookworm',
    });
  }
}

export interface ImportOptions {
  store: Store;
  ids: IdentityInfo;
  name: string;
  ref?: string;
  progress: Progress;
  /** For removing the layers of a failed import (running sandboxes may use them too). */
  paths?: HutchPaths;
  /** Bytes all layers together may expand to (--max-size); default DEFAULT_MAX_SIZE. */
  maxSize?: number;
  /** Uncompressed:compressed bytes a layer may reach (--max-ratio); default DEFAULT_MAX_RATIO. */
  maxRatio?: number;
}

/** Decompression-bomb bounds (src/image/ingest.ts, checkExpansion): an OS image is a few GiB, layers compress 2-10:1. */
export const DEFAULT_MAX_SIZE = 32 * 1024 ** 3;
export const DEFAULT_MAX_RATIO = 100;

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
  const stored: string[] = []; // layers this import added: removed again if it fails
  let written = 0;
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
      let raw = 0;
      const s = l.open((n) => ((raw = n), progress.update(n)));
      const expansion = { maxBytes: o.maxSize ?? DEFAULT_MAX_SIZE, maxRatio: o.maxRatio ?? DEFAULT_MAX_RATIO, before: written, raw: () => raw };
      const r = await ingestLayer(s.data, { store, ids: o.ids, source: l.what, expectedDigest: l.diffId, expansion });
      if (r.stored) stored.push(r.digest);
      await s.verify();
      written += r.size;
      digests.push(r.digest);
      store.lease(digests); // a concurrent prune must not take it before the image names it
      const notes = [
        r.skippedDevices ? `${r.skippedDevices} device nodes skipped (a sandbox has its own /dev)` : '',
        r.clampedIds ? `${r.clampedIds} ids beyond your subordinate range set to nobody` : '',
      ]
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
    if (!ok && stored.length && o.paths) {
      for (const w of await discardLayers(store, o.paths, o.ids, stored)) progress.line(`hutch: warning: cannot remove ${w} (hutch image prune retries)`);
    }
  }
}
