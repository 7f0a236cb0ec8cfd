// `hutch profile ls | show NAME | validate FILE... | schema`

import { HutchError } from '../util/errors';
import { listProfiles, profileJsonSchema, showProfile, validateProfileFile } from '../profile/index';
import { suggest } from '../util/suggest';
import { flagBool, flagString, parseArgs, type FlagDef } from './args';

const USAGE = `Usage: hutch profile COMMAND

  ls                  list built-in and user profiles (~/.config/hutch/profiles)
  show NAME|FILE      the merged profile, with where each value came from
                        --format yaml|json|source
  validate FILE...    check profile files; exit 125 on the first bad one
  schema              the JSON Schema of profile files (for editors)
`;

const FLAGS: FlagDef[] = [
  { name: 'format', kind: 'string', valueName: 'yaml|json|source', help: 'output format of show' },
  { name: 'json', kind: 'bool', help: 'ls: print JSON' },
  { name: 'help', short: 'h', kind: 'bool', help: 'show this help' },
];

export async function profileCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const p = parseArgs(rest, FLAGS, `profile ${sub ?? ''}`.trim());
  const env = process.env;
  const cwd = process.cwd();
  if (!sub || sub === '--help' || sub === '-h' || flagBool(p, 'help')) {
    process.stdout.write(USAGE);
    return sub ? 0 : 125;
  }
  switch (sub) {
    case 'ls': {
      const list = await listProfiles({ env });
      if (flagBool(p, 'json')) {
        process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
        return 0;
      }
      const w = Math.max(4, ...list.map((x) => x.name.length)) + 2;
      process.stdout.write(`${'NAME'.padEnd(w)}${'SOURCE'.padEnd(9)}DESCRIPTION\n`);
      for (const x of list) {
        const desc = x.error ? `ERROR: ${x.error}` : `${x.description ?? ''}${x.shadowed ? ' (shadowed by a user profile)' : ''}`;
        process.stdout.write(`${x.name.padEnd(w)}${x.source.padEnd(9)}${desc}\n`);
      }
      return 0;
    }
    case 'show': {
      const ref = p.positionals[0];
      if (!ref) throw new HutchError('hutch profile show: which profile?', { hint: 'hutch profile show default' });
      const format = flagString(p, 'format') ?? 'yaml';
      if (!['yaml', 'json', 'source'].includes(format)) {
        throw new HutchError(`--format: "${format}" is not yaml, json or source`);
      }
      process.stdout.write(await showProfile(ref, { cwd, env, format: format as 'yaml' | 'json' | 'source' }));
      return 0;
    }
    case 'validate': {
      if (p.positionals.length === 0) throw new HutchError('hutch profile validate: which file?', { hint: 'hutch profile validate ./my-profile.yaml' });
      for (const f of p.positionals) {
        const r = await validateProfileFile(f, { cwd, env });
        process.stdout.write(`${f}: ok (${r.chain.join(' <- ')})\n`);
      }
      return 0;
    }
    case 'schema':
      process.stdout.write(`${JSON.stringify(profileJsonSchema(), null, 2)}\n`);
      return 0;
    default: {
      const near = suggest(sub, ['ls', 'show', 'validate', 'schema']);
      throw new HutchError(`unknown command "hutch profile ${sub}"`, { hint: near ? `did you mean "hutch profile ${near}"?` : 'see hutch profile --help' });
    }
  }
}
