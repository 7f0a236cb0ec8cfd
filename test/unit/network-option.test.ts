// `--network NAME:ip=ADDR,alias=X` (src/spec/network-option.ts): podman's
// per-network options, every odd spelling refused with a sentence that
// names the flag; and the spec it gives (src/spec/resolve.ts), with --ip.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { collectNetworkFlags, parseNetworkFlag } from '../../src/spec/network-option';
import { isNetworkName } from '../../src/spec/network';
import { memberForwards } from '../../src/net/named-ports';
import { parsePortMapping, type PortMapping } from '../../src/profile/values';
import { fails } from './lib/fails';

const MODES = ['none', 'host', 'slirp', 'pasta'];
const isName = (n: string) => !MODES.includes(n) && isNetworkName(n);
const parse = (v: string) => parseNetworkFlag(v, isName);

test('NAME alone, NAME:ip=, NAME:alias= (repeatable), in any order', () => {
  assert.equal(parse('backend'), { name: 'backend' });
  assert.equal(parse('backend:ip=10.89.0.5'), { name: 'backend', options: { ip: '10.89.0.5' } });
  assert.equal(parse('backend:alias=db,ip=10.89.0.5,alias=pg,alias=db'), { name: 'backend', options: { ip: '10.89.0.5', aliases: ['db', 'pg'] } });
  assert.equal(parse('my.net-1:alias=x'), { name: 'my.net-1', options: { aliases: ['x'] } });
  // a mode without options is left to the mode's own check
  assert.equal(parse('slirp'), { name: 'slirp' });
});

test('odd spellings: each a 125 naming --network and what is wrong', () => {
  const cases: [string, RegExp][] = [
    ['backend:', /--network backend:: no option after ":"/],
    ['backend:ip', /option ip needs a value/],
    ['backend:ip=', /option ip needs a value/],
    ['backend:alias=', /option alias needs a value/],
    ['backend:ip=10.89.0.5,', /an empty option/],
    ['backend:,ip=10.89.0.5', /an empty option/],
    ['backend:ip=10.89.0.5,,alias=x', /an empty option/],
    ['backend:=x', /an empty option/],
    ['backend:ip=10.89.0.5,ip=10.89.0.6', /ip is given twice/],
    ['backend:ip=10.89.0', /ip "10.89.0" is not an IPv4 address/],
    ['backend:ip=10.89.0.256', /is not an IPv4 address/],
    ['backend:ip=010.89.0.5', /is not an IPv4 address/],
    ['backend:ip=10.89.0.5/24', /is not an IPv4 address/],
    ['backend:ip= 10.89.0.5', /is not an IPv4 address/],
    ['backend:ip=fd00::5', /is not an IPv4 address/],
    ['backend:ip6=fd00::5', /option ip6 is not supported: named networks are IPv4 only/],
    ['backend:mac=02:00:00:00:00:01', /option mac is not supported/],
    ['backend:interface_name=eth5', /option interface_name is not supported: hutch names the interfaces/],
    ['backend:IP=10.89.0.5', /unknown option "IP"; did you mean "ip"\?/],
    ['backend:aliases=x', /unknown option "aliases"; did you mean "alias"\?/],
    ['backend:alias=bad_name', /alias "bad_name" is not a DNS label/],
    ['backend:alias=-x', /is not a DNS label/],
    ['backend:alias=x y', /is not a DNS label/],
    ['slirp:allow_host_loopback=true', /options after ":" are for a named network, and "slirp" is not one/],
    ['host:ip=1.2.3.4', /"host" is not one/],
    [':ip=10.89.0.5', /"" is not one/],
    ['bad name:ip=10.89.0.5', /"bad name" is not one/],
  ];
  for (const [value, why] of cases) {
    const e = fails(() => parse(value));
    assert.match(e.message, /^--network /, `${value}: ${e.message}`);
    assert.match(e.message, why, `${value}: ${e.message}`);
    assert.ok(e.hint, `${value}: a hint`);
  }
});

test('several --network values: one entry per network; the same network twice with options is refused', () => {
  assert.equal(collectNetworkFlags(['a:ip=10.1.0.5', 'b', 'b'], isName), { names: ['a', 'b'], options: { a: { ip: '10.1.0.5' } } });
  assert.match(fails(() => collectNetworkFlags(['a:ip=10.1.0.5', 'a:ip=10.1.0.6'], isName)).message, /--network a is given twice, with options/);
  assert.match(fails(() => collectNetworkFlags(['a', 'a:alias=x'], isName)).message, /given twice/);
});

const m = (t: string): PortMapping => {
  const r = parsePortMapping(t);
  if (!r.ok) throw new Error(r.message);
  return r.value;
};
const cfg = { name: 'nw', subnet: '10.89.0.0/24', gateway: '10.89.0.1', internal: false, created: '' };

test("a member's -p: tcp and udp on IPv4 host addresses; IPv6 host addresses and --internal networks refused, naming the flag", () => {
  assert.equal(
    memberForwards([m('8080:80'), m('127.0.0.1:5353:53/udp'), m('0.0.0.0:9000:90')], cfg, ['nw'], 'slirp4netns').map(
      (f) => `${f.hostIp}:${f.hostPort}->${f.containerPort}/${f.protocol}`,
    ),
    ['127.0.0.1:8080->80/tcp', '127.0.0.1:5353->53/udp', '0.0.0.0:9000->90/tcp'],
  );
  for (const t of ['[::1]:8080:80', '[::]:8080:80/udp', '[::1]::80']) {
    const e = fails(() => memberForwards([m(t)], cfg, ['nw'], 'slirp4netns', '--publish'));
    assert.match(e.message, /^--publish \[::1?\]/, e.message);
    assert.match(e.message, /is an IPv6 host address, and a member of network nw is published on IPv4 host addresses only/, e.message);
  }
  assert.match(fails(() => memberForwards([m('8080:80')], undefined, ['a', 'b'], undefined)).message, /--publish: networks a, b are --internal/);
  assert.equal(memberForwards([], undefined, ['a'], undefined), []);
  // a pasta network's relay carries TCP only: its UDP -p is refused before anything starts
  assert.match(fails(() => memberForwards([m('5353:53/udp')], cfg, ['nw'], 'pasta')).message, /network nw's NAT \(pasta\) cannot publish UDP ports/);
  assert.equal(memberForwards([m('8080:80')], cfg, ['nw'], 'pasta').length, 1);
});

test.run();
