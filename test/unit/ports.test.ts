// Published and exposed ports: the podman `-p` / `--expose` parsers
// (src/profile/values.ts), their expansion into forwards and the host-port
// checks (src/net/ports.ts), and the network part of the spec
// (src/spec/network.ts).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server } from 'node:net';
import { HutchError } from '../../src/util/errors';
import { parseExpose, parsePortMapping, type PortMapping } from '../../src/profile/values';
import { DEFAULT_HOST_IP, describeForward, expandMappings, hostAddr, reservePorts } from '../../src/net/ports';
import { resolveNetworkSpec } from '../../src/spec/network';
import { knownBug } from './lib/known-bug';
import { fails } from './lib/fails';

const HINT = 'forms: CTR, HOST:CTR, IP:HOST:CTR, IP::CTR, each optionally with /udp; e.g. "8080:80" or "127.0.0.1:5353:53/udp"';
const r = (start: number, end = start) => ({ start, end });
const map = (o: Partial<PortMapping> & { containerPort: PortMapping['containerPort'] }): PortMapping => ({
  hostIp: undefined,
  hostPort: undefined,
  protocol: 'tcp',
  ...o,
});

function ok(text: string): PortMapping {
  const p = parsePortMapping(text);
  if (!p.ok) throw new assert.Assertion({ message: `${text}: ${p.message}`, operator: 'ok', expects: 'ok', actual: p.message });
  return p.value;
}

async function rejects(p: Promise<unknown>): Promise<HutchError> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, HutchError);
    return e as HutchError;
  }
  throw new assert.Assertion({ message: 'expected a HutchError', operator: 'rejects', expects: 'HutchError', actual: 'success' });
}

// ------------------------------------------------------------ parsePortMapping: accepted forms

test('-p HOST:CTR, CTR, IP:HOST:CTR, IP::CTR', () => {
  assert.equal(ok('8080:80'), map({ hostPort: r(8080), containerPort: r(80) }));
  assert.equal(ok('3000'), map({ containerPort: r(3000) }));
  assert.equal(ok('127.0.0.1:8080:80'), map({ hostIp: '127.0.0.1', hostPort: r(8080), containerPort: r(80) }));
  assert.equal(ok('0.0.0.0::80'), map({ hostIp: '0.0.0.0', containerPort: r(80) }));
  assert.equal(ok(':80'), map({ containerPort: r(80) }));
  assert.equal(ok(' 8080:80 '), map({ hostPort: r(8080), containerPort: r(80) }));
  assert.equal(ok('1:65535'), map({ hostPort: r(1), containerPort: r(65535) }));
  assert.equal(ok('08080:080'), map({ hostPort: r(8080), containerPort: r(80) }));
});

test('-p with IPv6 host addresses in brackets', () => {
  assert.equal(ok('[::1]:8443:443'), map({ hostIp: '::1', hostPort: r(8443), containerPort: r(443) }));
  // "[::1]:80" is IP::CTR (a free host port), not IP:HOST.
  assert.equal(ok('[::1]:80'), map({ hostIp: '::1', containerPort: r(80) }));
  assert.equal(ok('[::]::53/udp'), map({ hostIp: '::', containerPort: r(53), protocol: 'udp' }));
  assert.equal(ok('[2001:db8::7]:8080:80'), map({ hostIp: '2001:db8::7', hostPort: r(8080), containerPort: r(80) }));
});

test('-p ranges and protocols', () => {
  assert.equal(ok('8000-8002:8000-8002'), map({ hostPort: r(8000, 8002), containerPort: r(8000, 8002) }));
  assert.equal(ok('9000-9002:8000-8002/udp'), map({ hostPort: r(9000, 9002), containerPort: r(8000, 8002), protocol: 'udp' }));
  assert.equal(ok('8000-8010'), map({ containerPort: r(8000, 8010) }));
  assert.equal(ok('8000-8000:80-80'), map({ hostPort: r(8000), containerPort: r(80) }));
  assert.equal(ok('53:53/udp'), map({ hostPort: r(53), containerPort: r(53), protocol: 'udp' }));
  assert.equal(ok('53/UDP'), map({ containerPort: r(53), protocol: 'udp' }));
  assert.equal(ok('80/tcp'), map({ containerPort: r(80) }));
  assert.equal(ok('127.0.0.1:5353:53/udp'), map({ hostIp: '127.0.0.1', hostPort: r(5353), containerPort: r(53), protocol: 'udp' }));
  assert.equal(ok('5000/sctp'), map({ containerPort: r(5000), protocol: 'sctp' }));
});

