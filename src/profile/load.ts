// Loading a profile: resolve the reference (path, user profile, built-in),
// follow `extends`, validate each file, merge.
//
// References: a path (contains `/` or ends in .yaml/.yml; relative to the
// current directory, or to the extending file inside `extends`), a name
// (first $XDG_CONFIG_HOME/hutch/profiles/NAME.yaml, then the built-ins), or
// `builtin:NAME` (only the built-in). A user profile that extends its own
// name (`default.yaml` with `extends: default`) gets the built-in of that name.
// Built-in profiles extend built-ins only.
//
// Built-ins come pre-parsed from builtin-data.generated.ts; the YAML parser
// is loaded (lazily) only for files on disk.

import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { HutchError, type SourceLocation } from '../util/errors';
import { suggest } from '../util/suggest';
import { BUILTIN_PROFILES } from './builtin-data.generated';
import type { Capability } from './capabilities';
import { mergeLayers, type LoadedLayer, type ProfileValues } from './merge';
import { getEntry, locOf, type BuiltinProfile, type PNode } from './node';
import { profileSchema } from './schema';
import { validateDocument } from './schema-dsl';
import { parseYamlToNode } from './yaml-parse';

export interface LoadOptions {
  /** Working directory of the run: relative paths on the command line and ${PWD}. Default: process.cwd(). */
  cwd?: string;
  /** Host environment (for ${VAR}, XDG_CONFIG_HOME, HOME). Default: process.env. */
  env?: Record<string, string | undefined>;
  /** Replace the built-in set (gen-builtins.mjs validates fresh built-ins with it). */
  builtins?: readonly BuiltinProfile[];
  /** The file reads of a load (default: the host's); the launch cache records them (src/cache/run-cache.ts). */
  fs?: ProfileFs;
}

/** Every question loading a profile asks the file system. */
export interface ProfileFs {
  exists(path: string): boolean;
  isFile(path: string): boolean;
  /** Throws with the OS error (code) when unreadable. */
  readText(path: string): string;
}

export const hostProfileFs: ProfileFs = {
  exists: (p) => existsSync(p),
  isFile(p) {
    try {
      return statSync(p).isFile();
    } catch {
      return false;
    }
  },
  readText: (p) => readFileSync(p, 'utf8'),
};

/** A profile after `extends` merging. */
export interface ResolvedProfile {
  /** The requested profile's name (file name without extension for paths). */
  name: string;
  /** Profiles merged, most derived first: names for built-ins and user profiles, paths for files. */
  chain: string[];
  /** Location file of each chain entry (absolute path or builtin:NAME.yaml), same order. */
  files: string[];
  values: ProfileValues;
  /** Same as values.capabilities. */
  capabilities: Capability[];
  /** Where a value came from: `mounts[0].source`, `env.PATH`, `limits.memory`; falls back to the nearest ancestor; undefined for defaults. */
  originOf(fieldPath: string): SourceLocation | undefined;
}

