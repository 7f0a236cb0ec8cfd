// `hutch volume create | ls | inspect | rm | prune | export | import`

import { HutchError } from '../util/errors';
import { identity } from '../host/ids';
import { hutchPaths } from '../host/paths';
import { runningUsage } from '../state/sandboxes';
import { suggest } from '../util/suggest';
import { deleteVolume, ensureVolume, getVolume, listVolumes, requireVolume, checkVolumeName } from '../volume/store';
import { flagBool, parseArgs, type FlagDef } from './args';

const USAGE = `Usage: hutch volume COMMAND

  create NAME          create an empty volume (-v NAME:/path also creates it on first use)
  ls [--json]          list volumes
  inspect NAME...      details as JSON
  rm [-f] NAME...      remove volumes; refuses one a running sandbox uses
  prune [-f]           remove every volume no running sandbox uses
  export NAME FILE     write the volume's files to a tar (FILE - for stdout)
  import NAME FILE     replace the volume's files with a tar's (FILE - for stdin);
                       creates the volume when missing
`;

const FLAGS: FlagDef[] = [
  { name: 'json', kind: 'bool', help: 'ls: print JSON' },
  { name: 'force', short: 'f', kind: 'bool', help: 'prune: do it without asking' },
  { name: 'help', short: 'h', kind: 'bool', help: 'show this help' },
];

const SUBS = ['create', 'ls', 'inspect', 'rm', 'prune', 'export', 'import'];

function usersOf(paths: ReturnType<typeof hutchPaths>, name: string): string[] {
  return runningUsage(paths)
    .filter((s) => s.storage.volumes.includes(name))
    .map((s) => s.name);
}

export async function volumeCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === '--help' || sub === '-h') {
    process.stdout.write(USAGE);
    return sub ? 0 : 125;
  }
  const p = parseArgs(rest, FLAGS, `volume ${sub}`);
  if (flagBool(p, 'help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const ids = identity(process.env);
  const paths = hutchPaths(process.env, ids.home, ids.uid);
  const args = p.positionals;
  const need = (n: number, usage: string) => {
    if (args.length < n) throw new HutchError(`hutch volume ${sub}: missing argument`, { hint: usage });
  };
  switch (sub) {
    case 'create': {
      need(1, 'hutch volume create NAME');
      for (const n of args) {
        checkVolumeName(n);
        if (getVolume(paths, n)) throw new HutchError(`volume "${n}" already exists`, { hint: 'choose another name, or use it as it is' });
        ensureVolume(paths, n);
        process.stdout.write(`${n}\n`);
      }
      return 0;
    }
    case 'ls': {
      const vols = listVolumes(paths);
      const running = runningUsage(paths);
      const rows = vols.map((v) => ({ ...v, usedBy: running.filter((s) => s.storage.volumes.includes(v.name)).map((s) => s.name) }));
      if (flagBool(p, 'json')) {
        process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        return 0;
      }
      const w = Math.max(4, ...rows.map((r) => r.name.length)) + 2;
      process.stdout.write(`${'NAME'.padEnd(w)}${'CREATED'.padEnd(21)}USED BY\n`);
      for (const r of rows) process.stdout.write(`${r.name.padEnd(w)}${r.created.slice(0, 19).replace('T', ' ').padEnd(21)}${r.usedBy.join(',') || '-'}\n`);
      return 0;
    }
    case 'inspect': {
      need(1, 'hutch volume inspect NAME');
      const out = args.map((n) => ({ ...requireVolume(paths, n), usedBy: usersOf(paths, n) }));
      process.stdout.write(`${JSON.stringify(out.length === 1 ? out[0] : out, null, 2)}\n`);
      return 0;
    }
    case 'rm': {
      need(1, 'hutch volume rm NAME');
      for (const n of args) {
        requireVolume(paths, n);
        const users = usersOf(paths, n);
        if (users.length) {
          throw new HutchError(`volume "${n}" is in use by running sandbox ${users.join(', ')}`, {
            hint: 'stop the sandbox first; its data would vanish under it',
          });
        }
        await deleteVolume(paths, ids, n);
        process.stdout.write(`${n}\n`);
      }
      return 0;
    }
    case 'prune': {
      const running = runningUsage(paths);
      const unused = listVolumes(paths).filter((v) => !running.some((s) => s.storage.volumes.includes(v.name)));
      if (!flagBool(p, 'force')) {
        for (const v of unused) process.stdout.write(`would remove ${v.name}\n`);
        throw new HutchError(`volume prune removes ${unused.length} volume(s) and their data`, { hint: 'run again with --force to do it' });
      }
      for (const v of unused) {
        await deleteVolume(paths, ids, v.name);
        process.stdout.write(`removed ${v.name}\n`);
      }
      return 0;
    }
    case 'export': {
      need(2, 'hutch volume export NAME FILE');
      requireVolume(paths, args[0]);
      const { exportVolume } = await import('../volume/archive');
      await exportVolume(paths, ids, args[0], args[1]);
      return 0;
    }
    case 'import': {
      need(2, 'hutch volume import NAME FILE');
      const users = usersOf(paths, args[0]);
      if (users.length) throw new HutchError(`volume "${args[0]}" is in use by running sandbox ${users.join(', ')}`, { hint: 'stop it first' });
      checkVolumeName(args[0]);
      const { importVolume, checkArchive } = await import('../volume/archive');
      checkArchive(args[1]);
      const { created } = ensureVolume(paths, args[0]);
      let r: { squashed: boolean };
      try {
        r = await importVolume(paths, ids, args[0], args[1]);
      } catch (e) {
        // A volume this import created goes again: a failed import leaves nothing behind.
        if (created)
          await deleteVolume(paths, ids, args[0]).catch((d: Error) =>
            process.stderr.write(`hutch: warning: cannot remove the half-imported volume ${args[0]}: ${d.message} (hutch volume rm ${args[0]})\n`),
          );
        throw e;
      }
      if (r.squashed) process.stderr.write(`hutch: ownership is being squashed (${ids.subidNote ?? 'no subordinate ids'}): every file belongs to you\n`);
      return 0;
    }
    default: {
      const near = suggest(sub, SUBS);
      throw new HutchError(`unknown command "hutch volume ${sub}"`, { hint: near ? `did you mean "hutch volume ${near}"?` : 'see hutch volume --help' });
    }
  }
}
