// pasta driver (passt's namespace mode). Started as
//   setpriv --pdeathsig KILL pasta -f -q --config-net -T none -U none
//           [--no-map-gw] --dns-forward 169.254.1.1 -t/-u SPEC... -P <pid file> PID
// - `-T none -U none`: pasta's default (`auto`) would forward the sandbox's
//   own loopback ports to the host's, a hole in host-loopback isolation;
// - `--no-map-gw`: without it pasta maps the gateway address to the host's
//   127.0.0.1 (Debian's 2023-03 pasta does so by default);
// - ports are given at start (this pasta has no runtime API): -t/-u
//   ADDR/HOSTPORT:SANDBOXPORT;
// - lifetime: pasta stays in the foreground as hutch's child and setpriv
//   sets PR_SET_PDEATHSIG=SIGKILL: when hutch dies, even by SIGKILL, pasta
//   dies with it. Without that pasta would live on: its tap device keeps the
//   sandbox's network namespace alive, so it never sees the sandbox end;
// - readiness: pasta writes its pid file once the namespace is configured
//   and the ports are bound.
// As root pasta would switch to `nobody` and lose access to the sandbox's
// user namespace: `--runas 0:0` keeps the caller's identity.

import { spawn } from 'node:child_process';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { isIPv6 } from 'node:net';
import { HutchError } from '../util/errors';
import { defaultRoute } from './host-route';
import { exited, letGo, stderrTail, stopChild } from './proc';
import type { AttachOptions, NetLayout, NetSession, NetworkDriver, PortForward, NetCapabilities } from './types';

/** Link-local address pasta answers DNS on, forwarding to the host's resolver. */
export const PASTA_DNS = '169.254.1.1';
const READY_TIMEOUT_MS = 10_000;

function portSpec(f: PortForward): string {
  return `${f.hostIp}/${f.hostPort}:${f.containerPort}`;
}

export function pastaArgs(o: AttachOptions, pidFile: string, isRoot: boolean): string[] {
  const tcp = o.forwards.filter((f) => f.protocol === 'tcp').map(portSpec);
  const udp = o.forwards.filter((f) => f.protocol === 'udp').map(portSpec);
  return [
    '-f',
    '-q',
    '--config-net',
    '-T',
    'none',
    '-U',
    'none',
    ...(o.allowHostLoopback ? [] : ['--no-map-gw']),
    '--dns-forward',
    PASTA_DNS,
    ...(tcp.length ? tcp.flatMap((s) => ['-t', s]) : ['-t', 'none']),
    ...(udp.length ? udp.flatMap((s) => ['-u', s]) : ['-u', 'none']),
    '-P',
    pidFile,
    ...(isRoot ? ['--runas', '0:0'] : []),
    String(o.pid),
  ];
}

function pidIn(file: string): number | undefined {
  try {
    const m = /^(\d+)\n/.exec(readFileSync(file, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** pasta 2023-03's spliced UDP path never returns replies to host clients; it binds IPv6 itself. */
export const PASTA_CAPABILITIES: NetCapabilities = { udpPublish: 'never', ipv6Publish: 'native' };

export function pastaDriver(setpriv: string): NetworkDriver {
  return {
    name: 'pasta',
    capabilities: PASTA_CAPABILITIES,
    layout(): NetLayout {
      const r = defaultRoute();
      return { address: r?.address ?? '127.0.1.1', gateway: r?.gateway ?? '', dns: PASTA_DNS };
    },

    async attach(o: AttachOptions): Promise<NetSession> {
      const pidFile = `${o.sandboxDir}/pasta.pid`;
      const child = spawn(setpriv, ['--pdeathsig', 'KILL', o.binary, ...pastaArgs(o, pidFile, process.getuid?.() === 0)], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const tail = stderrTail(child);
      let stopping: Promise<void> | undefined;
      const session: NetSession = {
        driver: 'pasta',
        pid: child.pid ?? 0,
        // without published ports nothing on the host waits for pasta's exit
        stop: () => (stopping ??= o.forwards.length ? stopChild(child) : Promise.resolve(letGo(child, 'SIGTERM'))),
      };

      let watcher: FSWatcher | undefined;
      let poll: NodeJS.Timeout | undefined;
      const problem = await new Promise<string | undefined>((resolve) => {
        const timer = setTimeout(() => done(`not ready after ${READY_TIMEOUT_MS / 1000} s`), READY_TIMEOUT_MS);
        function done(r: string | undefined) {
          clearTimeout(timer);
          clearInterval(poll);
          watcher?.close();
          resolve(r);
        }
        const check = () => {
          if (pidIn(pidFile)) done(undefined);
        };
        try {
          watcher = watch(o.sandboxDir, check);
        } catch {
          /* no inotify: the poll below still sees the file */
        }
        poll = setInterval(check, 50);
        child.once('error', (e) => done(`cannot start ${setpriv}: ${e.message}`));
        child.once('exit', (code, sig) => done(`exited during setup (${sig ?? `status ${code}`})`));
      });
      if (problem || exited(child)) {
        await session.stop();
        const why = tail();
        const v6 = o.forwards.some((f) => isIPv6(f.hostIp));
        throw new HutchError(`pasta: ${problem ?? 'exited during setup'}${why ? `: ${why}` : ''}`, {
          hint: `check that pasta works here${v6 ? ' (and that the host has the IPv6 address you publish on)' : ''}, or use --network-driver slirp4netns / --network none`,
        });
      }
      return session;
    },
  };
}
