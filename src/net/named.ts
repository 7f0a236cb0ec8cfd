// A sandbox as a member of a named network (docs/NETWORKS.md): the network
// must exist; hutch takes a reference on its holder (starting it when
// needed), the plan joins the holder's user namespace and attaches a veth to
// its bridge, and /etc/resolv.conf names the network's DNS responder only.

import type { HostFacts } from '../host/facts';
import type { LaunchHook } from '../helper/spawn';
import type { SandboxSpec } from '../spec/types';
import { hostsFile, type EtcFiles } from './etc-files';
import { holdNetwork, type NetworkHold } from './named-holder';
import { networkRunDir, requireNetwork } from './named-store';
import { join } from 'node:path';

export interface NetworkMember {
  join: { socket: string; names: string[] };
  etcFiles: EtcFiles;
  /** hutch's reference on the holder until the member's monitor has its own (undefined for --dry-run). */
  hold?: NetworkHold;
  hook: LaunchHook;
}

export async function prepareMember(spec: SandboxSpec, facts: HostFacts, live: boolean): Promise<NetworkMember> {
  const cfg = requireNetwork(facts.paths, spec.namedNetwork!, '--network');
  const hold = live ? await holdNetwork(cfg, facts) : undefined;
  const names = [...new Set([spec.name, spec.hostname])];
  return {
    join: { socket: hold?.socket ?? join(networkRunDir(facts.paths, cfg.name), 'sock'), names },
    etcFiles: {
      hosts: hostsFile(spec.hostname, '127.0.1.1'),
      // no search list: member names are single labels the responder answers itself
      resolvConf: `# written by hutch: the DNS responder of network ${cfg.name}\nnameserver ${cfg.gateway}\n`,
    },
    hold,
    hook: {
      // the monitor has joined and attached by the sync point: its connection is the reference now
      beforeStart: () => hold?.release(),
      afterExit: () => hold?.release(),
    },
  };
}
