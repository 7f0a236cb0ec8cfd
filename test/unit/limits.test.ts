// Sizes, durations (src/util/units.ts) and resource limits from profile and
// flags (src/spec/limits.ts).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { parseDuration, parseSize } from '../../src/util/units';
import { hasCgroupLimits, parseDeviceRate, parseLimitFlags, resolveLimits, sharesToWeight } from '../../src/spec/limits';
import { knownBug } from './lib/known-bug';
import { fails } from './lib/fails';

const K = 1024;
const M = 1024 ** 2;
const G = 1024 ** 3;

const NONE = {
  memory: undefined,
  memorySwap: undefined,
  cpus: undefined,
  cpuWeight: undefined,
  pidsLimit: undefined,
  ioWeight: undefined,
  deviceReadBps: [],
  deviceWriteBps: [],
  timeoutMs: undefined,
  mode: 'warn',
};

// ------------------------------------------------------------ parseSize

test('parseSize: units are powers of 1024, case-insensitive, b/ib suffixes', () => {
  assert.is(parseSize('512m', 'x'), 512 * M);
  assert.is(parseSize('1g', 'x'), G);
  assert.is(parseSize('1.5g', 'x'), 1.5 * G);
  assert.is(parseSize('2G', 'x'), 2 * G);
  assert.is(parseSize('4096', 'x'), 4096);
  assert.is(parseSize('100b', 'x'), 100);
  assert.is(parseSize('10k', 'x'), 10 * K);
  assert.is(parseSize('10kb', 'x'), 10 * K);
  assert.is(parseSize('64MiB', 'x'), 64 * M);
  assert.is(parseSize('512mb', 'x'), 512 * M);
  assert.is(parseSize('1t', 'x'), 1024 ** 4);
  assert.is(parseSize(' 1 g ', 'x'), G);
  assert.is(parseSize('0', 'x'), 0);
  // Fractions are rounded to whole bytes.
  assert.is(parseSize('0.3k', 'x'), 307);
});

test('parseSize: invalid sizes name what they are for', () => {
  for (const bad of ['abc', '', 'g', '-1', '1.5.5g', '1x', '1gg', '1p', '1,5g', '.5g']) {
    const e = fails(() => parseSize(bad, '--memory'));
    assert.is(e.message, `--memory: "${bad}" is not a size`, bad);
    assert.is(e.hint, 'write e.g. 512m, 2g or a number of bytes');
  }
});

// ------------------------------------------------------------ parseDuration

test('parseDuration: units, combinations, bare seconds', () => {
  assert.is(parseDuration('90s', 'x'), 90_000);
  assert.is(parseDuration('10m', 'x'), 600_000);
  assert.is(parseDuration('1h30m', 'x'), 5_400_000);
  assert.is(parseDuration('1m30s', 'x'), 90_000);
  assert.is(parseDuration('500ms', 'x'), 500);
  assert.is(parseDuration('2h', 'x'), 7_200_000);
  assert.is(parseDuration('1.5h', 'x'), 5_400_000);
  assert.is(parseDuration('30', 'x'), 30_000);
  assert.is(parseDuration('0.5', 'x'), 500);
  assert.is(parseDuration(' 5s ', 'x'), 5000);
  assert.is(parseDuration('0', 'x'), 0);
});

test('parseDuration: invalid durations', () => {
  for (const bad of ['10M', 'soon', '', '1m30', '-5s', '5 s', '1h 30m', '5mss', 's', '1d']) {
    const e = fails(() => parseDuration(bad, '--timeout'));
    assert.is(e.message, `--timeout: "${bad}" is not a duration`, bad);
    assert.is(e.hint, 'write e.g. 30s, 10m, 1h30m');
  }
});

// ------------------------------------------------------------ resolveLimits: profile and flags

test('resolveLimits: nothing given', () => {
  assert.equal(resolveLimits({}, {}), NONE);
  assert.is(hasCgroupLimits(resolveLimits({}, {})), false);
  // A timeout alone is no cgroup limit.
  assert.is(hasCgroupLimits(resolveLimits({}, { timeout: '1m' })), false);
  assert.is(hasCgroupLimits(resolveLimits({}, { ioWeight: '10' })), true);
});

