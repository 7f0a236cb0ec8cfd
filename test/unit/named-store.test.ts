// The pure part of named networks (src/net/named-store.ts): subnet parsing,
// overlap, the default choice that avoids other networks and host routes,
// and /proc/net/route parsing.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chooseSubnet, formatCidr, hostRoutes, overlaps, parseSubnet } from '../../src/net/named-store';
import { HutchError } from '../../src/util/errors';

const refused = (text: string, why: RegExp) => {
  try {
    parseSubnet(text);
  } catch (e) {
    assert.instance(e, HutchError);
    assert.match((e as Error).message, why);
    return;
  }
  assert.unreachable(`${text} was accepted`);
};

test('parseSubnet: ADDRESS/PREFIX, prefix 8..30, no host bits', () => {
  assert.is(formatCidr(parseSubnet('10.89.5.0/24')), '10.89.5.0/24');
  assert.is(formatCidr(parseSubnet('172.30.0.0/16')), '172.30.0.0/16');
  refused('10.89.5.1/24', /host bits set/);
  refused('10.89.5.0', /not an IPv4 subnet/);
  refused('10.89.5.0/31', /prefix from 8 to 30/);
  refused('10.89.256.0/24', /not an IPv4 subnet/);
  refused('10.89.5.0/24/1', /not an IPv4 subnet/);
});

test('overlaps: containment either way, disjoint neighbours do not', () => {
  const s = parseSubnet;
  assert.ok(overlaps(s('10.89.0.0/16'), s('10.89.7.0/24')));
  assert.ok(overlaps(s('10.89.7.0/24'), s('10.89.0.0/16')));
  assert.not.ok(overlaps(s('10.89.7.0/24'), s('10.89.8.0/24')));
  assert.not.ok(overlaps(s('192.168.0.0/25'), s('192.168.0.128/25')));
});

test('chooseSubnet: the first 10.89.N.0/24 clear of networks and host routes', () => {
  assert.is(formatCidr(chooseSubnet([])), '10.89.0.0/24');
  assert.is(formatCidr(chooseSubnet([parseSubnet('10.89.0.0/24'), parseSubnet('10.89.1.0/24')])), '10.89.2.0/24');
  assert.is(formatCidr(chooseSubnet([parseSubnet('10.89.0.0/23')])), '10.89.2.0/24');
  assert.throws(() => chooseSubnet([parseSubnet('10.0.0.0/8')]), /no free subnet/);
});

test('hostRoutes: /proc/net/route little-endian entries, the default route left out', () => {
  const text = [
    'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
    'eth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0',
    'eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
    'docker0\t0000590A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0',
  ].join('\n');
  assert.equal(hostRoutes(text).map(formatCidr), ['192.168.0.0/24', '10.89.0.0/16']);
  // a host that routes 10.89.0.0/16 itself gets no 10.89 network by default
  assert.throws(() => chooseSubnet(hostRoutes(text)), /no free subnet/);
});

test.run();
