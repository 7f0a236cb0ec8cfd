// Capability helpers for profiles. Names: util/caps (linux/capability.h order,
// upper-case without CAP_, index = bit number).

import { CAPABILITIES, capabilitySpelling } from '../util/caps';

export { CAPABILITIES };

export type Capability = (typeof CAPABILITIES)[number];

/** podman's default set (containers.conf `default_capabilities`). */
export const DEFAULT_CAPABILITIES: readonly Capability[] = [
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'NET_BIND_SERVICE',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYS_CHROOT',
];

const INDEX = new Map<string, number>(CAPABILITIES.map((c, i) => [c, i]));

/** `cap_net_raw`, `CAP_NET_RAW`, `net_raw` -> `NET_RAW` (not checked; util/caps owns the spelling). */
export const normaliseCapability = capabilitySpelling;

export function isCapability(name: string): name is Capability {
  return INDEX.has(name);
}

/** Bit number of a capability (for the helper's capability sets). */
export function capabilityBit(name: Capability): number {
  return INDEX.get(name)!;
}

/** Sort in bit order, dropping duplicates. */
export function sortCapabilities(names: Iterable<string>): Capability[] {
  return [...new Set(names)].filter(isCapability).sort((a, b) => capabilityBit(a) - capabilityBit(b));
}
