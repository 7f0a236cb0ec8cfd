// `hutch stats [NAME...]`: live usage of running sandboxes from their
// cgroups: CPU % (from cpu.stat usage_usec between two samples), memory
// usage/limit, pids, block I/O. A refreshing table on a terminal;
// --no-stream prints one sample; --json prints JSON.

import { HutchError } from '../util/errors';
import { formatBytes } from '../cgroup/format';
import { findSandbox, runningSandboxes, type Running } from '../cgroup/running';
import { SandboxCgroup, type CgroupStats } from '../cgroup/sandbox-cgroup';
import { parseDuration } from '../util/units';
import { flagBool, flagString, formatFlagHelp, parseArgs, type FlagDef } from './args';
import { table } from './ps';

const FLAGS: FlagDef[] = [
  { name: 'no-stream', kind: 'bool', help: 'print one sample and exit' },
  { name: 'json', kind: 'bool', help: 'JSON output (one array per sample)' },
  { name: 'interval', kind: 'string', valueName: 'DURATION', help: 'time between samples (default 1s); CPU % is measured over it' },
  { name: 'help', short: 'h', kind: 'bool', help: 'show this help' },
];

const USAGE = `Usage: hutch stats [FLAGS] [NAME...]

Live resource usage of running sandboxes (all of them without NAME).

Flags:
${formatFlagHelp(FLAGS)}
`;

export interface StatsRow {
  name: string;
  cgroup: string | null;
  cpuPercent: number | null;
  cpuUsec: number | null;
  memoryBytes: number | null;
  memoryLimitBytes: number | null;
  memoryPeakBytes: number | null;
  pids: number | null;
  pidsLimit: number | null;
  blockReadBytes: number | null;
  blockWriteBytes: number | null;
  frozen: boolean;
  oomKills: number;
}

interface Sample {
  at: number;
  stats?: CgroupStats;
}

function sample(r: Running): Sample {
  if (!r.state.cgroup) return { at: performance.now() };
  try {
    return { at: performance.now(), stats: new SandboxCgroup(r.state.cgroup).stats() };
  } catch {
    return { at: performance.now() };
  }
}

function row(r: Running, a: Sample, b: Sample): StatsRow {
  const s = b.stats;
  const dt = (b.at - a.at) * 1000; // usec
  const cpu = s && a.stats && dt > 0 ? ((s.cpu.usageUsec - a.stats.cpu.usageUsec) / dt) * 100 : null;
  return {
    name: r.state.name,
    cgroup: r.state.cgroup ?? null,
    cpuPercent: cpu === null ? null : Math.max(0, Math.round(cpu * 100) / 100),
    cpuUsec: s?.cpu.usageUsec ?? null,
    memoryBytes: s?.memory?.current ?? null,
    memoryLimitBytes: s?.memory?.max ?? null,
    memoryPeakBytes: s?.memory?.peak ?? null,
    pids: s?.pids?.current ?? null,
    pidsLimit: s?.pids?.max ?? null,
    blockReadBytes: s?.io?.readBytes ?? null,
    blockWriteBytes: s?.io?.writeBytes ?? null,
    frozen: s?.frozen ?? false,
    oomKills: s?.memory?.oomKill ?? 0,
  };
}

function render(rows: StatsRow[]): string {
  const out = [['NAME', 'CPU %', 'MEM USAGE / LIMIT', 'MEM %', 'PIDS', 'BLOCK I/O', 'STATE']];
  for (const r of rows) {
    if (r.cgroup === null) {
      out.push([r.name, '-', '-', '-', '-', '-', 'no cgroup']);
      continue;
    }
    const memPct = r.memoryBytes !== null && r.memoryLimitBytes ? `${((r.memoryBytes / r.memoryLimitBytes) * 100).toFixed(2)}%` : '-';
    out.push([
      r.name,
      r.cpuPercent === null ? '-' : `${r.cpuPercent.toFixed(2)}%`,
      r.memoryBytes === null ? '-' : `${formatBytes(r.memoryBytes)} / ${formatBytes(r.memoryLimitBytes)}`,
      memPct,
      r.pids === null ? '-' : `${r.pids}${r.pidsLimit !== null ? ` / ${r.pidsLimit}` : ''}`,
      r.blockReadBytes === null ? '-' : `${formatBytes(r.blockReadBytes)} / ${formatBytes(r.blockWriteBytes)}`,
      r.frozen ? 'paused' : r.oomKills ? `running (${r.oomKills} oom kills)` : 'running',
    ]);
  }
  return table(out);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function statsCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, FLAGS, 'stats');
  if (flagBool(p, 'help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const interval = parseDuration(flagString(p, 'interval') ?? '1s', '--interval');
  if (interval < 100) throw new HutchError('--interval: at least 100ms', { hint: '--interval 1s' });
  const json = flagBool(p, 'json');
  const once = flagBool(p, 'no-stream');
  const pick = (): Running[] => {
    const all = runningSandboxes();
    return p.positionals.length ? p.positionals.map((n) => findSandbox(n, all)) : all;
  };
  const tty = process.stdout.isTTY && !json;
  let targets = pick();
  let prev = new Map(targets.map((r) => [r.state.name, sample(r)]));
  for (;;) {
    await sleep(once ? Math.min(interval, 500) : interval);
    targets = p.positionals.length ? targets.filter((r) => runningSandboxes().some((x) => x.state.name === r.state.name)) : pick();
    const rows: StatsRow[] = [];
    const next = new Map<string, Sample>();
    for (const r of targets) {
      const b = sample(r);
      next.set(r.state.name, b);
      rows.push(row(r, prev.get(r.state.name) ?? b, b));
    }
    prev = next;
    const text = json ? `${JSON.stringify(rows)}\n` : render(rows);
    process.stdout.write(tty ? `\x1b[H\x1b[2J${text}` : text);
    if (once) return 0;
    if (p.positionals.length && !targets.length) return 0;
  }
}
