// The user-mode NAT drivers by name: their declared capabilities (known
// before one is chosen) and how to make one from a choice.

import type { DriverChoice } from './choose';
import { PASTA_CAPABILITIES, pastaDriver } from './pasta';
import { SLIRP4NETNS_CAPABILITIES, slirp4netnsDriver } from './slirp4netns';
import type { NetCapabilities, NetDriverName, NetworkDriver } from './types';

export const NET_CAPABILITIES: Record<NetDriverName, NetCapabilities> = {
  slirp4netns: SLIRP4NETNS_CAPABILITIES,
  pasta: PASTA_CAPABILITIES,
};

export function networkDriverFor(choice: DriverChoice): NetworkDriver {
  return choice.name === 'pasta' ? pastaDriver(choice.setpriv!) : slirp4netnsDriver;
}