test('resolveLimits: profile values (bytes, ms) pass through; a flag replaces its field only', () => {
  const profile = { memory: 4 * G, pidsLimit: 4096, timeout: 3_600_000, mode: 'strict' as const };
  assert.equal(resolveLimits(profile, {}), { ...NONE, memory: 4 * G, pidsLimit: 4096, timeoutMs: 3_600_000, mode: 'strict' });
  assert.equal(resolveLimits(profile, { memory: '512m', timeout: '90s', mode: 'warn' }), {
    ...NONE,
    memory: 512 * M,
    pidsLimit: 4096,
    timeoutMs: 90_000,
    mode: 'warn',
  });
  assert.equal(resolveLimits({}, { cpus: '1.5', cpuWeight: '200', ioWeight: '500', pidsLimit: '100' }), {
    ...NONE,
    cpus: 1.5,
    cpuWeight: 200,
    ioWeight: 500,
    pidsLimit: 100,
  });
});

test('--memory: size and minimum', () => {
  assert.is(resolveLimits({}, { memory: '6m' }).memory, 6 * M);
  assert.is(resolveLimits({}, { memory: '1.5g' }).memory, 1.5 * G);
  let e = fails(() => resolveLimits({}, { memory: '5m' }));
  assert.is(e.message, '--memory: 5m is too small to run anything');
  assert.is(e.hint, 'use at least 6m (podman has the same minimum)');
  e = fails(() => resolveLimits({}, { memory: 'lots' }));
  assert.is(e.message, '--memory: "lots" is not a size');
});

test('--memory-swap: -1, defaults, must cover the memory limit', () => {
  assert.is(resolveLimits({}, { memorySwap: '-1' }).memorySwap, -1);
  assert.is(resolveLimits({}, { memorySwap: ' -1 ' }).memorySwap, -1);
  assert.is(resolveLimits({ memory: G }, {}).memorySwap, undefined);
  assert.is(resolveLimits({}, { memory: '1g', memorySwap: '2g' }).memorySwap, 2 * G);
  assert.is(resolveLimits({ memory: G }, { memorySwap: '1g' }).memorySwap, G);
  assert.is(resolveLimits({ memory: G, memorySwap: 2 * G }, {}).memorySwap, 2 * G);
  let e = fails(() => resolveLimits({}, { memorySwap: '2g' }));
  assert.is(e.message, '--memory-swap needs a memory limit as well');
  assert.is(e.hint, 'add --memory (memory-swap is memory plus swap)');
  e = fails(() => resolveLimits({}, { memory: '1g', memorySwap: '512m' }));
  assert.is(e.message, '--memory-swap: must be at least the memory limit (it is memory plus swap)');
  assert.is(e.hint, 'raise it, or use -1 for unlimited swap');
  e = fails(() => resolveLimits({ memorySwap: 2 * G }, {}));
  assert.is(e.message, 'limits.memorySwap needs a memory limit as well');
  // A --memory flag above the profile's memorySwap: the profile field is named.
  e = fails(() => resolveLimits({ memory: G, memorySwap: 2 * G }, { memory: '4g' }));
  assert.is(e.message, 'limits.memorySwap: must be at least the memory limit (it is memory plus swap)');
  e = fails(() => resolveLimits({}, { memorySwap: '-2' }));
  assert.is(e.message, '--memory-swap: "-2" is not a size');
});

test('--cpus: a positive number', () => {
  assert.is(resolveLimits({}, { cpus: '2' }).cpus, 2);
  assert.is(resolveLimits({}, { cpus: '.5' }).cpus, 0.5);
  assert.is(resolveLimits({}, { cpus: '0.01' }).cpus, 0.01);
  for (const bad of ['0', '-1', 'abc', '1.', '1e3', '', '0.0']) {
    const e = fails(() => resolveLimits({}, { cpus: bad }));
    assert.is(e.message, `--cpus: "${bad}" is not a positive number`, bad);
    assert.is(e.hint, 'e.g. --cpus 1.5');
  }
});

test('--cpu-weight and --cpu-shares', () => {
  assert.is(resolveLimits({}, { cpuWeight: '1' }).cpuWeight, 1);
  assert.is(resolveLimits({}, { cpuWeight: '10000' }).cpuWeight, 10000);
  let e = fails(() => resolveLimits({}, { cpuWeight: '0' }));
  assert.is(e.message, '--cpu-weight: "0" must be a whole number from 1 to 10000');
  assert.is(e.hint, 'e.g. --cpu-weight 100');
  e = fails(() => resolveLimits({}, { cpuWeight: '1.5' }));
  assert.is(e.message, '--cpu-weight: "1.5" must be a whole number from 1 to 10000');
  assert.is(resolveLimits({}, { cpuShares: '2' }).cpuWeight, 1);
  assert.is(resolveLimits({}, { cpuShares: '262144' }).cpuWeight, 10000);
  assert.is(resolveLimits({}, { cpuShares: '512' }).cpuWeight, 20);
  e = fails(() => resolveLimits({}, { cpuShares: '1' }));
  assert.is(e.message, '--cpu-shares: "1" must be a whole number from 2 to 262144');
  assert.is(e.hint, 'e.g. --cpu-shares 100');
  e = fails(() => resolveLimits({}, { cpuShares: '262145' }));
  assert.is(e.message, '--cpu-shares: "262145" must be a whole number from 2 to 262144');
  e = fails(() => resolveLimits({}, { cpuShares: '1024', cpuWeight: '100' }));
  assert.is(e.message, '--cpu-weight and --cpu-shares set the same thing');
  // The flag replaces a profile's cpuWeight.
  assert.is(resolveLimits({ cpuWeight: 500 }, { cpuShares: '2' }).cpuWeight, 1);
});

