// Profile values + command-line overrides -> SandboxSpec. Flags win over the
// profile; lists from flags are added after the profile's. Every value that
// can be wrong is checked here and rejected with the flag or profile field
// that carried it.

import type { HostFacts } from '../host/facts';
import { totalmem } from 'node:os';
import { resolve } from 'node:path';
import { HutchError, type Origin } from '../util/errors';
import { parseMountString, resolveHostPath, type ProfileMount, type ResolvedProfile } from '../profile/index';
import type { MountSpec, NetworkMode, RootfsSpec, SandboxSpec, StorageDriver, UsernsMode } from './types';
import { defaultSeccompDeny } from './seccomp';
import { CAPABILITIES, normalizeCap } from '../util/caps';
import { parseSize } from '../util/units';
import { suggest } from '../util/suggest';
import type { ImageDefaults } from './types';
import { resolveLimits, type LimitOverrides } from './limits';
import { isNetworkName, resolveNetworkSpec, type NetworkOverrides } from './network';
import { collectNetworkFlags, profileNetworkOptions } from './network-option';

export interface SpecOverrides {
  name?: string;
  volumes: string[];
  tmpfs: string[];
  env: string[];
  envFiles: string[];
  workdir?: string;
  hostname?: string;
  readOnly?: boolean;
  capAdd: string[];
  capDrop: string[];
  /** podman's -u/--user. */
  user?: string;
  /** podman's --userns: root | keep-id. */
  userns?: string;
  /** podman's --security-opt; only seccomp=unconfined|default is understood. */
  securityOpt?: string[];
  network?: string;
  /** Further --network NAME values: a sandbox on several named networks (docs/NETWORKS.md). */
  moreNetworks?: string[];
  /** -p, -P, --expose, --network-driver, --allow-host-loopback (resolved in src/net/resolve.ts) */
  net?: NetworkOverrides;
  rootfs?: string;
  storageDriver?: string;
  keep?: string;
  /** --tmpfs-budget SIZE */
  tmpfsBudget?: string;
  command: string[];
  /** --memory, --cpus, ... as given (parsed in src/cgroup/resolve-limits.ts) */
  limits?: LimitOverrides;
}

/** The host facts spec resolution reads (src/host/facts.ts); nothing else of the host. */
export interface ResolveContext extends Pick<HostFacts, 'env' | 'cwd' | 'arch' | 'fs'> {
  /** An image's config (env, workdir, entrypoint/cmd, exposed ports) as defaults under the profile and flags. */
  image?: (name: string) => ImageDefaults;
  /** The host's RAM in bytes (os.totalmem() when absent): the default RAM budget is half of it. */
  totalMemory?: number;
}

const USERNS: UsernsMode[] = ['root', 'keep-id'];
const NETWORKS: NetworkMode[] = ['none', 'host', 'slirp', 'pasta'];
const DRIVERS: StorageDriver[] = ['auto', 'overlay', 'fuse-overlayfs'];
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function randomName(): string {
  return `hutch-${Math.random().toString(16).slice(2, 8).padEnd(6, '0')}`;
}

/** A sandbox name as given (--name) or made: returned when valid, else a HutchError naming the rule. */
export function checkSandboxName(name: string): string {
  if (!NAME_RE.test(name)) {
    throw new HutchError(`--name: "${name}" is not a valid sandbox name`, { hint: 'letters, digits, _ . - (up to 63), starting with a letter or digit' });
  }
  return name;
}

function oneOf<T extends string>(value: string, valid: readonly T[], what: string): T {
  if ((valid as readonly string[]).includes(value)) return value as T;
  const near = suggest(value, [...valid]);
  throw new HutchError(`${what}: "${value}" is not one of ${valid.join(', ')}`, {
    hint: near ? `did you mean "${near}"?` : `use one of: ${valid.join(', ')}`,
  });
}

export function expandHostPath(p: string, ctx: ResolveContext, what = 'path'): string {
  return resolveHostPath(p, { cwd: ctx.cwd, env: ctx.env, what });
}

/** `SRC:DST[:ro|rw]` (podman's -v); SRC without `/`, `.`, `~` or `$` names a volume. */
export function parseVolume(text: string, ctx: ResolveContext, what: string): MountSpec {
  const r = parseMountString(text);
  if (!r.ok) throw new HutchError(`${what}: ${r.message}`, { hint: r.hint });
  return profileMount(r.value, ctx, what);
}

function profileMount(m: ProfileMount, ctx: ResolveContext, what: string): MountSpec {
  const target = resolve(m.target);
  if (m.type === 'tmpfs') return { type: 'tmpfs', target, size: m.size, mode: m.mode };
  if (m.type === 'volume') return { type: 'volume', name: m.source, target, readOnly: m.readOnly };
  return { type: 'bind', source: expandHostPath(m.source, ctx, `${what} source`), target, readOnly: m.readOnly };
}

