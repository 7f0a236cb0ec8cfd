// Shared shapes of the network layer: what a published port is once it is
// concrete (one host port, one sandbox port), and the interface every
// user-mode NAT driver implements (rootlesskit's pkg/network + pkg/port
// split, folded into one because both slirp4netns and pasta forward ports
// themselves).

import type { NetDriverName } from '../spec/types';
export { NET_DRIVERS, type NetDriverName } from '../spec/types';

/** One concrete forward: host address:port -> sandbox port. Ranges are expanded to one entry per port. */
export interface PortForward {
  protocol: 'tcp' | 'udp';
  /** Host address the driver listens on: `127.0.0.1`, `0.0.0.0`, `::1`, ... (no brackets). */
  hostIp: string;
  hostPort: number;
  containerPort: number;
  /** The host port was chosen by hutch (-P, or `-p CTR` without a host port). */
  random: boolean;
}

/** Addresses the sandbox sees; fixed before launch so /etc files can be written by the plan. */
export interface NetLayout {
  /** The sandbox's own IPv4 address (for /etc/hosts). */
  address: string;
  /** The default gateway; with allowHostLoopback it leads to the host's 127.0.0.1. */
  gateway: string;
  /** DNS forwarder the driver answers on (for /etc/resolv.conf). */
  dns: string;
}

export interface AttachOptions {
  /**
   * Host pid of a process inside the sandbox's user and network namespaces
   * whose /proc/PID/ns the driver may open: the sandbox's pid 1 before it
   * passes `sync-exec` (helper-c/PLAN.md).
   */
  pid: number;
  forwards: PortForward[];
  allowHostLoopback: boolean;
  /** Per-sandbox state directory (removed by the helper at exit): sockets and pid files go here. */
  sandboxDir: string;
  /** Absolute path of the driver binary. */
  binary: string;
  /**
   * `run -d` without a resident hutch: the end of a socket pair whose other
   * end the helper's monitor holds (op `hold`); a driver that can end with it
   * (slirp4netns --exit-fd) takes it, runs in a session of its own and writes
   * its messages to a file, as nothing of hutch stays to read them.
   */
  exitFd?: import('node:net').Socket;
}

/** A running network process attached to one sandbox. */
export interface NetSession {
  readonly driver: NetDriverName;
  /** Host pid of slirp4netns / pasta. */
  readonly pid: number;
  /** Stop the process and everything hutch runs for it; resolves when it is gone. */
  stop(): Promise<void>;
  /** hutch leaves a detached sandbox: drop every handle, the process ends with the monitor (exitFd). */
  detach?(): void;
}

/**
 * What a driver can do, declared by the driver (measured on this generation
 * of tools), so that choices and refusals never compare driver names.
 */
export interface NetCapabilities {
  /**
   * Published UDP ports: `never` (replies to host clients are lost), or
   * `with-host-loopback` (they come back only while the host's loopback is
   * reachable from the sandbox).
   */
  readonly udpPublish: 'never' | 'with-host-loopback';
  /** Ports published on an IPv6 host address: by the driver itself, or through hutch's relay (proxy.ts). */
  readonly ipv6Publish: 'native' | 'relay';
}

export interface NetworkDriver {
  readonly name: NetDriverName;
  readonly capabilities: NetCapabilities;
  layout(allowHostLoopback: boolean): NetLayout;
  /** Start the driver for the sandbox that `pid` is in and publish the ports; resolves when traffic flows. */
  attach(opts: AttachOptions): Promise<NetSession>;
}
