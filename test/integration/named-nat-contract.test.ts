// The NAT contract of named networks: each user-mode NAT driver behind a
// routed network (`hutch network create NET --network-driver D`;
// src/net/named-nat.ts NAMED_NAT; docs/NETWORKS.md) passes the same suite,
// with real traffic to addresses on this machine only; a driver the host
// cannot run is skipped with hutch's refusal, printed.
//  - one NAT process per network, under its holder, in the host's network
//    namespace, however many members; it ends with the holder, also when the
//    holder is SIGKILLed on its own (and the run directory goes with it);
//  - outbound TCP from a member reaches a host address when the member is
//    allowed (--allow-host-loopback); by default the host's own addresses,
//    the host's loopback (the NAT's host alias) and the network's gateway
//    are unreachable;
//  - -p publishes on 127.0.0.1 to the member (NAMED_NAT[d].publish says
//    how), carries 16 MiB up and the answer back, is not on the host's other
//    addresses, cannot be taken twice, and is withdrawn when the member ends;
//  - member-to-member traffic does not go through the NAT process (its I/O
//    counters stay put while 64 MiB cross the bridge);
//  - a NAT killed on its own is reaped (no zombie) and replaced: a running
//    member's outbound traffic (and published port) works again, and
//    `hutch network inspect` says so.

import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describe, descendants, expectExit, freePort, hostPids, procStatus, runHutch, spawnHutch, testIf, tmpDir, waitFor } from '../lib/hutch';
import { netFixtures, startServer, tcpGet, uniq, netRunDir } from '../lib/net';
import { NAMED_NAT } from '../../src/net/named-nat';
import { pastaVersion } from '../../src/net/pasta-version';
import { findExecutable } from '../../src/host/which';
import { NET_DRIVERS, type NetDriverName } from '../../src/net/types';

process.env.XDG_DATA_HOME = tmpDir('hutch-data-');
const fixtures = netFixtures();
// a sink: reads a connection to its end, then says how much came
fs.writeFileSync(
  path.join(fixtures, 'sink.js'),
  `require('net').createServer((c) => { let n = 0; c.on('data', (d) => (n += d.length)); c.on('end', () => c.end('got ' + n + '\\n')); }).listen(+process.argv[2], () => console.log('ready'));\n`,
);
const comm = (pid: number) => {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
};
const alive = (pid: number) => fs.existsSync(`/proc/${pid}`) && !procStatus(pid)?.State?.startsWith('Z');

