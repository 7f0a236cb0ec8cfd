// Merging an `extends` chain of validated profile layers, keeping the origin
// (file:line:col) of every value.
//
// Rules: scalars and whole values (rootfs, command, ...) override; `env`
// merges key by key; `limits` and `network` merge field by field; lists
// (mounts, passEnv, envFile, hide, network.publish, network.expose) append
// parent-first; `capabilities` is either an exact list (replaces) or
// {add, drop} applied in chain order (drop, then add; ALL allowed).
// `description` is never inherited: it describes one file.

import { HutchError, type SourceLocation } from '../util/errors';
import type { NetworkMode, RootfsSpec, StorageDriver } from './schema';
import { CAPABILITIES, DEFAULT_CAPABILITIES, sortCapabilities, type Capability } from './capabilities';
import { expandVars, resolveHostPath, type ExpandContext } from './expand';
import type { CapabilitiesLayer, HideHomes, HomeMode, LimitMode, ListLayer, ProfileLayer, ProfileLimits, UsernsMode } from './schema';
import type { ProfileMount } from './values';

export type SetupStep = { run: string } | { copy: { from: string; to: string } };

/** The merged, complete values of a profile (defaults filled in). */
export interface ProfileValues {
  /** The most derived profile's own description (not inherited). */
  description?: string;
  rootfs: RootfsSpec;
  storageDriver: StorageDriver;
  readOnly: boolean;
  /** Bytes; undefined: half of the host's RAM (src/spec/resolve.ts). */
  tmpfsBudget?: number;
  /** Undefined: the sandbox name. */
  hostname?: string;
  workdir: string;
  /** Undefined: the runtime's default shell. */
  command?: string[];
  /** ${VAR} references already expanded with the host environment. */
  env: Record<string, string>;
  /** Absolute paths (relative entries resolved against their profile file's directory). */
  envFile: string[];
  /** Names or globs (`LC_*`) of host variables passed through. */
  passEnv: string[];
  home: HomeMode;
  hideHomes: HideHomes;
  /** Bind sources as written (`.`, `~/x`, `${PWD}`): resolve with resolveHostPath() against the run's cwd. */
  mounts: ProfileMount[];
  /** Host paths as written; resolve with resolveHostPath(). */
  hide: string[];
  network: {
    mode: NetworkMode;
    /** Named networks to join (empty: the mode). */
    names: string[];
    aliases: string[];
    /** network.ip: the address asked for on a named network, by network name. */
    ips?: Record<string, string>;
    allowHostLoopback: boolean;
    /** podman -p syntax, validated (parse with parsePortMapping()). */
    publish: string[];
    /** Normalised `PORT[-END]/PROTO`, e.g. `3000/tcp`. */
    expose: string[];
  };
  /** The resolved set, in bit order. */
  capabilities: Capability[];
  /** memory/memorySwap in bytes, timeout in milliseconds. */
  limits: ProfileLimits & { mode: LimitMode };
  subordinateIds: 'auto' | 'required';
  seccomp: 'default' | 'unconfined';
  security: { allowSetuid: boolean };
  user?: string;
  userns: UsernsMode;
  /** `setup:` steps, parent-first; `copy.from` resolved to an absolute host path (against its profile file's directory). */
  setup: SetupStep[];
}

export function defaultValues(): ProfileValues {
  return {
    rootfs: { kind: 'host' },
    storageDriver: 'auto',
    readOnly: false,
    workdir: '/',
    env: {},
    envFile: [],
    passEnv: [],
    home: 'hidden',
    hideHomes: 'own',
    mounts: [],
    hide: [],
    network: { mode: 'none', names: [], aliases: [], allowHostLoopback: false, publish: [], expose: [] },
    capabilities: [...DEFAULT_CAPABILITIES],
    limits: { mode: 'warn' },
    subordinateIds: 'auto',
    seccomp: 'default',
    userns: 'root',
    security: { allowSetuid: false },
    setup: [],
  };
}

/** One validated file of the chain. */
export interface LoadedLayer {
  /** Chain entry (name or path) for messages. */
  ref: string;
  /** Location file name (absolute path or builtin:NAME.yaml). */
  file: string;
  /** Directory that relative envFile entries resolve against; undefined for built-ins (the run's cwd is used). */
  dir?: string;
  layer: ProfileLayer;
  origins: Map<string, SourceLocation>;
}

/** Field-path -> origin, with lookups falling back to the nearest ancestor. */
export class OriginMap {
  readonly map = new Map<string, SourceLocation>();

