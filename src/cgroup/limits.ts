// LimitsSpec -> cgroup v2 interface file writes, and the decision of what
// this host can enforce (shown by `hutch run --dry-run`, warned about or
// refused with --limits strict).

import { HutchError } from '../util/errors';
import type { LimitsSpec } from '../spec/types';
import type { CgroupProbe, Controller } from './delegation';
import { formatBytes, formatDuration } from './format';
import { writeCg } from './files';

export const CPU_PERIOD_USEC = 100_000;

export interface LimitWrite {
  /** what the user wrote: the flag (profile field in parentheses) */
  what: string;
  controller: Controller;
  file: string;
  value: string;
  /** implied, not asked for (podman's default swap): skipped when the kernel lacks the file */
  optional?: boolean;
}

export function limitWrites(l: Partial<LimitsSpec>): LimitWrite[] {
  const w: LimitWrite[] = [];
  if (l.memory !== undefined) {
    w.push({ what: '--memory', controller: 'memory', file: 'memory.max', value: String(l.memory) });
    // podman: without --memory-swap the sandbox may use as much swap as memory.
    if (l.memorySwap === undefined) w.push({ what: '--memory', controller: 'memory', file: 'memory.swap.max', value: String(l.memory), optional: true });
  }
  if (l.memorySwap !== undefined) {
    const swap = l.memorySwap === -1 ? 'max' : String(l.memorySwap - (l.memory ?? 0));
    w.push({ what: '--memory-swap', controller: 'memory', file: 'memory.swap.max', value: swap });
  }
  if (l.cpus !== undefined) {
    const quota = Math.max(1000, Math.round(l.cpus * CPU_PERIOD_USEC));
    w.push({ what: '--cpus', controller: 'cpu', file: 'cpu.max', value: `${quota} ${CPU_PERIOD_USEC}` });
  }
  if (l.cpuWeight !== undefined) w.push({ what: '--cpu-weight', controller: 'cpu', file: 'cpu.weight', value: String(l.cpuWeight) });
  if (l.pidsLimit !== undefined) w.push({ what: '--pids-limit', controller: 'pids', file: 'pids.max', value: String(l.pidsLimit) });
  if (l.ioWeight !== undefined) w.push({ what: '--io-weight', controller: 'io', file: 'io.weight', value: `default ${l.ioWeight}` });
  for (const d of l.deviceReadBps ?? []) {
    w.push({ what: '--device-read-bps', controller: 'io', file: 'io.max', value: `${d.major}:${d.minor} rbps=${d.bytesPerSecond}` });
  }
  for (const d of l.deviceWriteBps ?? []) {
    w.push({ what: '--device-write-bps', controller: 'io', file: 'io.max', value: `${d.major}:${d.minor} wbps=${d.bytesPerSecond}` });
  }
  return w;
}

/** Controllers the sandbox cgroup gets: memory and pids always (usage, OOM and the report), cpu and io when limited. */
export function controllersFor(l: Partial<LimitsSpec>, available: Controller[]): Controller[] {
  const want = new Set<Controller>(['memory', 'pids']);
  for (const w of limitWrites(l)) want.add(w.controller);
  return [...want].filter((c) => available.includes(c));
}

/**
 * Write the limits into a sandbox cgroup. Returns the limits the kernel has
 * no file for (e.g. io.weight without an io cost model); a value the kernel
 * refuses is an error naming the flag.
 */
export function applyLimits(cgroupDir: string, l: Partial<LimitsSpec>, available?: Controller[]): LimitWrite[] {
  const missing: LimitWrite[] = [];
  for (const w of limitWrites(l)) {
    if (available && !available.includes(w.controller)) continue; // already reported by planLimits
    try {
      writeCg(cgroupDir, w.file, w.value);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'EACCES' || code === 'EPERM') {
        if (!w.optional) missing.push(w);
        continue;
      }
      throw new HutchError(`${w.what}: the kernel refused ${w.file} = "${w.value}": ${(e as Error).message}`, {
        hint: w.file === 'io.max' ? 'io.max takes whole disks (e.g. /dev/sda), not partitions' : `check the value of ${w.what}`,
      });
    }
  }
  return missing;
}

/** One line per requested limit: human description. */
export function describeLimit(w: LimitWrite, l: Partial<LimitsSpec>): string {
  switch (w.file) {
    case 'memory.max':
      return `memory ${formatBytes(l.memory)}`;
    case 'memory.swap.max':
      return l.memorySwap === -1 ? 'swap unlimited' : `swap ${formatBytes(Number(w.value))}`;
    case 'cpu.max':
      return `cpus ${l.cpus}`;
    case 'cpu.weight':
      return `cpu weight ${l.cpuWeight}`;
    case 'pids.max':
      return `pids ${l.pidsLimit}`;
    case 'io.weight':
      return `io weight ${l.ioWeight}`;
    default:
      return `${w.what.slice(2)} ${w.value}`;
  }
}

export interface LimitDecision {
  what: string;
  enforced: boolean;
  how: string;
}

export interface LimitsPlan {
  decisions: LimitDecision[];
  /** a cgroup is created for the sandbox */
  cgroup: boolean;
  /** why no cgroup is created although the host offers one */
  skipped?: string;
  /** the warning to print (warn mode) or the error to raise (strict), when something is not enforced */
  problem?: { message: string; fix: string };
}

/** What this host will enforce, and how, before anything is created. */
export function planLimits(l: LimitsSpec, probe: CgroupProbe): LimitsPlan {
  const decisions: LimitDecision[] = [];
  const notEnforced: string[] = [];
  const missingControllers = new Set<Controller>();
  const seen = new Set<string>();
  for (const w of limitWrites(l)) {
    if (w.optional) continue;
    const ok = probe.usable && probe.available.includes(w.controller);
    const desc = describeLimit(w, l);
    if (seen.has(desc)) continue;
    seen.add(desc);
    decisions.push({
      what: `${w.what} (${desc})`,
      enforced: ok,
      how: ok ? `cgroup v2 ${w.file} = ${w.value}` : `${!probe.usable ? 'no delegated cgroup v2 subtree' : `the ${w.controller} controller is not available`}`,
    });
    if (!ok) {
      notEnforced.push(w.what);
      missingControllers.add(w.controller);
    }
  }
  if (l.timeoutMs !== undefined) {
    decisions.push({
      what: `--timeout (${formatDuration(l.timeoutMs)})`,
      enforced: true,
      how: probe.usable
        ? 'the whole sandbox cgroup is killed (cgroup.kill)'
        : "fallback without a cgroup: SIGKILL to the sandbox's pid 1, which takes every process of its pid namespace with it",
    });
  }
  const plan: LimitsPlan = { decisions, cgroup: probe.usable };
  if (notEnforced.length) {
    const ctl = [...missingControllers].join(', ');
    plan.problem = {
      message: `limits not enforced on this host: ${[...new Set(notEnforced)].join(', ')} (no cgroup v2 ${ctl} controller${missingControllers.size > 1 ? 's' : ''} for hutch: ${probe.problem ?? 'not available'})`,
      fix: probe.fix ?? 'see hutch run --dry-run',
    };
  }
  return plan;
}
