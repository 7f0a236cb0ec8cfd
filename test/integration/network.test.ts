// Networking apart from the per-driver contract (network-contract.test.ts):
// which user-mode NAT driver `auto` picks, `--network none`, and -P.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { expectExit, hasCommand, hostPids, killTree, runHutch, spawnHutch, waitFor } from '../lib/hutch';
import { judgePastaVersion } from '../../src/net/pasta-version';
import { netFixtures, startServer, tcpGet } from '../lib/net';
import { NET_CAPABILITIES } from '../../src/net/drivers';
import { NET_DRIVERS } from '../../src/net/types';

const fixtures = netFixtures();

test('auto: --network slirp picks pasta only without the bulk-upload stall, the pinned driver, a UDP-capable driver for UDP ports', async () => {
  const auto = expectExit(await runHutch(['run', '--network', 'slirp', '--dry-run', '--', 'true']));
  // The verdict on the installed pasta, from pasta itself (src/net/pasta-version.ts).
  const pasta = spawnSync('pasta', ['--version'], { encoding: 'utf8' });
  const verdict = pasta.error ? undefined : judgePastaVersion(`${pasta.stdout}${pasta.stderr}`.split('\n')[0]);
  if (verdict && !verdict.stalls) assert.match(auto.stdout, /^# network driver: pasta \(auto/m);
  else if (hasCommand('slirp4netns')) {
    assert.match(auto.stdout, /^# network driver: slirp4netns \(auto/m);
    if (verdict) assert.match(auto.stdout, /stall/);
    // Asked for, the stalling pasta still runs, with a one-line warning.
    if (verdict) {
      const asked = expectExit(await runHutch(['run', '--network-driver', 'pasta', '--', 'true']));
      assert.match(asked.stderr, /^hutch: warning: .*stall.*--network-driver slirp4netns does not stall$/m);
    }
  }
  const pinned = expectExit(await runHutch(['run', '--network', 'slirp', '--network-driver', 'slirp4netns', '--dry-run', '--', 'true']));
  assert.match(pinned.stdout, /^# network driver: slirp4netns/m);
  // UDP ports: a driver whose declared udpPublish can carry them.
  const udpCapable = NET_DRIVERS.find((n) => NET_CAPABILITIES[n].udpPublish !== 'never');
  const udp = expectExit(await runHutch(['run', '--network', 'slirp', '--allow-host-loopback', '-p', '53/udp', '--dry-run', '--', 'true']));
  assert.match(udp.stdout, new RegExp(`^# network driver: ${udpCapable} \\(auto: UDP ports`, 'm'));
  const bad = await runHutch(['run', '--network', 'pasta', '--network-driver', 'slirp4netns', '--', 'true']);
  assert.is(bad.code, 125);
  assert.match(bad.stderr, /contradict/);
});

// The NAT starts in parallel with the sandbox's setup (sync-exec,
// helper-c/PLAN.md): the command's first instruction already finds the
// network up, for every driver, with ports published and the NAT's
// failure still stopping the command before it starts.
for (const driver of NET_DRIVERS.filter((d) => hasCommand(d))) {
  test(`${driver}: the command starts with its network ready (address, default route; a port published)`, async () => {
    const rounds = 5;
    for (let i = 0; i < rounds; i++) {
      const r = expectExit(
        await runHutch([
          'run',
          '--network',
          'slirp',
          '--network-driver',
          driver,
          '-p',
          '7',
          '--',
          'sh',
          '-c',
          'ip -4 -o addr show scope global; ip route show default',
        ]),
      );
      assert.match(r.stdout, /^\d+: \S+\s+inet \d+\.\d+\.\d+\.\d+\//m, `round ${i}: an address on the NAT's interface\n${r.stdout}`);
      assert.match(r.stdout, /^default via /m, `round ${i}: a default route\n${r.stdout}`);
    }
  });
}

test('a NAT that fails to start: the command never runs, exit 125 with the reason', async () => {
  if (!hasCommand('slirp4netns')) return console.log('  skip: slirp4netns is not installed');
  const long = `/tmp/${'x'.repeat(90)}-${process.pid}`;
  const fs = await import('node:fs');
  fs.mkdirSync(long, { recursive: true, mode: 0o700 });
  try {
    // a published port: slirp4netns gets its API socket (under XDG_RUNTIME_DIR, too long here) only then
    const r = await runHutch(['run', '--network', 'slirp', '--network-driver', 'slirp4netns', '-p', '127.0.0.1::8080', '--', 'echo', 'COMMAND-RAN'], {
      env: { XDG_RUNTIME_DIR: long },
    });
    assert.is(r.code, 125, r.stderr);
    assert.not.match(r.stdout, /COMMAND-RAN/);
    assert.match(r.stderr, /slirp4netns API socket path .* is too long/);
  } finally {
    fs.rmSync(long, { recursive: true, force: true });
  }
});

/** The argv of the slirp4netns that hutch process HUTCH started, once the sandbox printed `up`. */
async function slirpArgvOf(args: string[]): Promise<string[]> {
  const child = spawnHutch(['run', '--network', 'slirp', '--network-driver', 'slirp4netns', ...args, '--', 'sh', '-c', 'echo up; sleep 5']);
  try {
    let out = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
    await waitFor(() => out.includes('up'), 20_000, { what: 'the sandbox to start' });
    const fs = await import('node:fs');
    const pid = hostPids().find((p) => {
      try {
        const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
        return stat.includes('(slirp4netns)') && Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === child.pid;
      } catch {
        return false;
      }
    });
    assert.ok(pid, 'a slirp4netns child of hutch');
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } finally {
    killTree(child);
    if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once('exit', r));
  }
}

test('slirp4netns gets an API socket only when a port is published (nothing else talks to it)', async () => {
  if (!hasCommand('slirp4netns')) return console.log('  skip: slirp4netns is not installed');
  const plain = await slirpArgvOf([]);
  assert.ok(!plain.some((a) => a.startsWith('--api-socket')), plain.join(' '));
  assert.ok(plain.includes('--disable-host-loopback') && plain.includes('--enable-sandbox') && plain.includes('--enable-seccomp'), plain.join(' '));
  const published = await slirpArgvOf(['-p', '127.0.0.1::8080']);
  assert.ok(
    published.some((a) => a.startsWith('--api-socket=')),
    published.join(' '),
  );
});

test('none: only lo exists, /etc/hosts names the sandbox, ports are refused', async () => {
  const r = expectExit(
    await runHutch([
      'run',
      '--network',
      'none',
      '--hostname',
      'solo',
      '--',
      'sh',
      '-c',
      'ls /sys/class/net; tail -n +3 /proc/net/dev | cut -d: -f1; grep solo /etc/hosts',
    ]),
  );
  const lines = r.stdout
    .trim()
    .split('\n')
    .map((l) => l.trim());
  assert.equal(lines.slice(0, 3), ['lo', 'lo', '127.0.1.1\tsolo'], r.stdout);
  const p = await runHutch(['run', '--network', 'none', '-p', '8080:80', '--', 'true']);
  assert.is(p.code, 125);
  assert.match(p.stderr, /--publish: ports cannot be published with network "none"/);
  assert.match(p.stderr, /--network slirp/);
});

test("-P publishes the profile's exposed ports (and --expose) on free 127.0.0.1 ports", async () => {
  const s = await startServer(fixtures, 'slirp4netns', ['--profile', 'dev-server', '-w', '/', '--expose', '9000', '-P'], ['tcp:3000', 'tcp:9000']);
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

test.run();