// ------------------------------------------------------------ parsePortMapping: errors

test('-p errors: range lengths, port bounds, reversed ranges', () => {
  assert.equal(parsePortMapping('8000-8002:8000-8001'), {
    ok: false,
    message: 'host and container port ranges in "8000-8002:8000-8001" differ in length',
    hint: HINT,
  });
  assert.equal(parsePortMapping('8000:80-81'), { ok: false, message: 'host and container port ranges in "8000:80-81" differ in length', hint: HINT });
  assert.equal(parsePortMapping('0:80'), { ok: false, message: 'host port 0 is out of range (1-65535)', hint: HINT });
  assert.equal(parsePortMapping('8080:65536'), { ok: false, message: 'container port 65536 is out of range (1-65535)', hint: HINT });
  assert.equal(parsePortMapping('0'), { ok: false, message: 'container port 0 is out of range (1-65535)', hint: HINT });
  assert.equal(parsePortMapping('65530-65540'), { ok: false, message: 'container port 65540 is out of range (1-65535)', hint: HINT });
  assert.equal(parsePortMapping('8002-8000'), { ok: false, message: 'container port range 8002-8000 ends before it starts', hint: HINT });
  assert.equal(parsePortMapping('9-8:80-81'), { ok: false, message: 'host port range 9-8 ends before it starts', hint: HINT });
});

test('-p errors: garbage, protocols, addresses, too many parts', () => {
  assert.equal(parsePortMapping('abc'), { ok: false, message: 'container port "abc" is not a port or a port range', hint: HINT });
  assert.equal(parsePortMapping(''), { ok: false, message: 'container port "" is not a port or a port range', hint: HINT });
  assert.equal(parsePortMapping('80:'), { ok: false, message: 'container port "" is not a port or a port range', hint: HINT });
  assert.equal(parsePortMapping('x:80'), { ok: false, message: 'host port "x" is not a port or a port range', hint: HINT });
  assert.equal(parsePortMapping('-80'), { ok: false, message: 'container port "-80" is not a port or a port range', hint: HINT });
  assert.equal(parsePortMapping('8080:80/tcpx'), { ok: false, message: 'unknown protocol "tcpx"', hint: 'protocols are tcp, udp and sctp' });
  assert.equal(parsePortMapping('80/'), { ok: false, message: 'unknown protocol ""', hint: 'protocols are tcp, udp and sctp' });
  assert.equal(parsePortMapping('1:2:3:4'), { ok: false, message: 'invalid port mapping "1:2:3:4"', hint: HINT });
  assert.equal(parsePortMapping('[::1]:1:2:3'), { ok: false, message: 'invalid port mapping "[::1]:1:2:3"', hint: HINT });
  // An unbracketed IPv6 address splits into too many parts.
  assert.equal(parsePortMapping('::1:8080:80'), { ok: false, message: 'invalid port mapping "::1:8080:80"', hint: HINT });
  // A zone id is not in the bracket pattern: refused at parse time already.
  assert.equal(parsePortMapping('[fe80::1%eth0]:8080:80'), { ok: false, message: 'invalid port mapping "[fe80::1%eth0]:8080:80"', hint: HINT });
  assert.equal(parsePortMapping('localhost:8080:80'), {
    ok: false,
    message: 'invalid host address "localhost" in "localhost:8080:80"',
    hint: 'write an IPv4 address, or an IPv6 address in brackets: [::1]:8080:80',
  });
  assert.equal(parsePortMapping('1.2.3:8080:80').ok, false);
});

