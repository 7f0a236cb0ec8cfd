// `hutch commit SANDBOX IMAGE`: the upper layer of a sandbox that ran with
// --keep on an image (or on setup layers) becomes a new layer on top of its
// layers, registered as IMAGE. The upper layer is read inside the user
// namespace; the kernel's and fuse-overlayfs' whiteouts and opaque markers
// come out in the store's overlay form.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HutchError } from '../util/errors';
import { storeContext } from '../image/context';
import { checkImageName, imageId } from '../image/import';
import { ingestLayer } from '../image/ingest';
import { formatBytes, Progress } from '../image/progress';
import { discardLayers } from '../image/prune';
import { keptPath, type KeptRecord } from '../sandbox/image-root';
import { spawnInUserns, toolPath } from '../helper/userns';
import { listSandboxes } from '../state/sandboxes';
import { flagBool, parseArgs, type FlagDef } from './args';

const FLAGS: FlagDef[] = [
  { name: 'quiet', short: 'q', kind: 'bool', help: 'no progress output' },
  { name: 'help', short: 'h', kind: 'bool', help: 'show this help' },
];

const USAGE = `Usage: hutch commit SANDBOX IMAGE

Store the changes of SANDBOX (which ran with --keep DIR on an image) as a new
layer over its image's layers, and register the result as IMAGE.
`;

export async function commitCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, FLAGS, 'commit');
  if (flagBool(p, 'help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [name, image] = p.positionals;
  if (!name || !image)
    throw new HutchError('hutch commit: SANDBOX and IMAGE are required', {
      hint: 'hutch run --name dev --keep ./dev-upper --rootfs image:debian ...; hutch commit dev debian-dev',
    });
  checkImageName(image, 'IMAGE');
  const { ids, paths, store } = storeContext();
  let rec: KeptRecord;
  try {
    rec = JSON.parse(readFileSync(keptPath(paths, name), 'utf8')) as KeptRecord;
  } catch {
    throw new HutchError(`no kept sandbox named "${name}"`, { hint: 'run it with --name NAME --keep DIR on an image (--rootfs image:NAME) first' });
  }
  if (listSandboxes(paths.stateDir).some((s) => s.state.name === name)) {
    throw new HutchError(`sandbox "${name}" is still running`, { hint: 'commit it after it exits (its upper layer is still changing)' });
  }
  const upper = join(rec.keep, 'upper');
  if (!existsSync(upper)) throw new HutchError(`${upper} is missing: the kept layer of "${name}" is gone`);
  for (const l of rec.layers)
    if (!store.hasLayer(l)) throw new HutchError(`layer ${l} of "${name}" was removed`, { hint: 'the image it ran on is gone; commit is not possible' });
  const progress = new Progress(process.stderr, flagBool(p, 'quiet'));
  progress.start(`committing ${name}`, 0);
  store.lease(rec.layers);
  let stored: string | undefined;
  let ok = false;
  try {
    const tar = spawnInUserns(ids, [toolPath('tar'), '-c', '--numeric-owner', '--xattrs', '--xattrs-include=*', '--sort=name', '-C', upper, '-f', '-', '.'], {
      stdin: 'ignore',
      stdout: 'pipe',
    });
    const r = await ingestLayer(tar.child.stdout!, { store, ids, source: `sandbox ${name}`, onBytes: (n) => progress.update(n) });
    if (r.stored) stored = r.digest;
    const t = await tar.done;
    if (t.code !== 0) throw new HutchError(`reading ${upper} failed: ${t.stderr.trim()}`);
    const base = rec.image ? store.image(rec.image) : undefined;
    const config = base?.config ?? { env: [], exposedPorts: [] };
    const layers = [...rec.layers, r.digest];
    store.writeImage({
      name: image,
      id: imageId(layers, config),
      layers,
      config,
      created: new Date().toISOString(),
      source: `commit of ${name}${rec.image ? ` (on ${rec.image})` : ''}`,
    });
    progress.finish(`committed ${name} as ${image}: new layer ${r.digest.slice(0, 19)} (${formatBytes(r.size)})`);
    process.stdout.write(`${imageId(layers, config)}\n`);
    ok = true;
  } finally {
    store.releaseLease();
    // A failed commit leaves no layer behind that no image names.
    if (!ok && stored)
      for (const w of await discardLayers(store, paths, ids, [stored]))
        process.stderr.write(`hutch: warning: cannot remove ${w} (hutch image prune retries)\n`);
  }
  return 0;
}
