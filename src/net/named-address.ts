// The address a member asks for on each of its named networks: `--ip ADDR`
// (one network) or `--network NAME:ip=ADDR` / the profile's `network.ip`
// (per network). Checked before anything starts, with the flag in the
// sentence: a host address of the network's subnet, not its gateway, not a
// running member's. The holder has the last word (two members started at
// the same moment), its refusal names --ip.

import type { HostFacts } from '../host/facts';
import type { SandboxSpec } from '../spec/types';
import { HutchError } from '../util/errors';
import { intToIp, ipToInt, memberAddresses, parseSubnet, type NetworkConfig } from './named-store';

/** `--ip 10.89.0.5`, `--network backend:ip=10.89.0.5`, `profile network.ip.backend: 10.89.0.5`: how the user asked, for errors. */
function flagOf(spec: SandboxSpec, cfg: NetworkConfig, ip: string): string {
  const o = spec.networkOptions?.[cfg.name];
  if (o?.ip === undefined) return `--ip ${ip}`;
  return o.from ? `${o.from}: ${ip}` : `--network ${cfg.name}:ip=${ip}`;
}

/** A host address of the network's subnet, not the gateway. */
export function checkAddress(cfg: NetworkConfig, ip: string, flag = `--ip ${ip}`): void {
  const a = ipToInt(ip);
  const { net, prefix } = parseSubnet(cfg.subnet, `network ${cfg.name}: subnet`);
  const last = net + 2 ** (32 - prefix) - 1;
  if (a === undefined || a <= net || a >= last || ip === cfg.gateway) {
    throw new HutchError(`${flag} is not a free host address of network ${cfg.name} (${cfg.subnet}, gateway ${cfg.gateway})`, {
      hint: `choose one from ${intToIp(net + 2)} to ${intToIp(last - 1)}`,
    });
  }
}

/** Per network (the order of cfgs): the address asked for, or undefined for the first free one. */
export function requestedAddresses(spec: SandboxSpec, cfgs: NetworkConfig[], facts: HostFacts): (string | undefined)[] {
  const only = cfgs.length === 1 ? cfgs[0].name : undefined;
  if (only && spec.networkIp !== undefined && spec.networkOptions?.[only]?.ip !== undefined) {
    throw new HutchError(`--ip ${spec.networkIp} and ${flagOf(spec, cfgs[0], spec.networkOptions[only].ip!)} both give the address on network ${only}`, {
      hint: 'give it once',
    });
  }
  return cfgs.map((cfg) => {
    const ip = spec.networkOptions?.[cfg.name]?.ip ?? (cfg.name === only ? spec.networkIp : undefined);
    if (ip === undefined) return undefined;
    const flag = flagOf(spec, cfg, ip);
    checkAddress(cfg, ip, flag);
    const taken = Object.entries(memberAddresses(facts.paths, cfg.name)).find(([name, a]) => a === ip && name !== spec.name);
    if (taken) {
      throw new HutchError(`${flag} is taken by the member named ${taken[0]} on network ${cfg.name}`, {
        hint: `choose another address, or stop ${taken[0]} first (hutch network inspect ${cfg.name} lists the addresses)`,
      });
    }
    return ip;
  });
}
