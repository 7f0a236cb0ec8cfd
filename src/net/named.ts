// A sandbox as a member of a named network (docs/NETWORKS.md): the network
// must exist; hutch takes a reference on its holder (starting it when
// needed), the plan joins the holder's user namespace and attaches a veth to
// its bridge, and /etc/resolv.conf names the network's DNS responder only.

import type { HostFacts } from '../host/facts';
import type { LaunchHook } from '../helper/spawn';
import type { SandboxSpec } from '../spec/types';
import { hostsFile, type EtcFiles } from './etc-files';
import { holdNetwork, type NetworkHold } from './named-holder';
import { getNetwork, intToIp, ipToInt, listNetworks, networkRunDir, parseSubnet, type NetworkConfig } from './named-store';
import { HutchError } from '../util/errors';
import { suggest } from '../util/suggest';
import { NETWORK_MODES } from '../profile/schema';
import { join } from 'node:path';
import { readState, writeState } from '../state/sandboxes';

export interface NetworkMember {
  join: { socket: string; address?: string; names: string[] };
  etcFiles: EtcFiles;
  /** hutch's reference on the holder until the member's monitor has its own (undefined for --dry-run). */
  hold?: NetworkHold;
  /** Drops hutch's reference once the monitor has its own; records the address in state.json. */
  hook(sandboxDir: string): LaunchHook;
}

/** --ip: a host address of the network's subnet, not the gateway (taken ones: the holder says). */
function checkAddress(cfg: NetworkConfig, ip: string): void {
  const a = ipToInt(ip);
  const { net, prefix } = parseSubnet(cfg.subnet, `network ${cfg.name}: subnet`);
  const last = net + 2 ** (32 - prefix) - 1;
  if (a === undefined || a <= net || a >= last || ip === cfg.gateway) {
    throw new HutchError(`--ip ${ip} is not a free host address of network ${cfg.name} (${cfg.subnet}, gateway ${cfg.gateway})`, {
      hint: `choose one from ${intToIp(net + 2)} to ${intToIp(last - 1)}`,
    });
  }
}

export async function prepareMember(spec: SandboxSpec, facts: HostFacts, live: boolean): Promise<NetworkMember> {
  const name = spec.namedNetwork!;
  const cfg = getNetwork(facts.paths, name);
  if (!cfg) {
    const near = suggest(name, [...NETWORK_MODES, ...listNetworks(facts.paths).map((n) => n.name)]);
    throw new HutchError(`--network "${name}" is neither a mode (${NETWORK_MODES.join(', ')}) nor a network`, {
      hint: near ? `did you mean "${near}"?` : `create it with \`hutch network create ${name}\` (hutch network ls lists them)`,
    });
  }
  if (spec.networkIp) checkAddress(cfg, spec.networkIp);
  const hold = live ? await holdNetwork(cfg, facts) : undefined;
  const names = [...new Set([spec.name, spec.hostname, ...(spec.networkAliases ?? [])])];
  return {
    join: { socket: hold?.socket ?? join(networkRunDir(facts.paths, cfg.name), 'sock'), address: spec.networkIp, names },
    etcFiles: {
      // the own hostname is left to the network's DNS, which knows the address the holder gives
      hosts: spec.networkIp
        ? hostsFile(spec.hostname, spec.networkIp)
        : '# written by hutch for this sandbox\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n',
      // no search list: member names are single labels the responder answers itself
      resolvConf: `# written by hutch: the DNS responder of network ${cfg.name}\nnameserver ${cfg.gateway}\n`,
    },
    hold,
    hook: (sandboxDir) => ({
      // the monitor has joined by the sync point: its connection is the reference now
      beforeStart: () => hold?.release(),
      attached: ({ address }) => {
        const st = readState(sandboxDir);
        if (st) writeState(sandboxDir, { ...st, addresses: { ...st.addresses, [cfg.name]: address } });
      },
      afterExit: () => hold?.release(),
    }),
  };
}
