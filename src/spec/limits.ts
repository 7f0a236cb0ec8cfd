// Limits from the profile (`limits:`, already validated and in bytes/ms) and
// from podman-style flags (raw text) -> LimitsSpec. A flag replaces the
// profile's value for that field; every bad value names its flag.

import { hostFs, type HostFs } from '../host/facts';
import { HutchError } from '../util/errors';
import type { ProfileLimits } from '../profile/schema';
import type { DeviceRate, LimitsSpec } from './types';
import { parseDuration, parseSize } from '../util/units';

/** Raw flag values (`hutch run` and `hutch update`). */
export interface LimitOverrides {
  memory?: string;
  memorySwap?: string;
  cpus?: string;
  cpuWeight?: string;
  cpuShares?: string;
  pidsLimit?: string;
  ioWeight?: string;
  deviceReadBps?: string[];
  deviceWriteBps?: string[];
  timeout?: string;
  mode?: string;
}

function positiveNumber(text: string, flag: string, example: string): number {
  const n = Number(text);
  if (!/^\s*\d*\.?\d+\s*$/.test(text) || !(n > 0)) {
    throw new HutchError(`${flag}: "${text}" is not a positive number`, { hint: `e.g. ${flag} ${example}` });
  }
  return n;
}

function intIn(text: string, flag: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || n < min || n > max) {
    throw new HutchError(`${flag}: "${text}" must be a whole number from ${min} to ${max}`, { hint: `e.g. ${flag} ${Math.min(max, Math.max(min, 100))}` });
  }
  return n;
}

/** podman's --cpu-shares (2-262144, default 1024) -> cgroup v2 cpu.weight (1-10000), the formula runc and crun use (integer division: 1024 -> 39). */
export function sharesToWeight(shares: number): number {
  return Math.max(1, Math.min(10000, 1 + Math.floor(((shares - 2) * 9999) / 262142)));
}

/** Linux dev_t -> major:minor (glibc's gnu_dev_major/minor). */
/** `/dev/sda:10mb` (podman's --device-read-bps) -> the device's numbers and bytes per second. */
export function parseDeviceRate(text: string, flag: string, fs: Pick<HostFs, 'blockDevice'> = hostFs): DeviceRate {
  const i = text.lastIndexOf(':');
  if (i <= 0) throw new HutchError(`${flag}: "${text}" is not DEVICE:RATE`, { hint: `e.g. ${flag} /dev/sda:10mb` });
  const device = text.slice(0, i);
  const bytesPerSecond = parseSize(text.slice(i + 1), `${flag} rate`);
  if (bytesPerSecond <= 0) throw new HutchError(`${flag}: the rate must be above 0`, { hint: `e.g. ${flag} ${device}:10mb` });
  let numbers: ReturnType<HostFs['blockDevice']>;
  try {
    numbers = fs.blockDevice(device);
  } catch (e) {
    throw new HutchError(`${flag}: ${device}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such device' : (e as Error).message}`, {
      hint: 'name a block device of this host, e.g. /dev/sda or /dev/nvme0n1',
    });
  }
  if (!numbers) throw new HutchError(`${flag}: ${device} is not a block device`, { hint: 'name a whole disk, e.g. /dev/sda' });
  return { device, ...numbers, bytesPerSecond };
}

/** `--memory-swap`: a size, or -1 for unlimited swap. */
function parseSwap(text: string): number {
  return text.trim() === '-1' ? -1 : parseSize(text, '--memory-swap');
}

/** `--pids-limit`: a positive count; 0 or -1 lifts a limit the profile set (podman). */
function parsePids(text: string): number | undefined {
  if (/^\s*-1\s*$|^\s*0\s*$/.test(text)) return undefined;
  return intIn(text, '--pids-limit', 1, 4194304);
}

