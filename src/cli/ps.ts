// `hutch ps`: running sandboxes, from the state directory.

import { runningSandboxes } from '../cgroup/running';
import { identity } from '../host/ids';
import { hutchPaths } from '../host/paths';
import { listRecords, type SandboxRecord } from '../state/records';
import { flagBool, formatFlagHelp, parseArgs, type FlagDef } from './args';
import { hostAddr } from '../net/ports';
import type { SandboxState } from '../state/sandboxes';

const FLAGS: FlagDef[] = [
  { name: 'all', short: 'a', kind: 'bool', help: 'also exited sandboxes started with -d (until hutch rm), with their status' },
  { name: 'json', kind: 'bool', help: 'print a JSON array (the state of each sandbox)' },
  { name: 'quiet', short: 'q', kind: 'bool', help: 'print names only' },
  { name: 'help', short: 'h', kind: 'bool', help: 'show this help' },
];

const USAGE = `Usage: hutch ps [FLAGS]

List running sandboxes (started by hutch run as you); -a also exited ones started with -d.

Flags:
${formatFlagHelp(FLAGS)}
`;

function age(iso: string): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ''}`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}

export function table(rows: string[][]): string {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return (
    rows
      .map((r) =>
        r
          .map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i] + 2)))
          .join('')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

export async function psCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, FLAGS, 'ps');
  if (flagBool(p, 'help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const all = runningSandboxes();
  // -a: exited detached sandboxes too (a record whose sandbox is not running)
  const ids = identity(process.env);
  const exited: SandboxRecord[] = flagBool(p, 'all')
    ? listRecords(hutchPaths(process.env, ids.home, ids.uid).recordsDir)
        .map((r) => r.record)
        .filter((r) => r.status === 'exited' && !all.some((s) => s.state.name === r.name))
    : [];
  if (flagBool(p, 'json')) {
    process.stdout.write(
      `${JSON.stringify([...all.map((r) => ({ ...r.state, status: 'running' })), ...exited.map((r) => ({ ...r, status: 'exited' }))], null, 2)}\n`,
    );
    return 0;
  }
  if (flagBool(p, 'quiet')) {
    for (const r of all) process.stdout.write(`${r.state.name}\n`);
    for (const r of exited) process.stdout.write(`${r.name}\n`);
    return 0;
  }
  const withStatus = flagBool(p, 'all');
  const rows = [['NAME', 'PID', 'UP', ...(withStatus ? ['STATUS'] : []), 'PROFILE', 'NETWORK', 'PORTS', 'CGROUP', 'COMMAND']];
  // podman's PORTS: every published port with its protocol (those of `hutch network connect -p` too)
  const ports = (s: SandboxState) => s.ports?.map((f) => `${hostAddr(f.hostIp, f.hostPort)}->${f.containerPort}/${f.protocol}`).join(',') || '-';
  for (const { state: s } of all) {
    rows.push([
      s.name,
      String(s.pid),
      age(s.startedAt),
      ...(withStatus ? ['running'] : []),
      s.profile[0] ?? '-',
      s.networks?.length ? s.networks.map((n) => (s.addresses?.[n] ? `${n} (${s.addresses[n]})` : n)).join(',') : s.network,
      ports(s),
      s.cgroup ? 'yes' : 'no',
      s.command.join(' '),
    ]);
  }
  for (const r of exited) {
    const status = `exited (${r.exitCode ?? 'unknown'})${r.exitedAt ? ` ${age(r.exitedAt)} ago` : ''}`;
    rows.push([r.name, '-', '-', status, r.profile[0] ?? '-', '-', '-', '-', r.command.join(' ')]);
  }
  process.stdout.write(table(rows));
  return 0;
}