/** Problems found in one profile file: the first is the message; format() lists all. */
export class ProfileValidationError extends HutchError {
  constructor(readonly problems: HutchError[]) {
    super(problems[0].message, { location: problems[0].location, hint: problems[0].hint });
  }
  override format(): string {
    const rest = this.problems.slice(1).map((p) => p.format());
    return [super.format(), ...rest].join('\n');
  }
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function isPathRef(ref: string): boolean {
  return ref.includes('/') || /\.ya?ml$/i.test(ref);
}

/** $XDG_CONFIG_HOME/hutch/profiles (XDG_CONFIG_HOME must be absolute, else ~/.config). */
export function userProfileDir(env: Record<string, string | undefined> = process.env): string {
  const xdg = env.XDG_CONFIG_HOME;
  const base = xdg?.startsWith('/') ? xdg : join(env.HOME || homedir(), '.config');
  return join(base, 'hutch', 'profiles');
}

interface Source {
  kind: 'builtin' | 'user' | 'file';
  /** Chain entry. */
  ref: string;
  /** Unique key for cycle detection. */
  id: string;
  /** Location file. */
  file: string;
  builtin?: BuiltinProfile;
}

interface Env {
  cwd: string;
  env: Record<string, string | undefined>;
  builtins: readonly BuiltinProfile[];
  fs: ProfileFs;
}

function userProfilePath(name: string, env: Env): string | undefined {
  const dir = userProfileDir(env.env);
  for (const ext of ['.yaml', '.yml']) {
    const p = join(dir, name + ext);
    if (env.fs.exists(p)) return p;
  }
  return undefined;
}

function userProfileNames(env: Env): string[] {
  try {
    return readdirSync(userProfileDir(env.env))
      .filter((f) => /\.ya?ml$/.test(f))
      .map((f) => f.replace(/\.ya?ml$/, ''))
      .sort();
  } catch {
    return [];
  }
}

function expandHome(p: string, env: Env): string {
  return p === '~' || p.startsWith('~/') ? (env.env.HOME || homedir()) + p.slice(1) : p;
}

/**
 * Resolve a reference. `fromDir`: where relative paths start; `self`: the
 * file doing the extending (a user profile extending its own name gets the
 * built-in); `at`: the `extends` value, for error locations.
 */
function resolveRef(ref: string, fromDir: string, env: Env, self?: string, at?: SourceLocation): Source {
  const builtinNamed = (name: string) => env.builtins.find((b) => b.name === name);
  if (ref.startsWith('builtin:')) {
    const name = ref.slice('builtin:'.length);
    const b = builtinNamed(name);
    if (!b) throw unknownProfile(name, env, at, true);
    return { kind: 'builtin', ref: name, id: `builtin:${name}`, file: b.file, builtin: b };
  }
  if (isPathRef(ref)) {
    const path = resolve(fromDir, expandHome(ref, env));
    if (!env.fs.isFile(path)) {
      throw new HutchError(`profile file ${ref} not found${ref !== path ? ` (looked at ${path})` : ''}`, {
        location: at,
        hint: at ? 'paths in extends are relative to the file that contains them' : 'check the path, or give a profile name (see hutch profile ls)',
      });
    }
    return { kind: 'file', ref, id: path, file: path };
  }
  if (!NAME_RE.test(ref)) {
    throw new HutchError(`invalid profile name ${JSON.stringify(ref)}`, {
      location: at,
      hint: 'profile names use letters, digits, ".", "_" and "-"; a file path must contain "/" or end in .yaml',
    });
  }
  const user = userProfilePath(ref, env);
  if (user && user !== self) return { kind: 'user', ref, id: user, file: user };
  const b = builtinNamed(ref);
  if (b) return { kind: 'builtin', ref, id: `builtin:${ref}`, file: b.file, builtin: b };
  throw unknownProfile(ref, env, at, false);
}

function unknownProfile(name: string, env: Env, at: SourceLocation | undefined, builtinOnly: boolean): HutchError {
  const builtins = env.builtins.map((b) => b.name);
  const users = builtinOnly ? [] : userProfileNames(env);
  const near = suggest(name, [...new Set([...users, ...builtins])]);
  const parts = [`built-in: ${builtins.join(', ')}`];
  if (users.length) parts.push(`in ${userProfileDir(env.env)}: ${users.join(', ')}`);
  return new HutchError(`unknown profile ${JSON.stringify(name)}${near ? `; did you mean "${near}"?` : ''}`, {
    location: at,
    hint: `available profiles: ${parts.join('; ')}${builtinOnly ? '' : `; or give a file path such as ./${name}.yaml`}`,
  });
}

async function readSource(src: Source, fs: ProfileFs): Promise<PNode> {
  if (src.builtin) return src.builtin.root;
  let text: string;
  try {
    text = fs.readText(src.file);
  } catch (e) {
    throw new HutchError(`cannot read profile ${src.file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      location: { file: src.file, line: 1, column: 1 },
      hint: 'check that the file exists and is readable',
    });
  }
  return parseYamlToNode(text, src.file);
}

function validateLayer(src: Source, root: PNode): LoadedLayer {
  const b = src.builtin;
  if (b?.layer && b.origins) {
    const origins = new Map<string, SourceLocation>(b.origins.map(([p, line, column]) => [p, { file: b.file, line, column }]));
    return { ref: src.ref, file: src.file, layer: b.layer, origins };
  }
  if (root.kind !== 'map') {
    throw new HutchError('a profile must be a map of fields (such as "network: none"), not ' + (root.kind === 'seq' ? 'a list' : 'a single value'), {
      location: locOf(src.file, root),
      hint: 'a profile is a map of fields; see the commented built-ins in sandbox-profiles/ (or hutch profile show default)',
    });
  }
  const r = validateDocument(profileSchema, root, src.file);
  if (!r.ok) throw new ProfileValidationError(r.problems);
  return {
    ref: src.ref,
    file: src.file,
    dir: src.kind === 'builtin' ? undefined : dirname(src.file),
    layer: r.value,
    origins: r.origins,
  };
}

const MAX_CHAIN = 32;

/** Load, follow `extends`, validate and merge. */
export async function loadProfile(ref: string, opts: LoadOptions = {}): Promise<ResolvedProfile> {
  const env: Env = { cwd: opts.cwd ?? process.cwd(), env: opts.env ?? process.env, builtins: opts.builtins ?? BUILTIN_PROFILES, fs: opts.fs ?? hostProfileFs };
  const layers: LoadedLayer[] = []; // most derived first
  const seen: Source[] = [];
  let src = resolveRef(ref, env.cwd, env);
  for (;;) {
    seen.push(src);
    const root = await readSource(src, env.fs);
    const layer = validateLayer(src, root);
    layers.push(layer);
    const parent = layer.layer.extends;
    if (parent === undefined) break;
    const at = layer.origins.get('extends') ?? locOf(src.file, getEntry(root, 'extends') ?? root);
    // Built-ins extend built-ins only: a user's default.yaml must not change what `untrusted` means.
    const next =
      src.kind === 'builtin'
        ? resolveRef(parent.startsWith('builtin:') ? parent : `builtin:${parent}`, env.cwd, env, undefined, at)
        : resolveRef(parent, dirname(src.file), env, src.file, at);
    const loopAt = seen.findIndex((s) => s.id === next.id);
    if (loopAt >= 0) {
      const names = [...seen.slice(loopAt), next].map((s) => displayRef(s));
      throw new HutchError(`profile extends itself: ${names.join(' -> ')}`, {
        location: at,
        hint: 'remove the extends that closes the loop',
      });
    }
    if (seen.length >= MAX_CHAIN) {
      throw new HutchError(`profile chain longer than ${MAX_CHAIN} (${seen.map(displayRef).join(' -> ')} -> ...)`, { location: at });
    }
    src = next;
  }

  const { values, origins } = mergeLayers([...layers].reverse(), { cwd: env.cwd, env: env.env });
  const userNames = new Set(seen.filter((s) => s.kind === 'user').map((s) => s.ref));
  const chain = seen.map((s) => (s.kind === 'builtin' && userNames.has(s.ref) ? `builtin:${s.ref}` : s.ref));
  const first = seen[0];
  return {
    name: first.kind === 'file' ? basename(first.file, extname(first.file)) : first.ref,
    chain,
    files: seen.map((s) => s.file),
    values,
    capabilities: values.capabilities,
    originOf: (p) => origins.get(p),
  };
}

function displayRef(s: Source): string {
  return s.kind === 'builtin' ? s.file : s.kind === 'user' ? `${s.ref} (${s.file})` : s.file;
}

export interface ProfileInfo {
  name: string;
  source: 'builtin' | 'user';
  /** builtin:NAME.yaml or the user file's absolute path. */
  path: string;
  description?: string;
  /** A built-in hidden by a user profile of the same name. */
  shadowed?: boolean;
  /** Set when a user profile cannot be read or parsed (it is still listed). */
  error?: string;
}

/** Built-in and user profiles (user ones parsed for their description). */
export async function listProfiles(opts: Pick<LoadOptions, 'env' | 'builtins'> = {}): Promise<ProfileInfo[]> {
  const env: Env = { cwd: process.cwd(), env: opts.env ?? process.env, builtins: opts.builtins ?? BUILTIN_PROFILES, fs: hostProfileFs };
  const users: ProfileInfo[] = [];
  for (const name of userProfileNames(env)) {
    const path = userProfilePath(name, env)!;
    const info: ProfileInfo = { name, source: 'user', path };
    try {
      const root = await parseYamlToNode(readFileSync(path, 'utf8'), path);
      const d = getEntry(root, 'description')?.value;
      if (d?.kind === 'scalar' && typeof d.value === 'string') info.description = d.value;
    } catch (e) {
      info.error = e instanceof HutchError ? e.format() : (e as Error).message;
    }
    users.push(info);
  }
  const userNames = new Set(users.map((u) => u.name));
  const builtins: ProfileInfo[] = env.builtins.map((b) => ({
    name: b.name,
    source: 'builtin',
    path: b.file,
    description: b.description,
    ...(userNames.has(b.name) ? { shadowed: true } : {}),
  }));
  return [...builtins, ...users];
}