/** `DST[:size=N,mode=1777]` (podman's --tmpfs). */
export function parseTmpfs(text: string, what: string): MountSpec {
  const [dst, opts = ''] = text.split(/:(.*)/s);
  if (!dst.startsWith('/')) throw new HutchError(`${what}: "${dst}" must be an absolute path`, { hint: '--tmpfs /scratch:size=64m' });
  const m: MountSpec = { type: 'tmpfs', target: resolve(dst) };
  for (const o of opts.split(',').filter(Boolean)) {
    const [k, v] = o.split('=');
    if (k === 'size') m.size = parseSize(v, `${what} size`);
    else if (k === 'mode' && /^[0-7]{3,4}$/.test(v ?? '')) m.mode = parseInt(v, 8);
    else throw new HutchError(`${what}: unknown tmpfs option "${o}"`, { hint: 'size=64m or mode=1777' });
  }
  return m;
}

export function parseRootfs(text: string, ctx: ResolveContext, what: string): RootfsSpec {
  if (text === 'host') return { kind: 'host' };
  const path = text.startsWith('dir:') ? text.slice(4) : text;
  if (text.startsWith('image:')) return { kind: 'image', name: text.slice(6) };
  const abs = expandHostPath(path, ctx);
  if (!ctx.fs.isDir(abs)) {
    throw new HutchError(`${what}: ${abs} is not a directory`, { hint: 'use host, dir:PATH with an existing directory' });
  }
  return { kind: 'dir', path: abs };
}

