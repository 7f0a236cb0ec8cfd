// A user-space forwarder inside hutch for what a driver cannot listen on
// itself: slirp4netns's API binds IPv4 host addresses only, so `-p
// [::1]:8080:80` listens here and relays to the IPv4 loopback forward that
// slirp4netns holds. It lives in the hutch process, so it can never outlive
// the sandbox.

import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Socket } from 'node:net';

export interface Relay {
  close(): Promise<void>;
}

const UDP_IDLE_MS = 60_000;

export function tcpRelay(listenIp: string, listenPort: number, targetPort: number): Promise<Relay> {
  const open = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect({ host: '127.0.0.1', port: targetPort });
    for (const s of [client, upstream]) {
      open.add(s);
      s.on('close', () => open.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: listenIp, port: listenPort, ipv6Only: true }, () =>
      resolve({
        close: () =>
          new Promise((r) => {
            for (const s of open) s.destroy();
            server.close(() => r());
          }),
      }),
    );
  });
}

/** One upstream socket per client address, so replies find their way back. */
export function udpRelay(listenIp: string, listenPort: number, targetPort: number): Promise<Relay> {
  const server = createSocket({ type: 'udp6', ipv6Only: true });
  const peers = new Map<string, { sock: UdpSocket; timer: NodeJS.Timeout; connected: boolean; queue: Buffer[] }>();
  const drop = (key: string) => {
    const p = peers.get(key);
    if (!p) return;
    clearTimeout(p.timer);
    p.sock.close();
    peers.delete(key);
  };
  server.on('message', (msg: Buffer, from: RemoteInfo) => {
    const key = `${from.address} ${from.port}`;
    let p = peers.get(key);
    if (!p) {
      const sock = createSocket('udp4');
      const entry = { sock, timer: setTimeout(() => drop(key), UDP_IDLE_MS), connected: false, queue: [] as Buffer[] };
      sock.on('message', (reply) => server.send(reply, from.port, from.address));
      sock.on('error', () => drop(key));
      sock.connect(targetPort, '127.0.0.1', () => {
        entry.connected = true;
        for (const m of entry.queue.splice(0)) sock.send(m);
      });
      p = entry;
      peers.set(key, p);
    }
    p.timer.refresh();
    if (p.connected) p.sock.send(msg);
    else p.queue.push(msg);
  });
  server.on('error', () => {});
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.bind({ address: listenIp, port: listenPort, exclusive: true }, () =>
      resolve({
        close: () =>
          new Promise((r) => {
            for (const k of [...peers.keys()]) drop(k);
            server.close(() => r());
          }),
      }),
    );
  });
}
