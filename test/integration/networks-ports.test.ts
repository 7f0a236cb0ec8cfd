// Published ports and fixed addresses of named networks' members
// (docs/NETWORKS.md "Published ports of a member", "connect / disconnect"),
// as the user runs them: a UDP port of a member answered to a client on the
// host (through the network's slirp4netns, which maps the host's loopback,
// and the holder's FORWARD rules, which keep members from it), `-p` on
// `hutch network connect` (withdrawn on disconnect and when the monitor is
// SIGKILLed, the host port free again), `--network NAME:ip=ADDR,alias=X` for
// each of several networks (kept across --restart), the profile's
// network.ip, the refusals (125, naming the flag), and a member given
// NET_ADMIN and NET_RAW that tries to speak as another address of the network.

import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describe, expectExit, freePort, repoPath, runHutch, spawnHutch, tmpDir } from '../lib/hutch';
import { netFixtures, portFree, startServer, tcpGet, udpAsk, uniq, assertNothingLeft } from '../lib/net';

// A store of this file's own: other test files of the tier share XDG_DATA_HOME.
process.env.XDG_DATA_HOME = tmpDir('hutch-data-');
const fixtures = netFixtures();
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A non-loopback IPv4 address of this host. */
function hostAddress(): string | undefined {
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return undefined;
}

