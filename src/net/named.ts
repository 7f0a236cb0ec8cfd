// A sandbox as a member of named networks (docs/NETWORKS.md): each network
// must exist; hutch takes a reference on each holder (starting it when
// needed), the plan joins the holders' shared user namespace and attaches one
// veth per network (eth0, eth1, ... in lexical order of the names), the
// first routed network gets the default route and the published ports, and
// /etc/resolv.conf names the networks' DNS responders only.

import type { HostFacts } from '../host/facts';
import type { LaunchHook } from '../helper/spawn';
import type { SandboxSpec } from '../spec/types';
import type { NetworkJoin } from '../sandbox/assemble';
import { hostsFile, type EtcFiles } from './etc-files';
import { holdNetwork, natStatus, type NetworkHold } from './named-holder';
import { networkNat } from './named-nat';
import { getNetwork, listNetworks, networkRunDir, type NetworkConfig } from './named-store';
import { reservePorts } from './ports';
import { memberForwards } from './named-ports';
import { requestedAddresses } from './named-address';
import type { PortForward } from './types';
import { HutchError } from '../util/errors';
import { suggest } from '../util/suggest';
import { NETWORK_MODES } from '../profile/schema';
import { join } from 'node:path';
import { listSandboxes, readState, writeState, type SandboxState } from '../state/sandboxes';
import { addHostLines } from './etc-extras';
import { hostAddresses } from './host-addresses';

export interface NetworkMember {
  join: NetworkJoin;
  etcFiles: EtcFiles;
  /** Published ports, concrete (through the first routed network). */
  forwards: PortForward[];
  /**
   * The host's own addresses, unreachable inside (as on the default network:
   * the NAT would connect to them on the host); empty with allowHostLoopback.
   */
  blocked: string[];
  /** --link's variables (Docker's legacy links: ALIAS_NAME, ALIAS_PORT...). */
  env: Record<string, string>;
  /** hutch's references on the holders until the member's monitor has its own (empty for --dry-run). */
  holds: NetworkHold[];
  /** Drops hutch's references once the monitor has its own; records the addresses in state.json. */
  hook(sandboxDir: string): LaunchHook;
  release(): void;
}

/** glibc reads three nameservers at most: one per network, so a name of each network resolves. */
export const MAX_NETWORKS = 3;

function requireConfig(name: string, facts: HostFacts): NetworkConfig {
  const cfg = getNetwork(facts.paths, name);
  if (cfg) return cfg;
  const near = suggest(name, [...NETWORK_MODES, ...listNetworks(facts.paths).map((n) => n.name)]);
  throw new HutchError(`--network "${name}" is neither a mode (${NETWORK_MODES.join(', ')}) nor a network`, {
    hint: near ? `did you mean "${near}"?` : `create it with \`hutch network create ${name}\` (hutch network ls lists them)`,
  });
}

const envKey = (alias: string) => alias.toUpperCase().replace(/[^A-Z0-9]/g, '_');

/**
 * --link NAME:ALIAS: Docker's legacy links on a named network. The networks'
 * DNS answers ALIAS for this member (`alias=name` words of net-attach), also
 * when NAME starts later; when NAME runs now, /etc/hosts has `ADDR ALIAS NAME`
 * and the variables name its exposed ports: ALIAS_PORT=tcp://ADDR:PORT (the
 * lowest), ALIAS_PORT_PORT_PROTO(_ADDR, _PORT, _PROTO). ALIAS_NAME=/SELF/ALIAS
 * always. Not provided: ALIAS_ENV_* (the other sandbox's environment stays its own).
 */
function linkParts(spec: SandboxSpec, facts: HostFacts, names: string[]): { hosts: string; env: Record<string, string>; words: string[] } {
  let hosts = '';
  const env: Record<string, string> = {};
  const words: string[] = [];
  const running = new Map<string, SandboxState>(listSandboxes(facts.paths.stateDir).map((s) => [s.state.name, s.state]));
  for (const { name, alias } of spec.links ?? []) {
    const key = envKey(alias);
    env[`${key}_NAME`] = `/${spec.name}/${alias}`;
    if (alias.toLowerCase() !== name.toLowerCase()) words.push(`${alias}=${name}`);
    const st = running.get(name);
    if (!st) continue; // starts later: the DNS answers the alias then
    const shared = names.find((n) => (st.networks ?? []).includes(n));
    if (!shared) {
      throw new HutchError(`--link ${name}: sandbox "${name}" is running, but not on network${names.length > 1 ? 's' : ''} ${names.join(', ')}`, {
        hint: `start it with --network ${names[0]}, or link a member of this sandbox's networks`,
      });
    }
    const addr = st.addresses?.[shared];
    if (!addr) continue;
    hosts += `${addr}\t${alias}${alias === name ? '' : ` ${name}`}\n`;
    const ports = (st.expose ?? [])
      .map((e) => {
        const [range, proto = 'tcp'] = e.split('/');
        return { port: Number(range.split('-')[0]), proto };
      })
      .filter((p) => p.port > 0)
      .sort((a, b) => a.port - b.port);
    for (const [i, { port, proto }] of ports.entries()) {
      const p = `${key}_PORT_${port}_${proto.toUpperCase()}`;
      if (i === 0) env[`${key}_PORT`] = `${proto}://${addr}:${port}`;
      env[p] = `${proto}://${addr}:${port}`;
      env[`${p}_ADDR`] = addr;
      env[`${p}_PORT`] = String(port);
      env[`${p}_PROTO`] = proto;
    }
  }
  return { hosts, env, words };
}

