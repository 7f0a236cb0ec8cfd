// The pure parts of issue 11's bounds: which host addresses are blocked
// (src/net/host-addresses.ts), which binds expose a home or `/`
// (src/spec/exposure.ts), the decompression-bomb check (src/image/ingest.ts).

import type { NetworkInterfaceInfo } from 'node:os';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hostAddresses } from '../../src/net/host-addresses';
import { exposureWarnings } from '../../src/spec/exposure';
import { checkExpansion, RATIO_FLOOR } from '../../src/image/ingest';
import type { MountSpec } from '../../src/spec/types';
import { fails } from './lib/fails';

const iface = (address: string, family: 'IPv4' | 'IPv6', internal = false) => ({ address, family, internal }) as NetworkInterfaceInfo;

test('hostAddresses: every interface address, v4 and v6, but loopback, link-local v6 and the kept ones; once each', () => {
  const got = hostAddresses(['169.254.1.1'], {
    lo: [iface('127.0.0.1', 'IPv4', true), iface('::1', 'IPv6', true)],
    eth0: [iface('192.0.2.2', 'IPv4'), iface('fd00::2', 'IPv6'), iface('fe80::1', 'IPv6'), iface('FEBF::2', 'IPv6')],
    docker0: [iface('172.17.0.1', 'IPv4'), iface('169.254.1.1', 'IPv4')],
    alias: [iface('192.0.2.2', 'IPv4')],
  });
  assert.equal(got, ['192.0.2.2', 'fd00::2', '172.17.0.1']);
});

const bind = (source: string, target: string, readOnly = false): MountSpec => ({ type: 'bind', source, target, readOnly });
const LOC = { file: 'builtin:dev-server', line: 1, column: 1 };
/** origins as resolveSpec records them: a profile's mounts[i] with its location, a flag as typed. */
const origins = (o: Record<string, string>) => ({
  mounts: Object.fromEntries(Object.entries(o).map(([t, what]) => [t, what.startsWith('-') ? { what } : { what, location: LOC }])),
});

test('exposureWarnings: a read-write / is refused naming the profile field; ro / and home binds warn', () => {
  const e = fails(() =>
    exposureWarnings({ profiles: ['dev-server', 'default'], mounts: [bind('/', '/work')], origins: origins({ '/work': 'mounts[0]' }) }, ['/home/me']),
  );
  assert.match(e.message, /^profile dev-server: mounts\[0\]: \/:\/work would mount the host's whole root filesystem read-write/);
  assert.match(e.hint ?? '', /run hutch from your project directory/);
  const w = exposureWarnings(
    {
      profiles: ['default'],
      mounts: [bind('/', '/h', true), bind('/home/me', '/work'), bind('/home', '/x', true), bind('/home/me/src/app', '/app'), bind('/home/meme', '/y')],
      origins: origins({ '/h': '-v /:/h:ro', '/work': 'mounts[0]', '/x': '-v /home:/x:ro', '/app': 'mounts[1]', '/y': 'mounts[2]' }),
    },
    ['/home/me', '/home/me'],
  );
  assert.is(w.length, 3, w.join('\n'));
  assert.match(w[0], /-v \/:\/h:ro mounts \/, which contains your home directory \/home\/me read-only at \/h: everything in it .* is readable inside/);
  assert.match(w[1], /profile default: mounts\[0\] mounts your home directory \/home\/me read-write at \/work: .* readable and writable/);
  assert.match(w[2], /mounts \/home, which contains your home directory/);
  assert.equal(
    exposureWarnings({ profiles: ['x'], mounts: [{ type: 'tmpfs', target: '/' }, bind('/srv/p', '/work')], origins: origins({}) }, ['/home/me', '/']),
    [],
  );
});

test('checkExpansion: total size bound, ratio bound only past the floor and with a known compressed size', () => {
  const b = (raw: number, before = 0) => ({ maxBytes: 1024 ** 3, maxRatio: 100, before, raw: () => raw });
  checkExpansion(b(1), RATIO_FLOOR, 'x'); // a small layer may compress very well
  checkExpansion(b(0), 512 * 1024 ** 2, 'x'); // unknown compressed size: no ratio
  checkExpansion(b(RATIO_FLOOR / 50), RATIO_FLOOR * 2, 'x'); // 100:1 exactly
  assert.match(
    fails(() => checkExpansion(b(1024 * 1024), RATIO_FLOOR * 2, 'layer 1')).message,
    /^layer 1: 1 MiB of compressed data expanded to 128 MiB \(more than 100:1, --max-ratio\)/,
  );
  const big = fails(() => checkExpansion(b(0, 1000 * 1024 ** 2), 100 * 1024 ** 2, 'layer 2'));
  assert.match(big.message, /the image expands to more than 1 GiB \(--max-size\)/);
  assert.match(big.hint ?? '', /--max-size 4g/);
});

test.run();
