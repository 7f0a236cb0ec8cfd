// `hutch network connect | disconnect NET NAME` (docs/NETWORKS.md
// "connect / disconnect"): one more interface on NET for a running member
// of named networks, or the end of one.
//
// connect: hutch holds NET's holder (starting it when needed), then the
// helper's `net-connect` enters the sandbox's user + network namespace
// through its command (pid 1 and the monitor are not dumpable: the route of
// hutch exec), asks the holder for the veth (the holder has CAP_NET_ADMIN
// over it: one user namespace for every holder and member of the user),
// configures it, and hands the holder a pidfd of the sandbox's monitor.
// That pidfd is the reference: the holder drops the member, and deletes its
// veth, when the monitor exits or on `detach`. /etc/resolv.conf gets NET's
// responder first (it refuses what it does not know, so the resolver asks
// the sandbox's other responders next). disconnect: `detach ADDR` to the
// holder, and the line goes from resolv.conf again.

import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { findSandbox, type Running } from '../cgroup/running';
import type { HostFacts } from '../host/facts';
import { readState, writeState, type SandboxState } from '../state/sandboxes';
import { HutchError } from '../util/errors';
import { running, sandboxMember } from '../util/proc';
import { holdNetwork } from './named-holder';
import { networkRunDir, requireNetwork, type NetworkConfig } from './named-store';
import { MAX_NETWORKS } from './named';
import { checkAddress } from './named-address';
import { memberForwards, publishWords } from './named-ports';
import { networkNat } from './named-nat';
import { hostAddr, reservePorts } from './ports';
import { parsePublish } from '../spec/network';

/** The sandbox, running and a member of named networks (else it is in a user namespace of its own). */
function runningMember(name: string, sub: string, net: string): { box: Running; initPid: number; monitor: number } {
  const box = findSandbox(name);
  const initPid = box.state.initPid;
  if (!initPid || !running(initPid)) {
    throw new HutchError(`sandbox "${name}" is not running yet`, { hint: 'wait until it runs (hutch ps)' });
  }
  if (!box.state.networks?.length) {
    throw new HutchError(
      `hutch network ${sub}: sandbox "${name}" is not on a named network (--network ${box.state.network}): it is in a user namespace of its own, which no network's holder can reach`,
      { hint: `start it with --network ${net}` },
    );
  }
  // the monitor is pid 1's parent: the process whose exit ends the sandbox, and the reference
  const stat = readFileSync(`/proc/${initPid}/stat`, 'utf8');
  const monitor = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  return { box, initPid, monitor };
}

function helper(facts: HostFacts, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(facts.helper, args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const why = stderr.trim().replace(/^hutch: /, '') || err.message;
      reject(new HutchError(why));
    });
  });
}

/** resolv.conf as the sandbox sees it (the helper reads it inside: /proc/PID/root is not the user's to open). */
function readResolv(facts: HostFacts, initPid: number): Promise<string> {
  return helper(facts, ['net-resolv', String(sandboxMember(initPid))]);
}

function nameservers(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => /^\s*nameserver\s/.test(l))
    .map((l) => l.trim().split(/\s+/)[1]);
}

function updateState(dir: string, f: (st: SandboxState) => SandboxState): void {
  const st = readState(dir);
  if (st) writeState(dir, f(st));
}

/** The first ethN the sandbox does not use: its networks' eth0.., and those connected later. */
function freeIfname(st: SandboxState): string {
  const later = Object.values(st.interfaces ?? {});
  const used = new Set(later);
  for (let i = 0; i < (st.networks?.length ?? 0) - later.length; i++) used.add(`eth${i}`);
  for (let i = 0; ; i++) if (!used.has(`eth${i}`)) return `eth${i}`;
}

