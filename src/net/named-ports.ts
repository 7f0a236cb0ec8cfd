// Published ports of a named network's member (docs/NETWORKS.md "Published
// ports of a member"): `-p` of `hutch run` (through the network that routes
// the member) and of `hutch network connect` (through the connected network).
// The network's NAT (slirp4netns or pasta, NAMED_NAT in named-nat.ts) listens on
// the host and the holder DNATs to the member.
//
// What that can carry differs from the default network's slirp4netns
// (NET_CAPABILITIES in drivers.ts), for reasons of its own:
// - UDP: yes, without --allow-host-loopback. The default network's
//   slirp4netns loses UDP replies to host clients unless the host's loopback
//   is mapped into the sandbox; the network's slirp4netns has it mapped, and
//   the holder's FORWARD rules keep members from it (helper-c/nat.c).
// - IPv6 host addresses: no. slirp4netns's API binds IPv4 host addresses;
//   the default network relays IPv6 ones through hutch (proxy.ts), which
//   needs a resident hutch, and a connected network has none. Named networks
//   have no IPv6 of their own either.

import { isIPv6 } from 'node:net';
import type { PortMapping } from '../profile/values';
import { HutchError } from '../util/errors';
import type { NetworkConfig } from './named-store';
import { expandMappings, hostAddr } from './ports';
import type { NetDriverName, PortForward } from './types';

/** What a member's published port can be, per NAT driver of a named network. */
export const MEMBER_PUBLISH: Record<NetDriverName, { udp: boolean; ipv6: boolean }> = {
  slirp4netns: { udp: true, ipv6: false },
  pasta: { udp: false, ipv6: false }, // hutch's relay (NAMED_NAT in named-nat.ts) carries TCP only
};

/**
 * The forwards of -p for a member: through `routed` (the routing network for
 * `hutch run`, the connected one for `connect`); undefined: every network is
 * --internal. `flag` names the option in errors.
 */
export function memberForwards(
  mappings: PortMapping[],
  routed: NetworkConfig | undefined,
  names: string[],
  nat: NetDriverName | undefined,
  flag = '--publish',
): PortForward[] {
  const forwards = expandMappings(mappings);
  if (!forwards.length) return forwards;
  if (!routed) {
    throw new HutchError(
      `${flag}: network${names.length > 1 ? 's' : ''} ${names.join(', ')} ${names.length > 1 ? 'are' : 'is'} --internal: no NAT to publish through`,
      {
        hint: 'publish from a member of a network made without --internal (hutch network create NAME)',
      },
    );
  }
  const NAT = nat ?? 'slirp4netns';
  const can = MEMBER_PUBLISH[NAT];
  for (const f of forwards) {
    const what = `${flag} ${f.hostPort ? hostAddr(f.hostIp, f.hostPort) : isIPv6(f.hostIp) ? `[${f.hostIp}]` : f.hostIp}->${f.containerPort}/${f.protocol}`;
    if (f.protocol === 'udp' && !can.udp)
      throw new HutchError(`${what}: network ${routed.name}'s NAT (${NAT}) cannot publish UDP ports`, {
        hint:
          NAT === 'pasta'
            ? `a network made with --network-driver slirp4netns publishes UDP ports, or use --network slirp`
            : 'use --network slirp for a published UDP port',
      });
    if (isIPv6(f.hostIp) && !can.ipv6)
      throw new HutchError(
        `${what}: ${f.hostIp} is an IPv6 host address, and a member of network ${routed.name} is published on IPv4 host addresses only (its NAT, ${NAT}, listens on IPv4; named networks have no IPv6)`,
        { hint: 'use 127.0.0.1 (the default) or 0.0.0.0; --network slirp publishes on IPv6 host addresses' },
      );
  }
  return forwards;
}

/** net-connect's words for the forwards: `--publish=PROTO/HOSTIP/HOSTPORT/PORT`. */
export const publishWords = (forwards: PortForward[]) => forwards.map((f) => `--publish=${f.protocol}/${f.hostIp}/${f.hostPort}/${f.containerPort}`);
