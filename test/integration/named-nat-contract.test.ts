// The NAT contract of named networks: the user-mode NAT driver behind a
// routed network (src/net/named-holder.ts NAMED_NAT; docs/NETWORKS.md) passes
// the same suite, with real traffic to addresses on this machine only, for
// each driver; a driver that is not wired is skipped with the reason the code
// declares, printed.
//  - one NAT process per network, under its holder, in the host's network
//    namespace, however many members; it ends with the holder, also when the
//    holder is SIGKILLed on its own (and the run directory goes with it);
//  - outbound TCP from a member reaches a host address, masqueraded;
//  - the host's loopback stays unreachable (through the NAT's host alias and
//    through the network's gateway);
//  - -p publishes on 127.0.0.1 to the member, withdrawn when it ends;
//  - member-to-member traffic does not go through the NAT process (its I/O
//    counters stay put while 64 MiB cross the bridge).

import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { descendants, expectExit, freePort, hostPids, procStatus, runHutch, spawnHutch, testIf, tmpDir, waitFor } from '../lib/hutch';
import { netFixtures, startServer, tcpGet, uniq } from '../lib/net';
import { NAMED_NAT } from '../../src/net/named-holder';
import { NET_DRIVERS, type NetDriverName } from '../../src/net/types';

process.env.XDG_DATA_HOME = tmpDir('hutch-data-');
const runtimeDir = process.env.XDG_RUNTIME_DIR || `/tmp/hutch-run-${process.getuid!()}`;
const netRunDir = (name: string) => path.join(runtimeDir, 'hutch-net', name);
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

function hostAddress(): string | undefined {
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return undefined;
}

/** rchar + wchar of a process (bytes it moved through system calls). */
function ioBytes(pid: number): number {
  const t = fs.readFileSync(`/proc/${pid}/io`, 'utf8');
  return Number(t.match(/^rchar: (\d+)/m)![1]) + Number(t.match(/^wchar: (\d+)/m)![1]);
}

const inside = (nw: string, script: string, ...flags: string[]) =>
  runHutch(['run', '--network', nw, '-v', `${fixtures}:/t:ro`, ...flags, '--', 'sh', '-c', script], { timeoutMs: 60_000 });

for (const driver of NET_DRIVERS) {
  const decl = NAMED_NAT[driver];
  const why = decl.wired ? undefined : decl.why;
  const contract = (name: string, fn: () => Promise<void>) => testIf(test, !why, `${driver}: ${name}`, fn, why);

  contract('one NAT per network under its holder, in the host network namespace; outbound reaches a host address; the host loopback does not', async () => {
    const nw = uniq();
    expectExit(await runHutch(['network', 'create', nw]));
    const outside = net.createServer((c) => c.end(`outside ${c.remoteAddress}\n`));
    await new Promise<void>((r) => outside.listen(0, '0.0.0.0', r));
    const port = (outside.address() as net.AddressInfo).port;
    const a = await startServer(fixtures, undefined, ['--network', nw], ['tcp:9100']);
    const b = await startServer(fixtures, undefined, ['--network', nw], ['tcp:9101']);
    try {
      const holder = holderOf(nw);
      const nats = descendants(holder).filter((pid) => NAT_COMMS[driver].includes(comm(pid)));
      assert.is(nats.length, 1, 'one NAT process for two members');
      assert.is(fs.readlinkSync(`/proc/${nats[0]}/ns/net`), fs.readlinkSync('/proc/self/ns/net'), "the NAT's sockets are the host's");
      const host = hostAddress();
      const script = [host ? `node /t/probe.js ${port} ${host}` : 'true', `node /t/probe.js ${port} 10.0.2.2 GATEWAY`].join('; ');
      const r = expectExit(await inside(nw, script));
      if (host) assert.match(r.stdout, new RegExp(`^${host.replace(/\./g, '\\.')} OK outside`, 'm'), r.stdout);
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
  });

  contract('member-to-member traffic crosses the bridge, not the NAT process', async () => {
    const nw = uniq();
    expectExit(await runHutch(['network', 'create', nw]));
    const name = uniq();
    const sink = spawnHutch(['run', '--name', name, '--network', nw, '-v', `${fixtures}:/t:ro`, '--', 'node', '/t/sink.js', '9300']);
    let out = '';
    sink.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    const gone = new Promise((r) => sink.on('close', r));
    try {
      await waitFor(() => out.includes('ready') || sink.exitCode !== null, 20_000, { what: 'the sink member' });
      const nat = descendants(holderOf(nw)).find((pid) => NAT_COMMS[driver].includes(comm(pid)))!;
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

  contract('-p publishes on 127.0.0.1 to the member and goes with it; SIGKILL of the holder ends the NAT and removes the run directory', async () => {
    const nw = uniq();
    expectExit(await runHutch(['network', 'create', nw]));
    const hp = await freePort();
    const web = await startServer(fixtures, undefined, ['--network', nw, '-p', `${hp}:9400`], ['tcp:9400']);
    let nat = 0;
    try {
      const got = await waitFor(() => tcpGet('127.0.0.1', hp).catch(() => undefined), 10_000, { what: 'the published port' });
      assert.match(got!, /^hello 9400 from /);
      const holder = holderOf(nw);
      nat = descendants(holder).find((pid) => NAT_COMMS[driver].includes(comm(pid)))!;
      process.kill(holder, 'SIGKILL');
      await waitFor(() => !alive(nat), 10_000, { what: 'the NAT to end with its holder' });
      await waitFor(() => !fs.existsSync(netRunDir(nw)), 10_000, { what: "the SIGKILLed holder's run directory to go" });
      const after = await tcpGet('127.0.0.1', hp).catch((e: NodeJS.ErrnoException) => `FAIL ${e.code}`);
      assert.not.match(after, /^hello/, 'nothing published once the NAT is gone');
    } finally {
      await web.stop();
    }
    // the network starts again for the next member
    const again = expectExit(await inside(nw, 'cat /proc/net/route'));
    assert.match(again.stdout, /^eth0\s+00000000/m);
    await waitFor(() => !fs.existsSync(netRunDir(nw)), 10_000, { what: 'the run directory to go' });
    expectExit(await runHutch(['network', 'rm', nw]));
  });
}

test.run();