  /**
   * Exact origin; inside a list also the nearest recorded ancestor
   * (`mounts[0].source` -> `mounts[0]` for a mount written as a string,
   * `capabilities[2]` -> `capabilities`). Values nobody set have none.
   */
  get(path: string): SourceLocation | undefined {
    const exact = this.map.get(path);
    if (exact || !path.includes('[')) return exact;
    for (let p = parentPath(path); p !== undefined && p !== ''; p = parentPath(p)) {
      const o = this.map.get(p);
      if (o) return o;
    }
    return undefined;
  }

  /** Replace everything at and under `path` with the layer's origins there. */
  replace(path: string, from: Map<string, SourceLocation>): void {
    for (const k of [...this.map.keys()]) if (isUnder(k, path)) this.map.delete(k);
    const own = lookupWithFallback(from, path);
    if (own) this.map.set(path, own);
    for (const [k, v] of from) if (k !== path && isUnder(k, path)) this.map.set(k, v);
  }

  /**
   * Copy the layer's `list[i]...` origins as `list[i+offset]...` (reading
   * them under `srcPath`, e.g. `list.replace`); `list` itself points at the layer.
   */
  append(path: string, from: Map<string, SourceLocation>, offset: number, srcPath = path): void {
    const own = lookupWithFallback(from, path);
    if (own) this.map.set(path, own);
    const prefix = `${srcPath}[`;
    for (const [k, v] of from) {
      if (!k.startsWith(prefix)) continue;
      const close = k.indexOf(']', prefix.length);
      const i = Number(k.slice(prefix.length, close));
      this.map.set(`${path}[${i + offset}${k.slice(close)}`, v);
    }
  }
}

function parentPath(p: string): string | undefined {
  if (p === '') return undefined;
  const m = /^(.*)(\[\d+\]|\.[^.[\]]+)$/.exec(p);
  if (m) return m[1];
  return '';
}

function isUnder(k: string, path: string): boolean {
  return k === path || k.startsWith(`${path}.`) || k.startsWith(`${path}[`);
}

function lookupWithFallback(from: Map<string, SourceLocation>, path: string): SourceLocation | undefined {
  for (let p: string | undefined = path; p !== undefined && p !== ''; p = parentPath(p)) {
    const o = from.get(p);
    if (o) return o;
  }
  return undefined;
}

