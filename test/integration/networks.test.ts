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
import { descendants, describe, expectExit, hostPids, procStatus, runHutch, testIf, tmpDir, waitFor } from '../lib/hutch';
import { netFixtures, startServer, uniq } from '../lib/net';

// A store of this file's own: other test files of the tier share XDG_DATA_HOME.
process.env.XDG_DATA_HOME = tmpDir('hutch-data-');
const runtimeDir = process.env.XDG_RUNTIME_DIR || `/tmp/hutch-run-${process.getuid!()}`;
const netRunDir = (name: string) => path.join(runtimeDir, 'hutch-net', name);
const fixtures = netFixtures();

/** Host pids of a network's holder: a helper whose stderr is the log in the network's run directory. */
function holderPids(name: string): number[] {
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
async function assertNothingLeft(name: string) {
  await waitFor(() => holderPids(name).length === 0 && !fs.existsSync(netRunDir(name)), 10_000, { what: `network ${name}'s holder to end` });
}

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
  'outbound: a routed network reaches a host address through one slirp4netns on the holder, an --internal one does not',
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
      const r = expectExit(await inside(routed, `node /t/probe.js ${port} ${host}`));
      assert.match(r.stdout, new RegExp(`${host.replace(/\./g, '\\.')} OK outside`), r.stdout);
      const i = expectExit(await inside(internal, `node /t/probe.js ${port} ${host}`));
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
    assert.match(taken.stderr, /--ip 10\.78\.9\.50 is taken by the member named.*web/);
  } finally {
    await web.stop();
  }
  for (const [flags, why] of [
    [['--ip', '10.78.10.5'], /is not a free host address of network/],
    [['--ip', '10.78.9.1'], /is not a free host address/],
    [['--ip', 'ten'], /--ip "ten" is not an IPv4 address/],
    [['--network-alias', 'bad_name'], /is not a DNS label/],
    [['-p', '8080:80'], new RegExp(`--publish: ports cannot be published with network "${net}"`)],
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

test.run();