/** Whether a UDP port can be bound on the host (free again). */
function udpFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.once('error', () => resolve(false));
    s.bind({ port, address: host, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** One UDP datagram to HOST:PORT, resent for `ms`: the answer, or `FAIL`. */
const udpTry = (host: string, port: number, msg: string) => udpAsk(host, port, msg).catch(() => 'FAIL');

const inside = (nw: string, script: string, ...flags: string[]) =>
  runHutch(['run', '--network', nw, '-v', `${fixtures}:/t:ro`, ...flags, '--', 'sh', '-c', script], { timeoutMs: 30_000 });

/** The monitor of a running sandbox: the parent of its pid 1. */
async function monitorOf(name: string): Promise<number> {
  const initPid: number = JSON.parse(expectExit(await runHutch(['inspect', name])).stdout)[0].state.initPid;
  const stat = fs.readFileSync(`/proc/${initPid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

test("-p PORT/udp on a member: answered to a host client on 127.0.0.1, not on the host's other addresses, free again after; the host loopback stays unreachable from members; IPv6 -p refused with 125", async () => {
  const nw = uniq();
  expectExit(await runHutch(['network', 'create', nw]));
  const port = await freePort();
  const tport = await freePort();
  const srv = await startServer(fixtures, undefined, ['--network', nw, '-p', `${port}:5353/udp`, '-p', `${tport}:8080`], ['udp:5353', 'tcp:8080']);
  // stand-ins for the host's loopback services: a member must not reach them through the NAT's host alias
  const tcpHost = net.createServer((c) => c.end('host-loopback\n'));
  await new Promise<void>((r) => tcpHost.listen(0, '127.0.0.1', r));
  const udpHost = dgram.createSocket('udp4');
  let udpHits = 0;
  udpHost.on('message', () => udpHits++);
  await new Promise<void>((r) => udpHost.bind(0, '127.0.0.1', r));
  const hostTcp = (tcpHost.address() as net.AddressInfo).port;
  const hostUdp = udpHost.address().port;
  try {
    const got = await udpAsk('127.0.0.1', port, 'ping');
    const sub = JSON.parse(expectExit(await runHutch(['network', 'inspect', nw])).stdout).subnet.replace(/0\/24$/, '');
    assert.match(got, /^echo ping from /, got);
    assert.match(await tcpGet('127.0.0.1', tport), /^hello 8080/, 'tcp on the same member still works');
    // only on 127.0.0.1 by default
    const other = hostAddress();
    if (other) assert.is(await udpTry(other, port, 'lan'), 'FAIL', `not published on ${other}`);
    else process.stdout.write('  skip (part): this host has no non-loopback IPv4 address to check that the port is not published there\n');
    // ps and inspect show each published port with its protocol
    const ps = expectExit(await runHutch(['ps'])).stdout;
    assert.match(ps, new RegExp(`${srv.name}.*127\\.0\\.0\\.1:${port}->5353/udp`), ps);
    assert.match(ps, new RegExp(`${srv.name}.*127\\.0\\.0\\.1:${tport}->8080/tcp`), ps);
    const ins = JSON.parse(expectExit(await runHutch(['inspect', srv.name])).stdout)[0];
    assert.equal(
      ins.ports.map((p: { protocol: string; hostPort: number; containerPort: number }) => `${p.hostPort}/${p.protocol}->${p.containerPort}`).sort(),
      [`${port}/udp->5353`, `${tport}/tcp->8080`].sort(),
    );
    // a member reaches neither the host's loopback (10.0.2.2 and every other NAT alias) by tcp nor by udp
    const probe = expectExit(
      await inside(
        nw,
        `node /t/probe.js ${hostTcp} 10.0.2.2 10.0.2.5; node -e 'const s=require("dgram").createSocket("udp4");let n=0;const t=setInterval(()=>{for(const a of ["10.0.2.2","10.0.2.5"])s.send("x",${hostUdp},a);if(++n===5){clearInterval(t);s.close()}},100)'; echo sent`,
      ),
    );
    assert.match(probe.stdout, /^10\.0\.2\.2 FAIL/m, probe.stdout);
    assert.match(probe.stdout, /^10\.0\.2\.5 FAIL/m, probe.stdout);
    assert.match(probe.stdout, /^sent$/m, probe.stdout);
    // root inside with NET_ADMIN: the guard is the holder's, not in the member's namespace to flush
    const admin = await inside(
      nw,
      `iptables -F 2>&1; iptables -t nat -F 2>&1; iptables -P OUTPUT ACCEPT 2>&1; node /t/probe.js ${hostTcp} 10.0.2.2 10.0.2.3 10.0.2.100`,
      '--cap-add',
      'NET_ADMIN,NET_RAW',
    );
    assert.is(admin.code, 0, describe(admin));
    assert.match(admin.stdout, /^10\.0\.2\.2 FAIL/m, admin.stdout);
    assert.match(admin.stdout, /^10\.0\.2\.3 FAIL/m, admin.stdout);
    assert.match(admin.stdout, /^10\.0\.2\.100 FAIL/m, admin.stdout);
    await new Promise((r) => setTimeout(r, 300));
    assert.is(udpHits, 0, "no datagram of a member reached the host's loopback");
    assert.ok(sub, 'the network has a subnet');
  } finally {
    await srv.stop();
    tcpHost.close();
    udpHost.close();
  }
  await assertNothingLeft(nw);
  assert.ok(await udpFree(port), 'the host udp port is free again');
  assert.ok(await portFree(tport), 'the host tcp port is free again');

  // IPv6 host addresses: a clear 125 naming the flag, before anything starts
  for (const flag of ['[::1]:8080:80', '[::]:8081:80/udp']) {
    const r = await inside(nw, 'true', '-p', flag);
    assert.is(r.code, 125, describe(r));
    assert.match(r.stderr, /--publish \[::1?\]:808\d->80\/(tcp|udp): .* is an IPv6 host address, .*IPv4 host addresses only/, r.stderr);
  }
  expectExit(await runHutch(['network', 'rm', nw]));
});

test('a member given NET_ADMIN and NET_RAW cannot speak as another address of its network: datagrams from an address it added and ARP replies claiming the gateway are dropped at its port of the bridge', async () => {
  const nw = uniq();
  expectExit(await runHutch(['network', 'create', nw]));
  // test/fixtures/spoof: member A logs who sends it datagrams and prints its ARP entry of the gateway;
  // member B sends as itself, then as an address it added, then ARP replies "the gateway is at my MAC" to A
  const x = tmpDir('hutch-spoof-');
  for (const f of ['member-a.js', 'member-b.js']) fs.copyFileSync(repoPath('test', 'fixtures', 'spoof', f), path.join(x, f));
  const a = spawnHutch(['run', '--network', nw, '-v', `${x}:/x`, '--', 'node', '/x/member-a.js'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let aOut = '';
  a.stdout?.setEncoding('utf8').on('data', (d: string) => (aOut += d));
  a.stderr?.setEncoding('utf8').on('data', (d: string) => (aOut += d));
  const aDone = new Promise<number | null>((r) => a.on('exit', (c) => r(c)));
  try {
    const b = await runHutch(['run', '--network', nw, '-v', `${x}:/x`, '--cap-add', 'NET_ADMIN,NET_RAW', '--', 'node', '/x/member-b.js'], {
      timeoutMs: 40_000,
    });
    assert.is(b.code, 0, describe(b));
    assert.not.match(b.stderr, /ebtables-restore is not installed/, 'the guard is there on this host');
    const [, real, spoof, bMac] = /^B (\S+) (\S+) (\S+)$/m.exec(b.stdout) ?? [];
    assert.ok(real && spoof && bMac, b.stdout);
    assert.is(await aDone, 0, aOut);
    const seen = /^SEEN (.*)$/m.exec(aOut)?.[1] ?? '';
    assert.ok(seen.split(',').includes(`${real} real`), `A got B's own datagrams: ${aOut}`);
    assert.not.ok(seen.includes('spoof'), `no datagram from ${spoof}, an address B added: ${aOut}`);
    const neigh = /^NEIGH (.*)$/m.exec(aOut)?.[1] ?? '';
    assert.match(neigh, / lladdr 02:00:0a:/, `A's gateway entry keeps the bridge's fixed MAC address: ${aOut}`);
    assert.not.ok(neigh.includes(bMac), `B's ARP replies did not take the gateway's address: ${aOut}`);
  } finally {
    a.kill('SIGKILL');
  }
  await assertNothingLeft(nw);
  expectExit(await runHutch(['network', 'rm', nw]));
});

test('hutch network connect NET NAME -p: published through NET (tcp and udp), shown by ps; withdrawn on disconnect and on SIGKILL of the monitor, the host ports free again; refusals are 125', async () => {
  const a = uniq();
  const b = uniq();
  const internal = uniq();
  expectExit(await runHutch(['network', 'create', a]));
  expectExit(await runHutch(['network', 'create', b]));
  expectExit(await runHutch(['network', 'create', internal, '--internal']));
  const srv = await startServer(fixtures, undefined, ['--network', a], ['tcp:7400', 'udp:7401']);
  const tport = await freePort();
  const uport = await freePort();
  try {
    const help = expectExit(await runHutch(['network', 'connect', '--help'])).stdout;
    assert.match(help, /connect NET NAME .*-p /, help);
    for (const [args, why] of [
      [['network', 'connect', internal, srv.name, '-p', '9000:80'], new RegExp(`--publish: network ${esc(internal)} is --internal`)],
      [['network', 'connect', b, srv.name, '-p', '[::1]:9000:80'], /IPv6 host address/],
      [['network', 'connect', b, srv.name, '-p', 'x:y'], /--publish/],
      [['network', 'disconnect', b, srv.name, '-p', '9000:80'], /belong to hutch network connect/],
      [['network', 'create', uniq(), '-p', '9000:80'], /--publish belongs to hutch network connect/],
    ] as const) {
      const r = await runHutch([...args]);
      assert.is(r.code, 125, `${args.join(' ')}: ${describe(r)}`);
      assert.match(r.stderr, why);
    }
    // a host port in use: refused before anything is attached
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(tport, '127.0.0.1', r));
    const inUse = await runHutch(['network', 'connect', b, srv.name, '-p', `${tport}:7400`]);
    busy.close();
    assert.is(inUse.code, 125, describe(inUse));
    assert.match(inUse.stderr, new RegExp(`host port 127\\.0\\.0\\.1:${tport}/tcp is already in use`), inUse.stderr);
    // a refused connect left nothing connected, and nothing of B running
    assert.equal(JSON.parse(expectExit(await runHutch(['inspect', srv.name])).stdout)[0].state.networks, [a]);
    await assertNothingLeft(b);

    // -p PORT alone: hutch picks the host port and says which
    const pick = expectExit(await runHutch(['network', 'connect', b, srv.name, '-p', '7400']));
    const picked = pick.stderr.match(/published 127\.0\.0\.1:(\d+) -> 7400\/tcp/);
    assert.ok(picked, pick.stderr);
    assert.match(await tcpGet('127.0.0.1', Number(picked![1])), /^hello 7400/);
    expectExit(await runHutch(['network', 'disconnect', b, srv.name]));
    assert.ok(await portFree(Number(picked![1])), 'the picked port is free after disconnect');

    expectExit(await runHutch(['network', 'connect', b, srv.name, '-p', `${tport}:7400`, '-p', `${uport}:7401/udp`]));
    assert.match(await tcpGet('127.0.0.1', tport), /^hello 7400 from /);
    assert.match(await udpAsk('127.0.0.1', uport, 'hi'), /^echo hi from /);
    const ps = expectExit(await runHutch(['ps'])).stdout;
    assert.match(ps, new RegExp(`${srv.name}.*127\\.0\\.0\\.1:${tport}->7400/tcp,127\\.0\\.0\\.1:${uport}->7401/udp`), ps);
    const ins = JSON.parse(expectExit(await runHutch(['inspect', srv.name])).stdout)[0];
    assert.ok(
      ins.ports.some((p: { protocol: string; hostPort: number; network?: string }) => p.protocol === 'udp' && p.hostPort === uport && p.network === b),
      `inspect names the connected network of the port: ${JSON.stringify(ins.ports)}`,
    );
    const port = expectExit(await runHutch(['port', srv.name])).stdout;
    assert.match(port, new RegExp(`^7401/udp -> 127\\.0\\.0\\.1:${uport}$`, 'm'), port);
    const other = hostAddress();
    if (other) assert.is(await udpTry(other, uport, 'lan'), 'FAIL', `not published on ${other}`);
    else process.stdout.write('  skip (part): this host has no non-loopback IPv4 address to check that the port is not published there\n');

    expectExit(await runHutch(['network', 'disconnect', b, srv.name]));
    assert.ok(await portFree(tport), 'tcp host port free after disconnect');
    assert.ok(await udpFree(uport), 'udp host port free after disconnect');
    assert.not.match(expectExit(await runHutch(['ps'])).stdout, new RegExp(`:${tport}->`), 'ps forgets them');
    await assertNothingLeft(b);

    // again, then SIGKILL of the monitor: the holder withdraws them, nothing of B is left
    expectExit(await runHutch(['network', 'connect', b, srv.name, '-p', `${tport}:7400`, '-p', `${uport}:7401/udp`]));
    assert.match(await udpAsk('127.0.0.1', uport, 'again'), /^echo again/);
    process.kill(await monitorOf(srv.name), 'SIGKILL');
    await assertNothingLeft(b);
    await assertNothingLeft(a);
    assert.ok(await portFree(tport), 'tcp host port free after SIGKILL');
    assert.ok(await udpFree(uport), 'udp host port free after SIGKILL');
  } finally {
    await srv.stop();
  }
  expectExit(await runHutch(['network', 'rm', a, b, internal]));
});

