// Named networks as persistent objects (docs/NETWORKS.md): one JSON file per
// network under <data dir>/networks/NAME.json (name, subnet, gateway,
// internal, created). What runs for a network (its holder's socket and lock)
// lives under <runtime dir>/hutch-net/NAME/ and goes away with the holder.

import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HutchError } from '../util/errors';
import type { HutchPaths } from '../host/paths';
import { listSandboxes } from '../state/sandboxes';
import { NETWORK_NAME_RE, RESERVED_NETWORK_NAMES } from '../spec/network';
import { NET_DRIVERS, type NetDriverName } from './types';

export interface NetworkConfig {
  name: string;
  /** IPv4 CIDR, network address (e.g. 10.89.0.0/24). */
  subnet: string;
  /** The bridge's address: the DNS responder and (unless internal) the default route. */
  gateway: string;
  /** No default route for members. */
  internal: boolean;
  created: string;
  /** The NAT driver of a routed network (src/net/named-nat.ts); absent: auto. */
  driver?: 'auto' | NetDriverName;
}

export function checkNetworkName(name: string, what = 'network name'): void {
  if (!NETWORK_NAME_RE.test(name)) {
    throw new HutchError(`${what} "${name}" is not valid`, { hint: 'use letters, digits, _ . - (at most 40, starting with a letter or digit)' });
  }
  if (RESERVED_NETWORK_NAMES.includes(name)) {
    throw new HutchError(`${what} "${name}" is reserved`, { hint: `${RESERVED_NETWORK_NAMES.join(', ')} are network modes or reserved; choose another name` });
  }
}

const configDir = (paths: HutchPaths) => join(paths.dataDir, 'networks');
const configFile = (paths: HutchPaths, name: string) => join(configDir(paths), `${name}.json`);
/** The holder's directory (socket, lock, log). */
export const networkRunDir = (paths: HutchPaths, name: string) => join(paths.runtimeDir, 'hutch-net', name);

// ---- IPv4 arithmetic ----

export function ipToInt(ip: string): number | undefined {
  const m = ip.match(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/);
  if (!m) return undefined;
  const b = m.slice(1).map(Number);
  if (b.some((x) => x > 255)) return undefined;
  return ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
}

export const intToIp = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

export interface Cidr {
  net: number;
  prefix: number;
}

const maskOf = (prefix: number) => (prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0);

export function parseSubnet(text: string, what = '--subnet'): Cidr {
  const [ip, p, ...rest] = text.split('/');
  const addr = ipToInt(ip ?? '');
  const prefix = /^\d{1,2}$/.test(p ?? '') ? Number(p) : NaN;
  if (addr === undefined || rest.length || !(prefix >= 8 && prefix <= 30)) {
    throw new HutchError(`${what}: "${text}" is not an IPv4 subnet ADDRESS/PREFIX with a prefix from 8 to 30`, { hint: 'e.g. --subnet 10.89.5.0/24' });
  }
  const net = (addr & maskOf(prefix)) >>> 0;
  if (net !== addr) {
    throw new HutchError(`${what}: ${text} has host bits set`, { hint: `the network address is ${intToIp(net)}/${prefix}` });
  }
  return { net, prefix };
}

export const formatCidr = (c: Cidr) => `${intToIp(c.net)}/${c.prefix}`;

export function overlaps(a: Cidr, b: Cidr): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return ((a.net ^ b.net) & maskOf(p)) === 0;
}

/** The host's IPv4 routes (/proc/net/route: little-endian hex), so a network never shadows one. */
export function hostRoutes(text?: string): Cidr[] {
  let t = text;
  try {
    t ??= readFileSync('/proc/net/route', 'utf8');
  } catch {
    return [];
  }
  const le = (h: string) => {
    const n = parseInt(h, 16);
    return (((n & 255) << 24) | (((n >>> 8) & 255) << 16) | (((n >>> 16) & 255) << 8) | ((n >>> 24) & 255)) >>> 0;
  };
  const out: Cidr[] = [];
  for (const line of t.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || f[1] === '00000000') continue; // the default route overlaps everything by definition
    const mask = le(f[7]);
    const prefix = mask.toString(2).replace(/0+$/, '').length;
    out.push({ net: le(f[1]), prefix });
  }
  return out;
}

/** 10.89.N.0/24 for the first N that overlaps neither another network nor a host route (podman's range). */
export function chooseSubnet(taken: Cidr[]): Cidr {
  for (let n = 0; n < 256; n++) {
    const c = { net: ipToInt(`10.89.${n}.0`)!, prefix: 24 };
    if (!taken.some((t) => overlaps(t, c))) return c;
  }
  throw new HutchError('no free subnet in 10.89.0.0/16 for a new network', { hint: 'give one with --subnet, or remove unused networks (hutch network prune)' });
}

// ---- the store ----

