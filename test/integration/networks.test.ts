// Named networks (docs/NETWORKS.md), as the user runs them: `hutch network
// create|ls|inspect|rm|prune`, members started with `hutch run --network NAME`
// (in the background: attached spawns) that reach each other by IP and by
// name through the network's DNS, and nothing else: a sandbox on another
// network reaches them neither by name nor by IP, an --internal network has
// no default route, and after the last member ends (or any hutch is
// SIGKILLed) no holder process, socket or run directory is left.

import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { descendants, describe, expectExit, freePort, procStatus, runHutch, spawnHutch, testIf, tmpDir, waitFor } from '../lib/hutch';
import { netFixtures, startServer, tcpGet, uniq, assertNothingLeft, holderPids, netRunDir } from '../lib/net';

// A store of this file's own: other test files of the tier share XDG_DATA_HOME.
process.env.XDG_DATA_HOME = tmpDir('hutch-data-');
const fixtures = netFixtures();

const inside = (net: string, script: string, ...flags: string[]) =>
  runHutch(['run', '--network', net, '-v', `${fixtures}:/t:ro`, ...flags, '--', 'sh', '-c', script], { timeoutMs: 30_000 });

test('network create, ls, inspect: a named object with a free subnet; bad input is refused with 125', async () => {
  const a = uniq();
  const b = uniq();
  expectExit(await runHutch(['network', 'create', a]));
  expectExit(await runHutch(['network', 'create', b, '--subnet', '10.77.3.0/24', '--internal']));
  const ia = JSON.parse(expectExit(await runHutch(['network', 'inspect', a])).stdout);
  assert.match(ia.subnet, /^10\.89\.\d+\.0\/24$/);
  assert.is(ia.gateway, ia.subnet.replace(/0\/24$/, '1'));
  assert.is(ia.internal, false);
  assert.equal(ia.members, []);
  const ib = JSON.parse(expectExit(await runHutch(['network', 'inspect', b])).stdout);
  assert.is(ib.subnet, '10.77.3.0/24');
  assert.is(ib.internal, true);
  const ls = expectExit(await runHutch(['network', 'ls'])).stdout;
  assert.match(ls, new RegExp(`${a}\\s+10\\.89`));
  assert.match(ls, new RegExp(`${b}\\s+10\\.77\\.3\\.0/24\\s+yes`));

  for (const [args, why] of [
    [['network', 'create', a], /already exists/],
    [['network', 'create', uniq(), '--subnet', '10.77.3.128/25'], /has host bits set|overlaps/],
    [['network', 'create', uniq(), '--subnet', '10.77.0.0/16'], /overlaps network/],
    [['network', 'create', uniq(), '--subnet', '10.1.2.0'], /--subnet/],
    [['network', 'create', 'host'], /reserved/],
    [['network', 'inspect', 'no-such-net'], /does not exist/],
    [['run', '--network', 'no-such-net', '--', 'true'], /--network "no-such-net" is neither a mode .* nor a network/],
    [['run', '--network', 'slrip', '--', 'true'], /did you mean "slirp"/],
    // the NAT is the network's: chosen at create, a driver that does not exist or an --internal network's is refused
    [['network', 'create', uniq(), '--network-driver', 'vde'], /--network-driver: "vde" is not one of auto, slirp4netns, pasta/],
    [['network', 'create', uniq(), '--network-driver', 'pasta', '--internal'], /--network-driver and --internal contradict/],
    [['network', 'inspect', a, '--network-driver', 'pasta'], /belong to hutch network create/],
    [['run', '--network', a, '--network-driver', 'pasta', '--', 'true'], /--network-driver: the NAT of network .* is the network's, chosen when it is created/],
  ] as const) {
    const r = await runHutch([...args]);
    assert.is(r.code, 125, `${args.join(' ')}: ${describe(r)}`);
    assert.match(r.stderr, why);
  }
  expectExit(await runHutch(['network', 'rm', a, b]));
  assert.not.match(expectExit(await runHutch(['network', 'ls'])).stdout, new RegExp(a));
});

test('members of one network reach each other by IP and by name; another network reaches them by neither', async () => {
  const front = uniq();
  const back = uniq();
  expectExit(await runHutch(['network', 'create', front]));
  expectExit(await runHutch(['network', 'create', back]));
  const server = await startServer(fixtures, undefined, ['--network', back, '--hostname', 'dbhost'], ['tcp:5432']);
  // startServer names it; a second one under a name of ours
  const named = await startServer(fixtures, undefined, ['--network', back], ['tcp:5433']);
  try {
    const r = expectExit(await inside(back, `getent hosts ${server.name} dbhost ${named.name}; node /t/probe.js 5432 ${server.name} dbhost`));
    const lines = r.stdout.trim().split('\n');
    const ip = lines[0].split(/\s+/)[0];
    const sub = JSON.parse(expectExit(await runHutch(['network', 'inspect', back])).stdout).subnet.replace(/\.0\/24$/, '.');
    assert.ok(ip.startsWith(sub), `${server.name} has an address of ${back}: ${r.stdout}`);
    assert.match(lines[1], new RegExp(`^${ip.replace(/\./g, '\\.')}\\s+dbhost`), 'the --hostname resolves too');
    assert.match(lines[3], new RegExp(`${server.name} OK hello 5432 from (::ffff:)?${sub.replace(/\./g, '\\.')}`), r.stdout);
    assert.match(lines[4], /dbhost OK hello 5432/, r.stdout);

    // ls and inspect name the running members; rm is refused naming them
    const ins = JSON.parse(expectExit(await runHutch(['network', 'inspect', back])).stdout);
    assert.equal([...ins.members].sort(), [server.name, named.name].sort());
    assert.is(ins.addresses[server.name], ip, 'inspect shows the address the DNS gives');
    const ps = expectExit(await runHutch(['ps'])).stdout;
    assert.match(ps, new RegExp(`${server.name}.*${back} \\(${ip.replace(/\./g, '\\.')}\\)`), ps);
    const rm = await runHutch(['network', 'rm', back]);
    assert.is(rm.code, 125, describe(rm));
    assert.match(rm.stderr, new RegExp(`in use by running sandboxes .*${server.name}`));
    assert.match(expectExit(await runHutch(['network', 'prune'])).stdout, new RegExp(front));
    expectExit(await runHutch(['network', 'create', front]));

    // from the other network: no name, no route to the address
    const o = expectExit(await inside(front, `getent hosts ${server.name} || echo no-name; node /t/probe.js 5432 ${ip}`));
    assert.match(o.stdout, /no-name/);
    assert.match(o.stdout, new RegExp(`${ip.replace(/\./g, '\\.')} FAIL`), o.stdout);
    // and the reverse direction: a server on `front`, reached from `front` (control) but not from `back`
    const f = await startServer(fixtures, undefined, ['--network', front], ['tcp:6000']);
    try {
      const ctl = expectExit(await inside(front, `node /t/probe.js 6000 ${f.name}; getent hosts ${f.name}`));
      assert.match(ctl.stdout, /OK hello 6000/, ctl.stdout);
      const fip = ctl.stdout.trim().split('\n')[1].split(/\s+/)[0];
      const rev = expectExit(await inside(back, `node /t/probe.js 6000 ${fip}; getent hosts ${f.name} || echo no-name`));
      assert.match(rev.stdout, new RegExp(`${fip.replace(/\./g, '\\.')} FAIL`), rev.stdout);
      assert.match(rev.stdout, /no-name/);
    } finally {
      await f.stop();
    }
  } finally {
    await server.stop();
    await named.stop();
  }
  await assertNothingLeft(back);
  expectExit(await runHutch(['network', 'rm', back, front]));
});

test('--internal: members have no default route; a normal network routes through its gateway', async () => {
  const internal = uniq();
  const routed = uniq();
  expectExit(await runHutch(['network', 'create', internal, '--internal']));
  expectExit(await runHutch(['network', 'create', routed]));
  const routes = (net: string) => inside(net, 'cat /proc/net/route; cat /etc/resolv.conf');
  const ri = expectExit(await routes(internal));
  assert.not.match(ri.stdout, /^eth0\s+00000000/m, `no default route on ${internal}: ${ri.stdout}`);
  assert.match(ri.stdout, /^eth0\s+/m, 'eth0 has its subnet route');
  const rr = expectExit(await routes(routed));
  assert.match(rr.stdout, /^eth0\s+00000000\s+0[0-9A-F]{7}/m, rr.stdout);
  const gw = JSON.parse(expectExit(await runHutch(['network', 'inspect', routed])).stdout).gateway;
  assert.match(rr.stdout, new RegExp(`^nameserver ${gw.replace(/\./g, '\\.')}$`, 'm'), 'resolv.conf names only the network DNS');
  assert.is(rr.stdout.match(/^nameserver/gm)?.length, 1);
  await assertNothingLeft(internal);
  await assertNothingLeft(routed);
  expectExit(await runHutch(['network', 'rm', internal, routed]));
});

/** A non-loopback IPv4 address of this host (a server there stands for "outside"). */
function hostAddress(): string | undefined {
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return undefined;
}

testIf(
  test,
  hostAddress(),
  'outbound: a routed network reaches a host address through one slirp4netns on the holder (a member allowed to), an --internal one does not',
  async () => {
    const routed = uniq();
    const internal = uniq();
    expectExit(await runHutch(['network', 'create', routed]));
    expectExit(await runHutch(['network', 'create', internal, '--internal']));
    const srv = net.createServer((c) => c.end('outside\n'));
    await new Promise<void>((r) => srv.listen(0, '0.0.0.0', r));
    const port = (srv.address() as net.AddressInfo).port;
    const host = hostAddress()!;
    // a long-lived member keeps the holder up while we look at its NAT process
    const keep = await startServer(fixtures, undefined, ['--network', routed], ['tcp:9000']);
    try {
      const holders = holderPids(routed);
      assert.is(holders.length, 1);
      const nat = descendants(holders[0]).filter((pid) => fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'slirp4netns');
      assert.is(nat.length, 1, 'one slirp4netns for the network, under its holder');
      // the host's own addresses are unreachable from a member unless it is allowed (named-nat-contract.test.ts)
      const r = expectExit(await inside(routed, `node /t/probe.js ${port} ${host}`, '--allow-host-loopback'));
      assert.match(r.stdout, new RegExp(`${host.replace(/\./g, '\\.')} OK outside`), r.stdout);
      const i = expectExit(await inside(internal, `node /t/probe.js ${port} ${host}`, '--allow-host-loopback'));
      assert.match(i.stdout, /FAIL/, i.stdout);
      await keep.stop();
      await assertNothingLeft(routed);
      await waitFor(() => nat.every((pid) => !fs.existsSync(`/proc/${pid}`) || procStatus(pid)?.State?.startsWith('Z')), 5000, {
        what: "the network's slirp4netns to end",
      });
    } finally {
      if (keep.child.exitCode === null) await keep.stop();
      srv.close();
    }
    expectExit(await runHutch(['network', 'rm', routed, internal]));
  },
  'this host has no non-loopback IPv4 address to stand for the outside',
);

test('--ip and --network-alias: a fixed address and more names; a taken or foreign address is refused with 125', async () => {
  const net = uniq();
  expectExit(await runHutch(['network', 'create', net, '--subnet', '10.78.9.0/24']));
  const web = await startServer(
    fixtures,
    undefined,
    ['--network', net, '--ip', '10.78.9.50', '--network-alias', 'web', '--network-alias', 'WWW'],
    ['tcp:8080'],
  );
  try {
    const r = expectExit(await inside(net, `getent hosts web www ${web.name}; node /t/probe.js 8080 web`));
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0], /^10\.78\.9\.50\s+web$/, r.stdout);
    assert.match(lines[1], /^10\.78\.9\.50\s+www$/, 'aliases are case-insensitive');
    assert.match(lines[2], /^10\.78\.9\.50\s/);
    assert.match(lines[3], /^web OK hello 8080/);
    const taken = await inside(net, 'true', '--ip', '10.78.9.50');
    assert.is(taken.code, 125, describe(taken));
    assert.match(taken.stderr, new RegExp(`--ip 10\\.78\\.9\\.50 is taken by the member named ${web.name}`));
  } finally {
    await web.stop();
  }
  for (const [flags, why] of [
    [['--ip', '10.78.10.5'], /is not a free host address of network/],
    [['--ip', '10.78.9.1'], /is not a free host address/],
    [['--ip', 'ten'], /--ip "ten" is not an IPv4 address/],
    [['--network-alias', 'bad_name'], /is not a DNS label/],
  ] as const) {
    const r = await inside(net, 'true', ...flags);
    assert.is(r.code, 125, describe(r));
    assert.match(r.stderr, why);
  }
  const r = await runHutch(['run', '--network', 'none', '--network-alias', 'x', '--', 'true']);
  assert.is(r.code, 125, describe(r));
  assert.match(r.stderr, /--network-alias needs a named network/);
  // the address is free again once its member is gone
  expectExit(await inside(net, 'cat /proc/net/fib_trie | grep -c 10.78.9.50', '--ip', '10.78.9.50'));
  await assertNothingLeft(net);
  expectExit(await runHutch(['network', 'rm', net]));
});

