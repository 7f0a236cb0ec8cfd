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
          else set(def, 'false', shown); // kept, so =false can override a profile
        } else if (!long && a.length > 2) {
          // -it: a bundle of one-letter bool flags, as podman writes them
          const bundle = [...a.slice(1)].map((c) => byShort.get(c));
          if (!bundle.every((d) => d?.kind === 'bool')) throw new HutchError(`${a}: -${key} takes no value`, { hint: `write -${key} on its own` });
          for (const d of bundle) set(d!, 'true', `-${d!.short}`);
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

/** podman flags hutch does not have, and what to do instead (never a "did you mean" for an unrelated flag). */
const PODMAN_ONLY: Record<string, { flag: string; why: string }> = {
  i: { flag: '-i, --interactive', why: 'stdin is passed to the command as it is' },
  t: { flag: '-t, --tty', why: 'hutch allocates no terminal (the command uses the one hutch runs in)' },
  d: { flag: '-d, --detach', why: 'this command runs in the foreground; hutch run -d starts a sandbox in the background' },
};
const PODMAN_LONG: Record<string, string> = { interactive: 'i', tty: 't', detach: 'd' };

function podmanOnly(raw: string, long: boolean, command: string): HutchError | undefined {
  const name = raw.split('=')[0];
  const letters = long ? (PODMAN_LONG[name.slice(2)] ?? '') : name.slice(1);
  if (!letters || ![...letters].every((c) => c in PODMAN_ONLY)) {
    if (long && name === '--rm') {
      return new HutchError(`hutch ${command} has no --rm: a sandbox is always removed when its command ends`, {
        hint: 'leave --rm out (--keep DIR keeps the writable layer)',
      });
    }
    return undefined;
  }
  const which = [...new Set(letters)].map((c) => PODMAN_ONLY[c]);
  return new HutchError(`${name}: hutch ${command} has no ${which.map((w) => w.flag).join(' or ')} (podman's)`, {
    hint: `leave ${which.length > 1 ? 'them' : 'it'} out: ${which.map((w) => w.why).join('; ')}`,
  });
}

function unknownFlag(raw: string, key: string, long: boolean, defs: FlagDef[], command: string): HutchError {
  const podman = podmanOnly(raw, long, command);
  if (podman) return podman;
  const names = defs.map((d) => d.name);
  // Only long names are compared: a one-letter flag says nothing about which long flag was meant.
  const near = long ? suggest(key, names) : undefined;
  return new HutchError(`unknown flag ${raw.split('=')[0]} for "hutch ${command}"`, {
    hint: near ? `did you mean --${near}? (see hutch ${command} --help)` : `see hutch ${command} --help`,
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
