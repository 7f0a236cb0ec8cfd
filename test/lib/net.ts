// Helpers for the network tests (network.test.ts, network-contract.test.ts):
// a TCP/UDP server and a TCP probe to run inside a sandbox, clients for the
// host side, and host-side views of the drivers' processes and sockets.
// Traffic only ever goes to addresses on this machine.

import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { hostPids, procStatus, spawnHutch, tmpDir, waitFor } from './hutch';

/** Process names the drivers run under (Debian's pasta execs passt.avx2). */
export const DRIVER_COMMS = new Set(['slirp4netns', 'pasta', 'passt', 'passt.avx2', 'pasta.avx2']);

export const uniq = () => `n${process.pid}-${Math.random().toString(16).slice(2, 8)}`;

/** Scripts for inside, in a directory to mount read-only at /t. */
export function netFixtures(): string {
  const dir = tmpDir('hutch-net-');
  fs.chmodSync(dir, 0o755);
  fs.writeFileSync(
    path.join(dir, 'server.js'),
    `// node server.js tcp:PORT udp:PORT ...: TCP replies "hello PORT from ADDR", UDP echoes "echo MSG from ADDR"
const net = require('net'), dgram = require('dgram');
let pending = process.argv.length - 2;
const up = () => { if (--pending === 0) console.log('ready'); };
for (const a of process.argv.slice(2)) {
  const [proto, port] = a.split(':');
  if (proto === 'tcp') net.createServer((c) => c.end('hello ' + port + ' from ' + c.remoteAddress + '\\n')).listen(+port, up);
  else { const s = dgram.createSocket('udp4'); s.on('message', (m, r) => s.send('echo ' + m + ' from ' + r.address, r.port, r.address)); s.bind(+port, up); }
}
process.on('SIGTERM', () => process.exit(0));
`,
  );
  fs.writeFileSync(
    path.join(dir, 'probe.js'),
    `// node probe.js PORT HOST...: one line per host, "HOST OK data" or "HOST FAIL why"
const net = require('net'), fs = require('fs');
const port = +process.argv[2];
const route = fs.readFileSync('/proc/net/route', 'utf8').split('\\n').map((l) => l.trim().split(/\\s+/)).find((f) => f[1] === '00000000');
const gw = route ? Buffer.from(route[2], 'hex').reverse().join('.') : 'none';
(async () => {
  for (let h of process.argv.slice(3)) {
    if (h === 'GATEWAY') h = gw;
    const r = await new Promise((res) => {
      const s = net.connect({ host: h, port });
      const t = setTimeout(() => { s.destroy(); res('FAIL timeout'); }, 2000);
      s.on('data', (d) => { clearTimeout(t); s.destroy(); res('OK ' + String(d).trim()); });
      s.on('error', (e) => { clearTimeout(t); res('FAIL ' + e.code); });
    });
    console.log(h + ' ' + r);
  }
})();
`,
  );
  return dir;
}

export function tcpGet(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    let out = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (out += d));
    s.on('end', () => resolve(out.trim()));
    s.on('error', reject);
    s.setTimeout(5000, () => s.destroy(new Error(`timeout talking to ${host}:${port}`)));
  });
}

export function udpAsk(host: string, port: number, msg: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    const tries = setInterval(() => s.send(msg, port, host), 200); // UDP: resend until answered
    const timer = setTimeout(() => {
      clearInterval(tries);
      s.close();
      reject(new Error(`no UDP answer from ${host}:${port}`));
    }, 5000);
    s.on('message', (m) => {
      clearInterval(tries);
      clearTimeout(timer);
      s.close();
      resolve(String(m));
    });
    s.send(msg, port, host);
  });
}

/** Starts `hutch run [--network-driver D] ... -- node /t/server.js SPECS` and waits for "ready". */
export async function startServer(fixtures: string, driver: string | undefined, flags: string[], specs: string[]) {
  const name = uniq();
  const pick = driver ? ['--network-driver', driver] : [];
  const child = spawnHutch(['run', ...pick, '--name', name, '-v', `${fixtures}:/t:ro`, ...flags, '--', 'node', '/t/server.js', ...specs]);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exit = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  await waitFor(() => out.includes('ready') || child.exitCode !== null, 20_000, { what: `server in sandbox (${driver ?? 'auto'})` });
  if (!out.includes('ready')) throw new Error(`server did not start: exit ${child.exitCode}\n${err}`);
  return {
    name,
    child,
    stderr: () => err,
    async stop() {
      child.kill('SIGTERM');
      return exit;
    },
  };
}

/** Live (non-zombie) driver processes whose command line mentions `marker`. */
export function driverProcs(marker: string): number[] {
  const out: number[] = [];
  for (const pid of hostPids()) {
    let comm: string;
    let cmd: string;
    try {
      comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (!DRIVER_COMMS.has(comm) || !cmd.includes(marker)) continue;
    if (procStatus(pid)?.State?.startsWith('Z')) continue;
    out.push(pid);
  }
  return out;
}

export function stateDir(name: string): string {
  return path.join(process.env.XDG_RUNTIME_DIR || `/tmp/hutch-run-${process.getuid!()}`, 'hutch', name);
}

export async function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

/**
 * The TCP socket listening on [::1]:port in this network namespace: whether
 * there is one, and the pids holding it among those whose fds this user may
 * read (a driver that made itself non-dumpable, like pasta, is not among them).
 */
export function ipv6Listener(port: number): { listening: boolean; pids: number[] } {
  const want = `00000000000000000000000001000000:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const inodes = new Set<string>();
  for (const line of fs.readFileSync('/proc/net/tcp6', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === want && f[3] === '0A') inodes.add(`socket:[${f[9]}]`);
  }
  const pids: number[] = [];
  for (const pid of hostPids()) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (inodes.has(fs.readlinkSync(`/proc/${pid}/fd/${fd}`))) {
          pids.push(pid);
          break;
        }
      } catch {
        /* closed meanwhile */
      }
    }
  }
  return { listening: inodes.size > 0, pids };
}

/** The run directory of a named network (hutch-net/NAME under the runtime dir). */
export const netRunDir = (name: string) => path.join(process.env.XDG_RUNTIME_DIR || `/tmp/hutch-run-${process.getuid!()}`, 'hutch-net', name);

/** Host pids of a network's holder: a helper whose stderr is the log in the network's run directory. */
export function holderPids(name: string): number[] {
  const dir = netRunDir(name);
  return hostPids().filter((pid) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/fd/2`).startsWith(`${dir}/`) && fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'hutch-helper';
    } catch {
      return false;
    }
  });
}

/** Everything a network runs is gone: no holder, no socket, no run directory. */
export async function assertNothingLeft(name: string) {
  await waitFor(() => holderPids(name).length === 0 && !fs.existsSync(netRunDir(name)), 10_000, { what: `network ${name}'s holder to end` });
}