test('--network a:ip=X,alias=N --network b:ip=Y: each address on its network, kept across --restart; taken, foreign or ambiguous addresses are refused with 125 naming the flag', async () => {
  const a = uniq();
  const b = uniq();
  expectExit(await runHutch(['network', 'create', a, '--subnet', '10.76.1.0/24']));
  expectExit(await runHutch(['network', 'create', b, '--subnet', '10.76.2.0/24']));
  const srv = await startServer(fixtures, undefined, ['--network', `${a}:ip=10.76.1.40,alias=only-a`, '--network', `${b}:ip=10.76.2.50`], ['tcp:7500']);
  try {
    const st = JSON.parse(expectExit(await runHutch(['inspect', srv.name])).stdout)[0].state;
    assert.equal(st.addresses, { [a]: '10.76.1.40', [b]: '10.76.2.50' });
    // the alias is a name on `a` only
    const fromA = expectExit(await inside(a, 'getent hosts only-a; node /t/probe.js 7500 only-a'));
    assert.match(fromA.stdout, /^10\.76\.1\.40\s+only-a$/m, fromA.stdout);
    assert.match(fromA.stdout, /^only-a OK hello 7500/m, fromA.stdout);
    const fromB = expectExit(await inside(b, `getent hosts only-a || echo no-name; getent hosts ${srv.name}`));
    assert.match(fromB.stdout, /no-name/, fromB.stdout);
    assert.match(fromB.stdout, new RegExp(`^10\\.76\\.2\\.50\\s+${srv.name}$`, 'm'), fromB.stdout);
    for (const [flags, why] of [
      [['--network', `${a}:ip=10.76.1.40`], new RegExp(`--network ${esc(a)}:ip=10\\.76\\.1\\.40 is taken by the member named ${srv.name}`)],
      [['--network', `${b}:ip=10.76.1.41`], new RegExp(`--network ${esc(b)}:ip=10\\.76\\.1\\.41 is not a free host address of network ${esc(b)}`)],
      [['--network', `${b}:ip=10.76.2.1`], /is not a free host address/],
      [['--network', a, '--network', b, '--ip', '10.76.1.42'], /--ip applies to one network.*--network NAME:ip=ADDR/s],
      [['--network', `${a}:ip=10.76.1.43`, '--ip', '10.76.1.44'], /both give the address on network/],
      [['--network', `${a}:ip6=fd00::1`], /option ip6 is not supported: named networks are IPv4 only/],
    ] as const) {
      const r = await runHutch(['run', ...flags, '--', 'true']);
      assert.is(r.code, 125, `${flags.join(' ')}: ${describe(r)}`);
      assert.match(r.stderr, why);
    }
  } finally {
    await srv.stop();
  }
  // --restart: the fresh sandbox gets the same addresses
  const r = await runHutch(
    [
      'run',
      '--restart',
      'on-failure:1',
      '--network',
      `${a}:ip=10.76.1.60`,
      '--network',
      `${b}:ip=10.76.2.60`,
      '--',
      'sh',
      '-c',
      'grep -o "10\\.76\\.[12]\\.60" /proc/net/fib_trie | sort -u | tr "\\n" " "; echo; exit 3',
    ],
    { timeoutMs: 60_000 },
  );
  assert.is(r.code, 3, describe(r));
  const runs = r.stdout.trim().split('\n');
  assert.is(runs.length, 2, r.stdout);
  for (const line of runs) assert.is(line.trim(), '10.76.1.60 10.76.2.60', r.stdout);
  await assertNothingLeft(a);
  await assertNothingLeft(b);
  expectExit(await runHutch(['network', 'rm', a, b]));
});

