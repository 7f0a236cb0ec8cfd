// `hutch system prune [--all] [--volumes] [--dry-run]`: unused layers,
// leftovers of killed imports and builds, optionally the build cache and
// unused volumes.

import { HutchError } from '../util/errors';
import { storeContext } from '../image/context';
import { formatBytes } from '../image/progress';
import { flagBool, parseArgs, type FlagDef } from './args';

const USAGE = `Usage: hutch system prune [--all] [--volumes] [--dry-run]

Remove layers that no image, build cache entry or running sandbox uses, and
the leftovers of imports and builds that were killed.
`;

const FLAGS: FlagDef[] = [
  { name: 'all', short: 'a', kind: 'bool', help: 'also empty the build cache' },
  { name: 'volumes', kind: 'bool', help: 'also remove volumes no running sandbox uses' },
  { name: 'dry-run', kind: 'bool', help: 'only say what would go' },
  { name: 'help', short: 'h', kind: 'bool', help: 'show this help' },
];

export async function systemCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const p = parseArgs(rest, FLAGS, `system ${sub ?? ''}`.trim());
  if (!sub || sub === '--help' || sub === '-h' || flagBool(p, 'help')) {
    process.stdout.write(USAGE);
    return sub ? 0 : 125;
  }
  if (sub !== 'prune') throw new HutchError(`unknown command "hutch system ${sub}"`, { hint: 'hutch system prune' });
  const ctx = storeContext();
  const dry = flagBool(p, 'dry-run');
  const verb = dry ? 'would remove' : 'removed';
  const { prune, failOnPruneErrors } = await import('../image/prune');
  const r = await prune(ctx.store, ctx.paths, ctx.ids, { all: flagBool(p, 'all'), dryRun: dry });
  for (const l of r.layers) process.stdout.write(`${verb} layer ${l}\n`);
  for (const d of r.workDirs) process.stdout.write(`${verb} leftover ${d}\n`);
  let vols = 0;
  if (flagBool(p, 'volumes')) {
    const { listVolumes, deleteVolume } = await import('../volume/store');
    const { runningUsage } = await import('../state/sandboxes');
    const running = runningUsage(ctx.paths);
    for (const v of listVolumes(ctx.paths)) {
      if (running.some((s) => s.storage.volumes.includes(v.name))) continue;
      if (!dry) await deleteVolume(ctx.paths, ctx.ids, v.name);
      process.stdout.write(`${verb} volume ${v.name}\n`);
      vols++;
    }
  }
  process.stdout.write(
    `${verb} ${r.layers.length} layers (${formatBytes(r.bytes)}), ${r.workDirs.length} leftovers, ${r.cacheEntries} build cache entries${flagBool(p, 'volumes') ? `, ${vols} volumes` : ''}\n`,
  );
  failOnPruneErrors(r);
  return 0;
}
