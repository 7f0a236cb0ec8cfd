// The network contract: every user-mode NAT driver (src/net/: slirp4netns,
// pasta) passes the same suite with real traffic, only to addresses on this
// machine, for each driver the host offers (forced with --network-driver; one
// the host cannot run is skipped with hutch's reason, printed):
//  - the sandbox's network: a default route, MTU 65520, /etc/resolv.conf
//    naming the driver's DNS forwarder, /etc/hosts, both read-only;
//  - DNS: a lookup inside goes through the forwarder to the host's resolver;
//  - published TCP ports on 127.0.0.1 (fixed, random, ranges) and on an IPv6
//    host address; port conflicts refused before the command starts;
//  - outbound TCP to a host-side server on the host's loopback through the
//    gateway forward, only with allowHostLoopback;
//  - the driver lives exactly as long as the sandbox.
// Where drivers differ, the driver declares it (NetCapabilities in
// src/net/drivers.ts: udpPublish, ipv6Publish; NetLayout: the DNS address),
// and the test reads the declaration from the code: a driver that cannot
// publish UDP must refuse it clearly, one that can must carry it.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  describe,
  descendants,
  expectExit,
  freePort,
  hostPids,
  hutchCmd,
  isRoot,
  procStatus,
  runCmd,
  runHutch,
  spawnHutch,
  testIf,
  tmpDir,
  waitFor,
} from '../lib/hutch';
import { driverProcs, ipv6Listener, netFixtures, portFree, startServer as start, stateDir, tcpGet, udpAsk, uniq } from '../lib/net';
import { NET_CAPABILITIES, networkDriverFor } from '../../src/net/drivers';
import { NET_DRIVERS, type NetDriverName } from '../../src/net/types';

// Fixtures, mounted read-only at /t inside.
const fixtures = netFixtures();
const startServer = (driver: NetDriverName, flags: string[], specs: string[]) => start(fixtures, driver, flags, specs);

/** Why `driver` cannot run here (hutch's refusal, exit 125), or undefined. */
async function unavailable(driver: NetDriverName): Promise<string | undefined> {
  const r = await runHutch(['run', '--network', 'slirp', '--network-driver', driver, '--dry-run', '--', 'true']);
  return r.code === 125 ? r.stderr.trim().split('\n')[0] : undefined;
}

/** The DNS forwarder address the driver declares (NetLayout.dns). */
function declaredDns(driver: NetDriverName): string {
  return networkDriverFor({ name: driver, binary: driver, setpriv: 'setpriv', why: 'test' }).layout(false).dns;
}

/**
 * A DNS server on the host answering every A query with 192.0.2.123, at a
 * loopback address of its own (127.53.x.y: no clash with other runs), and a
 * resolv.conf naming it, for a private mount namespace (`unshare -m`).
 */
async function fakeResolver() {
  const addr = `127.53.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`;
  const dgram = await import('node:dgram');
  const s = dgram.createSocket('udp4');
  const queries: string[] = [];
  s.on('message', (m, r) => {
    let i = 12;
    const labels: string[] = [];
    while (m[i]) {
      labels.push(m.subarray(i + 1, i + 1 + m[i]).toString());
      i += m[i] + 1;
    }
    const qend = i + 5;
    const qtype = m.readUInt16BE(qend - 4);
    queries.push(`${labels.join('.')} ${qtype}`);
    const h = Buffer.alloc(12);
    m.copy(h, 0, 0, 2);
    h.writeUInt16BE(0x8180, 2);
    h.writeUInt16BE(1, 4);
    h.writeUInt16BE(qtype === 1 ? 1 : 0, 6);
    const answer = qtype === 1 ? Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 123]) : Buffer.alloc(0);
    s.send(Buffer.concat([h, m.subarray(12, qend), answer]), r.port, r.address);
  });
  await new Promise<void>((r) => s.bind(53, addr, () => r()));
  const resolv = path.join(tmpDir('hutch-dns-'), 'resolv.conf');
  fs.writeFileSync(resolv, `nameserver ${addr}\nsearch contract.test\n`);
  return { addr, resolv, queries, close: () => s.close() };
}

const sourceSeen: Record<string, string> = {};

