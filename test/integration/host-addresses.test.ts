// The host's own addresses from inside a sandbox with user-mode NAT
// (slirp4netns, pasta): a service on the host listening on 0.0.0.0/:: must
// not be reachable at any of the host's interface addresses, in the default
// profile and in untrusted (with --network slirp), unless allowHostLoopback
// allows the host; the command cannot remove the block with the capabilities
// it has, and CAP_NET_ADMIN (which can) is warned about.

import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describe, expectExit, hasCommand, runHutch, tmpDir } from '../lib/hutch';

const DRIVERS = ['slirp4netns', 'pasta'] as const;

/** What hutch blocks: every interface address but loopback and IPv6 link-local. */
const hostAddrs = Object.values(os.networkInterfaces())
  .flat()
  .filter((a): a is os.NetworkInterfaceInfo => !!a && !a.internal && !(a.family === 'IPv6' && /^fe[89ab]/i.test(a.address)))
  .map((a) => a.address);

const fixtures = tmpDir('hutch-hostaddr-');
fs.chmodSync(fixtures, 0o755);
fs.writeFileSync(
  path.join(fixtures, 'probe.js'),
  `// node probe.js PORT ADDR...: one line per address, "ADDR OK <reply>" or "ADDR FAIL <code>"
const net = require('net');
const port = +process.argv[2];
for (const a of process.argv.slice(3)) {
  const c = net.connect({ host: a, port, timeout: 3000 });
  const done = (s) => { console.log(a + ' ' + s); c.destroy(); };
  c.on('data', (d) => done('OK ' + String(d).trim()));
  c.on('error', (e) => done('FAIL ' + e.code));
  c.on('timeout', () => done('FAIL timeout'));
}
`,
);

/** A host service on every address (:: is dual-stack: 0.0.0.0 too). */
async function hostService(): Promise<{ port: number; close: () => void }> {
  const srv = net.createServer((c) => c.end('host-secret\n'));
  await new Promise<void>((r) => srv.listen(0, '::', () => r()));
  return { port: (srv.address() as net.AddressInfo).port, close: () => srv.close() };
}

interface Probe {
  results: Map<string, string>;
  /** The sandbox's own addresses (pasta copies the host's into the sandbox). */
  own: string[];
  /** Addresses with an unreachable route inside. */
  blocked: string[];
  extra: string;
}

async function probe(driver: string, port: number, flags: string[], before = ''): Promise<{ p: Probe; stderr: string }> {
  const script = `${before}node /t/probe.js ${port} ${hostAddrs.join(' ')}; echo "own $(ip -o addr show | awk '{print $4}' | cut -d/ -f1 | tr '\\n' ' ')"; echo "blocked $( (ip route show type unreachable; ip -6 route show type unreachable) | awk '{print $2}' | tr '\\n' ' ')"`;
  const r = expectExit(
    await runHutch(['run', '--network', 'slirp', '--network-driver', driver, '-v', `${fixtures}:/t:ro`, ...flags, '--', 'sh', '-c', script]),
  );
  const results = new Map<string, string>();
  let own: string[] = [];
  let blocked: string[] = [];
  const extra: string[] = [];
  for (const line of r.stdout.trim().split('\n')) {
    const [a, ...rest] = line.split(' ');
    if (a === 'own') own = rest.filter(Boolean);
    else if (a === 'blocked') blocked = rest.filter(Boolean);
    else if (hostAddrs.includes(a)) results.set(a, rest.join(' '));
    else extra.push(line);
  }
  return { p: { results, own, blocked, extra: extra.join('\n') }, stderr: r.stderr };
}

function assertClosed(driver: string, p: Probe, what: string): void {
  for (const a of hostAddrs) {
    const res = p.results.get(a) ?? 'no answer';
    assert.not.match(res, /host-secret/, `${what}: ${driver} reached the host service at ${a}`);
    assert.ok(p.blocked.includes(a), `${what}: no unreachable route for ${a} (blocked: ${p.blocked.join(' ')})`);
    // Either the route refused it, or (pasta) the address is the sandbox's own copy and nothing inside listens.
    if (p.own.includes(a)) assert.match(res, /^FAIL ECONNREFUSED/, `${what}: ${a} (the sandbox's own address): ${res}`);
    else assert.match(res, /^FAIL EHOSTUNREACH/, `${what}: ${a}: ${res}`);
  }
}

