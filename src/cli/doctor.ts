// `hutch doctor`: is this host ready for hutch, and if not, exactly what to
// run. Every check is ok / warning / error with the command that fixes it;
// errors are what blocks `hutch run` with the default profile (exit 1),
// warnings are features that will be missing (exit 0).

import { sep } from 'node:path';
import { HutchError } from '../util/errors';
import { identity } from '../host/ids';
import { check, type Check, type Status } from '../doctor/probe';
import { probeCgroups } from '../doctor/probe-cgroup';
import { probeSubids } from '../doctor/probe-ids';
import { probeNetwork } from '../doctor/probe-net';
import { probeSecurity } from '../doctor/probe-security';
import { probeStorage } from '../doctor/probe-storage';
import { probeUserns } from '../doctor/probe-userns';
import { helperDirs, isSingleExecutable, locateHelper, type HelperLocation } from '../host/self';
import { VERSION } from '../util/version';
import { flagBool, formatFlagHelp, parseArgs, type FlagDef } from './args';

const FLAGS: FlagDef[] = [
  { name: 'json', kind: 'bool', help: 'print the report as one JSON document' },
  { name: 'help', short: 'h', kind: 'bool', help: 'show this help' },
];

const USAGE = `Usage: hutch doctor [--json]

Check that this host can run hutch sandboxes: user namespaces, subordinate
ids, overlay storage, user-mode networking, cgroups, seccomp and Landlock.
Each check prints ok, warning or error, and the exact command that fixes it.
Exit status: 0 when hutch can run (warnings are missing features), 1 when
something blocks it.

Flags:
${formatFlagHelp(FLAGS)}
`;

export interface DoctorReport {
  version: string;
  canRun: boolean;
  user: { name: string; uid: number; gid: number };
  counts: Record<Status, number>;
  checks: Check[];
}

/** A glob matching every helper hutch may extract (for the AppArmor profile). */
function helperGlob(loc: HelperLocation, env: NodeJS.ProcessEnv): string {
  if (loc.source !== 'sea') return loc.path;
  // the private copies have no name of their own: every file in the helper directories
  return `{${helperDirs(env, process.getuid!()).join(',')}}${sep}helper${sep}*`;
}

export async function doctorReport(env: NodeJS.ProcessEnv = process.env): Promise<DoctorReport> {
  const ids = identity(env);
  const checks: Check[] = [];
  let loc: HelperLocation | undefined;
  try {
    loc = locateHelper(env);
    const where = loc.source === 'sea' ? 'extracted from this binary to' : loc.source === 'env' ? 'from HUTCH_HELPER:' : 'beside the bundle:';
    checks.push(
      check({
        id: 'hutch.helper',
        area: 'hutch',
        status: 'ok',
        summary: `helper ${where} ${loc.shown}${loc.note ? ` (${loc.note})` : ''}`,
        facts: { path: loc.shown, source: loc.source, sha256: loc.sha256, note: loc.note, singleExecutable: isSingleExecutable() },
      }),
    );
  } catch (e) {
    if (!(e instanceof HutchError)) throw e;
    checks.push(check({ id: 'hutch.helper', area: 'hutch', status: 'error', summary: e.message, fix: e.hint }));
  }
  if (loc) {
    const [userns, subids, storage] = [
      await probeUserns(loc.path, helperGlob(loc, env), ids),
      await probeSubids(loc.path, ids, env),
      await probeStorage(loc.path, ids, env),
    ];
    checks.push(...userns, ...subids, ...storage);
  }
  checks.push(...probeNetwork(env), ...probeCgroups(process.getuid!(), env), ...probeSecurity());
  const counts: Record<Status, number> = { ok: 0, warning: 0, error: 0 };
  for (const c of checks) counts[c.status]++;
  return { version: VERSION, canRun: counts.error === 0, user: { name: ids.user, uid: ids.uid, gid: ids.gid }, counts, checks };
}

const LABEL: Record<Status, string> = { ok: 'ok   ', warning: 'warn ', error: 'ERROR' };

export function formatReport(r: DoctorReport, color = false): string {
  const paint = (s: Status, text: string) => (color ? `\x1b[${s === 'ok' ? 32 : s === 'warning' ? 33 : 31}m${text}\x1b[0m` : text);
  const lines = [`hutch ${r.version} doctor, for ${r.user.name} (uid ${r.user.uid})`];
  let area = '';
  for (const c of r.checks) {
    if (c.area !== area) {
      area = c.area;
      lines.push('', area);
    }
    lines.push(`  ${paint(c.status, LABEL[c.status])} ${c.summary}`);
    if (c.status !== 'ok') {
      if (c.detail) lines.push(`        ${c.detail}`);
      if (c.fix) lines.push(`        fix: ${c.fix}`);
    }
  }
  lines.push('');
  const tally = `${r.counts.error} error${r.counts.error === 1 ? '' : 's'}, ${r.counts.warning} warning${r.counts.warning === 1 ? '' : 's'}`;
  lines.push(r.canRun ? `hutch can run here (${tally})` : `hutch cannot run here: ${tally}; run the fix commands above`);
  return `${lines.join('\n')}\n`;
}

export async function doctorCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, FLAGS, 'doctor');
  if (flagBool(p, 'help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (p.positionals.length) throw new HutchError(`doctor takes no arguments (got ${p.positionals.join(' ')})`, { hint: 'hutch doctor [--json]' });
  const report = await doctorReport(process.env);
  if (flagBool(p, 'json')) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(formatReport(report, process.stdout.isTTY === true && process.env.NO_COLOR === undefined));
  return report.canRun ? 0 : 1;
}