test('sharesToWeight: the ends of both ranges, clamped outside', () => {
  assert.is(sharesToWeight(2), 1);
  assert.is(sharesToWeight(262144), 10000);
  assert.is(sharesToWeight(0), 1);
  assert.is(sharesToWeight(1_000_000), 10000);
});

knownBug('sharesToWeight(1024) is 39, as runc computes it (1 + ((shares-2)*9999)/262142, integer division)', 'src/spec/limits.ts:44', () => {
  // The comment says "the formula runc and crun use"; runc divides in integers
  // (floor), hutch rounds, so podman's default 1024 becomes 40 instead of 39.
  assert.is(sharesToWeight(1024), 39);
  assert.is(sharesToWeight(100), 4);
});

test('--pids-limit: a count; -1 and 0 lift the profile limit', () => {
  assert.is(resolveLimits({}, { pidsLimit: '1' }).pidsLimit, 1);
  assert.is(resolveLimits({ pidsLimit: 512 }, {}).pidsLimit, 512);
  assert.is(resolveLimits({ pidsLimit: 512 }, { pidsLimit: '-1' }).pidsLimit, undefined);
  assert.is(resolveLimits({ pidsLimit: 512 }, { pidsLimit: '0' }).pidsLimit, undefined);
  assert.is(resolveLimits({ pidsLimit: 512 }, { pidsLimit: '4194304' }).pidsLimit, 4194304);
  const flags = parseLimitFlags({ pidsLimit: '-1' });
  assert.ok(flags.given.has('pidsLimit'));
  assert.is(flags.pidsLimit, undefined);
  for (const bad of ['4194305', 'abc', '-2', '1.5']) {
    const e = fails(() => resolveLimits({}, { pidsLimit: bad }));
    assert.is(e.message, `--pids-limit: "${bad}" must be a whole number from 1 to 4194304`, bad);
    assert.is(e.hint, 'e.g. --pids-limit 100');
  }
});

test('--io-weight, --timeout, --limits', () => {
  let e = fails(() => resolveLimits({}, { ioWeight: '10001' }));
  assert.is(e.message, '--io-weight: "10001" must be a whole number from 1 to 10000');
  assert.is(resolveLimits({}, { timeout: '1h30m' }).timeoutMs, 5_400_000);
  assert.is(resolveLimits({ timeout: 1000 }, { timeout: '30' }).timeoutMs, 30_000);
  e = fails(() => resolveLimits({}, { timeout: '0s' }));
  assert.is(e.message, '--timeout: must be longer than 0');
  assert.is(e.hint, 'e.g. --timeout 10m');
  e = fails(() => resolveLimits({}, { timeout: 'soon' }));
  assert.is(e.message, '--timeout: "soon" is not a duration');
  assert.is(resolveLimits({}, { mode: 'strict' }).mode, 'strict');
  assert.is(resolveLimits({ mode: 'strict' }, {}).mode, 'strict');
  e = fails(() => resolveLimits({}, { mode: 'hard' }));
  assert.is(e.message, '--limits: "hard" is not one of warn, strict');
});

test('parseLimitFlags: only the given fields (hutch update)', () => {
  const f = parseLimitFlags({ memory: '1g', cpus: '2' });
  assert.equal([...f.given].sort(), ['cpus', 'memory']);
  assert.is(f.memory, G);
  assert.is(f.cpus, 2);
  assert.is('pidsLimit' in f, false);
  assert.equal([...parseLimitFlags({ deviceReadBps: [] }).given], []);
});

// ------------------------------------------------------------ device rates (stat the host's /dev)

