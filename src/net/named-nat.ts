// The user-mode NAT driver of a routed named network (docs/NETWORKS.md "The
// NAT of a network"): chosen once for the network (`hutch network create
// NET --network-driver slirp4netns|pasta`, stored in its config; `auto`
// when not given) and resolved each time its holder starts, so a host that
// gets pasta fixed later needs no new network.
//
// `auto` is slirp4netns where it is installed: Debian's pasta has the
// bulk-upload stall (src/net/pasta-version.ts), and a member's published
// port goes through pasta's network only by way of hutch's relay (NAMED_NAT).
// pasta only when asked, with the warning the default network gives.

import { HutchError } from '../util/errors';
import type { HostFacts } from '../host/facts';
import { findExecutable } from '../host/which';
import { installHint } from '../host/fixes';
import { chooseNetDriver, type DriverChoice } from './choose';
import type { NetworkConfig } from './named-store';
import type { NetDriverName } from './types';

/**
 * How each driver's network publishes a member's port (-p), as the contract
 * suite (test/integration/named-nat-contract.test.ts) names it: through the
 * NAT's own forward, or through hutch's relay where the NAT cannot add one
 * once it runs (helper-c/nat.c).
 */
export const NAMED_NAT: Record<NetDriverName, { publish: string }> = {
  slirp4netns: { publish: "slirp4netns's add_hostfwd and a DNAT rule in the holder" },
  pasta: { publish: "hutch's relay: the keeper listens on the host, the holder connects to the member (pasta has no API to add a forward)" },
};

export interface NetworkNat {
  choice: DriverChoice;
  iptables: string;
}

/** The NAT of a routed network, or undefined for --internal. */
export function networkNat(cfg: NetworkConfig, facts: Pick<HostFacts, 'env' | 'paths'>): NetworkNat | undefined {
  if (cfg.internal) return undefined;
  const asked = cfg.driver ?? 'auto';
  const requested = asked === 'auto' && findExecutable('slirp4netns', facts.env) ? 'slirp4netns' : asked;
  let choice: DriverChoice;
  try {
    choice = chooseNetDriver('slirp', requested, facts.env, facts.paths.cacheDir);
  } catch (e) {
    if (!(e instanceof HutchError)) throw e;
    throw new HutchError(`network "${cfg.name}" routes outbound traffic through ${requested === 'auto' ? 'user-mode NAT' : requested}: ${e.message}`, {
      hint: `${e.hint ? `${e.hint.replace('--network-driver', `hutch network create ${cfg.name} --network-driver`)}; ` : ''}or use a network without outbound traffic: hutch network create NAME --internal`,
    });
  }
  if (asked === 'auto' && choice.name === 'slirp4netns') choice.why = 'auto: slirp4netns where installed (pasta only when asked)';
  const iptables = findExecutable('iptables', facts.env);
  if (!iptables) {
    throw new HutchError(`network "${cfg.name}" routes outbound traffic, which needs iptables (not found)`, {
      hint: `${installHint('iptables')}; or use a network without outbound traffic: hutch network create NAME --internal`,
    });
  }
  return { choice, iptables };
}