test("SIGKILL of the hutch that started the holder, then of the last member's monitor: the holder goes, nothing is left", async () => {
  const net = uniq();
  expectExit(await runHutch(['network', 'create', net]));
  const a = await startServer(fixtures, undefined, ['--network', net], ['tcp:7000']);
  const b = await startServer(fixtures, undefined, ['--network', net], ['tcp:7001']);
  assert.is(holderPids(net).length, 1, 'one holder for both members');
  process.kill(a.child.pid!, 'SIGKILL');
  await waitFor(() => a.child.exitCode !== null || a.child.signalCode !== null, 10_000, { what: 'first hutch gone' });
  // the other member still reaches... itself through the network, and the holder stays for it
  await new Promise((r) => setTimeout(r, 300));
  assert.is(holderPids(net).length, 1, 'the holder stays while a member runs');
  // SIGKILL of the second member's monitor (the helper under its hutch): the last reference goes with it
  const monitors = descendants(b.child.pid!).filter((pid) => fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'hutch-helper');
  assert.ok(monitors.length > 0, 'the member has a monitor');
  process.kill(Math.min(...monitors), 'SIGKILL');
  await assertNothingLeft(net);
  // its hutch ends too: the sandbox went with its monitor
  await waitFor(() => b.child.exitCode !== null || b.child.signalCode !== null, 10_000, { what: "the member's hutch to end with its monitor" });
  expectExit(await runHutch(['network', 'rm', net]));
});

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** `getent hosts NAME`'s address inside a member of `nets` (undefined: no such name there). */
const addressOf = (text: string, name: string) => text.match(new RegExp(`^(\\S+)\\s+${esc(name)}$`, 'm'))?.[1];
/** A DNS query straight to SERVER (a network's responder), bypassing resolv.conf: `NAME ADDR` or `NAME FAIL code`. */
const askDns = (server: string, name: string) =>
  `node -e 'const d=new (require("dns").Resolver)({timeout:1500,tries:1});d.setServers(["${server}"]);d.resolve4("${name}",(e,a)=>console.log("${name} "+(e?"FAIL "+e.code:a.join(","))))'`;