test('a profile gives the address per network (network.ip); errors name file:line', async () => {
  const a = uniq();
  const b = uniq();
  expectExit(await runHutch(['network', 'create', a, '--subnet', '10.76.3.0/24']));
  expectExit(await runHutch(['network', 'create', b, '--subnet', '10.76.4.0/24']));
  const dir = tmpDir('hutch-netprof-');
  const prof = path.join(dir, 'member.yaml');
  fs.writeFileSync(prof, `extends: default\nnetwork:\n  name: [${a}, ${b}]\n  ip:\n    ${b}: 10.76.4.70\n`);
  const r = expectExit(await runHutch(['run', '--profile', prof, '--', 'sh', '-c', 'grep -o "10\\.76\\.[34]\\.[0-9]*" /proc/net/fib_trie | sort -u']));
  assert.match(r.stdout, /^10\.76\.4\.70$/m, r.stdout);
  assert.match(r.stdout, /^10\.76\.3\.2$/m, `the first free address on ${a}: ${r.stdout}`);
  for (const [text, why] of [
    [
      `extends: default\nnetwork:\n  name: [${a}]\n  ip:\n    ${b}: 10.76.4.70\n`,
      new RegExp(`member\\.yaml:5.*network\\.ip\\.${esc(b)}: "${esc(b)}" is not one of the named networks`, 's'),
    ],
    [`extends: default\nnetwork:\n  name: [${a}]\n  ip:\n    ${a}: ten\n`, /member\.yaml:5.*IPv4 address/s],
    [`extends: default\nnetwork:\n  mode: slirp\n  ip:\n    ${a}: 10.76.3.9\n`, /member\.yaml:3.*mode and ip exclude each other/s],
    [
      `extends: default\nnetwork:\n  name: [${a}]\n  ip:\n    ${a}: 10.76.4.9\n`,
      new RegExp(`profile network\\.ip\\.${esc(a)}: 10\\.76\\.4\\.9 is not a free host address`),
    ],
  ] as const) {
    fs.writeFileSync(prof, text);
    const e = await runHutch(['run', '--profile', prof, '--', 'true']);
    assert.is(e.code, 125, describe(e));
    assert.match(e.stderr, why);
  }
  await assertNothingLeft(a);
  expectExit(await runHutch(['network', 'rm', a, b]));
});

test.run();
