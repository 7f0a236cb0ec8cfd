// The network of one sandbox, from the outside: pick the driver, reserve the
// host ports, and a LaunchHook that attaches the driver to the sandbox's
// namespaces at the helper's sync point (before anything runs inside) and
// stops it when the sandbox is gone.

import { HutchError } from '../util/errors';
import type { LaunchHook } from '../helper/launch';
import type { SandboxSpec } from '../spec/types';
import { chooseNetDriver, type DriverChoice } from './choose';
import { pastaDriver } from './pasta';
import { expandMappings, hostAddr, reservePorts } from './ports';
import { slirp4netnsDriver } from './slirp4netns';
import type { NetLayout, NetSession, NetworkDriver, PortForward } from './types';

export interface NetPlan {
  choice: DriverChoice;
  driver: NetworkDriver;
  layout: NetLayout;
  forwards: PortForward[];
}

/** Undefined for `none` and `host`. `reserve` checks and allocates host ports (not for --dry-run). */
export async function prepareNetwork(spec: SandboxSpec, env: NodeJS.ProcessEnv, reserve: boolean): Promise<NetPlan | undefined> {
  if (spec.network !== 'slirp' && spec.network !== 'pasta') return undefined;
  const expanded = expandMappings(spec.ports);
  const udp = expanded.find((f) => f.protocol === 'udp');
  // UDP publishing: measured here, both drivers deliver datagrams into the
  // sandbox but lose the replies to a client on the host's loopback:
  // libslirp drops every packet to 10.0.2.2 under --disable-host-loopback
  // (podman issue #4586), and pasta 2023-03's spliced UDP path never
  // returns them. So UDP ports go through slirp4netns with the host loopback
  // mapped, and only when the profile or the user allowed that.
  const requested = udp && spec.network === 'slirp' && spec.networkDriver === 'auto' ? 'slirp4netns' : spec.networkDriver;
  const choice = chooseNetDriver(spec.network, requested, env);
  if (udp && choice.name === 'pasta') {
    throw new HutchError(`--publish ${udp.containerPort}/udp: UDP ports cannot be published through pasta`, {
      hint: "this pasta drops the sandbox's UDP replies to host clients; use --network slirp --network-driver slirp4netns --allow-host-loopback",
    });
  }
  if (udp && !spec.allowHostLoopback) {
    throw new HutchError(`--publish ${udp.containerPort}/udp: UDP ports need allowHostLoopback with slirp4netns`, {
      hint: "slirp4netns drops replies to host clients while the host's 127.0.0.1 is isolated; add --allow-host-loopback (or allowHostLoopback: true in the profile) if the sandbox may reach it",
    });
  }
  if (requested !== spec.networkDriver) choice.why = 'auto: UDP ports are published, and pasta loses UDP replies';
  const driver = choice.name === 'pasta' ? pastaDriver(choice.setpriv!) : slirp4netnsDriver;
  const forwards = reserve ? await reservePorts(expanded) : expanded;
  return { choice, driver, layout: driver.layout(spec.allowHostLoopback), forwards };
}

/** What `hutch run` says on stderr before the command starts. */
export function startNotes(spec: SandboxSpec, np: NetPlan): string[] {
  const notes: string[] = [];
  if (spec.allowHostLoopback) {
    notes.push(
      `allowHostLoopback is on: the sandbox can reach services on the host's 127.0.0.1 at ${np.layout.gateway || 'the gateway address'} (host.hutch.internal)`,
    );
  }
  for (const f of np.forwards) if (f.random) notes.push(`published ${hostAddr(f.hostIp, f.hostPort)} -> ${f.containerPort}/${f.protocol}`);
  return notes;
}

export function networkHook(np: NetPlan, spec: SandboxSpec, sandboxDir: string): LaunchHook {
  let session: NetSession | undefined;
  return {
    async beforeStart({ monitorPid }) {
      session = await np.driver.attach({
        monitorPid,
        forwards: np.forwards,
        allowHostLoopback: spec.allowHostLoopback,
        sandboxDir,
        binary: np.choice.binary,
      });
      for (const n of startNotes(spec, np)) process.stderr.write(`hutch: ${n}\n`);
    },
    async afterExit() {
      await session?.stop();
    },
  };
}