knownBug('-p 999.1.1.1:8080:80 is refused (not an IPv4 address)', 'src/profile/values.ts:159', () => {
  // The address check is /^[0-9]{1,3}(\.[0-9]{1,3}){3}$/, so octets above 255
  // pass and fail only later, when the port is reserved.
  assert.is(parsePortMapping('999.1.1.1:8080:80').ok, false, '999.1.1.1 is accepted as a host address');
});

// ------------------------------------------------------------ parseExpose

test('--expose: normalised PORT[-END]/PROTO', () => {
  assert.equal(parseExpose('3000'), { ok: true, value: '3000/tcp' });
  assert.equal(parseExpose('53/udp'), { ok: true, value: '53/udp' });
  assert.equal(parseExpose('80/SCTP'), { ok: true, value: '80/sctp' });
  assert.equal(parseExpose('8000-8010'), { ok: true, value: '8000-8010/tcp' });
  assert.equal(parseExpose('8000-8000'), { ok: true, value: '8000/tcp' });
  assert.equal(parseExpose(' 0443 '), { ok: true, value: '443/tcp' });
});

test('--expose errors', () => {
  const hint = 'write a port, a range, optionally with a protocol: 3000, 53/udp, 8000-8010';
  assert.equal(parseExpose('0'), { ok: false, message: 'port 0 is out of range (1-65535)', hint });
  assert.equal(parseExpose('70000'), { ok: false, message: 'port 70000 is out of range (1-65535)', hint });
  assert.equal(parseExpose('x'), { ok: false, message: 'port "x" is not a port or a port range', hint });
  assert.equal(parseExpose('8080:80'), { ok: false, message: 'port "8080:80" is not a port or a port range', hint });
  assert.equal(parseExpose('90-80'), { ok: false, message: 'port range 90-80 ends before it starts', hint });
  assert.equal(parseExpose('80/icmp'), { ok: false, message: 'unknown protocol "icmp"', hint: 'protocols are tcp, udp and sctp' });
});

// ------------------------------------------------------------ expandMappings

test('expandMappings: one forward per port, default address 127.0.0.1', () => {
  assert.is(DEFAULT_HOST_IP, '127.0.0.1');
  assert.equal(expandMappings([ok('8000-8002:9000-9002')]), [
    { protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 8000, containerPort: 9000, random: false },
    { protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 8001, containerPort: 9001, random: false },
    { protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 8002, containerPort: 9002, random: false },
  ]);
  assert.equal(expandMappings([ok('3000'), ok('[::1]:8443:443'), ok('0.0.0.0:53:53/udp')]), [
    { protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 0, containerPort: 3000, random: true },
    { protocol: 'tcp', hostIp: '::1', hostPort: 8443, containerPort: 443, random: false },
    { protocol: 'udp', hostIp: '0.0.0.0', hostPort: 53, containerPort: 53, random: false },
  ]);
  // Free ports (host port 0) never conflict with each other.
  assert.equal(
    expandMappings([ok('80'), ok('80')]).map((f) => f.hostPort),
    [0, 0],
  );
  assert.equal(expandMappings([]), []);
});

test('expandMappings: a host port published twice is an error; protocol and address tell them apart', () => {
  let e = fails(() => expandMappings([ok('8080:80'), ok('8080:81')]));
  assert.is(e.message, 'host port 127.0.0.1:8080/tcp is published twice (to 80 and 81)');
  assert.is(e.hint, 'give each published port its own host port');
  e = fails(() => expandMappings([ok('8000-8001:80-81'), ok('8001:90')]));
  assert.is(e.message, 'host port 127.0.0.1:8001/tcp is published twice (to 81 and 90)');
  e = fails(() => expandMappings([ok('[::1]:8443:443'), ok('[::1]:8443:444')]));
  assert.is(e.message, 'host port [::1]:8443/tcp is published twice (to 443 and 444)');
  // An explicit 127.0.0.1 is the default address: the same socket.
  e = fails(() => expandMappings([ok('8080:80'), ok('127.0.0.1:8080:81')]));
  assert.is(e.message, 'host port 127.0.0.1:8080/tcp is published twice (to 80 and 81)');
  assert.is(expandMappings([ok('53:53'), ok('53:53/udp')]).length, 2);
  assert.is(expandMappings([ok('8080:80'), ok('0.0.0.0:8080:80')]).length, 2);
});

