// The network part of SandboxSpec from profile values and flags: published
// ports (profile `network.publish` then -p), exposed ports (profile
// `network.expose` then --expose; -P publishes them on free host ports),
// allowHostLoopback and the driver. Ports only make sense with user-mode NAT:
// with `none` there is nothing to forward to, with `host` the program's ports
// already are the host's.

import { isIP } from 'node:net';
import { HutchError } from '../util/errors';
import { parseExpose, parsePortMapping, type PortMapping } from '../profile/values';
import type { NetworkMode } from './types';
import { NET_DRIVERS, type NetDriverName } from './types';

/** Names a named network may have (src/net/named-store.ts); the modes and a few words are reserved. */
export const NETWORK_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,39}$/;
export const RESERVED_NETWORK_NAMES = ['none', 'host', 'slirp', 'pasta', 'private', 'bridge', 'default', 'auto'];
export const isNetworkName = (s: string) => NETWORK_NAME_RE.test(s) && !RESERVED_NETWORK_NAMES.includes(s);

export interface NetworkOverrides {
  publish: string[];
  publishAll: boolean;
  expose: string[];
  networkDriver?: string;
  allowHostLoopback?: boolean;
  /** --network-alias (named networks only) */
  aliases?: string[];
  /** --ip (named networks only) */
  ip?: string;
  /** --link NAME[:ALIAS] (named networks only) */
  links?: string[];
  /** --add-host NAME:IP */
  addHosts?: string[];
  /** --dns IP */
  dns?: string[];
}

export interface NetworkSpecPart {
  networkDriver: 'auto' | NetDriverName;
  allowHostLoopback: boolean;
  ports: PortMapping[];
  expose: string[];
  /** Named networks: more names the network's DNS answers for this sandbox. */
  networkAliases?: string[];
  /** Named networks: the address asked for (inside the subnet; checked against the network at run). */
  networkIp?: string;
  /** --link: another member under an alias (/etc/hosts, the link variables, the network's DNS). */
  links?: { name: string; alias: string }[];
  /** --add-host: /etc/hosts lines. */
  addHosts?: { name: string; ip: string }[];
  /** --dns: the nameservers of /etc/resolv.conf. */
  dns?: string[];
}

const DNS_LABEL = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/;

function namedNetworkPart(o: NetworkOverrides, mode: string): Pick<NetworkSpecPart, 'networkAliases' | 'networkIp'> {
  const named = mode.startsWith('network ');
  const aliases = o.aliases ?? [];
  if (!named && (aliases.length || o.ip !== undefined)) {
    throw new HutchError(`${aliases.length ? '--network-alias' : '--ip'} needs a named network, but the network is "${mode}"`, {
      hint: 'create one with `hutch network create NAME` and add --network NAME',
    });
  }
  for (const a of aliases) {
    if (!DNS_LABEL.test(a))
      throw new HutchError(`--network-alias "${a}" is not a DNS label`, { hint: 'letters, digits and -, at most 63, not starting or ending with -' });
  }
  if (o.ip !== undefined && mode.includes(',')) {
    throw new HutchError(`--ip applies to one network, but the sandbox is on ${mode.slice('network '.length)}`, {
      hint: "give each network its own: --network NAME:ip=ADDR (podman's spelling), or drop --ip (each network gives a free address)",
    });
  }
  if (o.ip !== undefined && !/^\d{1,3}(\.\d{1,3}){3}$/.test(o.ip)) {
    throw new HutchError(`--ip "${o.ip}" is not an IPv4 address`, { hint: "e.g. --ip 10.89.0.10 (inside the network's subnet)" });
  }
  return { ...(aliases.length ? { networkAliases: [...new Set(aliases)] } : {}), ...(o.ip !== undefined ? { networkIp: o.ip } : {}) };
}

const HOST_NAME = /^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,251}[a-zA-Z0-9])?$/;

/** --link, --add-host, --dns: what the sandbox's /etc/hosts and /etc/resolv.conf say (src/net/etc-files.ts). */
function etcPart(o: NetworkOverrides, mode: string): Pick<NetworkSpecPart, 'links' | 'addHosts' | 'dns'> {
  const links = (o.links ?? []).map((l) => {
    const [name, alias = name, ...rest] = l.split(':');
    if (rest.length || !NETWORK_NAME_RE.test(name) || !DNS_LABEL.test(alias))
      throw new HutchError(`--link "${l}" is not NAME[:ALIAS]`, {
        hint: 'NAME: a sandbox on the same named network; ALIAS: a DNS label (e.g. --link db:database)',
      });
    return { name, alias };
  });
  if (links.length && !mode.startsWith('network '))
    throw new HutchError(`--link needs a named network, but the network is "${mode}"`, {
      hint: 'put both sandboxes on one network: hutch network create NAME, then --network NAME on each',
    });
  const addHosts = (o.addHosts ?? []).map((h) => {
    const i = h.indexOf(':');
    const name = h.slice(0, i);
    const ip = h.slice(i + 1).replace(/^\[(.*)\]$/, '$1');
    if (i < 1 || !HOST_NAME.test(name) || !isIP(ip))
      throw new HutchError(`--add-host "${h}" is not NAME:IP`, { hint: 'e.g. --add-host db.local:10.1.2.3 (IPv6 as --add-host h:[fd00::1])' });
    return { name, ip };
  });
  const dns = o.dns ?? [];
  for (const d of dns) if (!isIP(d)) throw new HutchError(`--dns "${d}" is not an IP address`, { hint: 'e.g. --dns 9.9.9.9' });
  if (mode === 'host' && (addHosts.length || dns.length))
    throw new HutchError(`${addHosts.length ? '--add-host' : '--dns'} cannot change the host's own /etc files (--network host)`, {
      hint: "with --network host the sandbox uses the host's /etc/hosts and /etc/resolv.conf; use another network mode",
    });
  return { ...(links.length ? { links } : {}), ...(addHosts.length ? { addHosts } : {}), ...(dns.length ? { dns } : {}) };
}

