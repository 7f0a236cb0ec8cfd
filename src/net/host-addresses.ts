// The host's own addresses, which user-mode NAT would otherwise hand to the
// sandbox: slirp4netns and pasta connect on the sandbox's behalf from the
// host, so a connection to one of the host's addresses reaches every host
// service bound to 0.0.0.0 or to that address (the loopback isolation of
// --disable-host-loopback / --no-map-gw covers only the gateway alias of
// 127.0.0.1). Unless the profile allows the host (allowHostLoopback), each
// of them gets an `unreachable` route inside the sandbox before the command
// starts (src/sandbox/assemble.ts); removing it needs CAP_NET_ADMIN.

import { networkInterfaces } from 'node:os';

/** An IPv6 link-local address (fe80::/10): scoped to one link, never routed through the NAT. */
function linkLocal6(a: string): boolean {
  return /^fe[89ab]/i.test(a);
}

/**
 * Every address of the host's interfaces, IPv4 and IPv6, except loopback
 * (inside, 127.0.0.1 and ::1 are the sandbox's own) and IPv6 link-local ones.
 * `keep` are addresses the driver itself uses inside (its DNS forwarder).
 */
export function hostAddresses(keep: readonly string[] = [], interfaces = networkInterfaces()): string[] {
  const out = new Set<string>();
  for (const list of Object.values(interfaces)) {
    for (const a of list ?? []) {
      if (a.internal || (a.family === 'IPv6' && linkLocal6(a.address)) || keep.includes(a.address)) continue;
      out.add(a.address);
    }
  }
  return [...out];
}