test('expandMappings: sctp and scoped IPv6 addresses are refused, naming the mapping', () => {
  let e = fails(() => expandMappings([ok('5000/sctp')]));
  assert.is(e.message, '--publish 5000/sctp: sctp cannot be published through user-mode NAT');
  assert.is(e.hint, 'slirp4netns and pasta forward tcp and udp only');
  e = fails(() => expandMappings([ok('127.0.0.1:5000-5001:6000-6001/sctp')]));
  assert.is(e.message, '--publish 127.0.0.1:5000-5001:6000-6001/sctp: sctp cannot be published through user-mode NAT');
  e = fails(() => expandMappings([ok('[::1]::80/sctp')]));
  assert.is(e.message, '--publish [::1]::80/sctp: sctp cannot be published through user-mode NAT');
  // Only reachable with a hand-made mapping (the parser refuses zone ids).
  e = fails(() => expandMappings([map({ hostIp: 'fe80::1%eth0', hostPort: r(8080), containerPort: r(80) })]));
  assert.is(e.message, '--publish [fe80::1%eth0]:8080:80/tcp: scoped IPv6 addresses are not supported');
});

test('hostAddr and describeForward (podman port lines)', () => {
  assert.is(hostAddr('127.0.0.1', 8080), '127.0.0.1:8080');
  assert.is(hostAddr('::1', 8443), '[::1]:8443');
  assert.is(describeForward({ protocol: 'udp', hostIp: '::', hostPort: 5353, containerPort: 53, random: false }), '53/udp -> [::]:5353');
  assert.is(describeForward({ protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 40000, containerPort: 80, random: true }), '80/tcp -> 127.0.0.1:40000');
});

// ------------------------------------------------------------ reservePorts (binds loopback sockets of this host)

function listen(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve({ server, port: (server.address() as { port: number }).port }));
  });
}