export function parsePublish(text: string, what: string): PortMapping {
  const r = parsePortMapping(text);
  if (!r.ok) throw new HutchError(`${what}: ${r.message}`, { hint: r.hint });
  return r.value;
}

function exposeRange(e: string): { start: number; end: number; protocol: string } {
  const [range, protocol] = e.split('/');
  const [a, b = a] = range.split('-');
  return { start: Number(a), end: Number(b), protocol };
}

export function resolveNetworkSpec(
  profile: { allowHostLoopback: boolean; publish: string[]; expose: string[] },
  o: NetworkOverrides,
  mode: NetworkMode | `network ${string}`,
  modeFrom: string,
): NetworkSpecPart {
  const ports = [...profile.publish.map((t, i) => parsePublish(t, `profile network.publish[${i}]`)), ...o.publish.map((t) => parsePublish(t, '--publish'))];
  const expose = [...profile.expose];
  for (const e of o.expose) {
    const r = parseExpose(e);
    if (!r.ok) throw new HutchError(`--expose: ${r.message}`, { hint: r.hint });
    if (!expose.includes(r.value)) expose.push(r.value);
  }
  if (o.publishAll) {
    for (const e of expose) {
      const x = exposeRange(e);
      for (let p = x.start; p <= x.end; p++) {
        const covered = ports.some((m) => m.protocol === x.protocol && p >= m.containerPort.start && p <= m.containerPort.end);
        if (!covered) ports.push({ containerPort: { start: p, end: p }, protocol: x.protocol as PortMapping['protocol'] });
      }
    }
  }

  let driver: 'auto' | NetDriverName = 'auto';
  if (o.networkDriver !== undefined) {
    if (o.networkDriver !== 'auto' && !(NET_DRIVERS as readonly string[]).includes(o.networkDriver)) {
      throw new HutchError(`--network-driver: "${o.networkDriver}" is not one of auto, ${NET_DRIVERS.join(', ')}`, {
        hint: 'slirp4netns or pasta (auto: pasta where it can run, else slirp4netns)',
      });
    }
    driver = o.networkDriver as 'auto' | NetDriverName;
    if (mode.startsWith('network ')) {
      // one NAT for all members of a network, chosen with the network
      throw new HutchError(`--network-driver: the NAT of ${mode} is the network's, chosen when it is created (${modeFrom})`, {
        hint: `hutch network create NAME --network-driver ${driver} (hutch network inspect shows a network's driver)`,
      });
    }
    if (mode !== 'slirp' && mode !== 'pasta') {
      throw new HutchError(`--network-driver ${driver} needs user-mode NAT, but the network is "${mode}" (${modeFrom})`, {
        hint: 'add --network slirp',
      });
    }
  }

  const nat = mode === 'slirp' || mode === 'pasta';
  const named = mode.startsWith('network ') ? mode.slice('network '.length) : undefined;
  // a named network's member publishes through the network's NAT (checked against --internal at run)
  if (!nat && !named && ports.length) {
    const from = o.publish.length ? '--publish' : o.publishAll ? '--publish-all' : 'profile network.publish';
    throw new HutchError(`${from}: ports cannot be published with network "${named ?? mode}" (${modeFrom})`, {
      hint:
        mode === 'host' ? "with --network host the program's ports already are the host's: drop -p" : 'use --network slirp (user-mode NAT) to publish ports',
    });
  }
  // on a named network it lifts only the member's block of the host's own addresses (the NAT is shared)
  if (!nat && !named && o.allowHostLoopback) {
    throw new HutchError(`--allow-host-loopback needs user-mode NAT, but the network is "${mode}" (${modeFrom})`, {
      hint: mode === 'host' ? 'with --network host the sandbox already shares the host loopback' : 'use --network slirp',
    });
  }
  return {
    ...namedNetworkPart(o, mode),
    ...etcPart(o, mode),
    networkDriver: driver,
    allowHostLoopback: (nat || !!named) && (o.allowHostLoopback ?? profile.allowHostLoopback),
    ports,
    expose,
  };
}
