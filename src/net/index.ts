// The network of one sandbox, from the outside: pick the driver, reserve the
// host ports, and a LaunchHook that attaches the driver to the sandbox's
// namespaces at the helper's sync point (before anything runs inside) and
// stops it when the sandbox is gone.

import { HutchError } from '../util/errors';
import { trace } from '../util/trace';
import type { LaunchHook } from '../helper/spawn';
import type { SandboxSpec } from '../spec/types';
import { chooseNetDriver, type DriverChoice } from './choose';
import { NET_CAPABILITIES, networkDriverFor } from './drivers';
import { expandMappings, hostAddr, reservePorts } from './ports';
import { hostAddresses } from './host-addresses';
import { NET_DRIVERS, type NetLayout, type NetSession, type NetworkDriver, type PortForward } from './types';

export interface NetPlan {
  choice: DriverChoice;
  driver: NetworkDriver;
  layout: NetLayout;
  forwards: PortForward[];
  /** The host's own addresses, made unreachable inside (empty with allowHostLoopback). */
  blocked: string[];
}

/** Undefined for `none` and `host`. `reserve` checks and allocates host ports (not for --dry-run). */
export async function prepareNetwork(spec: SandboxSpec, env: NodeJS.ProcessEnv, reserve: boolean, cacheDir?: string): Promise<NetPlan | undefined> {
  if (spec.network !== 'slirp' && spec.network !== 'pasta') return undefined;
  const expanded = expandMappings(spec.ports);
  const udp = expanded.find((f) => f.protocol === 'udp');
  // UDP publishing: both drivers deliver datagrams into the sandbox, but
  // what comes back to a client on the host differs (NetCapabilities). With
  // `auto`, UDP ports pick a driver that can carry them.
  const udpCapable = NET_DRIVERS.find((n) => NET_CAPABILITIES[n].udpPublish !== 'never');
  const requested = udp && spec.network === 'slirp' && spec.networkDriver === 'auto' && udpCapable ? udpCapable : spec.networkDriver;
  const choice = chooseNetDriver(spec.network, requested, env, cacheDir);
  const caps = NET_CAPABILITIES[choice.name];
  if (udp && caps.udpPublish === 'never') {
    throw new HutchError(`--publish ${udp.containerPort}/udp: UDP ports cannot be published through ${choice.name}`, {
      hint: `this ${choice.name} drops the sandbox's UDP replies to host clients; use --network slirp --network-driver ${udpCapable ?? 'slirp4netns'} --allow-host-loopback`,
    });
  }
  if (udp && caps.udpPublish === 'with-host-loopback' && !spec.allowHostLoopback) {
    throw new HutchError(`--publish ${udp.containerPort}/udp: UDP ports need allowHostLoopback with ${choice.name}`, {
      hint: `${choice.name} drops replies to host clients while the host's 127.0.0.1 is isolated; add --allow-host-loopback (or allowHostLoopback: true in the profile) if the sandbox may reach it`,
    });
  }
  if (requested !== spec.networkDriver) choice.why = 'auto: UDP ports are published, and pasta loses UDP replies';
  const driver = networkDriverFor(choice);
  const forwards = reserve ? await reservePorts(expanded) : expanded;
  const layout = driver.layout(spec.allowHostLoopback);
  const blocked = spec.allowHostLoopback ? [] : hostAddresses([layout.dns]);
  return { choice, driver, layout, forwards, blocked };
}

/** What `hutch run` says on stderr before the command starts. */
export function startNotes(spec: SandboxSpec, np: NetPlan): string[] {
  const notes: string[] = [];
  if (spec.allowHostLoopback) {
    notes.push(
      `allowHostLoopback is on: the sandbox can reach services on the host's 127.0.0.1 at ${np.layout.gateway || 'the gateway address'} (host.hutch.internal), and on the host's own addresses`,
    );
  }
  for (const f of np.forwards) if (f.random) notes.push(`published ${hostAddr(f.hostIp, f.hostPort)} -> ${f.containerPort}/${f.protocol}`);
  return notes;
}

/** Warnings before the sandbox starts: a capability that undoes the network's isolation. */
export function capabilityWarnings(spec: SandboxSpec, np: NetPlan): string[] {
  if (!spec.capabilities.includes('NET_ADMIN') || !np.blocked.length) return [];
  return [
    `warning: CAP_NET_ADMIN lets the command delete the routes that keep the host's own addresses (${np.blocked.join(', ')}) unreachable, and so reach every host service listening on them or on 0.0.0.0`,
  ];
}

/**
 * Attaches the NAT to the sandbox and stops it after. The plan has
 * `sync-exec` (SandboxSetup.syncBeforeExec): the NAT starts as soon as the
 * sandbox's pid 1 exists, joining its namespaces through /proc/INITPID
 * while the init sets up, and the command starts only once it is ready
 * (beforeExec), so the NAT's start-up overlaps the sandbox's instead of
 * adding to it.
 */
export function networkHook(np: NetPlan, spec: SandboxSpec, sandboxDir: string): LaunchHook {
  let attaching: Promise<NetSession> | undefined;
  let session: NetSession | undefined;
  return {
    started({ initPid, heldByMonitor }) {
      attaching = np.driver.attach({
        pid: initPid,
        exitFd: heldByMonitor,
        forwards: np.forwards,
        allowHostLoopback: spec.allowHostLoopback,
        sandboxDir,
        binary: np.choice.binary,
      });
      attaching.then(
        (s) => {
          session = s;
        },
        () => {}, // reported by beforeExec
      );
    },
    async beforeExec() {
      if (!attaching) throw new Error('internal: the sandbox reported no pid 1 before sync-exec');
      await attaching;
      trace(`net: ${np.choice.name} ready`);
      for (const n of startNotes(spec, np)) process.stderr.write(`hutch: ${n}\n`);
    },
    async afterExit() {
      const session = await attaching?.catch(() => undefined); // a failed attach has stopped its NAT already
      await session?.stop();
      trace(`net: ${np.choice.name} stopped`);
    },
    detached() {
      session?.detach?.(); // `running` comes after beforeExec: the attach is done
    },
  };
}
