// The host's default IPv4 route (interface, gateway, address), read from
// /proc/net/route: pasta copies these into the sandbox, so hutch knows the
// sandbox's address and gateway before pasta runs.

import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';

export interface HostRoute {
  iface: string;
  gateway: string;
  address?: string;
}

/** /proc/net/route stores addresses as little-endian hex. */
function hexToIPv4(hex: string): string {
  const n = parseInt(hex, 16);
  return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255].join('.');
}

export function defaultRoute(): HostRoute | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/net/route', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // Iface Destination Gateway Flags ...: destination 0 = default; flag 0x2 = RTF_GATEWAY
    if (f.length < 4 || f[1] !== '00000000' || !(parseInt(f[3], 16) & 2)) continue;
    const address = networkInterfaces()[f[0]]?.find((a) => a.family === 'IPv4')?.address;
    return { iface: f[0], gateway: hexToIPv4(f[2]), address };
  }
  return undefined;
}
