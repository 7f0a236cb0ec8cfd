// slirp4netns driver. Started as
//   slirp4netns --configure --mtu=65520 --enable-sandbox --enable-seccomp
//               [--disable-host-loopback] --exit-fd=3 --ready-fd=4
//               [--api-socket=<sandbox dir>/slirp4netns.sock]   (with -p only)
//               PID tap0
// Lifetime: fd 3 is a socket whose other end only hutch holds; when hutch
// exits, even by SIGKILL, the kernel closes it and slirp4netns quits. For
// `run -d` the other end is the helper's monitor's instead (AttachOptions.exitFd,
// op `hold`): slirp4netns quits with the monitor, no hutch needs to stay.
// Ports: one `add_hostfwd` request per port on the API socket. Its API binds
// IPv4 host addresses only; an IPv6 host address is served by a relay in
// hutch (proxy.ts) in front of a forward on a free 127.0.0.1 port.

import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { connect, isIPv6 } from 'node:net';
import type { Readable } from 'node:stream';
import { HutchError } from '../util/errors';
import { hostAddr, reservePorts } from './ports';
import { exited, letGo, stderrTail, stopChild, waitExit } from './proc';
import { tcpRelay, udpRelay, type Relay } from './proxy';
import type { AttachOptions, NetLayout, NetSession, NetworkDriver, NetCapabilities } from './types';

const SUN_PATH_MAX = 107;
const READY_TIMEOUT_MS = 10_000;

const LAYOUT: NetLayout = { address: '10.0.2.100', gateway: '10.0.2.2', dns: '10.0.2.3' };

function apiRequest(socket: string, req: object): Promise<{ return?: unknown; error?: { desc?: string } }> {
  return new Promise((resolve, reject) => {
    const c = connect(socket);
    let out = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => (out += d));
    c.on('error', reject);
    c.on('end', () => {
      try {
        resolve(JSON.parse(out));
      } catch {
        reject(new Error(`unreadable reply ${JSON.stringify(out)}`));
      }
    });
    c.write(JSON.stringify(req));
  });
}

async function addHostfwd(socket: string, proto: string, hostIp: string, hostPort: number, guestPort: number): Promise<string | undefined> {
  const r = await apiRequest(socket, {
    execute: 'add_hostfwd',
    arguments: { proto, host_addr: hostIp, host_port: hostPort, guest_port: guestPort },
  });
  return r.error ? (r.error.desc ?? JSON.stringify(r.error)) : undefined;
}

/**
 * UDP replies reach host clients only with the host loopback mapped (libslirp
 * drops every packet to 10.0.2.2 under --disable-host-loopback, podman issue
 * #4586); slirp4netns listens on IPv4 only.
 */
export const SLIRP4NETNS_CAPABILITIES: NetCapabilities = { udpPublish: 'with-host-loopback', ipv6Publish: 'relay' };

function readLogTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').slice(-600).trim().split('\n').join('; ');
  } catch {
    return '';
  }
}