/** Only the fields given as flags, parsed (for `hutch update`, and as the layer over the profile). */
export function parseLimitFlags(o: LimitOverrides, fs: Pick<HostFs, 'blockDevice'> = hostFs): Partial<LimitsSpec> & { given: Set<keyof LimitsSpec> } {
  const out: Partial<LimitsSpec> & { given: Set<keyof LimitsSpec> } = { given: new Set() };
  const set = <K extends keyof LimitsSpec>(k: K, v: LimitsSpec[K]) => {
    (out as Partial<LimitsSpec>)[k] = v;
    out.given.add(k);
  };
  if (o.memory !== undefined) {
    const m = parseSize(o.memory, '--memory');
    if (m < 6 * 1024 * 1024)
      throw new HutchError(`--memory: ${o.memory} is too small to run anything`, { hint: 'use at least 6m (podman has the same minimum)' });
    set('memory', m);
  }
  if (o.memorySwap !== undefined) set('memorySwap', parseSwap(o.memorySwap));
  if (o.cpus !== undefined) set('cpus', positiveNumber(o.cpus, '--cpus', '1.5'));
  if (o.cpuWeight !== undefined && o.cpuShares !== undefined) {
    throw new HutchError('--cpu-weight and --cpu-shares set the same thing', { hint: 'give one of them' });
  }
  if (o.cpuWeight !== undefined) set('cpuWeight', intIn(o.cpuWeight, '--cpu-weight', 1, 10000));
  if (o.cpuShares !== undefined) set('cpuWeight', sharesToWeight(intIn(o.cpuShares, '--cpu-shares', 2, 262144)));
  if (o.pidsLimit !== undefined) set('pidsLimit', parsePids(o.pidsLimit));
  if (o.ioWeight !== undefined) set('ioWeight', intIn(o.ioWeight, '--io-weight', 1, 10000));
  if (o.deviceReadBps?.length)
    set(
      'deviceReadBps',
      o.deviceReadBps.map((d) => parseDeviceRate(d, '--device-read-bps', fs)),
    );
  if (o.deviceWriteBps?.length)
    set(
      'deviceWriteBps',
      o.deviceWriteBps.map((d) => parseDeviceRate(d, '--device-write-bps', fs)),
    );
  if (o.timeout !== undefined) {
    const ms = parseDuration(o.timeout, '--timeout');
    if (ms <= 0) throw new HutchError('--timeout: must be longer than 0', { hint: 'e.g. --timeout 10m' });
    set('timeoutMs', ms);
  }
  if (o.mode !== undefined) {
    if (o.mode !== 'warn' && o.mode !== 'strict') {
      throw new HutchError(`--limits: "${o.mode}" is not one of warn, strict`, {
        hint: 'warn: run with a warning when limits cannot be enforced; strict: refuse to run',
      });
    }
    set('mode', o.mode);
  }
  return out;
}

export function resolveLimits(profile: ProfileLimits & { mode?: 'warn' | 'strict' }, o: LimitOverrides, fs: Pick<HostFs, 'blockDevice'> = hostFs): LimitsSpec {
  const flags = parseLimitFlags(o, fs);
  const pick = <K extends keyof LimitsSpec>(k: K, fromProfile: LimitsSpec[K]): LimitsSpec[K] =>
    flags.given.has(k) ? (flags[k] as LimitsSpec[K]) : fromProfile;
  const l: LimitsSpec = {
    memory: pick('memory', profile.memory),
    memorySwap: pick('memorySwap', profile.memorySwap),
    cpus: pick('cpus', profile.cpus),
    cpuWeight: pick('cpuWeight', profile.cpuWeight),
    pidsLimit: pick('pidsLimit', profile.pidsLimit),
    ioWeight: pick('ioWeight', profile.ioWeight),
    deviceReadBps: flags.deviceReadBps ?? [],
    deviceWriteBps: flags.deviceWriteBps ?? [],
    timeoutMs: pick('timeoutMs', profile.timeout),
    mode: pick('mode', profile.mode ?? 'warn'),
  };
  if (l.memorySwap !== undefined && l.memorySwap !== -1) {
    const from = flags.given.has('memorySwap') ? '--memory-swap' : 'limits.memorySwap';
    if (l.memory === undefined) throw new HutchError(`${from} needs a memory limit as well`, { hint: 'add --memory (memory-swap is memory plus swap)' });
    if (l.memorySwap < l.memory)
      throw new HutchError(`${from}: must be at least the memory limit (it is memory plus swap)`, { hint: 'raise it, or use -1 for unlimited swap' });
  }
  return l;
}

/** Whether any cgroup limit (not the timeout) is asked for. */
export function hasCgroupLimits(l: LimitsSpec): boolean {
  return (
    l.memory !== undefined ||
    l.memorySwap !== undefined ||
    l.cpus !== undefined ||
    l.cpuWeight !== undefined ||
    l.pidsLimit !== undefined ||
    l.ioWeight !== undefined ||
    l.deviceReadBps.length > 0 ||
    l.deviceWriteBps.length > 0
  );
}