export function listNetworks(paths: HutchPaths): NetworkConfig[] {
  let names: string[];
  try {
    names = readdirSync(configDir(paths)).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  const out: NetworkConfig[] = [];
  for (const n of names.sort()) {
    try {
      out.push(JSON.parse(readFileSync(join(configDir(paths), n), 'utf8')) as NetworkConfig);
    } catch {
      /* a file being written right now */
    }
  }
  return out;
}

export function getNetwork(paths: HutchPaths, name: string): NetworkConfig | undefined {
  try {
    return JSON.parse(readFileSync(configFile(paths, name), 'utf8')) as NetworkConfig;
  } catch {
    return undefined;
  }
}

export function requireNetwork(paths: HutchPaths, name: string, what = 'network'): NetworkConfig {
  const n = getNetwork(paths, name);
  if (!n) throw new HutchError(`${what} "${name}" does not exist`, { hint: `create it with \`hutch network create ${name}\` (hutch network ls lists them)` });
  return n;
}

/** `hutch network create --network-driver`: the NAT of a routed network. */
export function parseNetworkDriver(text: string | undefined, internal: boolean): 'auto' | NetDriverName | undefined {
  if (text === undefined) return undefined;
  if (text !== 'auto' && !(NET_DRIVERS as readonly string[]).includes(text))
    throw new HutchError(`--network-driver: "${text}" is not one of auto, ${NET_DRIVERS.join(', ')}`, {
      hint: "the NAT of the network's outbound traffic: slirp4netns (auto, where installed) or pasta",
    });
  if (internal) throw new HutchError('--network-driver and --internal contradict each other', { hint: 'an --internal network has no NAT: drop one of them' });
  return text as 'auto' | NetDriverName;
}

export function createNetwork(paths: HutchPaths, opts: { name: string; subnet?: string; gateway?: string; internal: boolean; driver?: string }): NetworkConfig {
  checkNetworkName(opts.name);
  const driver = parseNetworkDriver(opts.driver, opts.internal);
  if (getNetwork(paths, opts.name))
    throw new HutchError(`network "${opts.name}" already exists`, { hint: 'choose another name, or remove it first (hutch network rm)' });
  const others = listNetworks(paths);
  let subnet: Cidr;
  if (opts.subnet) {
    subnet = parseSubnet(opts.subnet);
    const clash = others.find((o) => overlaps(parseSubnet(o.subnet), subnet));
    if (clash)
      throw new HutchError(`--subnet ${opts.subnet} overlaps network "${clash.name}" (${clash.subnet})`, { hint: 'choose a subnet no other network uses' });
  } else {
    subnet = chooseSubnet([...others.map((o) => parseSubnet(o.subnet)), ...hostRoutes()]);
  }
  let gateway = subnet.net + 1;
  if (opts.gateway) {
    const g = ipToInt(opts.gateway);
    const last = subnet.net + 2 ** (32 - subnet.prefix) - 1;
    if (g === undefined || g <= subnet.net || g >= last) {
      throw new HutchError(`--gateway ${opts.gateway} is not a host address of ${formatCidr(subnet)}`, { hint: `e.g. --gateway ${intToIp(subnet.net + 1)}` });
    }
    gateway = g;
  }
  const cfg: NetworkConfig = {
    name: opts.name,
    subnet: formatCidr(subnet),
    gateway: intToIp(gateway),
    internal: opts.internal,
    created: new Date().toISOString(),
    ...(driver && driver !== 'auto' ? { driver } : {}),
  };
  mkdirSync(configDir(paths), { recursive: true, mode: 0o700 });
  try {
    writeFileSync(configFile(paths, opts.name), `${JSON.stringify(cfg, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new HutchError(`network "${opts.name}" already exists`);
    throw e;
  }
  return cfg;
}

/** Names of the running sandboxes on the network. */
export function networkMembers(paths: HutchPaths, name: string): string[] {
  return listSandboxes(paths.stateDir)
    .filter((s) => (s.state.networks ?? []).includes(name))
    .map((s) => s.state.name);
}

/** Running members' addresses on the network (those attached so far). */
export function memberAddresses(paths: HutchPaths, name: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const { state } of listSandboxes(paths.stateDir)) {
    const a = state.addresses?.[name];
    if (a && (state.networks ?? []).includes(name)) out[state.name] = a;
  }
  return out;
}

export function removeNetwork(paths: HutchPaths, name: string): void {
  requireNetwork(paths, name);
  const members = networkMembers(paths, name);
  if (members.length) {
    throw new HutchError(`network "${name}" is in use by running sandbox${members.length > 1 ? 'es' : ''} ${members.join(', ')}`, {
      hint: 'stop them first, then remove the network',
    });
  }
  rmSync(configFile(paths, name), { force: true });
  rmSync(networkRunDir(paths, name), { recursive: true, force: true });
}
