// `hutch image import | ls | inspect | rm | export | prune`

import { HutchError } from '../util/errors';
import { storeContext } from '../image/context';
import { formatBytes, Progress } from '../image/progress';
import { suggest } from '../util/suggest';
import { flagBool, flagString, parseArgs, type FlagDef } from './args';
import { parseSize } from '../util/units';

const USAGE = `Usage: hutch image COMMAND

  import SOURCE --name NAME   import a root filesystem tarball (tar, tar.gz, tar.xz,
                              tar.zst), a directory, an OCI image layout (directory
                              or tar; --ref REF picks one of several) or a docker save tar;
                              --max-size SIZE, --max-ratio N bound the expansion
  ls [--json]                 list images
  inspect NAME                layers, config and sizes as JSON
  rm NAME...                  remove images (their layers stay until prune)
  export NAME FILE            write NAME as an OCI image layout tar
  prune [--all] [--dry-run]   remove layers no image, build cache or running sandbox uses
                              (--all: also the build cache)
`;

const FLAGS: FlagDef[] = [
  { name: 'name', kind: 'string', help: 'image name (import)' },
  { name: 'ref', kind: 'string', help: 'reference inside an OCI layout (import)' },
  { name: 'max-size', kind: 'string', valueName: 'SIZE', help: 'import: stop when the layers expand to more than SIZE in total (default 32g)' },
  {
    name: 'max-ratio',
    kind: 'string',
    valueName: 'N',
    help: 'import: stop when a layer expands more than N times its compressed size past 64 MiB (default 100; decompression bombs)',
  },
  { name: 'json', kind: 'bool', help: 'ls: print JSON' },
  { name: 'quiet', short: 'q', kind: 'bool', help: 'no progress output' },
  { name: 'all', short: 'a', kind: 'bool', help: 'prune: also the build cache' },
  { name: 'dry-run', kind: 'bool', help: 'prune: only say what would go' },
  { name: 'force', short: 'f', kind: 'bool', help: 'rm: also when a running sandbox uses it' },
  { name: 'help', short: 'h', kind: 'bool', help: 'show this help' },
];

function positive(n: number, flag: string, example: string): number {
  if (!Number.isFinite(n) || n <= 0) throw new HutchError(`${flag} must be a positive number`, { hint: `e.g. ${example}` });
  return n;
}

const SUBS = ['import', 'ls', 'inspect', 'rm', 'export', 'prune'];

export async function imageCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === '--help' || sub === '-h') {
    process.stdout.write(USAGE);
    return sub ? 0 : 125;
  }
  const p = parseArgs(rest, FLAGS, `image ${sub}`);
  if (flagBool(p, 'help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const ctx = storeContext();
  const { store } = ctx;
  const progress = new Progress(process.stderr, flagBool(p, 'quiet'));
  switch (sub) {
    case 'import': {
      const source = p.positionals[0];
      const name = flagString(p, 'name');
      if (!source || !name)
        throw new HutchError('hutch image import: SOURCE and --name are required', { hint: 'hutch image import ./rootfs.tar.gz --name debian' });
      const { importImage } = await import('../image/import');
      const maxSize = flagString(p, 'max-size');
      const maxRatio = flagString(p, 'max-ratio');
      const rec = await importImage(source, {
        store,
        ids: ctx.ids,
        paths: ctx.paths,
        name,
        ref: flagString(p, 'ref'),
        progress,
        maxSize: maxSize === undefined ? undefined : positive(parseSize(maxSize, '--max-size'), '--max-size', '--max-size 64g'),
        maxRatio: maxRatio === undefined ? undefined : positive(Number(maxRatio), '--max-ratio', '--max-ratio 1000'),
      });
      process.stdout.write(`${rec.id}\n`);
      return 0;
    }
    case 'ls': {
      const imgs = store.listImages();
      if (flagBool(p, 'json')) {
        process.stdout.write(`${JSON.stringify(imgs, null, 2)}\n`);
        return 0;
      }
      const rows = imgs.map((i) => [
        i.name,
        i.id.slice(7, 19),
        String(i.layers.length),
        formatBytes(i.layers.reduce((s, l) => s + (store.layer(l)?.size ?? 0), 0)),
        i.created.slice(0, 19).replace('T', ' '),
      ]);
      const head = ['NAME', 'ID', 'LAYERS', 'SIZE', 'CREATED'];
      const w = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)) + 2);
      for (const r of [head, ...rows]) process.stdout.write(`${r.map((x, c) => (c < r.length - 1 ? x.padEnd(w[c]) : x)).join('')}\n`);
      return 0;
    }
    case 'inspect': {
      if (!p.positionals.length) throw new HutchError('hutch image inspect: which image?', { hint: 'hutch image ls' });
      const out = p.positionals.map((n) => {
        const img = store.requireImage(n);
        return { ...img, layerDetails: img.layers.map((l) => ({ ...store.layer(l), path: store.layerRoot(l) })) };
      });
      process.stdout.write(`${JSON.stringify(out.length === 1 ? out[0] : out, null, 2)}\n`);
      return 0;
    }
    case 'rm': {
      if (!p.positionals.length) throw new HutchError('hutch image rm: which image?', { hint: 'hutch image ls' });
      const { runningUsage } = await import('../state/sandboxes');
      for (const n of p.positionals) {
        const img = store.requireImage(n);
        const users = runningUsage(ctx.paths).filter((s) => img.layers.every((l) => s.storage.layers.includes(l)));
        if (users.length && !flagBool(p, 'force')) {
          throw new HutchError(`image ${n} is used by running sandbox ${users.map((u) => u.name).join(', ')}`, {
            hint: 'stop it first, or use --force (its layers stay until the sandbox ends)',
          });
        }
        if (store.removeImage(n)) process.stdout.write(`removed ${n}\n`);
        else process.stdout.write(`${n} was removed meanwhile\n`);
      }
      return 0;
    }
    case 'export': {
      const [name, file] = p.positionals;
      if (!name || !file) throw new HutchError('hutch image export: NAME and FILE are required', { hint: 'hutch image export debian ./debian.oci.tar' });
      const { exportImage } = await import('../image/export');
      await exportImage(store, ctx.ids, store.requireImage(name), file, progress);
      return 0;
    }
    case 'prune': {
      const { prune, failOnPruneErrors } = await import('../image/prune');
      const r = await prune(store, ctx.paths, ctx.ids, { all: flagBool(p, 'all'), dryRun: flagBool(p, 'dry-run') });
      const verb = flagBool(p, 'dry-run') ? 'would remove' : 'removed';
      for (const l of r.layers) process.stdout.write(`${verb} layer ${l}\n`);
      for (const d of r.workDirs) process.stdout.write(`${verb} leftover ${d}\n`);
      process.stdout.write(
        `${verb} ${r.layers.length} layers (${formatBytes(r.bytes)}), ${r.workDirs.length} leftovers, ${r.cacheEntries} build cache entries\n`,
      );
      failOnPruneErrors(r);
      return 0;
    }
    default: {
      const near = suggest(sub, SUBS);
      throw new HutchError(`unknown command "hutch image ${sub}"`, { hint: near ? `did you mean "hutch image ${near}"?` : 'see hutch image --help' });
    }
  }
}
