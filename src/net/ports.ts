// Published ports: podman's `-p` mappings (already parsed by
// src/profile/values.ts) become concrete forwards, one per port. Host ports
// are checked before anything starts, so a port already in use is a clear
// error (exit 125) instead of a driver's log line; ports left open (`-p 80`,
// `-P`) get a free port from the kernel.

import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, isIPv6, type Server } from 'node:net';
import { HutchError } from '../util/errors';
import type { PortMapping } from '../profile/values';
import type { PortForward } from './types';

/** Where published ports listen unless the mapping says otherwise: never the LAN by default. */
export const DEFAULT_HOST_IP = '127.0.0.1';

/** `127.0.0.1:8080`, `[::1]:8080`. */
export function hostAddr(ip: string, port: number): string {
  return isIPv6(ip) ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** podman port's line: `80/tcp -> 127.0.0.1:8080`. */
export function describeForward(f: PortForward): string {
  return `${f.containerPort}/${f.protocol} -> ${hostAddr(f.hostIp, f.hostPort)}`;
}

function mappingText(m: PortMapping): string {
  const r = (x: { start: number; end: number }) => (x.start === x.end ? `${x.start}` : `${x.start}-${x.end}`);
  const ip = m.hostIp ? (isIPv6(m.hostIp) ? `[${m.hostIp}]:` : `${m.hostIp}:`) : '';
  const host = m.hostPort ? r(m.hostPort) : '';
  return `${ip}${host || ip ? `${host}:` : ''}${r(m.containerPort)}/${m.protocol}`;
}

/** One forward per port; a host port of 0 means "pick one". */
export function expandMappings(mappings: PortMapping[]): PortForward[] {
  const out: PortForward[] = [];
  for (const m of mappings) {
    if (m.protocol === 'sctp') {
      throw new HutchError(`--publish ${mappingText(m)}: sctp cannot be published through user-mode NAT`, {
        hint: 'slirp4netns and pasta forward tcp and udp only',
      });
    }
    const hostIp = m.hostIp ?? DEFAULT_HOST_IP;
    if (hostIp.includes('%')) throw new HutchError(`--publish ${mappingText(m)}: scoped IPv6 addresses are not supported`);
    for (let i = 0; i <= m.containerPort.end - m.containerPort.start; i++) {
      out.push({
        protocol: m.protocol,
        hostIp,
        hostPort: m.hostPort ? m.hostPort.start + i : 0,
        containerPort: m.containerPort.start + i,
        random: !m.hostPort,
      });
    }
  }
  const seen = new Map<string, PortForward>();
  for (const f of out) {
    if (!f.hostPort) continue;
    const key = `${f.protocol} ${f.hostIp} ${f.hostPort}`;
    const prev = seen.get(key);
    if (prev) {
      throw new HutchError(`host port ${hostAddr(f.hostIp, f.hostPort)}/${f.protocol} is published twice (to ${prev.containerPort} and ${f.containerPort})`, {
        hint: 'give each published port its own host port',
      });
    }
    seen.set(key, f);
  }
  return out;
}

type Holder = { close(): Promise<void> };

function holdTcp(ip: string, port: number): Promise<{ port: number; h: Holder }> {
  return new Promise((resolve, reject) => {
    const s: Server = createServer();
    s.once('error', reject);
    s.listen({ host: ip, port, ipv6Only: isIPv6(ip), exclusive: true }, () => {
      resolve({ port: (s.address() as { port: number }).port, h: { close: () => new Promise((r) => s.close(() => r())) } });
    });
  });
}

function holdUdp(ip: string, port: number): Promise<{ port: number; h: Holder }> {
  return new Promise((resolve, reject) => {
    const s: UdpSocket = createSocket({ type: isIPv6(ip) ? 'udp6' : 'udp4', ipv6Only: isIPv6(ip) });
    s.once('error', reject);
    s.bind({ address: ip, port, exclusive: true }, () => {
      resolve({ port: s.address().port, h: { close: () => new Promise((r) => s.close(() => r())) } });
    });
  });
}

/**
 * Checks that every fixed host port is free and picks free ports for the
 * open ones (all sockets are held together, so two picks never collide).
 * The sockets are closed again before the driver binds the same ports.
 */
export async function reservePorts(forwards: PortForward[]): Promise<PortForward[]> {
  const held: Holder[] = [];
  try {
    const out: PortForward[] = [];
    for (const f of forwards) {
      try {
        const r = await (f.protocol === 'udp' ? holdUdp : holdTcp)(f.hostIp, f.hostPort);
        held.push(r.h);
        out.push({ ...f, hostPort: r.port });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        const where = `${hostAddr(f.hostIp, f.hostPort || 0)}/${f.protocol}`;
        if (code === 'EADDRINUSE') {
          throw new HutchError(`host port ${where} is already in use (published to sandbox port ${f.containerPort})`, {
            hint: `stop what listens there, pick another host port, or write -p ${f.containerPort} to get a free one`,
          });
        }
        if (code === 'EADDRNOTAVAIL') {
          throw new HutchError(`cannot publish on ${f.hostIp}: the host has no such address`, {
            hint: 'use 127.0.0.1 (the default), ::1, 0.0.0.0 or an address of this host',
          });
        }
        if (code === 'EACCES') {
          throw new HutchError(`host port ${where}: permission denied`, {
            hint: 'ports below 1024 need privileges on the host (net.ipv4.ip_unprivileged_port_start); pick a port >= 1024',
          });
        }
        throw new HutchError(`cannot reserve host port ${where}: ${(e as Error).message}`);
      }
    }
    return out;
  } finally {
    await Promise.all(held.map((h) => h.close()));
  }
}