export const slirp4netnsDriver: NetworkDriver = {
  name: 'slirp4netns',
  capabilities: SLIRP4NETNS_CAPABILITIES,
  layout: () => LAYOUT,

  async attach(o: AttachOptions): Promise<NetSession> {
    const apiSocket = `${o.sandboxDir}/slirp4netns.sock`;
    // The API socket serves add_hostfwd only: without a published port
    // nothing would ever talk to it, so slirp4netns gets none (one socket
    // less for anyone to reach the NAT through, and less for it to set up).
    const api = o.forwards.length > 0;
    if (api && Buffer.byteLength(apiSocket) > SUN_PATH_MAX) {
      throw new HutchError(`the slirp4netns API socket path ${apiSocket} is too long for a unix socket`, {
        hint: 'choose a shorter --name, or set XDG_RUNTIME_DIR to a shorter directory',
      });
    }
    const args = [
      '--configure',
      '--mtu=65520',
      '--enable-sandbox',
      '--enable-seccomp',
      ...(o.allowHostLoopback ? [] : ['--disable-host-loopback']),
      '--exit-fd=3',
      '--ready-fd=4',
      ...(api ? [`--api-socket=${apiSocket}`] : []),
      // PID form: slirp4netns joins the user and network namespaces of the
      // sandbox's pid 1. (--userns-path fails for unprivileged callers in 1.2:
      // "setegid(0)" right after joining.)
      String(o.pid),
      'tap0',
    ];
    const logFile = `${o.sandboxDir}/slirp4netns.log`;
    const logFd = o.exitFd ? openSync(logFile, 'a', 0o600) : undefined;
    const child = spawn(o.binary, args, { stdio: ['ignore', 'ignore', logFd ?? 'pipe', o.exitFd ?? 'pipe', 'pipe'], detached: !!o.exitFd });
    if (logFd !== undefined) closeSync(logFd);
    const tail = logFd !== undefined ? () => readLogTail(logFile) : stderrTail(child);
    const exitEnd = (child.stdio[3] as Readable | null) ?? o.exitFd!;
    exitEnd.on('error', () => {});
    const relays: Relay[] = [];
    let stopping: Promise<void> | undefined;
    const session: NetSession = {
      driver: 'slirp4netns',
      pid: child.pid ?? 0,
      stop: () =>
        (stopping ??= (async () => {
          await Promise.all(relays.map((r) => r.close()));
          exitEnd.destroy(); // EOF on --exit-fd: slirp4netns quits on its own
          if (!o.forwards.length) return letGo(child, undefined); // no host port to wait for
          const timer = setTimeout(() => stopChild(child), 1000);
          await waitExit(child);
          clearTimeout(timer);
        })()),
      detach: () => {
        for (const r of relays) void r.close(); // (a sandbox with relays keeps a resident hutch: src/cli/detach.ts)
        (child.stdio[4] as Readable | null)?.destroy();
        child.unref();
      },
    };
    const fail = async (what: string): Promise<never> => {
      await session.stop();
      const why = tail();
      throw new HutchError(`slirp4netns: ${what}${why ? `: ${why}` : ''}`, {
        hint: 'check that slirp4netns works here (`slirp4netns --version`), or use --network-driver pasta / --network none',
      });
    };

    const ready = await new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(`not ready after ${READY_TIMEOUT_MS / 1000} s`), READY_TIMEOUT_MS);
      const done = (r: string | undefined) => {
        clearTimeout(timer);
        resolve(r);
      };
      child.once('error', (e) => done(`cannot start ${o.binary}: ${e.message}`));
      child.once('exit', (code, sig) => done(`exited during setup (${sig ?? `status ${code}`})`));
      (child.stdio[4] as Readable).once('data', () => done(undefined));
    });
    if (ready) return fail(ready);

    for (const f of o.forwards) {
      let ip = f.hostIp;
      let port = f.hostPort;
      if (isIPv6(f.hostIp)) {
        [{ hostPort: port }] = await reservePorts([{ ...f, hostIp: '127.0.0.1', hostPort: 0 }]);
        ip = '127.0.0.1';
      }
      const err = await addHostfwd(apiSocket, f.protocol, ip, port, f.containerPort).catch((e: Error) => e.message);
      if (err) return fail(`cannot publish ${hostAddr(f.hostIp, f.hostPort)}/${f.protocol}: ${err}`);
      if (ip !== f.hostIp) {
        try {
          relays.push(await (f.protocol === 'udp' ? udpRelay : tcpRelay)(f.hostIp, f.hostPort, port));
        } catch (e) {
          return fail(`cannot listen on ${hostAddr(f.hostIp, f.hostPort)}/${f.protocol}: ${(e as Error).message}`);
        }
      }
    }
    if (exited(child)) return fail('exited during setup');
    return session;
  },
};