function parseEnvFile(path: string, what: string, fs: HostFacts['fs']): Record<string, string> {
  let text: string;
  try {
    text = fs.readText(path);
  } catch (e) {
    throw new HutchError(`${what}: cannot read ${path}: ${(e as Error).message}`);
  }
  const out: Record<string, string> = {};
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new HutchError(`${path}:${i + 1}: expected KEY=VALUE, got "${line}"`, { hint: 'one KEY=VALUE per line' });
    out[line.slice(0, eq).replace(/^export\s+/, '')] = line.slice(eq + 1).replace(/^(["'])(.*)\1$/, '$2');
  });
  return out;
}

/** `LC_*` -> a RegExp matching whole variable names. */
function globRegExp(pattern: string): RegExp {
  return new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
}

/** podman's rule: arguments replace the image's cmd, its entrypoint stays in front. */
function imageCommand(img: ImageDefaults, args: string[], profileCommand: string[] | undefined): string[] {
  const entry = img.entrypoint ?? [];
  if (args.length) return [...entry, ...args];
  if (profileCommand) return profileCommand;
  const all = [...entry, ...(img.cmd ?? [])];
  return all.length ? all : ['/bin/sh'];
}

/** USER[:GROUP], each a name or a number; `root`/`0` means no switch at all. */
function checkUser(user: string | undefined, what: string): string | undefined {
  if (user === undefined || user === '' || user === 'root' || user === '0' || user === '0:0' || user === 'root:root') return undefined;
  if (!/^[A-Za-z0-9_.][A-Za-z0-9_.-]*(:[A-Za-z0-9_.][A-Za-z0-9_.-]*)?$/.test(user)) {
    throw new HutchError(`${what}: "${user}" is not USER[:GROUP]`, { hint: 'e.g. --user 1000:1000 or --user node' });
  }
  return user;
}

/** The profile's seccomp mode, overridden by `--security-opt seccomp=...`. */
function seccompMode(profile: 'default' | 'unconfined', opts: string[]): 'default' | 'unconfined' {
  let mode = profile;
  for (const o of opts) {
    const m = /^seccomp[=:](.*)$/.exec(o);
    if (!m) {
      throw new HutchError(`--security-opt: "${o}" is not supported`, { hint: 'hutch understands --security-opt seccomp=unconfined and seccomp=default' });
    }
    mode = oneOf(m[1], ['default', 'unconfined'] as const, '--security-opt seccomp');
  }
  return mode;
}

/** The kernel's default size of one tmpfs: half of RAM (now for all of a sandbox's tmpfs writes together). */
function defaultTmpfsBudget(ctx: ResolveContext): number {
  return Math.floor((ctx.totalMemory ?? totalmem()) / 2 / 4096) * 4096;
}

function checkBudget(n: number, what: string): number {
  if (n <= 0) throw new HutchError(`${what} must be more than 0`, { hint: `e.g. ${what === '--tmpfs-budget' ? '--tmpfs-budget 512m' : 'tmpfsBudget: 512m'}` });
  return n;
}

export function resolveSpec(profile: ResolvedProfile, o: SpecOverrides, ctx: ResolveContext): SandboxSpec {
  const pv = profile.values;
  const name = checkSandboxName(o.name ?? randomName());

  const rootfs: RootfsSpec = o.rootfs
    ? parseRootfs(o.rootfs, ctx, '--rootfs')
    : pv.rootfs.kind === 'dir'
      ? parseRootfs(`dir:${pv.rootfs.path}`, ctx, 'profile rootfs')
      : pv.rootfs;
  const img = rootfs.kind === 'image' && ctx.image ? ctx.image(rootfs.name) : undefined;

  // Environment: a small default, the image's env, host variables the profile passes through,
  // the profile's env, env files, then -e.
  const env: Record<string, string> = { PATH: DEFAULT_PATH, HOME: '/root', container: 'hutch' };
  if (img) Object.assign(env, img.env);
  for (const pattern of pv.passEnv) {
    const re = globRegExp(pattern);
    // names first, then only the values passed: what this reads of the environment is what it uses (the launch cache records reads)
    for (const k of Object.keys(ctx.env)) {
      const v = re.test(k) ? ctx.env[k] : undefined;
      if (v !== undefined) env[k] = v;
    }
  }
  Object.assign(env, pv.env);
  for (const f of pv.envFile) Object.assign(env, parseEnvFile(f, 'profile envFile', ctx.fs));
  for (const f of o.envFiles) Object.assign(env, parseEnvFile(expandHostPath(f, ctx), '--env-file', ctx.fs));
  for (const e of o.env) {
    const eq = e.indexOf('=');
    if (eq === 0) throw new HutchError(`--env: "${e}" has no variable name`, { hint: '-e KEY=VALUE or -e KEY' });
    if (eq < 0) {
      if (ctx.env[e] !== undefined) env[e] = ctx.env[e]!;
    } else env[e.slice(0, eq)] = e.slice(eq + 1);
  }

  // Mounts: a later mount on the same target replaces an earlier one, so a
  // flag can override what the profile mounts there.
  const mounts: MountSpec[] = [];
  const mountOrigins: Record<string, Origin> = {};
  const addMount = (m: MountSpec, origin: Origin) => {
    const i = mounts.findIndex((x) => x.target === m.target);
    if (i >= 0) mounts.splice(i, 1);
    mounts.push(m);
    mountOrigins[m.target] = origin;
  };
  for (const [i, m] of pv.mounts.entries()) addMount(profileMount(m, ctx, `profile mounts[${i}]`), profileOrigin(profile, `mounts[${i}]`));
  for (const v of o.volumes) addMount(parseVolume(v, ctx, '--volume'), { what: `-v ${v}` });
  for (const t of o.tmpfs) addMount(parseTmpfs(t, '--tmpfs'), { what: `--tmpfs ${t}` });

  // Capabilities: the profile's resolved set, then --cap-add/--cap-drop with
  // podman's meaning of ALL: `--cap-drop ALL --cap-add X` keeps X,
  // `--cap-add ALL --cap-drop X` keeps everything but X.
  // Each value may be a comma list, as podman takes it (`--cap-drop SETUID,SETGID`).
  const isAll = (c: string) => c.toUpperCase() === 'ALL';
  const capDrop = o.capDrop.flatMap((v) => v.split(','));
  const capAdd = o.capAdd.flatMap((v) => v.split(','));
  let caps = new Set<string>(profile.capabilities);
  if (capDrop.some(isAll)) caps.clear();
  if (capAdd.some(isAll)) caps = new Set(CAPABILITIES);
  for (const c of capDrop.filter((c) => !isAll(c))) caps.delete(normalizeCap(c, '--cap-drop'));
  for (const c of capAdd.filter((c) => !isAll(c))) caps.add(normalizeCap(c, '--cap-add'));

  const networkRaw = o.network ?? pv.network.mode;
  // Anything else that is a valid name is a named network (checked to exist by `hutch run`).
  const isNamed = (n: string) => !(NETWORKS as string[]).includes(n) && isNetworkName(n);
  // the command line's --network replaces the profile's network (mode or names) as a whole
  // `--network NAME:ip=ADDR,alias=X` (src/spec/network-option.ts); the profile's network.ip per network
  const flags =
    o.network !== undefined
      ? collectNetworkFlags([o.network, ...(o.moreNetworks ?? [])], isNamed)
      : { names: pv.network.names, options: profileNetworkOptions(pv.network.ips) };
  const requested = flags.names;
  const namedNetworks = [...new Set(requested.filter(isNamed))].sort(); // lexical: the first routed one is the way out
  const mode = requested.find((n) => !isNamed(n));
  if (requested.length > 1 && mode !== undefined) {
    throw new HutchError(`--network ${mode} cannot be combined with another --network`, {
      hint: 'several --network flags name networks made by hutch network create; a mode (none, host, slirp, pasta) comes alone',
    });
  }
  const network = namedNetworks.length ? 'none' : oneOf(networkRaw, NETWORKS, o.network ? '--network' : 'profile network');
  // The image's WorkingDir wins over a built-in profile's generic default, not over a profile of yours.
  const workdirFromBuiltin = !profile.originOf('workdir') || profile.originOf('workdir')!.file.startsWith('builtin:');
  const workdir = o.workdir ?? (img?.workdir && workdirFromBuiltin ? img.workdir : pv.workdir);
  // Likewise the image's ENTRYPOINT + CMD win over a built-in profile's generic `command: [/bin/sh]`.
  const commandFromBuiltin = !profile.originOf('command') || profile.originOf('command')!.file.startsWith('builtin:');
  const userValue = o.user ?? pv.user ?? img?.user;
  if (!workdir.startsWith('/')) throw new HutchError(`--workdir: "${workdir}" must be an absolute path inside the sandbox`);

  return {
    name,
    profiles: profile.chain,
    rootfs,
    storageDriver: oneOf(o.storageDriver ?? pv.storageDriver, DRIVERS, o.storageDriver ? '--storage-driver' : 'profile storageDriver'),
    readOnly: o.readOnly ?? pv.readOnly,
    tmpfsBudget:
      o.tmpfsBudget !== undefined
        ? checkBudget(parseSize(o.tmpfsBudget, '--tmpfs-budget'), '--tmpfs-budget')
        : pv.tmpfsBudget !== undefined
          ? checkBudget(pv.tmpfsBudget, 'profile tmpfsBudget')
          : defaultTmpfsBudget(ctx),
    keep: o.keep ? expandHostPath(o.keep, ctx) : undefined,
    hostname: o.hostname ?? pv.hostname ?? name,
    workdir,
    command: img ? imageCommand(img, o.command, commandFromBuiltin ? undefined : pv.command) : o.command.length ? o.command : (pv.command ?? ['/bin/sh']),
    env,
    mounts,
    network,
    ...(namedNetworks.length ? { namedNetworks } : {}),
    ...(Object.keys(flags.options).length ? { networkOptions: flags.options } : {}),
    ...resolveNetworkSpec(
      img?.expose.length ? { ...pv.network, expose: [...new Set([...img.expose, ...pv.network.expose])] } : pv.network,
      namedNetworks.length && pv.network.aliases.length
        ? { publish: [], publishAll: false, expose: [], ...o.net, aliases: [...pv.network.aliases, ...(o.net?.aliases ?? [])] }
        : (o.net ?? { publish: [], publishAll: false, expose: [] }),
      namedNetworks.length ? `network ${namedNetworks.join(', ')}` : network,
      o.network ? '--network' : pv.network.names.length ? 'profile network.name' : 'profile network',
    ),
    user: checkUser(userValue, o.user ? '--user' : pv.user ? 'profile user' : "the image's USER"),
    userns: oneOf(o.userns ?? pv.userns, USERNS, o.userns ? '--userns' : 'profile userns'),
    capabilities: [...caps].sort(),
    allowSetuid: pv.security.allowSetuid,
    seccompDeny: seccompMode(pv.seccomp, o.securityOpt ?? []) === 'unconfined' ? [] : defaultSeccompDeny(ctx.arch),
    home: pv.home,
    hideHomes: pv.hideHomes,
    hide: pv.hide.map((h) => expandHostPath(h, ctx, 'profile hide')),
    limits: resolveLimits(pv.limits, o.limits ?? {}, ctx.fs),
    subordinateIds: pv.subordinateIds,
    origins: {
      workdir: o.workdir
        ? { what: `-w ${o.workdir}` }
        : img?.workdir && workdirFromBuiltin
          ? { what: `the image's WorkingDir ${img.workdir}` }
          : profileOrigin(profile, 'workdir', workdir),
      rootfs: o.rootfs ? { what: `--rootfs ${o.rootfs}` } : profileOrigin(profile, 'rootfs'),
      keep: o.keep ? { what: `--keep ${o.keep}` } : undefined,
      readOnly: o.readOnly !== undefined ? { what: '--read-only' } : profileOrigin(profile, 'readOnly'),
      user: o.user
        ? { what: `-u ${o.user}` }
        : pv.user
          ? profileOrigin(profile, 'user', pv.user)
          : img?.user
            ? { what: `the image's USER ${img.user}` }
            : undefined,
      mounts: mountOrigins,
    },
  };
}

/** A profile field as an origin: its name (and value, when short) at its file:line:col. */
function profileOrigin(profile: ResolvedProfile, field: string, value?: string): Origin {
  return { what: value === undefined ? field : `${field} ${value}`, location: profile.originOf(field) };
}
