// The named-networks bench group (docs/NETWORKS.md, issue 13): iperf3
// throughput between two members of one named network (a veth pair each to
// the holder's bridge; no user-mode NAT process on the path), beside a plain
// veth pair between two network namespaces made by hand (unshare + ip) and
// the host's loopback, as ratios. test/bench/run.mjs calls namedNetworksGroup.

import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';

const gbit = (bps) => (Number.isFinite(bps) ? (bps / 1e9).toFixed(2) : 'n/a');
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}x` : 'n/a');
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

/** bits/s received from an iperf3 -J report, or NaN. */
function received(stdout) {
  try {
    return JSON.parse(stdout).end.sum_received.bits_per_second;
  } catch {
    return NaN;
  }
}

/** Starts argv (an iperf3 server that prints "Server listening"), resolves with a stop function once it listens. */
async function server(argv, env) {
  const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const deadline = Date.now() + 30_000;
  while (!/Server listening/.test(out) && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const stop = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.on('close', () => resolve());
      child.kill('SIGTERM');
    });
  return { ok: /Server listening/.test(out), stop, out: () => out };
}

/** A veth pair between two network namespaces, no bridge, made by hand in a user namespace: the kernel's ceiling for one hop. */
function plainVeth(seconds) {
  const script = `
set -e
unshare -n sleep 600 & P=$!
sleep 0.3
ip link set lo up
ip link add v0 type veth peer name v1 netns $P
ip addr add 10.250.0.1/24 dev v0; ip link set v0 up
nsenter -t $P -n sh -c 'ip link set lo up; ip addr add 10.250.0.2/24 dev v1; ip link set v1 up; iperf3 -s -1 -D -B 10.250.0.2 -p 5201'
sleep 0.5
iperf3 -c 10.250.0.2 -p 5201 -t ${seconds} -J
kill $P`;
  const r = spawnSync('unshare', ['--user', '--map-root-user', '--net', 'sh', '-c', script], { encoding: 'utf8', timeout: (seconds + 30) * 1000 });
  return { bps: received(r.stdout), error: r.status === 0 ? undefined : (r.stderr || r.error?.message || '').trim().slice(-300) };
}

function loopback(seconds, port) {
  const s = spawn('iperf3', ['-s', '-1', '-B', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  spawnSync('sleep', ['0.5']);
  const r = spawnSync('iperf3', ['-c', '127.0.0.1', '-p', String(port), '-t', String(seconds), '-J'], { encoding: 'utf8', timeout: (seconds + 15) * 1000 });
  s.kill('SIGTERM');
  return received(r.stdout);
}

/** ctx as test/bench/run.mjs gives it (repo, node, env). */
export async function namedNetworksGroup(ctx) {
  const columns = ['what', 'Gbit/s', 'vs loopback', 'vs plain veth'];
  const rows = [];
  const lines = [];
  const data = {};
  if (!has('iperf3')) return { columns, rows, lines: ['skipped: iperf3 is not installed'], data };
  const seconds = Number(process.env.HUTCH_BENCH_IPERF_SECONDS || 3);
  const hutch = [ctx.node, path.join(ctx.repo, 'dist', 'hutch.cjs')];
  const run = (...a) => spawnSync(hutch[0], [...hutch.slice(1), ...a], { env: ctx.env, encoding: 'utf8', timeout: (seconds + 60) * 1000 });

  data.loopback = loopback(seconds, 5299);
  const veth = plainVeth(seconds);
  data.plainVeth = veth.bps;
  if (veth.error) lines.push(`plain veth: ${veth.error}`);

  const net = `bench-${process.pid}`;
  const created = run('network', 'create', net, '--internal');
  if (created.status !== 0) {
    lines.push(`hutch network create failed: ${created.stderr.trim()}`);
  } else {
    const name = `bench-srv-${process.pid}`;
    const srv = await server([...hutch, 'run', '--name', name, '--network', net, '--', 'iperf3', '-s', '--forceflush', '-p', '5201'], ctx.env);
    if (!srv.ok) lines.push(`member iperf3 server did not start: ${srv.out().slice(-300)}`);
    else {
      const c = run('run', '--network', net, '--', 'iperf3', '-c', name, '-p', '5201', '-t', String(seconds), '-J');
      data.members = received(c.stdout);
      if (!Number.isFinite(data.members)) lines.push(`member iperf3 client failed: ${(c.stderr || c.stdout).trim().slice(-300)}`);
    }
    await srv.stop();
    run('network', 'rm', net);
  }
  rows.push(['iperf3 host loopback', gbit(data.loopback), '1.00x', ratio(data.loopback, data.plainVeth)]);
  rows.push(['iperf3 plain veth, two namespaces', gbit(data.plainVeth), ratio(data.plainVeth, data.loopback), '1.00x']);
  rows.push([
    'iperf3 two members of one network (veth, bridge, veth)',
    gbit(data.members),
    ratio(data.members, data.loopback),
    ratio(data.members, data.plainVeth),
  ]);
  lines.push(
    `iperf3 ${seconds} s each (HUTCH_BENCH_IPERF_SECONDS); veth MTU 1500 on both veth rows; member traffic is bridged in the kernel, no NAT process copies it`,
  );
  return { columns, rows, lines, data };
}
