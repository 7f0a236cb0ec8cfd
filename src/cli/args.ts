// Command-line flags, podman-style: `--name value`, `--name=value`, `-v
// value`, boolean flags, repeatable flags, `--` ends the flags. The first
// positional argument ends flag parsing when `stopAtPositional` is set, so
// `hutch run ls -la` passes `-la` to ls.

import { HutchError } from '../util/errors';
import { suggest } from '../util/suggest';

export interface FlagDef {
  name: string; // long name without dashes
  short?: string; // single letter
  /** 'string' takes a value, 'bool' does not. */
  kind: 'string' | 'bool';
  repeat?: boolean;
  /** Shown by --help. */
  help: string;
  valueName?: string;
}

export interface ParsedArgs {
  flags: Map<string, string[]>; // bool flags hold ['true']
  positionals: string[];
}

export function parseArgs(argv: string[], defs: FlagDef[], command: string, stopAtPositional = false): ParsedArgs {
  const byLong = new Map(defs.map((d) => [d.name, d]));
  const byShort = new Map(defs.filter((d) => d.short).map((d) => [d.short!, d]));
  const flags = new Map<string, string[]>();
  const positionals: string[] = [];

  const set = (def: FlagDef, value: string, shown: string) => {
    const prev = flags.get(def.name);
    if (prev && !def.repeat && def.kind === 'string') {
      throw new HutchError(`${shown} given twice (${prev[0]} and ${value})`, { hint: `pass ${shown} once` });
    }
    flags.set(def.name, def.repeat && prev ? [...prev, value] : [value]);
  };

  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--') || (a.startsWith('-') && a.length > 1)) {
      const long = a.startsWith('--');
      const eq = a.indexOf('=');
      const key = long ? a.slice(2, eq > 0 ? eq : undefined) : a.slice(1, 2);
      const def = long ? byLong.get(key) : byShort.get(key);
      if (!def) throw unknownFlag(a, key, long, defs, command);
      const shown = long ? `--${key}` : `-${key}`;
      if (def.kind === 'bool') {
        if (long && eq > 0) {
          const v = a.slice(eq + 1);
          if (v !== 'true' && v !== 'false') throw new HutchError(`${shown} takes no value or true/false, not "${v}"`);
          if (v === 'true') set(def, 'true', shown);
          else flags.delete(def.name);
        } else if (!long && a.length > 2) {
          throw new HutchError(`${a}: -${key} takes no value`, { hint: `write -${key} on its own` });
        } else set(def, 'true', shown);
        continue;
      }
      let value: string | undefined;
      if (long && eq > 0) value = a.slice(eq + 1);
      else if (!long && a.length > 2) value = a.slice(2);
      else value = argv[++i];
      // `-w -- cmd`: the value is missing, `--` belongs to the command line.
      if (value === undefined || (value === '--' && !(long && eq > 0))) {
        throw new HutchError(`${shown} needs a value`, { hint: `${shown} ${def.valueName ?? 'VALUE'}` });
      }
      set(def, value, shown);
      continue;
    }
    positionals.push(a);
    if (stopAtPositional) {
      positionals.push(...argv.slice(i + 1));
      break;
    }
  }
  return { flags, positionals };
}

function unknownFlag(raw: string, key: string, long: boolean, defs: FlagDef[], command: string): HutchError {
  const names = defs.map((d) => d.name);
  const near = long ? suggest(key, names) : undefined;
  const shortNear = !long ? defs.find((d) => d.name.startsWith(key))?.name : undefined;
  const hint = near ?? shortNear;
  return new HutchError(`unknown flag ${raw.split('=')[0]} for "hutch ${command}"`, {
    hint: hint ? `did you mean --${hint}? (see hutch ${command} --help)` : `see hutch ${command} --help`,
  });
}

export function flagString(p: ParsedArgs, name: string): string | undefined {
  return p.flags.get(name)?.at(-1);
}

export function flagList(p: ParsedArgs, name: string): string[] {
  return p.flags.get(name) ?? [];
}

export function flagBool(p: ParsedArgs, name: string): boolean {
  return p.flags.get(name)?.[0] === 'true';
}

export function formatFlagHelp(defs: FlagDef[]): string {
  const rows = defs.map((d) => {
    const left = `${d.short ? `-${d.short}, ` : '    '}--${d.name}${d.kind === 'string' ? ` ${d.valueName ?? 'VALUE'}` : ''}`;
    return [left, d.help + (d.repeat ? ' (repeatable)' : '')];
  });
  const w = Math.max(...rows.map((r) => r[0].length)) + 2;
  return rows.map(([l, r]) => `  ${l.padEnd(w)}${r}`).join('\n');
}