test('several networks: a member of both reaches members of either, by name and IP; members of one reach nothing of the other; outbound through the first routed network in lexical order', async () => {
  const u = uniq();
  const a = `${u}-a`; // internal: the member of both must route through b, the first non-internal one
  const b = `${u}-b`;
  expectExit(await runHutch(['network', 'create', a, '--internal']));
  expectExit(await runHutch(['network', 'create', b]));
  const ga = JSON.parse(expectExit(await runHutch(['network', 'inspect', a])).stdout);
  const gb = JSON.parse(expectExit(await runHutch(['network', 'inspect', b])).stdout);
  const sa = await startServer(fixtures, undefined, ['--network', a], ['tcp:7100']);
  const sb = await startServer(fixtures, undefined, ['--network', b], ['tcp:7200']);
  // the member of both, long-lived (order of the flags does not matter: lexical order decides)
  const gw = await startServer(fixtures, undefined, ['--network', b, '--network', a, '--network-alias', 'gw'], ['tcp:7300']);
  try {
    // every holder of the user is in one user namespace (net-share): that is what lets one sandbox be on both
    const [ha, hb] = [holderPids(a), holderPids(b)];
    assert.is(ha.length, 1);
    assert.is(hb.length, 1);
    assert.is(fs.readlinkSync(`/proc/${ha[0]}/ns/user`), fs.readlinkSync(`/proc/${hb[0]}/ns/user`), 'the holders share a user namespace');

    // inside the member of both: two interfaces, both names resolve, both servers answer; one default route, via b
    const both = expectExit(
      await inside(
        b,
        `getent hosts ${sa.name} ${sb.name}; node /t/probe.js 7100 ${sa.name}; node /t/probe.js 7200 ${sb.name}; cat /proc/net/route /etc/resolv.conf`,
        '--network',
        a,
      ),
    );
    const ipA = addressOf(both.stdout, sa.name);
    const ipB = addressOf(both.stdout, sb.name);
    assert.ok(ipA?.startsWith(ga.subnet.replace(/0\/24$/, '')), both.stdout);
    assert.ok(ipB?.startsWith(gb.subnet.replace(/0\/24$/, '')), both.stdout);
    assert.match(both.stdout, new RegExp(`${esc(sa.name)} OK hello 7100`), both.stdout);
    assert.match(both.stdout, new RegExp(`${esc(sb.name)} OK hello 7200`), both.stdout);
    const defaults = both.stdout.match(/^(eth\d)\s+00000000\s+([0-9A-F]{8})/gm) ?? [];
    assert.is(defaults.length, 1, `one default route: ${both.stdout}`);
    assert.match(defaults[0] ?? '', /^eth1/, 'through b (eth1): a is --internal');
    assert.match(both.stdout, new RegExp(`^nameserver ${esc(ga.gateway)}\\nnameserver ${esc(gb.gateway)}$`, 'm'), 'one responder per network');
    // members of each network reach the member of both by name (its alias too)
    const fromA = expectExit(await inside(a, `node /t/probe.js 7300 gw ${gw.name}`));
    assert.match(fromA.stdout, /^gw OK hello 7300/m, fromA.stdout);
    const fromB = expectExit(await inside(b, `node /t/probe.js 7300 gw`));
    assert.match(fromB.stdout, /^gw OK hello 7300/m, fromB.stdout);

    // isolation, both directions: no name, no route, no answer from the other network's responder --
    // also as root inside with NET_ADMIN, routing the other subnet through its own gateway, through the
    // member of both, or straight on its interface
    const attack = (from: string, other: { subnet: string; gateway: string }, peer: string, ip: string, port: number, gwIp: string) =>
      inside(
        from,
        [
          `getent hosts ${peer} || echo no-name`,
          `node /t/probe.js ${port} ${ip}`,
          askDns(other.gateway, peer),
          `ip route add ${other.subnet} via ${gwIp} 2>&1 && node /t/probe.js ${port} ${ip} | sed s/^/via-both:/`,
          `ip route replace ${other.subnet} dev eth0 2>&1 && node /t/probe.js ${port} ${ip} | sed s/^/on-link:/`,
        ].join('; '),
        '--cap-add',
        'NET_ADMIN',
      );
    const gwOnA = addressOf(expectExit(await inside(a, 'getent hosts gw')).stdout, 'gw')!;
    const gwOnB = addressOf(expectExit(await inside(b, 'getent hosts gw')).stdout, 'gw')!;
    for (const [from, other, peer, ip, port, via] of [
      [a, gb, sb.name, ipB!, 7200, gwOnA],
      [b, ga, sa.name, ipA!, 7100, gwOnB],
    ] as const) {
      const r = expectExit(await attack(from, other, peer, ip, port, via));
      assert.match(r.stdout, /^no-name$/m, `${from} does not resolve ${peer}: ${r.stdout}`);
      assert.match(r.stdout, new RegExp(`^${esc(ip)} FAIL`, 'm'), `${from} does not reach ${ip}: ${r.stdout}`);
      assert.match(r.stdout, new RegExp(`^${esc(peer)} FAIL`, 'm'), `the other network's responder is out of reach: ${r.stdout}`);
      assert.match(r.stdout, new RegExp(`^via-both:${esc(ip)} FAIL`, 'm'), `the member of both does not forward: ${r.stdout}`);
      assert.match(r.stdout, new RegExp(`^on-link:${esc(ip)} FAIL`, 'm'), r.stdout);
    }
    // ps and network inspect show both networks with their addresses
    const ps = expectExit(await runHutch(['ps'])).stdout;
    assert.match(ps, new RegExp(`${esc(gw.name)}.*${esc(a)} \\(${esc(gwOnA)}\\),${esc(b)} \\(${esc(gwOnB)}\\)`), ps);
    assert.is(JSON.parse(expectExit(await runHutch(['network', 'inspect', b])).stdout).addresses[gw.name], gwOnB);
  } finally {
    await sa.stop();
    await sb.stop();
  }
  // SIGKILL of the last member's monitor (the member of both): both holders go, nothing is left
  const monitors = descendants(gw.child.pid!).filter((pid) => fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'hutch-helper');
  assert.ok(monitors.length > 0);
  process.kill(Math.min(...monitors), 'SIGKILL');
  await assertNothingLeft(a);
  await assertNothingLeft(b);
  await waitFor(() => gw.child.exitCode !== null || gw.child.signalCode !== null, 10_000, { what: "the member's hutch to end" });
  assert.not.ok(
    fs.readdirSync(path.dirname(netRunDir(u))).some((n) => n.startsWith(u)),
    'no run directory left',
  );

  // the first member of both networks when neither runs: hutch holds each holder until its interface is attached
  const fresh = expectExit(await inside(a, 'cat /proc/net/route', '--network', b));
  assert.match(fresh.stdout, /^eth1\s+00000000/m, fresh.stdout);
  await assertNothingLeft(a);
  await assertNothingLeft(b);

  // refused: a mode with a network, more networks than resolvers read
  for (const [flags, why] of [
    [['--network', a, '--network', 'slirp'], /--network slirp cannot be combined with another --network/],
    [['--network', a, '--network', b, '--ip', '10.89.0.9'], /--ip applies to one network/],
  ] as const) {
    const r = await runHutch(['run', ...flags, '--', 'true']);
    assert.is(r.code, 125, describe(r));
    assert.match(r.stderr, why);
  }
  expectExit(await runHutch(['network', 'rm', a, b]));
});

