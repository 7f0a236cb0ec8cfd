// What a sandbox used, read from its cgroup when it ends: the JSON report
// (--report FILE), the one-line summary (--summary) and the OOM message.

import { writeFileSync } from 'node:fs';
import { HutchError } from '../util/errors';
import type { LimitsSpec } from '../spec/types';
import { formatBytes, formatSeconds } from './format';
import type { LimitDecision } from './limits';
import type { CgroupStats } from './sandbox-cgroup';

export interface UsageReport {
  name: string;
  command: string[];
  exitCode: number;
  /** why hutch ended the sandbox: out of memory (the command was OOM-killed), or --timeout */
  killedBy: 'oom' | 'timeout' | null;
  startedAt: string;
  finishedAt: string;
  wallMs: number;
  /** cgroup v2 directory the figures come from; null when the host gave hutch none */
  cgroup: string | null;
  /** why usage figures are null */
  note?: string;
  cpu: { usageUsec: number; userUsec: number; systemUsec: number; throttledUsec: number; nrThrottled: number; nrPeriods: number } | null;
  memory: { peakBytes: number | null; limitBytes: number | null; oomKills: number } | null;
  pids: { peak: number | null; limit: number | null; refusedForks: number } | null;
  io: { readBytes: number; writeBytes: number } | null;
  limits: LimitsSpec;
  enforcement: LimitDecision[];
}

export function buildReport(input: {
  name: string;
  command: string[];
  exitCode: number;
  killedBy: UsageReport['killedBy'];
  started: number;
  finished: number;
  cgroup?: string;
  stats?: CgroupStats;
  note?: string;
  limits: LimitsSpec;
  enforcement: LimitDecision[];
}): UsageReport {
  const s = input.stats;
  return {
    name: input.name,
    command: input.command,
    exitCode: input.exitCode,
    killedBy: input.killedBy,
    startedAt: new Date(input.started).toISOString(),
    finishedAt: new Date(input.finished).toISOString(),
    wallMs: input.finished - input.started,
    cgroup: input.cgroup ?? null,
    ...(s ? {} : { note: input.note ?? 'usage not measured: the sandbox had no cgroup' }),
    cpu: s ? { ...s.cpu } : null,
    memory: s?.memory ? { peakBytes: s.memory.peak ?? null, limitBytes: s.memory.max, oomKills: s.memory.oomKill } : null,
    pids: s?.pids ? { peak: s.pids.peak ?? null, limit: s.pids.max, refusedForks: s.pids.refused } : null,
    io: s?.io ? { ...s.io } : null,
    limits: input.limits,
    enforcement: input.enforcement,
  };
}

export function writeReport(file: string, r: UsageReport): void {
  try {
    writeFileSync(file, `${JSON.stringify(r, null, 2)}\n`);
  } catch (e) {
    throw new HutchError(`--report: cannot write ${file}: ${(e as Error).message}`, { hint: 'give a path in a writable directory' });
  }
}

/** `--summary`: one line on stderr. */
export function summaryLine(r: UsageReport): string {
  const parts = [
    `exit ${r.exitCode}${r.killedBy ? ` (killed: ${r.killedBy === 'oom' ? 'out of memory' : 'timeout'})` : ''}`,
    `wall ${(r.wallMs / 1000).toFixed(2)} s`,
  ];
  if (r.cpu) {
    parts.push(`cpu ${formatSeconds(r.cpu.userUsec)} user + ${formatSeconds(r.cpu.systemUsec)} system`);
    if (r.cpu.nrThrottled) parts.push(`throttled ${formatSeconds(r.cpu.throttledUsec)}`);
  }
  if (r.memory)
    parts.push(`peak memory ${formatBytes(r.memory.peakBytes ?? undefined)}${r.memory.limitBytes !== null ? ` of ${formatBytes(r.memory.limitBytes)}` : ''}`);
  if (r.memory?.oomKills) parts.push(`oom kills ${r.memory.oomKills}`);
  if (r.pids) parts.push(`peak pids ${r.pids.peak ?? '-'}${r.pids.limit !== null ? ` of ${r.pids.limit}` : ''}`);
  if (!r.cpu) parts.push(r.note ?? 'usage not measured');
  return `hutch: ${r.name}: ${parts.join(', ')}`;
}

/** The OOM message, or undefined when nothing was OOM-killed. */
export function oomMessage(stats: CgroupStats | undefined, exitCode: number): string | undefined {
  const m = stats?.memory;
  if (!m || m.oomKill === 0) return undefined;
  const figures = `limit ${formatBytes(m.max)}, peak ${formatBytes(m.peak ?? m.current)}`;
  if (exitCode === 137) return `killed: out of memory, ${figures}`;
  return `out of memory: ${m.oomKill} process${m.oomKill > 1 ? 'es' : ''} in the sandbox killed (${figures})`;
}