/** Merge a chain (root ancestor first). Throws HutchError on values that only fail once merged (unset ${VAR}, ...). */
export function mergeLayers(layers: LoadedLayer[], ctx: ExpandContext): { values: ProfileValues; origins: OriginMap } {
  const v = defaultValues();
  const o = new OriginMap();
  let caps: Set<string> | undefined;
  const capOrigins = new Map<string, SourceLocation>();

  for (const { layer: l, origins: lo, dir } of layers) {
    const override = <K extends keyof ProfileValues & keyof ProfileLayer>(key: K) => {
      if (l[key] === undefined) return;
      (v as unknown as Record<string, unknown>)[key] = l[key];
      o.replace(key, lo);
    };
    override('rootfs');
    override('storageDriver');
    override('readOnly');
    override('tmpfsBudget');
    override('hostname');
    override('workdir');
    override('command');
    override('home');
    override('hideHomes');
    override('subordinateIds');
    override('seccomp');
    override('user');
    override('userns');

    if (l.env) {
      // A variable is a scalar: its origin is one entry, set directly. (replace()
      // scans every origin per call: quadratic in the number of variables.)
      for (const [k, val] of Object.entries(l.env)) {
        v.env[k] = val;
        const at = lookupWithFallback(lo, `env.${k}`);
        if (at) o.map.set(`env.${k}`, at);
        else o.map.delete(`env.${k}`);
      }
      const own = lo.get('env');
      if (own) o.map.set('env', own);
    }

    const append = <T>(list: T[], add: ListLayer<T> | undefined, path: string) => {
      if (!add) return;
      if (add.replace) {
        list.length = 0;
        for (const k of [...o.map.keys()]) if (k.startsWith(`${path}[`)) o.map.delete(k);
      }
      o.append(path, lo, list.length, add.replace ? `${path}.replace` : path);
      list.push(...add.items);
    };
    append(v.passEnv, l.passEnv, 'passEnv');
    append(v.hide, l.hide, 'hide');
    append(v.mounts, l.mounts, 'mounts');
    if (l.setup) {
      const src = l.setup.replace ? 'setup.replace' : 'setup';
      const items = l.setup.items.map(
        (st, i): SetupStep =>
          st.copy
            ? {
                copy: {
                  from: resolveHostPath(st.copy.from, {
                    cwd: dir ?? ctx.cwd,
                    env: ctx.env,
                    what: `setup[${i}].copy.from`,
                    location: lo.get(`${src}[${i}].copy.from`),
                  }),
                  to: st.copy.to,
                },
              }
            : { run: st.run! },
      );
      append(v.setup, { replace: l.setup.replace, items }, 'setup');
    }
    if (l.envFile) {
      const src = l.envFile.replace ? 'envFile.replace' : 'envFile';
      const items = l.envFile.items.map((f, i) =>
        resolveHostPath(f, { cwd: dir ?? ctx.cwd, env: ctx.env, what: `envFile[${i}]`, location: lo.get(`${src}[${i}]`) }),
      );
      append(v.envFile, { replace: l.envFile.replace, items }, 'envFile');
    }

    if (l.network) {
      const n = l.network;
      if (n.mode !== undefined) {
        v.network.mode = n.mode;
        v.network.names = []; // a later layer's mode replaces an earlier one's named networks
        delete v.network.ips;
        o.replace('network.mode', lo);
      }
      if (n.name !== undefined) {
        v.network.names = typeof n.name === 'string' ? [n.name] : [...n.name];
        delete v.network.ips; // addresses go with the names they were given for
        o.replace('network.name', lo);
      }
      if (n.ip !== undefined) {
        for (const k of Object.keys(n.ip))
          if (!v.network.names.includes(k))
            throw new HutchError(`network.ip.${k}: "${k}" is not one of the named networks (network.name: ${v.network.names.join(', ') || 'none'})`, {
              location: lo.get(`network.ip.${k}`),
              hint: 'give the address of a network the profile joins: network: {name: [backend], ip: {backend: 10.89.0.5}}',
            });
        v.network.ips = { ...n.ip };
        o.replace('network.ip', lo);
      }
      if (n.aliases !== undefined) {
        v.network.aliases = [...n.aliases];
        o.replace('network.aliases', lo);
      }
      if (n.allowHostLoopback !== undefined) {
        v.network.allowHostLoopback = n.allowHostLoopback;
        o.replace('network.allowHostLoopback', lo);
      }
      append(v.network.publish, n.publish, 'network.publish');
      append(v.network.expose, n.expose, 'network.expose');
      const own = lo.get('network');
      if (own) o.map.set('network', own);
    }

    if (l.security) {
      for (const [k, val] of Object.entries(l.security)) {
        (v.security as Record<string, unknown>)[k] = val;
        o.replace(`security.${k}`, lo);
      }
    }
    if (l.limits) {
      for (const [k, val] of Object.entries(l.limits)) {
        (v.limits as Record<string, unknown>)[k] = val;
        o.replace(`limits.${k}`, lo);
      }
      const own = lo.get('limits');
      if (own) o.map.set('limits', own);
    }

    if (l.capabilities) {
      caps = applyCapabilities(caps, l.capabilities, lo, capOrigins);
      o.replace('capabilities', lo);
      for (const k of [...o.map.keys()]) if (k !== 'capabilities') if (isUnder(k, 'capabilities')) o.map.delete(k);
    }
  }

  if (caps) v.capabilities = sortCapabilities(caps);
  // Per-item origins follow the names (the list is re-sorted in bit order).
  v.capabilities.forEach((c, i) => {
    const at = capOrigins.get(c);
    if (at) o.map.set(`capabilities[${i}]`, at);
  });
  const top = layers[layers.length - 1];
  if (top?.layer.description !== undefined) {
    v.description = top.layer.description;
    o.replace('description', top.origins);
  }

  // ${VAR} in env values, against the host environment.
  for (const [k, val] of Object.entries(v.env)) {
    const r = expandVars(val, ctx);
    if (!r.ok) throw new HutchError(`env.${k}: ${r.message}`, { location: o.get(`env.${k}`), hint: r.hint });
    v.env[k] = r.value;
  }

  const { memory, memorySwap } = v.limits;
  if (memory !== undefined && memorySwap !== undefined && memorySwap < memory) {
    throw new HutchError('limits.memorySwap: must be at least limits.memory (it is memory plus swap)', {
      location: o.get('limits.memorySwap'),
      hint: 'raise memorySwap, or leave it out',
    });
  }
  return { values: v, origins: o };
}

function applyCapabilities(
  current: Set<string> | undefined,
  op: CapabilitiesLayer,
  lo: Map<string, SourceLocation>,
  origins: Map<string, SourceLocation>,
): Set<string> {
  const add = (set: Set<string>, names: string[], path: string) => {
    names.forEach((n, i) => {
      const at = lo.get(`${path}[${i}]`);
      for (const c of n === 'ALL' ? CAPABILITIES : [n]) {
        set.add(c);
        if (at) origins.set(c, at);
      }
    });
  };
  if ('set' in op) {
    origins.clear();
    const next = new Set<string>();
    add(next, op.set, 'capabilities');
    return next;
  }
  const next = new Set(current ?? DEFAULT_CAPABILITIES);
  if (op.drop.includes('ALL')) next.clear();
  for (const c of op.drop) next.delete(c);
  add(next, op.add, 'capabilities.add');
  return next;
}
