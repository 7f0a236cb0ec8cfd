// The user-mode NAT driver of a routed named network (docs/NETWORKS.md "The
// NAT of a network"): chosen once for the network (`hutch network create
// NET --network-driver slirp4netns|pasta`, stored in its config; `auto`
// when not given) and resolved each time its holder starts, so a host that
// gets pasta fixed later needs no new network.
//
// `auto` is slirp4netns where it is installed: it is the driver that can
// publish a member's port once it runs (its API socket's add_hostfwd; pasta
// fixes its forwards when it starts and has no API), and Debian's pasta has
// the bulk-upload stall (src/net/pasta-version.ts). pasta only when asked,
// with the warning the default network gives.

import { HutchError } from '../util/errors';
import type { HostFacts } from '../host/facts';
import { findExecutable } from '../host/which';
import { chooseNetDriver, type DriverChoice } from './choose';
import type { NetworkConfig } from './named-store';
import type { NetDriverName } from './types';

/**
 * What each driver does behind a named network, as declared for the contract
 * suite (test/integration/named-nat-contract.test.ts) and for -p's refusal.
 */
export const NAMED_NAT: Record<NetDriverName, { publish: true } | { publish: false; why: string }> = {
  slirp4netns: { publish: true },
  pasta: {
    publish: false,
    why: 'pasta fixes its port forwards when it starts and has no API to add one for a member that starts later',
  },
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
  if (asked === 'auto' && choice.name === 'slirp4netns') choice.why = "auto: slirp4netns publishes a member's port at run time, pasta cannot";
  const iptables = findExecutable('iptables', facts.env);
  if (!iptables) {
    throw new HutchError(`network "${cfg.name}" routes outbound traffic, which needs iptables (not found)`, {
      hint: 'install iptables, or use a network without outbound traffic: hutch network create NAME --internal',
    });
  }
  return { choice, iptables };
}

/** -p on a member of a network whose NAT cannot publish: refused before anything starts. */
export function checkPublishable(cfg: NetworkConfig, nat: NetworkNat | undefined, what: string): void {
  const decl = nat && NAMED_NAT[nat.choice.name];
  if (!decl || decl.publish) return;
  throw new HutchError(`${what}: network "${cfg.name}" routes through ${nat.choice.name}, and ${decl.why}`, {
    hint: `publish from a network made with slirp4netns: hutch network create NAME --network-driver slirp4netns (or hutch network rm ${cfg.name} and create it again so)`,
  });
}
