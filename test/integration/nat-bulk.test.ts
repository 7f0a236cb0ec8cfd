// Bulk uploads through a published port with the NAT driver hutch picks by
// default: every transfer arrives whole, in bounded time. Debian's pasta
// (passt 0.0~git20230309) stalls such uploads for good now and then (issue
// 15: 6 of 67 pgbench -i runs), so `auto` must not pick it; this pushes
// TRANSFERS x MIB through the default driver and fails (never hangs) when
// one transfer stops.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { expectExit, freePort, runHutch, spawnHutch, tmpDir, waitFor } from '../lib/hutch';
import { stateDir, uniq } from '../lib/net';

const TRANSFERS = 20;
const MIB = 20;
// A healthy transfer takes well under a second here (slirp4netns moves about
// 1 GByte/s); a stalled one never ends. Generous for a loaded 2-core host.
const PER_TRANSFER_MS = 60_000;

function sinkFixture(): string {
  const dir = tmpDir('hutch-nat-bulk-');
  fs.chmodSync(dir, 0o755);
  // Counts the bytes of each connection up to the client's half-close, then
  // answers the count and closes.
  fs.writeFileSync(
    path.join(dir, 'sink.js'),
    `const net = require('net');
net.createServer((c) => { let n = 0; c.on('data', (d) => (n += d.length)); c.on('end', () => c.end(n + '\\n')); c.on('error', () => {}); })
  .listen(+process.argv[2], () => console.log('ready'));
process.on('SIGTERM', () => process.exit(0));
`,
  );
  return dir;
}

/** Sends `bytes` to 127.0.0.1:port, half-closes, resolves with the sink's count; rejects after `ms`. */
function upload(port: number, payload: Buffer, ms: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let answer = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`upload of ${payload.length} bytes stalled: no answer after ${ms} ms (answer so far "${answer}")`));
    }, ms);
    s.setEncoding('utf8');
    s.on('connect', () => s.end(payload));
    s.on('data', (d: string) => (answer += d));
    s.on('end', () => {
      clearTimeout(timer);
      resolve(Number(answer.trim()));
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

test(`default NAT driver: ${TRANSFERS} uploads of ${MIB} MiB through a published port arrive whole, none stalls`, async () => {
  // The default choice, as hutch reports it.
  const dry = expectExit(await runHutch(['run', '--dry-run', '--', 'true']));
  const driver = /^# network driver: (\S+) \((.*)\)$/m.exec(dry.stdout);
  assert.ok(driver, `no network driver in the default profile's --dry-run:\n${dry.stdout}`);
  console.log(`  default driver: ${driver![1]} (${driver![2]})`);
  // A pasta that says it has the stall is never the default while slirp4netns runs.
  if (driver![1] === 'pasta') assert.not.match(driver![2], /stall/, 'auto picked a pasta it knows to stall');

  const fixture = sinkFixture();
  const port = await freePort();
  const name = uniq();
  const child = spawnHutch(['run', '--name', name, '-v', `${fixture}:/t:ro`, '-p', `${port}:9000`, '--', 'node', '/t/sink.js', '9000']);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exit = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  try {
    await waitFor(() => out.includes('ready') || child.exitCode !== null, 20_000, { what: 'sink in the sandbox' });
    assert.ok(out.includes('ready'), `sink did not start (exit ${child.exitCode}):\n${err}`);
    // The driver that runs is the one --dry-run named (state.json records it).
    const state = JSON.parse(fs.readFileSync(path.join(stateDir(name), 'state.json'), 'utf8'));
    assert.is(state.networkDriver, driver![1], 'the running sandbox uses the driver --dry-run named');
    const payload = Buffer.alloc(MIB << 20);
    for (let i = 0; i < payload.length; i += 4096) payload.writeUInt32LE(i, i); // not all zeros
    const times: number[] = [];
    for (let i = 0; i < TRANSFERS; i++) {
      const t0 = Date.now();
      const got = await upload(port, payload, PER_TRANSFER_MS);
      times.push(Date.now() - t0);
      assert.is(got, payload.length, `transfer ${i + 1}: the sink counted ${got} bytes of ${payload.length}`);
    }
    times.sort((a, b) => a - b);
    console.log(`  ${TRANSFERS} x ${MIB} MiB via ${driver![1]}: median ${times[times.length >> 1]} ms, slowest ${times[times.length - 1]} ms`);
  } finally {
    child.kill('SIGTERM');
    await Promise.race([exit, new Promise((r) => setTimeout(r, 10_000))]);
  }
});

test.run();