function holderOf(name: string): number {
  const dir = netRunDir(name);
  const pids = hostPids().filter((pid) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/fd/2`).startsWith(`${dir}/`) && comm(pid) === 'hutch-helper';
    } catch {
      return false;
    }
  });
  assert.is(pids.length, 1, `one holder for ${name}`);
  return pids[0];
}

const NAT_COMMS: Record<NetDriverName, string[]> = { slirp4netns: ['slirp4netns'], pasta: ['pasta', 'passt', 'passt.avx2', 'pasta.avx2'] };
const natsOf = (driver: NetDriverName, holder: number) => descendants(holder).filter((pid) => NAT_COMMS[driver].includes(comm(pid)) && alive(pid));

function hostAddress(): string | undefined {
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return undefined;
}
const esc = (s: string) => s.replace(/\./g, '\\.');

/** rchar + wchar of a process (bytes it moved through system calls). */
function ioBytes(pid: number): number {
  const t = fs.readFileSync(`/proc/${pid}/io`, 'utf8');
  return Number(t.match(/^rchar: (\d+)/m)![1]) + Number(t.match(/^wchar: (\d+)/m)![1]);
}

const inside = (nw: string, script: string, ...flags: string[]) =>
  runHutch(['run', '--network', nw, '-v', `${fixtures}:/t:ro`, ...flags, '--', 'sh', '-c', script], { timeoutMs: 60_000 });

/** Why `driver` cannot be a network's NAT here (hutch's refusal, exit 125), or undefined. */
async function unavailable(driver: NetDriverName): Promise<string | undefined> {
  const nw = uniq();
  const r = await runHutch(['network', 'create', nw, '--network-driver', driver]);
  if (r.code !== 0) return r.stderr.trim().split('\n')[0] || `exit ${r.code}`;
  expectExit(await runHutch(['network', 'rm', nw]));
  return undefined;
}

/** A server on the host's 0.0.0.0 that says who connected. */
async function outsideServer() {
  const srv = net.createServer((c) => c.end(`outside ${c.remoteAddress}\n`));
  await new Promise<void>((r) => srv.listen(0, '0.0.0.0', r));
  return { port: (srv.address() as net.AddressInfo).port, close: () => srv.close() };
}

for (const driver of NET_DRIVERS) {
  const decl = NAMED_NAT[driver];
  const why = await unavailable(driver);
  const contract = (name: string, fn: () => Promise<void>) => testIf(test, !why, `${driver}: ${name}`, fn, why);
  const create = async (nw: string) => expectExit(await runHutch(['network', 'create', nw, '--network-driver', driver]));
  const host = hostAddress();

  contract(
    "one NAT per network under its holder, in the host network namespace; outbound reaches a host address only when allowed; the host's loopback, own addresses and the gateway do not",
    async () => {
      const nw = uniq();
      await create(nw);
      const outside = await outsideServer();
      const a = await startServer(fixtures, undefined, ['--network', nw], ['tcp:9100']);
      const b = await startServer(fixtures, undefined, ['--network', nw], ['tcp:9101']);
      try {
        const nats = natsOf(driver, holderOf(nw));
        assert.is(nats.length, 1, 'one NAT process for two members');
        assert.is(fs.readlinkSync(`/proc/${nats[0]}/ns/net`), fs.readlinkSync('/proc/self/ns/net'), "the NAT's sockets are the host's");
        if (host) {
          const ok = expectExit(await inside(nw, `node /t/probe.js ${outside.port} ${host}`, '--allow-host-loopback'));
          assert.match(ok.stdout, new RegExp(`^${esc(host)} OK outside`, 'm'), ok.stdout);
        }
        const r = expectExit(await inside(nw, `node /t/probe.js ${outside.port} ${host ?? '10.0.2.2'} 10.0.2.2 GATEWAY`));
        if (host) assert.match(r.stdout, new RegExp(`^${esc(host)} FAIL`, 'm'), `the host's own address, by default: ${r.stdout}`);
        // 10.0.2.2 is the NAT's alias of the host loopback (disabled), the gateway is the holder's bridge
        assert.match(r.stdout, /^10\.0\.2\.2 FAIL/m, r.stdout);
        assert.match(r.stdout, /^GATEWAY FAIL|^10\.89\.\d+\.1 FAIL/m, r.stdout);
      } finally {
        await a.stop();
        await b.stop();
        outside.close();
      }
      await waitFor(() => !fs.existsSync(netRunDir(nw)), 10_000, { what: 'the run directory to go' });
      expectExit(await runHutch(['network', 'rm', nw]));
    },
  );

  if (driver === 'pasta') {
    const v = pastaVersion(findExecutable('pasta') ?? 'pasta', undefined);
    contract(
      `the default network's warning at create and at each member's run, as this pasta ${v.stalls ? 'stalls' : 'does not stall'}; auto picks slirp4netns where installed`,
      async () => {
        const nw = uniq();
        const made = expectExit(await runHutch(['network', 'create', nw, '--network-driver', 'pasta']));
        const ran = expectExit(await inside(nw, 'true'));
        for (const r of [made, ran]) {
          if (v.stalls) assert.match(r.stderr, /warning: .*bulk uploads .*--network-driver slirp4netns does not stall/, r.stderr);
          else assert.not.match(r.stderr, /warning/, r.stderr);
        }
        const auto = uniq();
        expectExit(await runHutch(['network', 'create', auto]));
        const m = await startServer(fixtures, undefined, ['--network', auto], ['tcp:9600']);
        try {
          const info = JSON.parse(expectExit(await runHutch(['network', 'inspect', auto])).stdout);
          assert.is(info.nat.driver, findExecutable('slirp4netns') ? 'slirp4netns' : 'pasta');
          assert.not.match(m.stderr(), /warning/);
        } finally {
          await m.stop();
        }
        await waitFor(() => !fs.existsSync(netRunDir(auto)) && !fs.existsSync(netRunDir(nw)), 10_000, { what: 'the run directories to go' });
        expectExit(await runHutch(['network', 'rm', nw, auto]));
      },
    );
  }

  contract('member-to-member traffic crosses the bridge, not the NAT process', async () => {
    const nw = uniq();
    await create(nw);
    const name = uniq();
    const sink = spawnHutch(['run', '--name', name, '--network', nw, '-v', `${fixtures}:/t:ro`, '--', 'node', '/t/sink.js', '9300']);
    let out = '';
    sink.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    const gone = new Promise((r) => sink.on('close', r));
    try {
      await waitFor(() => out.includes('ready') || sink.exitCode !== null, 20_000, { what: 'the sink member' });
      const [nat] = natsOf(driver, holderOf(nw));
      const before = ioBytes(nat);
      const r = expectExit(
        await inside(
          nw,
          `node -e 'const s=require("net").connect(9300,"${name}");const b=Buffer.alloc(1<<20);let n=0;s.setEncoding("utf8").on("data",(d)=>console.log(d.trim()));s.on("error",e=>{console.log("ERR",e.code);process.exit(1)});const w=()=>{while(n<64){n++;if(!s.write(b))return s.once("drain",w)}s.end()};s.on("connect",w)'`,
        ),
      );
      assert.match(r.stdout, new RegExp(`^got ${64 << 20}$`, 'm'), r.stdout);
      const moved = ioBytes(nat) - before;
      assert.ok(moved < 4 << 20, `the NAT moved ${moved} bytes while 64 MiB crossed between members`);
    } finally {
      sink.kill('SIGTERM');
      await gone;
    }
    expectExit(await runHutch(['network', 'rm', nw]));
  });

  contract(`-p publishes on 127.0.0.1 to the member (${decl.publish}), both ways at once, only there, and goes with it`, async () => {
    const nw = uniq();
    await create(nw);
    const hp = await freePort();
    const web = await startServer(fixtures, undefined, ['--network', nw, '-p', `${hp}:9400`], ['tcp:9400']);
    const sinkName = uniq();
    const hs = await freePort();
    const sink = spawnHutch(['run', '--name', sinkName, '--network', nw, '-p', `${hs}:9401`, '-v', `${fixtures}:/t:ro`, '--', 'node', '/t/sink.js', '9401']);
    let out = '';
    sink.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    const sinkGone = new Promise((r) => sink.on('close', r));
    try {
      const got = await waitFor(() => tcpGet('127.0.0.1', hp).catch(() => undefined), 10_000, { what: 'the published port' });
      assert.match(got!, /^hello 9400 from /);
      if (host) {
        const res = await tcpGet(host, hp).catch((e: NodeJS.ErrnoException) => `FAIL ${e.code}`);
        assert.not.match(res, /^hello/, `not published on ${host}: ${res}`);
      }
      // 16 MiB up through the published port, and the answer back on the same connection
      await waitFor(() => out.includes('ready') || sink.exitCode !== null, 20_000, { what: 'the sink member' });
      const answer = await new Promise<string>((resolve, reject) => {
        const c = net.connect(hs, '127.0.0.1');
        let back = '';
        c.setEncoding('utf8').on('data', (d: string) => (back += d));
        c.on('error', reject);
        c.on('end', () => resolve(back.trim()));
        c.on('connect', () => c.end(Buffer.alloc(16 << 20, 7)));
      });
      assert.is(answer, `got ${16 << 20}`);
      // a second member cannot take the same host port
      const dup = await inside(nw, 'true', '-p', `${hp}:9400`);
      assert.is(dup.code, 125, describe(dup));
      assert.match(dup.stderr, /already in use|is published by the member/);
    } finally {
      await web.stop();
      sink.kill('SIGTERM');
      await sinkGone;
    }
    await waitFor(async () => !/^hello/.test(await tcpGet('127.0.0.1', hp).catch((e: NodeJS.ErrnoException) => `FAIL ${e.code}`)), 5000, {
      what: 'nothing published once the member is gone',
    });
    await waitFor(() => !fs.existsSync(netRunDir(nw)), 10_000, { what: 'the run directory to go' });
    // the host port is free again
    await new Promise<void>((res, rej) => {
      const s = net.createServer();
      s.once('error', rej);
      s.listen(hp, '127.0.0.1', () => s.close(() => res()));
    });
    expectExit(await runHutch(['network', 'rm', nw]));
  });

  contract('SIGKILL of the holder ends the NAT and removes the run directory; the network starts again for the next member', async () => {
    const nw = uniq();
    await create(nw);
    const web = await startServer(fixtures, undefined, ['--network', nw], ['tcp:9400']);
    try {
      const holder = holderOf(nw);
      const [nat] = natsOf(driver, holder);
      assert.ok(nat, 'a NAT runs');
      process.kill(holder, 'SIGKILL');
      await waitFor(() => !alive(nat), 10_000, { what: 'the NAT to end with its holder' });
      await waitFor(() => !fs.existsSync(netRunDir(nw)), 10_000, { what: "the SIGKILLed holder's run directory to go" });
    } finally {
      await web.stop();
    }
    const again = expectExit(await inside(nw, 'cat /proc/net/route'));
    assert.match(again.stdout, /^eth0\s+00000000/m);
    await waitFor(() => !fs.existsSync(netRunDir(nw)), 10_000, { what: 'the run directory to go' });
    expectExit(await runHutch(['network', 'rm', nw]));
  });

  contract(
    `a NAT killed on its own is reaped (no zombie) and replaced: a running member's outbound traffic${decl.publish ? ' and published port' : ''} work again; inspect says so`,
    async () => {
      const nw = uniq();
      await create(nw);
      const outside = await outsideServer();
      const hp = await freePort();
      const web = await startServer(
        fixtures,
        undefined,
        ['--network', nw, '--allow-host-loopback', ...(decl.publish ? ['-p', `${hp}:9500`] : [])],
        ['tcp:9500'],
      );
      const target = host ?? '10.0.2.2';
      const probe = () => runHutch(['exec', web.name, 'node', '/t/probe.js', String(outside.port), target], { timeoutMs: 30_000 });
      try {
        const holder = holderOf(nw);
        const [old] = natsOf(driver, holder);
        if (host) assert.match(expectExit(await probe()).stdout, new RegExp(`^${esc(host)} OK outside`, 'm'));
        process.kill(old, 'SIGKILL');
        await waitFor(() => !fs.existsSync(`/proc/${old}`), 10_000, { what: 'the killed NAT to be reaped (not left a zombie)' });
        const fresh = await waitFor(() => natsOf(driver, holder)[0], 15_000, { what: 'a new NAT under the holder' });
        assert.is.not(fresh, old);
        assert.is(fs.readlinkSync(`/proc/${fresh}/ns/net`), fs.readlinkSync('/proc/self/ns/net'), "the new NAT's sockets are the host's");
        if (host) {
          const again = await waitFor(
            async () => {
              const r = await probe();
              return r.stdout.includes(' OK outside') ? r.stdout : undefined;
            },
            15_000,
            { what: "the running member's outbound traffic through the new NAT" },
          );
          assert.match(again!, new RegExp(`^${esc(host)} OK outside`, 'm'));
        }
        if (decl.publish) {
          const got = await waitFor(() => tcpGet('127.0.0.1', hp).catch(() => undefined), 10_000, { what: 'the published port on the new NAT' });
          assert.match(got!, /^hello 9500 from /);
        }
        const info = JSON.parse(expectExit(await runHutch(['network', 'inspect', nw])).stdout);
        assert.is(info.nat.driver, driver);
        assert.is(info.nat.pid, fresh);
        assert.is(info.nat.restarts, 1);
        assert.match(info.nat.last, /killed by signal 9/);
        assert.not.ok(info.nat.down, JSON.stringify(info.nat));
      } finally {
        await web.stop();
        outside.close();
      }
      await waitFor(() => !fs.existsSync(netRunDir(nw)), 10_000, { what: 'the run directory to go' });
      expectExit(await runHutch(['network', 'rm', nw]));
    },
  );

  contract("the NAT's keeper SIGKILLed: the NAT ends with it, inspect and the next member's run say the network has no outbound traffic, and why", async () => {
    const nw = uniq();
    await create(nw);
    const web = await startServer(fixtures, undefined, ['--network', nw], ['tcp:9700']);
    try {
      const holder = holderOf(nw);
      const [nat] = natsOf(driver, holder);
      const keeper = descendants(holder).find((pid) => comm(pid) === 'hutch-natkeeper');
      assert.ok(keeper, 'a keeper under the holder');
      process.kill(keeper!, 'SIGKILL');
      await waitFor(() => !alive(nat), 10_000, { what: 'the NAT to end with its keeper' });
      await waitFor(() => !fs.existsSync(`/proc/${keeper}`), 10_000, { what: 'the keeper to be reaped' });
      const info = JSON.parse(expectExit(await runHutch(['network', 'inspect', nw])).stdout);
      assert.is(info.nat.pid, -1);
      assert.match(info.nat.down, /its keeper ended/);
      const r = expectExit(await inside(nw, 'true'));
      assert.match(r.stderr, /warning: network \S+ has no outbound traffic now \(its NAT: its keeper ended\)/, r.stderr);
    } finally {
      await web.stop();
    }
    // the next start of the network has its NAT again
    await waitFor(() => !fs.existsSync(netRunDir(nw)), 10_000, { what: 'the run directory to go' });
    const m = await startServer(fixtures, undefined, ['--network', nw], ['tcp:9701']);
    try {
      const info = JSON.parse(expectExit(await runHutch(['network', 'inspect', nw])).stdout);
      assert.ok(info.nat.pid > 0, JSON.stringify(info.nat));
      assert.not.ok(info.nat.down);
    } finally {
      await m.stop();
    }
    await waitFor(() => !fs.existsSync(netRunDir(nw)), 10_000, { what: 'the run directory to go' });
    expectExit(await runHutch(['network', 'rm', nw]));
  });
}

test.run();