for (const driver of NET_DRIVERS) {
  const caps = NET_CAPABILITIES[driver];
  const why = await unavailable(driver);
  const t = (name: string, fn: () => Promise<void>, skipBecause: string | undefined = why) => testIf(test, !skipBecause, `${driver}: ${name}`, fn, skipBecause);

  t(`default route, MTU 65520, /etc/resolv.conf at the forwarder, /etc/hosts with the hostname`, async () => {
    const hostResolv = fs.readFileSync('/etc/resolv.conf', 'utf8');
    const hostHosts = fs.readFileSync('/etc/hosts', 'utf8');
    const r = expectExit(
      await runHutch([
        'run',
        '--network-driver',
        driver,
        '--hostname',
        'boxname',
        '--read-only',
        '--',
        'sh',
        '-c',
        'cat /proc/net/route; echo ===; cat /etc/resolv.conf; echo ===; cat /etc/hosts; echo ===; cat /sys/class/net/*/mtu; echo ===; echo x >> /etc/hosts; echo x >> /etc/resolv.conf; echo done',
      ]),
    );
    const [route, resolv, hosts, mtu] = r.stdout.split('===\n');
    assert.ok(
      route.split('\n').some((l) => l.split(/\s+/)[1] === '00000000'),
      `no default route:\n${route}`,
    );
    const ns = /^nameserver\s+(\S+)$/m.exec(resolv)?.[1];
    assert.is(ns, declaredDns(driver), resolv);
    assert.is(resolv.match(/^nameserver/gm)?.length, 1, 'only the forwarder');
    assert.match(hosts, /^\S+\s+boxname$/m);
    assert.match(hosts, /^127\.0\.0\.1\s+localhost/m);
    assert.ok(mtu.split('\n').includes('65520'), `MTU: ${mtu}`);
    // Bound read-only: writes fail inside, and the host's files never change.
    assert.match(r.stderr, /Read-only file system/, describe(r));
    assert.is(fs.readFileSync('/etc/resolv.conf', 'utf8'), hostResolv);
    assert.is(fs.readFileSync('/etc/hosts', 'utf8'), hostHosts);
  });

  t(`a TCP server inside is reachable through a published port; source address recorded`, async () => {
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

  // NetCapabilities.udpPublish decides what is right: a clear refusal (never), a refusal without
  // allowHostLoopback and an echo with it (with-host-loopback).
  t(`UDP through a published UDP port, as its declared capability udpPublish: ${caps.udpPublish} says`, async () => {
    const hostPort = await freePort();
    if (caps.udpPublish === 'never') {
      for (const flags of [[], ['--allow-host-loopback']]) {
        const r = await runHutch(['run', '--network-driver', driver, ...flags, '-p', `${hostPort}:53/udp`, '--', 'true']);
        assert.is(r.code, 125, describe(r));
        assert.match(r.stderr, new RegExp(`--publish 53/udp: UDP ports cannot be published through ${driver}`));
        assert.match(r.stderr, /hint: .*--network-driver \S+ --allow-host-loopback/);
      }
      return;
    }
    const refused = await runHutch(['run', '--network-driver', driver, '-p', `${hostPort}:53/udp`, '--', 'true']);
    assert.is(refused.code, 125, describe(refused));
    assert.match(refused.stderr, new RegExp(`UDP ports need allowHostLoopback with ${driver}`));
    const s = await startServer(driver, ['--allow-host-loopback', '-p', `127.0.0.1:${hostPort}:5353/udp`, '-p', '53/udp'], ['udp:5353', 'udp:53']);
    try {
      assert.match(await udpAsk('127.0.0.1', hostPort, 'ping'), /^echo ping from /);
      const r = expectExit(await runHutch(['port', s.name, '53/udp']));
      assert.match(await udpAsk('127.0.0.1', Number(r.stdout.trim().split(':')[1]), 'r'), /^echo r from /);
    } finally {
      await s.stop();
    }
  });

  t(`a random host port works, is printed at start and shown by hutch port`, async () => {
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

  t(`ranges, and an IPv6 host address ([::1]:PORT:CTR) served as ipv6Publish: ${caps.ipv6Publish} declares`, async () => {
    const base = 20000 + Math.floor(Math.random() * 20000);
    const v6 = await freePort();
    const s = await startServer(driver, ['-p', `${base}-${base + 2}:7000-7002`, '-p', `[::1]:${v6}:7003`], ['tcp:7000', 'tcp:7001', 'tcp:7002', 'tcp:7003']);
    try {
      for (let i = 0; i < 3; i++) assert.match(await tcpGet('127.0.0.1', base + i), new RegExp(`^hello ${7000 + i} `));
      assert.match(await tcpGet('::1', v6), /^hello 7003 /);
      assert.not.ok(await tcpGet('127.0.0.1', v6).catch(() => false), 'the IPv6 mapping must not listen on 127.0.0.1');
      // Who listens on [::1]: hutch's relay (src/net/proxy.ts) or the driver itself.
      const l = ipv6Listener(v6);
      const comms = l.pids.map((p) => fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim());
      assert.ok(l.listening, `nothing listens on [::1]:${v6}`);
      if (caps.ipv6Publish === 'relay') assert.equal(l.pids, [s.child.pid], `[::1]:${v6} is held by ${comms}, not by hutch's relay`);
      else assert.ok(!l.pids.includes(s.child.pid!) && l.pids.every((p) => driverProcs('').includes(p)), `[::1]:${v6} is held by ${comms}, not by ${driver}`);
    } finally {
      await s.stop();
    }
  });

  t(
    "DNS: a lookup inside goes through the driver's forwarder to the host's resolver",
    async () => {
      const dns = await fakeResolver();
      try {
        // The driver reads the host's /etc/resolv.conf: a private mount namespace gives it ours.
        const r = await runCmd([
          'unshare',
          '-m',
          'sh',
          '-c',
          'mount --bind "$1" /etc/resolv.conf && shift && exec "$@"',
          'sh',
          dns.resolv,
          ...hutchCmd(),
          'run',
          '--network-driver',
          driver,
          '--',
          'sh',
          '-c',
          'cat /etc/resolv.conf; getent hosts host1.contract.test; getent hosts host2',
        ]);
        expectExit(r);
        const [resolvLines, hosts] = [r.stdout.split('\n').filter((l) => !/^\d/.test(l)), r.stdout.split('\n').filter((l) => /^\d/.test(l))];
        assert.ok(resolvLines.includes(`nameserver ${declaredDns(driver)}`), r.stdout);
        assert.ok(resolvLines.includes('search contract.test'), `the host's search domains are kept: ${r.stdout}`);
        assert.equal(
          hosts.map((l) => l.split(/\s+/)),
          [
            ['192.0.2.123', 'host1.contract.test'],
            ['192.0.2.123', 'host2.contract.test'],
          ],
          describe(r),
        );
        assert.ok(dns.queries.includes('host1.contract.test 1'), `queries seen by the host's resolver: ${dns.queries}`);
        assert.ok(dns.queries.includes('host2.contract.test 1'), 'the search domain was applied inside');
      } finally {
        dns.close();
      }
    },
    why ?? (isRoot() ? undefined : 'pointing the driver at a test resolver needs a private /etc/resolv.conf for it (unshare -m): root tier only'),
  );

  t(`a host port already in use fails with 125 before the command starts`, async () => {
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

  t(`the host's 127.0.0.1 is unreachable by default, reachable with allowHostLoopback`, async () => {
    const srv = net.createServer((c) => c.end('host-secret\n'));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as net.AddressInfo).port;
    const profile = path.join(tmpDir(), 'loop.yaml');
    fs.writeFileSync(profile, 'extends: default\nnetwork:\n  mode: slirp\n  allowHostLoopback: true\n');
    const probe = (flags: string[]) =>
      runHutch([
        'run',
        '--network-driver',
        driver,
        '-v',
        `${fixtures}:/t:ro`,
        ...flags,
        '--',
        'node',
        '/t/probe.js',
        String(port),
        '127.0.0.1',
        'GATEWAY',
        'host.hutch.internal',
      ]);
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

  t(`lives exactly as long as the sandbox: normal exit, crash, SIGKILL of hutch`, async () => {
    // normal exit and a crashing command: the driver is gone when hutch returns
    for (const [script, code] of [
      ['exit 3', 3],
      ['kill -SEGV $$', 139],
    ] as const) {
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
    const [drv] = await waitFor(
      () => {
        const d = driverProcs(`/${name}/`);
        return d.length ? d : undefined;
      },
      20_000,
      { what: `${driver} process` },
    );
    // the command (hutch's monitor and pid 1 are not dumpable: their /proc/PID/ns is closed to the user)
    const command = await waitFor(() => descendants(child.pid!).find((p) => fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'sleep'), 10_000, {
      what: 'the command',
    });
    const netns = fs.readlinkSync(`/proc/${command}/ns/net`);
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

test.after(() => {
  process.stdout.write(`  source address seen by a server inside: ${JSON.stringify(sourceSeen)}\n`);
});

test.run();