test('reservePorts: free ports are picked, fixed ones kept, a busy one is a clear error', async () => {
  const picked = await reservePorts(expandMappings([ok('80'), ok('53/udp')]));
  assert.is(picked.length, 2);
  assert.ok(picked[0].hostPort > 0 && picked[0].hostPort <= 65535, `picked ${picked[0].hostPort}`);
  assert.ok(picked[1].hostPort > 0, `picked ${picked[1].hostPort}`);
  assert.equal({ ...picked[0], hostPort: 0 }, { protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 0, containerPort: 80, random: true });

  const { server, port } = await listen();
  try {
    const e = await rejects(reservePorts(expandMappings([ok(`${port}:80`)])));
    assert.is(e.message, `host port 127.0.0.1:${port}/tcp is already in use (published to sandbox port 80)`);
    assert.is(e.hint, 'stop what listens there, pick another host port, or write -p 80 to get a free one');
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
  // The same port is free again once the holder is gone: reservePorts closes its own sockets.
  const again = await reservePorts(expandMappings([ok(`${port}:80`)]));
  assert.is(again[0].hostPort, port);
});

test('reservePorts: an address the host does not have', async () => {
  // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never a local address.
  const e = await rejects(reservePorts(expandMappings([ok('192.0.2.1:8080:80')])));
  assert.is(e.message, 'cannot publish on 192.0.2.1: the host has no such address');
});

// ------------------------------------------------------------ resolveNetworkSpec

const NO_NET = { publish: [] as string[], publishAll: false, expose: [] as string[] };

test('resolveNetworkSpec: profile publish then -p; --expose deduplicated; -P publishes what is not covered', () => {
  const part = resolveNetworkSpec(
    { allowHostLoopback: false, publish: ['8080:80'], expose: ['3000/tcp', '8000-8001/tcp'] },
    { publish: ['127.0.0.1:9000:8000'], publishAll: true, expose: ['53/udp', '3000'] },
    'slirp',
    'profile network',
  );
  assert.equal(part.expose, ['3000/tcp', '8000-8001/tcp', '53/udp']);
  assert.equal(part.ports, [
    map({ hostPort: r(8080), containerPort: r(80) }),
    map({ hostIp: '127.0.0.1', hostPort: r(9000), containerPort: r(8000) }),
    // -P: 3000 and 8001 and 53/udp; 8000/tcp is already published by -p.
    { containerPort: r(3000), protocol: 'tcp' },
    { containerPort: r(8001), protocol: 'tcp' },
    { containerPort: r(53), protocol: 'udp' },
  ]);
  assert.is(part.networkDriver, 'auto');
  assert.is(part.allowHostLoopback, false);
});

test('resolveNetworkSpec: ports, loopback and drivers need user-mode NAT', () => {
  let e = fails(() => resolveNetworkSpec({ allowHostLoopback: false, publish: [], expose: [] }, { ...NO_NET, publish: ['80'] }, 'none', '--network'));
  assert.is(e.message, '--publish: ports cannot be published with network "none" (--network)');
  assert.is(e.hint, 'use --network slirp (user-mode NAT) to publish ports');
  e = fails(() => resolveNetworkSpec({ allowHostLoopback: false, publish: ['80'], expose: [] }, NO_NET, 'host', 'profile network'));
  assert.is(e.message, 'profile network.publish: ports cannot be published with network "host" (profile network)');
  e = fails(() =>
    resolveNetworkSpec({ allowHostLoopback: false, publish: [], expose: ['80/tcp'] }, { ...NO_NET, publishAll: true }, 'none', 'profile network'),
  );
  assert.is(e.message, '--publish-all: ports cannot be published with network "none" (profile network)');
  // -P with nothing exposed publishes nothing: no error.
  assert.equal(resolveNetworkSpec({ allowHostLoopback: false, publish: [], expose: [] }, { ...NO_NET, publishAll: true }, 'none', 'x').ports, []);
  e = fails(() => resolveNetworkSpec({ allowHostLoopback: false, publish: [], expose: [] }, { ...NO_NET, allowHostLoopback: true }, 'none', '--network'));
  assert.is(e.message, '--allow-host-loopback needs user-mode NAT, but the network is "none" (--network)');
  e = fails(() => resolveNetworkSpec({ allowHostLoopback: false, publish: [], expose: [] }, { ...NO_NET, networkDriver: 'pasta' }, 'none', '--network'));
  assert.is(e.message, '--network-driver pasta needs user-mode NAT, but the network is "none" (--network)');
  e = fails(() => resolveNetworkSpec({ allowHostLoopback: false, publish: [], expose: [] }, { ...NO_NET, networkDriver: 'slirp' }, 'slirp', '--network'));
  assert.is(e.message, '--network-driver: "slirp" is not one of auto, slirp4netns, pasta');
  e = fails(() => resolveNetworkSpec({ allowHostLoopback: false, publish: ['8080:80/tcpx'], expose: [] }, NO_NET, 'slirp', 'x'));
  assert.is(e.message, 'profile network.publish[0]: unknown protocol "tcpx"');
  e = fails(() => resolveNetworkSpec({ allowHostLoopback: false, publish: [], expose: [] }, { ...NO_NET, expose: ['0'] }, 'slirp', 'x'));
  assert.is(e.message, '--expose: port 0 is out of range (1-65535)');
  // A profile's allowHostLoopback only applies with NAT; the flag overrides it.
  assert.is(resolveNetworkSpec({ allowHostLoopback: true, publish: [], expose: [] }, NO_NET, 'none', 'x').allowHostLoopback, false);
  assert.is(resolveNetworkSpec({ allowHostLoopback: true, publish: [], expose: [] }, NO_NET, 'pasta', 'x').allowHostLoopback, true);
  assert.is(
    resolveNetworkSpec({ allowHostLoopback: true, publish: [], expose: [] }, { ...NO_NET, allowHostLoopback: false }, 'slirp', 'x').allowHostLoopback,
    false,
  );
  assert.is(
    resolveNetworkSpec({ allowHostLoopback: false, publish: [], expose: [] }, { ...NO_NET, networkDriver: 'slirp4netns' }, 'slirp', 'x').networkDriver,
    'slirp4netns',
  );
});

test.run();