export async function connectNetwork(
  facts: HostFacts,
  net: string,
  name: string,
  opts: { aliases: string[]; ip?: string; publish?: string[] },
): Promise<string> {
  const cfg: NetworkConfig = requireNetwork(facts.paths, net);
  const { box, initPid, monitor } = runningMember(name, 'connect', net);
  if (box.state.networks?.includes(net)) {
    throw new HutchError(`sandbox "${name}" is already connected to network "${net}"`, { hint: `hutch network disconnect ${net} ${name} first` });
  }
  const resolv = await readResolv(facts, initPid);
  if (nameservers(resolv).length >= MAX_NETWORKS) {
    throw new HutchError(
      `sandbox "${name}" already has ${MAX_NETWORKS} nameservers: resolvers read no more, so the names of network "${net}" would not resolve`,
      {
        hint: 'start it with fewer networks or --dns servers',
      },
    );
  }
  for (const a of opts.aliases)
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(a)) throw new HutchError(`--alias "${a}" is not a name (letters, digits, _ . -)`, { hint: '--alias api' });
  if (opts.ip !== undefined) checkAddress(cfg, opts.ip);
  // -p: through NET's NAT (docs/NETWORKS.md "connect / disconnect"), withdrawn by the holder with the member
  const mappings = (opts.publish ?? []).map((t) => parsePublish(t, '--publish'));
  let forwards = memberForwards(mappings, cfg.internal ? undefined : cfg, [net], cfg.internal ? undefined : networkNat(cfg, facts)?.choice.name);
  const ifname = freeIfname(box.state);
  const hold = await holdNetwork(cfg, facts);
  try {
    forwards = await reservePorts(forwards);
    const out = await helper(facts, [
      'net-connect',
      String(sandboxMember(initPid)),
      String(monitor),
      join(networkRunDir(facts.paths, net), 'sock'),
      ifname,
      opts.ip ?? '-',
      ...new Set([name, ...opts.aliases]),
      ...publishWords(forwards),
    ]);
    const addr = out.trim().split(' ')[1];
    updateState(box.dir, (st) => {
      const networks = [...(st.networks ?? []), net];
      return {
        ...st,
        networks,
        network: networks.join(','),
        addresses: { ...st.addresses, [net]: addr },
        interfaces: { ...st.interfaces, [net]: ifname },
        ports: [
          ...(st.ports ?? []),
          ...forwards.map(({ protocol, hostIp, hostPort, containerPort }) => ({ protocol, hostIp, hostPort, containerPort, network: net })),
        ],
      };
    });
    // the network's responder first: it refuses what it does not know, and the resolver asks the next
    const lines = resolv.split('\n');
    const first = lines.findIndex((l) => /^\s*nameserver\s/.test(l));
    lines.splice(first < 0 ? lines.length : first, 0, `nameserver ${cfg.gateway}`);
    await helper(facts, ['net-resolv', String(sandboxMember(initPid)), lines.join('\n')]);
    // as hutch run says it: a host port hutch chose (-p PORT) is known only from here
    for (const f of forwards) if (f.random) process.stderr.write(`hutch: published ${hostAddr(f.hostIp, f.hostPort)} -> ${f.containerPort}/${f.protocol}\n`);
    return addr;
  } finally {
    hold.release();
  }
}

/** `detach ADDR` on the holder's socket: its answer line. */
function detach(socket: string, addr: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(socket);
    let buf = '';
    s.on('error', (e) => reject(new HutchError(`cannot reach the network's holder at ${socket}: ${e.message}`)));
    s.on('connect', () => s.write(`detach ${addr}\n`));
    s.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      if (!buf.includes('\n')) return;
      s.destroy();
      resolve(buf.trim());
    });
  });
}

export async function disconnectNetwork(facts: HostFacts, net: string, name: string): Promise<void> {
  const cfg = requireNetwork(facts.paths, net);
  const { box, initPid } = runningMember(name, 'disconnect', net);
  if (!box.state.networks?.includes(net)) {
    throw new HutchError(`sandbox "${name}" is not connected to network "${net}"`, { hint: `hutch inspect ${name} lists its networks` });
  }
  if (!box.state.interfaces?.[net]) {
    throw new HutchError(`sandbox "${name}" was started on network "${net}" (--network ${net}): its interface there lasts as long as it runs`, {
      hint: 'only a network added with hutch network connect can be disconnected',
    });
  }
  const addr = box.state.addresses?.[net] ?? '';
  const answer = await detach(join(networkRunDir(facts.paths, net), 'sock'), addr);
  if (answer !== 'ok') throw new HutchError(`network "${net}": ${answer.replace(/^error /, '')}`);
  updateState(box.dir, (st) => {
    const networks = (st.networks ?? []).filter((n) => n !== net);
    const { [net]: _a, ...addresses } = st.addresses ?? {};
    const { [net]: _i, ...interfaces } = st.interfaces ?? {};
    const ports = (st.ports ?? []).filter((p) => p.network !== net); // the holder withdrew them with the member
    return { ...st, networks, network: networks.join(','), addresses, interfaces, ports };
  });
  const resolv = await readResolv(facts, initPid);
  const lines = resolv.split('\n');
  const i = lines.findIndex((l) => l.trim() === `nameserver ${cfg.gateway}`);
  if (i >= 0) {
    lines.splice(i, 1);
    await helper(facts, ['net-resolv', String(sandboxMember(initPid)), lines.join('\n')]);
  }
}