test('-p on a member: published on 127.0.0.1 through the network NAT, to the member; refused on an --internal network; gone with the member', async () => {
  const nw = uniq();
  const internal = uniq();
  expectExit(await runHutch(['network', 'create', nw]));
  expectExit(await runHutch(['network', 'create', internal, '--internal']));
  const port = await freePort();
  const web = await startServer(fixtures, undefined, ['--network', nw, '-p', `${port}:8080`], ['tcp:8080']);
  try {
    const got = await waitFor(() => tcpGet('127.0.0.1', port).catch(() => undefined), 10_000, { what: 'the published port to answer' });
    const sub = JSON.parse(expectExit(await runHutch(['network', 'inspect', nw])).stdout).subnet.replace(/0\/24$/, '');
    assert.match(got!, /^hello 8080 from /, got);
    assert.match(expectExit(await runHutch(['port', web.name])).stdout, new RegExp(`^8080/tcp -> 127\\.0\\.0\\.1:${port}$`, 'm'));
    // the member is reached at its own address (DNAT in the holder), and other members still reach it
    const r = expectExit(await inside(nw, `node /t/probe.js 8080 ${web.name}`));
    assert.match(r.stdout, new RegExp(`OK hello 8080 from (::ffff:)?${esc(sub)}`), r.stdout);
    // only on 127.0.0.1 by default: not on the host's other addresses
    const other = hostAddress();
    if (other) {
      const res = await tcpGet(other, port).catch((e: NodeJS.ErrnoException) => `FAIL ${e.code}`);
      assert.not.match(res, /^hello/, `not published on ${other}: ${res}`);
    }
    // a second member cannot take the same host port
    const dup = await inside(nw, 'true', '-p', `${port}:8080`);
    assert.is(dup.code, 125, describe(dup));
    assert.match(dup.stderr, /already in use|is published by the member/);
  } finally {
    await web.stop();
  }
  await assertNothingLeft(nw);
  // the host port is free again
  await new Promise<void>((res, rej) => {
    const s = net.createServer();
    s.once('error', rej);
    s.listen(port, '127.0.0.1', () => s.close(() => res()));
  });
  const r = await inside(internal, 'true', '-p', '8080');
  assert.is(r.code, 125, describe(r));
  assert.match(r.stderr, new RegExp(`--publish: network ${esc(internal)} is --internal`));
  expectExit(await runHutch(['network', 'rm', nw, internal]));
});

