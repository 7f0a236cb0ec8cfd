// Networking contract: every user-mode NAT driver (slirp4netns, pasta) must
// pass the same suite with real traffic, only to addresses on this machine:
// a server inside reachable through published TCP and UDP ports (fixed,
// random, ranges, IPv6 host address), port conflicts refused before the
// command starts, the host's loopback unreachable unless allowed, /etc files
// written without touching the host's, and nothing left behind when hutch is
// SIGKILLed. Plus `none` (only lo) and the driver choice.

import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describe, descendants, expectExit, freePort, hostPids, procStatus, runHutch, spawnHutch, tmpDir, waitFor, type RunResult } from '../lib/hutch';

const DRIVERS = ['slirp4netns', 'pasta'] as const;
type Driver = (typeof DRIVERS)[number];
/** Process names the drivers run under (Debian's pasta execs passt.avx2). */
const DRIVER_COMMS = new Set(['slirp4netns', 'pasta', 'passt', 'passt.avx2', 'pasta.avx2']);
const uniq = () => `n${process.pid}-${Math.random().toString(16).slice(2, 8)}`;

// Fixtures, mounted read-only at /t inside.
const fixtures = tmpDir('hutch-net-');
fs.chmodSync(fixtures, 0o755);
fs.writeFileSync(
  path.join(fixtures, 'server.js'),
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
  path.join(fixtures, 'probe.js'),
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

function tcpGet(host: string, port: number): Promise<string> {
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

function udpAsk(host: string, port: number, msg: string): Promise<string> {
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

/** Starts `hutch run ... -- node /t/server.js SPECS` and waits for "ready". */
async function startServer(driver: Driver, flags: string[], specs: string[]) {
  const name = uniq();
  const child = spawnHutch(['run', '--network-driver', driver, '--name', name, '-v', `${fixtures}:/t:ro`, ...flags, '--', 'node', '/t/server.js', ...specs]);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exit = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  await waitFor(() => out.includes('ready') || child.exitCode !== null, 20_000, { what: `server in sandbox (${driver})` });
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
function driverProcs(marker: string): number[] {
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

function stateDir(name: string): string {
  return path.join(process.env.XDG_RUNTIME_DIR || `/tmp/hutch-run-${process.getuid!()}`, 'hutch', name);
}

async function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

const sourceSeen: Record<string, string> = {};

for (const driver of DRIVERS) {
  test(`${driver}: default route, MTU 65520, /etc/resolv.conf at the forwarder, /etc/hosts with the hostname`, async () => {
    const hostResolv = fs.readFileSync('/etc/resolv.conf', 'utf8');
    const hostHosts = fs.readFileSync('/etc/hosts', 'utf8');
    const r = expectExit(
      await runHutch([
        'run', '--network-driver', driver, '--hostname', 'boxname', '--read-only', '--',
        'sh', '-c', 'cat /proc/net/route; echo ===; cat /etc/resolv.conf; echo ===; cat /etc/hosts; echo ===; cat /sys/class/net/*/mtu; echo ===; echo x >> /etc/hosts; echo x >> /etc/resolv.conf; echo done',
      ]),
    );
    const [route, resolv, hosts, mtu] = r.stdout.split('===\n');
    assert.ok(route.split('\n').some((l) => l.split(/\s+/)[1] === '00000000'), `no default route:\n${route}`);
    const ns = /^nameserver\s+(\S+)$/m.exec(resolv)?.[1];
    assert.is(ns, driver === 'slirp4netns' ? '10.0.2.3' : '169.254.1.1', resolv);
    assert.is(resolv.match(/^nameserver/gm)?.length, 1, 'only the forwarder');
    assert.match(hosts, /^\S+\s+boxname$/m);
    assert.match(hosts, /^127\.0\.0\.1\s+localhost/m);
    assert.ok(mtu.split('\n').includes('65520'), `MTU: ${mtu}`);
    // Bound read-only: writes fail inside, and the host's files never change.
    assert.match(r.stderr, /Read-only file system/, describe(r));
    assert.is(fs.readFileSync('/etc/resolv.conf', 'utf8'), hostResolv);
    assert.is(fs.readFileSync('/etc/hosts', 'utf8'), hostHosts);
  });

  test(`${driver}: a TCP server inside is reachable through a published port; source address recorded`, async () => {
    const hostPort = await freePort();
    const s = await startServer(driver, ['-p', `${hostPort}:8000`], ['tcp:8000']);
    try {
      const reply = await tcpGet('127.0.0.1', hostPort);
      assert.match(reply, /^hello 8000 from /);
      sourceSeen[driver] = reply.replace('hello 8000 from ', '');
    } finally {
      assert.is(await s.stop(), 0, s.stderr());
    }
  });

  test(`${driver}: UDP echo through a published UDP port (slirp4netns with the host loopback mapped; refused otherwise)`, async () => {
    const hostPort = await freePort();
    if (driver === 'pasta') {
      const r = await runHutch(['run', '--network-driver', 'pasta', '-p', `${hostPort}:53/udp`, '--', 'true']);
      assert.is(r.code, 125, describe(r));
      assert.match(r.stderr, /UDP ports cannot be published through pasta/);
      return;
    }
    const refused = await runHutch(['run', '--network-driver', driver, '-p', `${hostPort}:53/udp`, '--', 'true']);
    assert.is(refused.code, 125, describe(refused));
    assert.match(refused.stderr, /UDP ports need allowHostLoopback/);
    const s = await startServer(driver, ['--allow-host-loopback', '-p', `127.0.0.1:${hostPort}:5353/udp`, '-p', '53/udp'], ['udp:5353', 'udp:53']);
    try {
      assert.match(await udpAsk('127.0.0.1', hostPort, 'ping'), /^echo ping from /);
      const r = expectExit(await runHutch(['port', s.name, '53/udp']));
      assert.match(await udpAsk('127.0.0.1', Number(r.stdout.trim().split(':')[1]), 'r'), /^echo r from /);
    } finally {
      await s.stop();
    }
  });

  test(`${driver}: a random host port works, is printed at start and shown by hutch port`, async () => {
    const s = await startServer(driver, ['-p', '8000'], ['tcp:8000']);
    try {
      const r = expectExit(await runHutch(['port', s.name]));
      const tcp = /^8000\/tcp -> 127\.0\.0\.1:(\d+)$/m.exec(r.stdout);
      assert.ok(tcp, r.stdout);
      assert.match(s.stderr(), new RegExp(`published 127\\.0\\.0\\.1:${tcp![1]} -> 8000/tcp`));
      assert.match(await tcpGet('127.0.0.1', Number(tcp![1])), /^hello 8000/);
      const one = expectExit(await runHutch(['port', s.name, '8000']));
      assert.is(one.stdout.trim(), `127.0.0.1:${tcp![1]}`);
    } finally {
      await s.stop();
    }
  });

  test(`${driver}: ranges and an IPv6 host address ([::1]:PORT:CTR)`, async () => {
    const base = 20000 + Math.floor(Math.random() * 20000);
    const v6 = await freePort();
    const s = await startServer(driver, ['-p', `${base}-${base + 2}:7000-7002`, '-p', `[::1]:${v6}:7003`], ['tcp:7000', 'tcp:7001', 'tcp:7002', 'tcp:7003']);
    try {
      for (let i = 0; i < 3; i++) assert.match(await tcpGet('127.0.0.1', base + i), new RegExp(`^hello ${7000 + i} `));
      assert.match(await tcpGet('::1', v6), /^hello 7003 /);
      assert.not.ok(await tcpGet('127.0.0.1', v6).catch(() => false), 'the IPv6 mapping must not listen on 127.0.0.1');
    } finally {
      await s.stop();
    }
  });

  test(`${driver}: a host port already in use fails with 125 before the command starts`, async () => {
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    const port = (busy.address() as net.AddressInfo).port;
    const marker = path.join(tmpDir(), 'ran');
    try {
      const r = await runHutch(['run', '--network-driver', driver, '-p', `${port}:80`, '-v', `${path.dirname(marker)}:/m`, '--', 'touch', '/m/ran']);
      assert.is(r.code, 125, describe(r));
      assert.match(r.stderr, new RegExp(`host port 127\\.0\\.0\\.1:${port}/tcp is already in use`));
      assert.not.ok(fs.existsSync(marker), 'the command ran');
    } finally {
      busy.close();
    }
  });

  test(`${driver}: the host's 127.0.0.1 is unreachable by default, reachable with allowHostLoopback`, async () => {
    const srv = net.createServer((c) => c.end('host-secret\n'));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as net.AddressInfo).port;
    const profile = path.join(tmpDir(), 'loop.yaml');
    fs.writeFileSync(profile, 'extends: default\nnetwork:\n  mode: slirp\n  allowHostLoopback: true\n');
    const probe = (flags: string[]) =>
      runHutch(['run', '--network-driver', driver, '-v', `${fixtures}:/t:ro`, ...flags, '--', 'node', '/t/probe.js', String(port), '127.0.0.1', 'GATEWAY', 'host.hutch.internal']);
    try {
      const closed = expectExit(await probe([]));
      assert.not.match(closed.stdout, /OK/, `reached the host loopback by default:\n${closed.stdout}`);
      assert.is(closed.stdout.trim().split('\n').length, 3, closed.stdout);
      for (const open of [expectExit(await probe(['--profile', profile])), expectExit(await probe(['--allow-host-loopback']))]) {
        const lines = open.stdout.trim().split('\n');
        assert.match(lines[0], /^127\.0\.0\.1 FAIL/, 'the sandbox keeps its own loopback');
        assert.match(lines[1], /OK host-secret/, open.stdout);
        assert.match(lines[2], /^host\.hutch\.internal OK host-secret/, open.stdout);
        assert.match(open.stderr, /allowHostLoopback is on/);
      }
    } finally {
      srv.close();
    }
  });

  test(`${driver}: lives exactly as long as the sandbox: normal exit, crash, SIGKILL of hutch`, async () => {
    // normal exit and a crashing command: the driver is gone when hutch returns
    for (const [script, code] of [['exit 3', 3], ['kill -SEGV $$', 139]] as const) {
      const name = uniq();
      const r = await runHutch(['run', '--network-driver', driver, '--name', name, '-p', '8000', '--', 'sh', '-c', script]);
      assert.is(r.code, code, describe(r));
      assert.equal(driverProcs(`/${name}/`), [], `${driver} left running after "${script}"`);
      assert.not.ok(fs.existsSync(stateDir(name)), 'state dir (API socket, pid file) left behind');
    }
    // SIGKILL of hutch itself
    const name = uniq();
    const port = await freePort();
    const child = spawnHutch(['run', '--network-driver', driver, '--name', name, '-p', `${port}:8000`, '--', 'sleep', '60']);
    const [drv] = await waitFor(() => {
      const d = driverProcs(`/${name}/`);
      return d.length ? d : undefined;
    }, 20_000, { what: `${driver} process` });
    const monitor = descendants(child.pid!).find((p) => fs.readFileSync(`/proc/${p}/comm`, 'utf8').includes('hutch'));
    assert.ok(monitor, 'helper monitor');
    const netns = fs.readlinkSync(`/proc/${monitor}/ns/net`);
    assert.ok(fs.existsSync(stateDir(name)));
    await waitFor(async () => !(await portFree(port)), 10_000, { what: 'published port bound' });
    process.kill(child.pid!, 'SIGKILL');
    await waitFor(() => driverProcs(`/${name}/`).length === 0, 10_000, { what: `${driver} (pid ${drv}) to exit after SIGKILL of hutch` });
    // The network namespace (and the tap device in it) is gone when no process holds it.
    await waitFor(
      () =>
        !hostPids().some((p) => {
          try {
            return fs.readlinkSync(`/proc/${p}/ns/net`) === netns && !procStatus(p)?.State?.startsWith('Z');
          } catch {
            return false;
          }
        }),
      10_000,
      { what: `no process left in the sandbox's network namespace ${netns}` },
    );
    await waitFor(() => !fs.existsSync(stateDir(name)), 10_000, { what: 'state dir with the API socket removed' });
    await waitFor(() => portFree(port), 5000, { what: 'the published host port to be released' });
  });
}

test('auto: --network slirp picks pasta here (installed, faster), slirp4netns when pinned or for UDP ports', async () => {
  const auto = expectExit(await runHutch(['run', '--network', 'slirp', '--dry-run', '--', 'true']));
  assert.match(auto.stdout, /^# network driver: pasta \(auto/m);
  const pinned = expectExit(await runHutch(['run', '--network', 'slirp', '--network-driver', 'slirp4netns', '--dry-run', '--', 'true']));
  assert.match(pinned.stdout, /^# network driver: slirp4netns/m);
  const udp = expectExit(await runHutch(['run', '--network', 'slirp', '--allow-host-loopback', '-p', '53/udp', '--dry-run', '--', 'true']));
  assert.match(udp.stdout, /^# network driver: slirp4netns \(auto: UDP ports/m);
  const bad = await runHutch(['run', '--network', 'pasta', '--network-driver', 'slirp4netns', '--', 'true']);
  assert.is(bad.code, 125);
  assert.match(bad.stderr, /contradict/);
});

test('none: only lo exists, /etc/hosts names the sandbox, ports are refused', async () => {
  const r = expectExit(await runHutch(['run', '--network', 'none', '--hostname', 'solo', '--', 'sh', '-c', 'ls /sys/class/net; tail -n +3 /proc/net/dev | cut -d: -f1; grep solo /etc/hosts']));
  const lines = r.stdout.trim().split('\n').map((l) => l.trim());
  assert.equal(lines.slice(0, 3), ['lo', 'lo', '127.0.1.1\tsolo'], r.stdout);
  const p = await runHutch(['run', '--network', 'none', '-p', '8080:80', '--', 'true']);
  assert.is(p.code, 125);
  assert.match(p.stderr, /--publish: ports cannot be published with network "none"/);
  assert.match(p.stderr, /--network slirp/);
});

test('-P publishes the profile\'s exposed ports (and --expose) on free 127.0.0.1 ports', async () => {
  const s = await startServer('slirp4netns', ['--profile', 'dev-server', '-w', '/', '--expose', '9000', '-P'], ['tcp:3000', 'tcp:9000']);
  try {
    const r = expectExit(await runHutch(['port', s.name]));
    for (const ctr of [3000, 5173, 8080, 9000]) assert.match(r.stdout, new RegExp(`^${ctr}/tcp -> 127\\.0\\.0\\.1:\\d+$`, 'm'));
    const p9000 = Number(/^9000\/tcp -> 127\.0\.0\.1:(\d+)$/m.exec(r.stdout)![1]);
    assert.match(await tcpGet('127.0.0.1', p9000), /^hello 9000/);
  } finally {
    await s.stop();
  }
  const missing = await runHutch(['port', 'no-such-sandbox-xyz']);
  assert.is(missing.code, 125);
  assert.match(missing.stderr, /no running sandbox named "no-such-sandbox-xyz"/);
});

test.after(() => {
  process.stdout.write(`  source address seen by a server inside: ${JSON.stringify(sourceSeen)}\n`);
});

test.run();