/** Registered, or skipped with the reason printed (counted by the runner). */
function testIf(condition: boolean, name: string, fn: () => Promise<void>, reason: string): void {
  if (condition) {
    test(name, fn);
    return;
  }
  process.stdout.write(`  skip: ${name}: ${reason}\n`);
  test.skip(name, fn);
}

const canRun = hostAddrs.length > 0 && hasCommand('ip');
const why = hostAddrs.length ? 'no `ip` command on this host (iproute2) to read the routes inside' : 'this host has no non-loopback address';

for (const driver of DRIVERS) {
  testIf(
    canRun && hasCommand(driver),
    `${driver}: the host's own addresses are unreachable by default and in untrusted, and the command cannot unblock them`,
    async () => {
      const srv = await hostService();
      try {
        assertClosed(driver, (await probe(driver, srv.port, [])).p, 'default profile');
        assertClosed(driver, (await probe(driver, srv.port, ['--profile', 'untrusted'])).p, 'untrusted --network slirp');
        // root inside with the default capabilities (no NET_ADMIN) tries to delete the routes first
        const del = hostAddrs.map((a) => `ip ${a.includes(':') ? '-6 ' : ''}route del unreachable ${a} 2>&1 | head -1; `).join('');
        const { p } = await probe(driver, srv.port, [], del);
        assert.match(p.extra, /Operation not permitted/, `ip route del was not refused:\n${p.extra}`);
        assertClosed(driver, p, 'after ip route del');
      } finally {
        srv.close();
      }
    },
    canRun ? `no ${driver}` : why,
  );

  testIf(
    canRun && hasCommand(driver),
    `${driver}: allowHostLoopback lets the sandbox reach the host's addresses (no routes block them)`,
    async () => {
      const srv = await hostService();
      const profile = path.join(tmpDir(), 'allow.yaml');
      fs.writeFileSync(profile, 'extends: default\nnetwork:\n  mode: slirp\n  allowHostLoopback: true\n');
      try {
        for (const flags of [['--allow-host-loopback'], ['--profile', profile]]) {
          const { p } = await probe(driver, srv.port, flags);
          assert.equal(p.blocked, [], `${flags.join(' ')}: routes installed: ${p.blocked.join(' ')}`);
          for (const a of hostAddrs) {
            const res = p.results.get(a) ?? 'no answer';
            if (p.own.includes(a)) continue; // pasta: the sandbox's own copy of the address
            // slirp4netns has no IPv6 unless enabled: only IPv4 must get through
            if (a.includes(':') && driver === 'slirp4netns') continue;
            assert.match(res, /^OK host-secret/, `${flags.join(' ')}: ${a}: ${res}`);
          }
        }
      } finally {
        srv.close();
      }
    },
    canRun ? `no ${driver}` : why,
  );
}

testIf(
  canRun && hasCommand('slirp4netns'),
  '--cap-add NET_ADMIN is warned about, and the warning is true: with it the routes can be deleted',
  async () => {
    const srv = await hostService();
    try {
      const v4 = hostAddrs.find((a) => !a.includes(':'));
      assert.ok(v4, `no IPv4 host address among ${hostAddrs.join(' ')}`);
      const r = await runHutch([
        'run',
        '--network',
        'slirp',
        '--network-driver',
        'slirp4netns',
        '--cap-add',
        'NET_ADMIN',
        '-v',
        `${fixtures}:/t:ro`,
        '--',
        'sh',
        '-c',
        `ip route del unreachable ${v4} && node /t/probe.js ${srv.port} ${v4}`,
      ]);
      expectExit(r);
      assert.match(r.stderr, /warning: CAP_NET_ADMIN lets the command delete the routes that keep the host's own addresses/, describe(r));
      assert.match(r.stdout, /OK host-secret/, 'with NET_ADMIN the block is gone, as the warning says');
      const dry = expectExit(await runHutch(['run', '--network', 'slirp', '--dry-run', '--', 'true']));
      for (const a of hostAddrs)
        assert.match(dry.stdout, new RegExp(`^unreachable\\t${a.replace(/[.]/g, '\\.')}$`, 'm'), 'the dry-run plan shows each blocked address');
    } finally {
      srv.close();
    }
  },
  canRun ? 'no slirp4netns' : why,
);

test.run();