test('--device-read-bps: malformed values and devices that are not block devices', () => {
  let e = fails(() => parseDeviceRate('nocolon', '--device-read-bps'));
  assert.is(e.message, '--device-read-bps: "nocolon" is not DEVICE:RATE');
  assert.is(e.hint, 'e.g. --device-read-bps /dev/sda:10mb');
  e = fails(() => parseDeviceRate(':10mb', '--device-write-bps'));
  assert.is(e.message, '--device-write-bps: ":10mb" is not DEVICE:RATE');
  // The rate is checked before the device.
  e = fails(() => parseDeviceRate('/dev/does-not-exist:0', '--device-read-bps'));
  assert.is(e.message, '--device-read-bps: the rate must be above 0');
  assert.is(e.hint, 'e.g. --device-read-bps /dev/does-not-exist:10mb');
  e = fails(() => parseDeviceRate('/dev/null:fast', '--device-read-bps'));
  assert.is(e.message, '--device-read-bps rate: "fast" is not a size');
  e = fails(() => parseDeviceRate('/dev/hutch-test-no-such-device:10mb', '--device-read-bps'));
  assert.is(e.message, '--device-read-bps: /dev/hutch-test-no-such-device: no such device');
  assert.is(e.hint, 'name a block device of this host, e.g. /dev/sda or /dev/nvme0n1');
  // /dev/null exists on every Linux machine and is a character device.
  e = fails(() => parseDeviceRate('/dev/null:10mb', '--device-read-bps'));
  assert.is(e.message, '--device-read-bps: /dev/null is not a block device');
  assert.is(e.hint, 'name a whole disk, e.g. /dev/sda');
  e = fails(() => resolveLimits({}, { deviceWriteBps: ['/dev/null:1m'] }));
  assert.is(e.message, '--device-write-bps: /dev/null is not a block device');
});

knownBug('--device-read-bps takes the same size suffixes as --memory (10mib)', 'src/spec/limits.ts:60', () => {
  // parseSize accepts "10mib"; parseDeviceRate strips one trailing "b" first
  // ("10mi"), so the rate is refused before the device is even looked at.
  assert.is(parseSize('10mib', 'x'), 10 * M);
  const e = fails(() => parseDeviceRate('/dev/null:10mib', '--device-read-bps'));
  assert.is(e.message, '--device-read-bps: /dev/null is not a block device');
});

/** A block device of this machine, with major/minor as stat(1) reports them (independent of src/). */
function someBlockDevice(): { path: string; major: number; minor: number } | undefined {
  for (const path of ['/dev/vda', '/dev/sda', '/dev/nvme0n1', '/dev/xvda', '/dev/loop0', '/dev/mmcblk0']) {
    try {
      if (!existsSync(path) || !statSync(path).isBlockDevice()) continue;
    } catch {
      continue;
    }
    const r = spawnSync('stat', ['-L', '-c', '%t %T', path], { encoding: 'utf8' });
    if (r.status !== 0) continue;
    const [major, minor] = r.stdout
      .trim()
      .split(' ')
      .map((h) => parseInt(h, 16));
    return { path, major, minor };
  }
  return undefined;
}

const dev = someBlockDevice();
if (dev) {
  test(`--device-read-bps with a real block device (${dev.path}, ${dev.major}:${dev.minor})`, () => {
    assert.equal(parseDeviceRate(`${dev.path}:10mb`, '--device-read-bps'), { device: dev.path, major: dev.major, minor: dev.minor, bytesPerSecond: 10 * M });
    assert.equal(parseDeviceRate(`${dev.path}:1048576`, '--device-read-bps'), { device: dev.path, major: dev.major, minor: dev.minor, bytesPerSecond: M });
    assert.equal(parseDeviceRate(`${dev.path}:1gb`, '--device-write-bps').bytesPerSecond, G);
    const l = resolveLimits({}, { deviceReadBps: [`${dev.path}:10m`], deviceWriteBps: [`${dev.path}:1m`, `${dev.path}:2m`] });
    assert.equal(l.deviceReadBps, [{ device: dev.path, major: dev.major, minor: dev.minor, bytesPerSecond: 10 * M }]);
    assert.equal(
      l.deviceWriteBps.map((d) => d.bytesPerSecond),
      [M, 2 * M],
    );
    assert.is(hasCgroupLimits(l), true);
  });
} else {
  console.log(
    '# SKIP: no block device found here (/dev/vda, /dev/sda, /dev/nvme0n1, /dev/xvda, /dev/loop0, /dev/mmcblk0): parseDeviceRate with a real device is not tested',
  );
  test.skip('--device-read-bps with a real block device', () => {});
}

test.run();