export async function prepareMember(spec: SandboxSpec, facts: HostFacts, live: boolean): Promise<NetworkMember> {
  const names = spec.namedNetworks!;
  if (names.length > MAX_NETWORKS) {
    throw new HutchError(`--network: a sandbox is on ${MAX_NETWORKS} named networks at most (${names.length} given)`, {
      hint: 'its resolv.conf lists one DNS responder per network, and resolvers read three',
    });
  }
  const cfgs = names.map((n) => requireConfig(n, facts));
  const dns = spec.dns ?? [];
  if (names.length + dns.length > MAX_NETWORKS) {
    throw new HutchError(
      `--dns: with ${names.length} network${names.length > 1 ? 's' : ''}, ${MAX_NETWORKS - names.length} --dns server${MAX_NETWORKS - names.length === 1 ? '' : 's'} at most`,
      {
        hint: "resolv.conf lists each network's DNS responder first, and resolvers read three nameservers",
      },
    );
  }
  const links = linkParts(spec, facts, names);
  const addresses = requestedAddresses(spec, cfgs, facts);
  // the issue's rule: outbound traffic leaves through the first non-internal network in lexical order
  const routed = cfgs.find((c) => !c.internal);
  // the NAT the routed network's holder runs (or will start): its warning
  const nat = routed && networkNat(routed, facts);
  let forwards = memberForwards(spec.ports, routed, names, nat?.choice.name);
  if (routed && nat?.choice.warning) process.stderr.write(`hutch: network ${routed.name}: ${nat.choice.warning}\n`);
  const holds: NetworkHold[] = [];
  const release = () => {
    for (const h of holds) h.release();
  };
  try {
    if (live) {
      for (const c of cfgs) holds.push(await holdNetwork(c, facts));
      forwards = await reservePorts(forwards);
      // a NAT that ended and could not be replaced: the member runs, without outbound traffic
      const down = routed && (await natStatus(facts.paths, routed.name))?.down;
      if (routed && down)
        process.stderr.write(
          `hutch: warning: network ${routed.name} has no outbound traffic now (its NAT: ${down}); it comes back when the network starts again, after its last member ends\n`,
        );
    }
  } catch (e) {
    release();
    throw e;
  }
  const dnsNames = [...new Set([spec.name, spec.hostname, ...(spec.networkAliases ?? [])]), ...links.words];
  const sock = (c: NetworkConfig) => join(networkRunDir(facts.paths, c.name), 'sock');
  const join_: NetworkJoin = {
    socket: sock(cfgs[0]),
    attach: cfgs.map((c, i) => ({
      socket: sock(c),
      ifname: `eth${i}`,
      address: addresses[i],
      route: c === routed,
      // other nameservers follow this responder: it refuses what it does not know (and, before --dns servers, forwards nothing)
      shared: cfgs.length > 1 || dns.length > 0,
      nofwd: dns.length > 0,
      names: [...dnsNames, ...(spec.networkOptions?.[c.name]?.aliases ?? [])],
    })),
    publish: forwards.map((f) => ({ protocol: f.protocol, hostIp: f.hostIp, hostPort: f.hostPort, port: f.containerPort })),
  };
  const servers = [...cfgs.map((c) => c.gateway), ...dns].map((ip) => `nameserver ${ip}\n`).join('');
  return {
    join: join_,
    forwards,
    blocked: routed && !spec.allowHostLoopback ? hostAddresses() : [],
    env: links.env,
    etcFiles: {
      // the own hostname is left to the network's DNS, which knows the address the holder gives
      hosts:
        (addresses[0]
          ? hostsFile(spec.hostname, addresses[0])
          : '# written by hutch for this sandbox\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n') +
        links.hosts +
        addHostLines(spec),
      // no search list: member names are single labels the responders answer themselves; with several
      // networks each refuses a name it does not know, and the resolver asks the next
      resolvConf: `# written by hutch: the DNS responder${cfgs.length > 1 ? 's' : ''} of network${cfgs.length > 1 ? 's' : ''} ${names.join(', ')}\n${servers}`,
    },
    holds,
    release,
    hook: (sandboxDir) => {
      let attached = 0;
      return {
        // The monitor holds the first network's holder from net-join on, each other one only from its
        // net-attach (after the sync point): hutch's references go once every interface is attached.
        attached: ({ address }) => {
          if (++attached === cfgs.length) release();
          // `net ADDR IFNAME`: ethN is the N-th network of the sorted list
          const [addr, ifname] = address.split(' ');
          const cfg = cfgs[Number((ifname ?? 'eth0').slice(3))] ?? cfgs[0];
          const st = readState(sandboxDir);
          if (st) writeState(sandboxDir, { ...st, addresses: { ...st.addresses, [cfg.name]: addr } });
        },
        afterExit: () => release(),
      };
    },
  };
}
