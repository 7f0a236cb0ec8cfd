// `--network NAME:ip=ADDR,alias=X`: podman's per-network options of a named
// network (`podman run --network name:ip=...,alias=...`). With several
// networks one --ip would not say which network it is for, so the address
// (and aliases for that network only) go with the network's own flag.
// Parsed here, checked against the network (subnet, taken) by `hutch run`
// (src/net/named-address.ts).

import { HutchError } from '../util/errors';
import { suggest } from '../util/suggest';

/** Per named network: the address asked for and the names only that network's DNS answers. */
export interface NetworkOptions {
  ip?: string;
  aliases?: string[];
  /** Where the options come from when not from --network (the profile's field), for errors. */
  from?: string;
}

export interface NetworkFlag {
  name: string;
  options?: NetworkOptions;
}

const DNS_LABEL = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const KEYS = ['ip', 'alias'];
/** podman's other options, refused with the reason rather than "unknown". */
const NOT_HERE: Record<string, string> = {
  ip6: 'named networks are IPv4 only (no IPv6 subnet, no IPv6 on the bridge)',
  mac: "a member's MAC address is left to the kernel",
  interface_name: 'hutch names the interfaces eth0, eth1, ... in lexical order of the networks',
};

/**
 * `NAME` or `NAME:OPT=VALUE[,OPT=VALUE]...`; `isName` says whether NAME is a
 * named network (not a mode). `what` names the flag in errors.
 */
export function parseNetworkFlag(value: string, isName: (n: string) => boolean, what = '--network'): NetworkFlag {
  const colon = value.indexOf(':');
  if (colon < 0) return { name: value };
  const name = value.slice(0, colon);
  const rest = value.slice(colon + 1);
  if (!isName(name)) {
    throw new HutchError(`${what} ${value}: options after ":" are for a named network, and "${name}" is not one`, {
      hint: `a named network with options: ${what} NAME:ip=10.89.0.5,alias=db; a mode (none, host, slirp, pasta) takes none (see --allow-host-loopback, -p)`,
    });
  }
  const usage = `e.g. ${what} ${name}:ip=10.89.0.5,alias=db`;
  if (!rest) throw new HutchError(`${what} ${value}: no option after ":"`, { hint: `${usage}, or ${what} ${name} alone` });
  const options: NetworkOptions = {};
  for (const item of rest.split(',')) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    const v = eq < 0 ? undefined : item.slice(eq + 1);
    if (!key) throw new HutchError(`${what} ${value}: an empty option (two commas, or a comma at an end)`, { hint: usage });
    if (NOT_HERE[key]) throw new HutchError(`${what} ${value}: option ${key} is not supported: ${NOT_HERE[key]}`, { hint: usage });
    if (!KEYS.includes(key)) {
      const near = suggest(key, KEYS);
      throw new HutchError(`${what} ${value}: unknown option "${key}"${near ? `; did you mean "${near}"?` : ''}`, {
        hint: `a named network takes ip=ADDR and alias=NAME (${usage})`,
      });
    }
    if (!v) throw new HutchError(`${what} ${value}: option ${key} needs a value (${key}=...)`, { hint: usage });
    if (key === 'ip') {
      if (options.ip !== undefined) throw new HutchError(`${what} ${value}: ip is given twice`, { hint: 'a member has one address per network' });
      if (!IPV4.test(v))
        throw new HutchError(`${what} ${value}: ip "${v}" is not an IPv4 address`, {
          hint: `an address inside network ${name}'s subnet, e.g. ${what} ${name}:ip=10.89.0.5`,
        });
      options.ip = v;
    } else {
      if (!DNS_LABEL.test(v))
        throw new HutchError(`${what} ${value}: alias "${v}" is not a DNS label`, {
          hint: 'letters, digits and -, at most 63, not starting or ending with -',
        });
      options.aliases = [...new Set([...(options.aliases ?? []), v])];
    }
  }
  return { name, options };
}

/**
 * The names and per-network options of several --network values: one entry
 * per name; the same network twice is refused when either says options.
 */
export function collectNetworkFlags(
  values: string[],
  isName: (n: string) => boolean,
  what = '--network',
): { names: string[]; options: Record<string, NetworkOptions> } {
  const names: string[] = [];
  const options: Record<string, NetworkOptions> = {};
  for (const v of values) {
    const f = parseNetworkFlag(v, isName, what);
    if (names.includes(f.name)) {
      if (f.options || options[f.name])
        throw new HutchError(`${what} ${f.name} is given twice, with options`, { hint: `give each network once: ${what} ${f.name}:ip=...,alias=...` });
      continue;
    }
    names.push(f.name);
    if (f.options) options[f.name] = f.options;
  }
  return { names, options };
}

/** A profile's `network.ip: {NAME: ADDR}` as per-network options (validated by the schema). */
export function profileNetworkOptions(ips: Record<string, string> | undefined): Record<string, NetworkOptions> {
  return Object.fromEntries(Object.entries(ips ?? {}).map(([n, ip]) => [n, { ip, from: `profile network.ip.${n}` }]));
}