test('--link NAME:ALIAS: /etc/hosts and the link variables for a running NAME, the DNS answers ALIAS for a NAME that starts later; --add-host and --dns', async () => {
  const nw = uniq();
  const other = uniq();
  expectExit(await runHutch(['network', 'create', nw]));
  expectExit(await runHutch(['network', 'create', other]));
  const db = await startServer(fixtures, undefined, ['--network', nw, '--expose', '5432', '--expose', '9000/udp'], ['tcp:5432']);
  const later = uniq();
  try {
    const r = expectExit(
      await inside(
        nw,
        'cat /etc/hosts; env | grep ^DATABASE_ | sort; node /t/probe.js 5432 database',
        '--link',
        `${db.name}:database`,
        '--add-host',
        'extra.test:10.11.12.13',
      ),
    );
    const ip = addressOf(r.stdout, `database ${db.name}`);
    assert.ok(ip, `hosts entry for the link: ${r.stdout}`);
    assert.match(r.stdout, /^10\.11\.12\.13\textra\.test$/m, '--add-host line');
    for (const line of [
      `DATABASE_NAME=/`,
      `DATABASE_PORT=tcp://${ip}:5432`,
      `DATABASE_PORT_5432_TCP=tcp://${ip}:5432`,
      `DATABASE_PORT_5432_TCP_ADDR=${ip}`,
      'DATABASE_PORT_5432_TCP_PORT=5432',
      'DATABASE_PORT_5432_TCP_PROTO=tcp',
      `DATABASE_PORT_9000_UDP=udp://${ip}:9000`,
    ])
      assert.ok(
        r.stdout.split('\n').some((l) => l.startsWith(line)),
        `${line} in ${r.stdout}`,
      );
    assert.match(r.stdout, /^database OK hello 5432/m, r.stdout);

    // NAME starts after the linking sandbox: the alias resolves through the DNS once it runs
    const waiter = spawnHutch([
      'run',
      '--network',
      nw,
      '--link',
      `${later}:cache`,
      '-v',
      `${fixtures}:/t:ro`,
      '--',
      'sh',
      '-c',
      'getent hosts cache || echo not-yet; echo waiting; date +%s; for i in $(seq 300); do getent hosts cache && exit 0; sleep 0.2; done; date +%s; exit 3',
    ]);
    let out = '';
    waiter.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    const done = new Promise<number | null>((res) => waiter.on('close', (c) => res(c)));
    await waitFor(() => out.includes('waiting'), 20_000, { what: 'the linking sandbox to start' });
    assert.match(out, /not-yet/);
    const named = spawnHutch(['run', '--name', later, '--network', nw, '--', 'sleep', '30']);
    let namedErr = '';
    named.stderr!.setEncoding('utf8').on('data', (d: string) => (namedErr += d));
    const namedDone = new Promise((res) => named.on('close', res));
    try {
      // the target attached (its address is in its state) while the linking sandbox still waits
      await waitFor(
        async () => JSON.parse(expectExit(await runHutch(['network', 'inspect', nw])).stdout).addresses[later] || waiter.exitCode !== null,
        60_000,
        { what: `${later} to attach` },
      );
      const code = await done;
      assert.is(code, 0, `the alias resolved: ${out} (${later}: ${namedErr})`);
      assert.match(out, /^\S+\s+cache$/m, out);
    } finally {
      named.kill('SIGTERM');
      await namedDone;
    }

    // a link to a running sandbox of another network is refused
    const bad = await inside(other, 'true', '--link', db.name);
    assert.is(bad.code, 125, describe(bad));
    assert.match(bad.stderr, new RegExp(`--link ${esc(db.name)}: sandbox "${esc(db.name)}" is running, but not on network`));
    // the link alias is this member's only: another member does not resolve it
    const plain = expectExit(await inside(nw, 'getent hosts database || echo no-name'));
    assert.match(plain.stdout, /no-name/);
  } finally {
    await db.stop();
  }

  // --dns on a member: after the network's responder, which then refuses what it does not know and forwards nothing
  const gwIp = JSON.parse(expectExit(await runHutch(['network', 'inspect', nw])).stdout).gateway;
  const d = expectExit(await inside(nw, `cat /etc/resolv.conf; ${askDns(gwIp, 'no-such-member')}; ${askDns(gwIp, 'name.example')}`, '--dns', '192.0.2.53'));
  assert.match(d.stdout, new RegExp(`^nameserver ${esc(gwIp)}\\nnameserver 192\\.0\\.2\\.53$`, 'm'), d.stdout);
  assert.match(d.stdout, /^no-such-member FAIL EREFUSED$/m, d.stdout);
  assert.match(d.stdout, /^name\.example FAIL EREFUSED$/m, d.stdout);
  // without --dns: a single label nobody has is NXDOMAIN
  const nx = expectExit(await inside(nw, askDns(gwIp, 'no-such-member')));
  assert.match(nx.stdout, /^no-such-member FAIL ENOTFOUND$/m, nx.stdout);
  // --add-host and --dns on the default network modes too
  const none = expectExit(
    await runHutch(['run', '--network', 'none', '--add-host', 'h.test:10.1.1.1', '--dns', '10.0.0.53', '--', 'sh', '-c', 'cat /etc/hosts /etc/resolv.conf']),
  );
  assert.match(none.stdout, /^10\.1\.1\.1\th\.test$/m);
  assert.match(none.stdout, /^nameserver 10\.0\.0\.53$/m);
  for (const [flags, why] of [
    [['--network', 'none', '--link', 'x'], /--link needs a named network/],
    [['--network', 'host', '--dns', '1.1.1.1'], /--dns cannot change the host's own \/etc files/],
    [['--add-host', 'nocolon'], /--add-host "nocolon" is not NAME:IP/],
    [['--dns', 'dns.example'], /--dns "dns.example" is not an IP address/],
    [['--network', nw, '--dns', '1.1.1.1', '--dns', '1.0.0.1', '--dns', '8.8.8.8'], /--dns: with 1 network, 2 --dns servers at most/],
  ] as const) {
    const r = await runHutch(['run', ...flags, '--', 'true']);
    assert.is(r.code, 125, describe(r));
    assert.match(r.stderr, why);
  }
  await assertNothingLeft(nw);
  expectExit(await runHutch(['network', 'rm', nw, other]));
});

test('a profile names networks (network: {name, aliases}); errors name file:line; connect/disconnect of its own network are refused', async () => {
  const nw = uniq();
  expectExit(await runHutch(['network', 'create', nw]));
  const dir = tmpDir('hutch-netprof-');
  const prof = path.join(dir, 'member.yaml');
  fs.writeFileSync(prof, `extends: default\nnetwork:\n  name: ${nw}\n  aliases: [api, web]\n`);
  const srv = await startServer(fixtures, undefined, ['--profile', prof], ['tcp:8181']);
  try {
    const r = expectExit(await inside(nw, 'node /t/probe.js 8181 api web'));
    assert.match(r.stdout, /^api OK hello 8181/m, r.stdout);
    assert.match(r.stdout, /^web OK hello 8181/m, r.stdout);
    // hutch inspect shows the networks and the address
    const ins = JSON.parse(expectExit(await runHutch(['inspect', srv.name])).stdout)[0];
    assert.equal(ins.state.networks, [nw]);
    assert.match(ins.state.addresses[nw], /^10\.89\.\d+\.\d+$/);
    // connect/disconnect of the network it started on: a clear 125
    for (const [sub, why] of [
      ['connect', /already connected to network/],
      ['disconnect', /was started on network .*lasts as long as it runs/],
    ] as const) {
      const c = await runHutch(['network', sub, nw, srv.name]);
      assert.is(c.code, 125, describe(c));
      assert.match(c.stderr, why);
    }
  } finally {
    await srv.stop();
  }
  // the command line's --network replaces the profile's
  const over = expectExit(await runHutch(['run', '--profile', prof, '--network', 'none', '--', 'cat', '/proc/net/route']));
  assert.not.match(over.stdout, /eth0/);
  for (const [text, why] of [
    ['extends: default\nnetwork:\n  name: host\n', /member\.yaml:3.*"host" is a network mode or reserved/s],
    ['extends: default\nnetwork:\n  mode: slirp\n  name: x\n', /member\.yaml:3.*mode and name exclude each other/s],
    ['extends: default\nnetwork:\n  name: [ok, "bad name"]\n', /member\.yaml:3.*network name/s],
  ] as const) {
    fs.writeFileSync(prof, text);
    const e = await runHutch(['run', '--profile', prof, '--', 'true']);
    assert.is(e.code, 125, describe(e));
    assert.match(e.stderr, why);
  }
  await assertNothingLeft(nw);
  expectExit(await runHutch(['network', 'rm', nw]));
});

test('two networks started at the same moment get holders in one user namespace (net-share is serialized); a member of both works', async () => {
  const u = uniq();
  const [a, b] = [`${u}-x`, `${u}-y`];
  expectExit(await runHutch(['network', 'create', a]));
  expectExit(await runHutch(['network', 'create', b]));
  // no holder runs for either: both hutches start one at once
  const [sa, sb] = await Promise.all([
    startServer(fixtures, undefined, ['--network', a], ['tcp:7500']),
    startServer(fixtures, undefined, ['--network', b], ['tcp:7501']),
  ]);
  try {
    const [ha, hb] = [holderPids(a), holderPids(b)];
    assert.is(ha.length, 1);
    assert.is(hb.length, 1);
    assert.is(fs.readlinkSync(`/proc/${ha[0]}/ns/user`), fs.readlinkSync(`/proc/${hb[0]}/ns/user`), 'one user namespace for both holders');
    const r = expectExit(await inside(a, `node /t/probe.js 7500 ${sa.name}; node /t/probe.js 7501 ${sb.name}`, '--network', b));
    assert.match(r.stdout, /OK hello 7500[\s\S]*OK hello 7501/, r.stdout);
  } finally {
    await sa.stop();
    await sb.stop();
  }
  await assertNothingLeft(a);
  await assertNothingLeft(b);
  expectExit(await runHutch(['network', 'rm', a, b]));
});

test('network connect/disconnect: a running member of A gets an interface on B, reaches B by name and IP and is reached; a member of only A still cannot; disconnect undoes it; errors are 125', async () => {
  const a = uniq();
  const b = uniq();
  expectExit(await runHutch(['network', 'create', a]));
  expectExit(await runHutch(['network', 'create', b]));
  const sa = await startServer(fixtures, undefined, ['--network', a], ['tcp:7100']);
  const sb = await startServer(fixtures, undefined, ['--network', b], ['tcp:7200']);
  const plain = await startServer(fixtures, undefined, ['--network', 'none'], ['tcp:7300']);
  try {
    for (const [args, why] of [
      [['network', 'connect', 'no-such-net', sa.name], /network "no-such-net" does not exist/],
      [['network', 'connect', b, 'no-such-box'], /no-such-box/],
      [['network', 'connect', b, plain.name], /not on a named network \(--network none\).*start it with --network/s],
      [['network', 'disconnect', b, sa.name], /is not connected to network/],
      [['network', 'connect', b], /takes NET and NAME/],
    ] as const) {
      const r = await runHutch([...args]);
      assert.is(r.code, 125, `${args.join(' ')}: ${describe(r)}`);
      assert.match(r.stderr, why);
    }
    await plain.stop();

    expectExit(await runHutch(['network', 'connect', b, sa.name, '--alias', 'conn']));
    const again = await runHutch(['network', 'connect', b, sa.name]);
    assert.is(again.code, 125, describe(again));
    assert.match(again.stderr, /already connected/);
    const st = JSON.parse(expectExit(await runHutch(['inspect', sa.name])).stdout)[0].state;
    assert.equal(st.networks, [a, b]);
    const bsub = JSON.parse(expectExit(await runHutch(['network', 'inspect', b])).stdout);
    const saB: string = st.addresses[b];
    assert.ok(saB.startsWith(bsub.subnet.replace(/0\/24$/, '')), `an address of ${b}: ${saB}`);
    assert.is(bsub.addresses[sa.name], saB, 'network inspect lists the connected member');
    assert.match(expectExit(await runHutch(['ps'])).stdout, new RegExp(`${sa.name}.*${b} \\(${esc(saB)}\\)`));

    // from B: the connected member by name, alias and address
    const fromB = expectExit(await inside(b, `node /t/probe.js 7100 ${sa.name} conn ${saB}; getent hosts ${sb.name}`));
    assert.match(fromB.stdout, new RegExp(`^${sa.name} OK hello 7100`, 'm'), fromB.stdout);
    assert.match(fromB.stdout, /^conn OK hello 7100/m, fromB.stdout);
    assert.match(fromB.stdout, new RegExp(`^${esc(saB)} OK hello 7100`, 'm'), fromB.stdout);
    const sbIp = addressOf(fromB.stdout, sb.name)!;
    // from the connected member: B's member by name and address, A's own names still resolve
    const fromSa = expectExit(await runHutch(['exec', sa.name, 'node', '/t/probe.js', '7200', sb.name, sbIp], { timeoutMs: 30_000 }));
    assert.match(fromSa.stdout, new RegExp(`^${sb.name} OK hello 7200 from (::ffff:)?${esc(saB)}`, 'm'), fromSa.stdout);
    assert.match(fromSa.stdout, new RegExp(`^${esc(sbIp)} OK hello 7200`, 'm'), fromSa.stdout);
    const own = expectExit(await inside(a, `getent hosts ${sa.name}`));
    assert.ok(addressOf(own.stdout, sa.name), `A still resolves its member: ${own.stdout}`);
    // a member of only A: neither B's member nor B's address of the connected one
    const onlyA = expectExit(await inside(a, `node /t/probe.js 7200 ${sbIp}; getent hosts ${sb.name} || echo no-name`));
    assert.match(onlyA.stdout, new RegExp(`${esc(sbIp)} FAIL`), onlyA.stdout);
    assert.match(onlyA.stdout, /no-name/);

    // disconnect: no reach, no name, the state forgets it
    expectExit(await runHutch(['network', 'disconnect', b, sa.name]));
    const gone = expectExit(await inside(b, `node /t/probe.js 7100 ${saB}; getent hosts ${sa.name} conn || echo no-name`));
    assert.match(gone.stdout, new RegExp(`${esc(saB)} FAIL`), gone.stdout);
    assert.match(gone.stdout, /no-name/);
    const after = expectExit(await runHutch(['exec', sa.name, 'sh', '-c', `cat /proc/net/dev; grep -c ${bsub.gateway} /etc/resolv.conf || true`]));
    assert.not.match(after.stdout, /eth1/, 'the interface is gone');
    assert.match(after.stdout, /^0$/m, "B's responder left resolv.conf");
    assert.equal(JSON.parse(expectExit(await runHutch(['inspect', sa.name])).stdout)[0].state.networks, [a]);
    await sb.stop();
    await assertNothingLeft(b);
    expectExit(await runHutch(['network', 'rm', b]));

    // SIGKILL of the connected member's monitor: B's holder (started by connect) ends with it, nothing left
    expectExit(await runHutch(['network', 'create', b]));
    expectExit(await runHutch(['network', 'connect', b, sa.name]));
    assert.is(holderPids(b).length, 1, "connect started B's holder");
    await new Promise((r) => setTimeout(r, 300));
    assert.is(holderPids(b).length, 1, 'the holder stays while the connected member runs');
    // the monitor is the parent of the sandbox's pid 1 (the lowest helper under sa's hutch is A's holder: it started A)
    const initPid: number = JSON.parse(expectExit(await runHutch(['inspect', sa.name])).stdout)[0].state.initPid;
    const stat = fs.readFileSync(`/proc/${initPid}/stat`, 'utf8');
    const monitor = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    assert.ok(descendants(sa.child.pid!).includes(monitor), 'the monitor runs under its hutch');
    process.kill(monitor, 'SIGKILL');
    await assertNothingLeft(b);
    await assertNothingLeft(a);
  } finally {
    await plain.stop();
    await sa.stop();
    await sb.stop();
  }
  expectExit(await runHutch(['network', 'rm', a, b]));
});

test("the bridge keeps one MAC address as members come and go (a member's ARP entry for the gateway stays valid)", async () => {
  const nw = uniq();
  expectExit(await runHutch(['network', 'create', nw]));
  const keep = await startServer(fixtures, undefined, ['--network', nw], ['tcp:7600']);
  try {
    const gw = JSON.parse(expectExit(await runHutch(['network', 'inspect', nw])).stdout).gateway as string;
    const macs = new Set<string>();
    // each member adds a port (a veth with a random MAC) and takes it away: without a fixed address the
    // kernel gives the bridge the lowest port MAC, which then changes under the members' ARP caches
    for (let i = 0; i < 4; i++) {
      const r = expectExit(await inside(nw, `node /t/probe.js 7600 ${keep.name} >/dev/null; grep "^${esc(gw)} " /proc/net/arp`));
      macs.add(r.stdout.trim().split(/\s+/)[3]);
    }
    assert.is(macs.size, 1, [...macs].join(' '));
    const hex = gw
      .split('.')
      .map((b) => Number(b).toString(16).padStart(2, '0'))
      .join(':');
    assert.equal([...macs], [`02:00:${hex}`]);
    // and the long-lived member, whose ARP entry dates from before all that, asks the gateway's DNS at once
    const e = expectExit(
      await runHutch(['exec', keep.name, 'sh', '-c', `getent hosts ${keep.name}; grep "^${esc(gw)} " /proc/net/arp`], { timeoutMs: 15_000 }),
    );
    assert.match(e.stdout, new RegExp(`\\s${esc(keep.name)}$`, 'm'), e.stdout);
    assert.match(e.stdout, new RegExp(`02:00:${hex}`), e.stdout);
  } finally {
    await keep.stop();
  }
  expectExit(await runHutch(['network', 'rm', nw]));
});

test.run();
