// podman's verbs for sandboxes by name: `logs`, `stop`, `kill`, `rm`, `wait`.
// A sandbox is running while its state directory (src/state/sandboxes.ts)
// has a live hutch; a detached one also has a record (src/state/records.ts)
// with its log and, once it exited, its status.

import { openSync, readSync, closeSync, fstatSync } from 'node:fs';
import { join } from 'node:path';
import { constants } from 'node:os';
import { runningSandboxes, type Running } from '../cgroup/running';
import { identity } from '../host/ids';
import { hutchPaths } from '../host/paths';
import { FORWARDED_SIGNALS } from '../helper/spawn';
import { listRecords, LOG_FILE, readRecord, recordDir, removeRecord, type SandboxRecord } from '../state/records';
import { HutchError } from '../util/errors';
import { inspectView } from './inspect';
import { running as alive } from '../util/proc';
import { suggest } from '../util/suggest';
import { flagBool, flagString, formatFlagHelp, parseArgs, type FlagDef } from './args';

const HELP: FlagDef = { name: 'help', short: 'h', kind: 'bool', help: 'show this help' };
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function stateDir(): string {
  const ids = identity(process.env);
  return hutchPaths(process.env, ids.home, ids.uid).stateDir;
}

interface Target {
  name: string;
  running?: Running;
  record?: SandboxRecord;
  recordDir?: string;
}

/** A sandbox by name, running or recorded; a clear 125 when there is none. */
function target(name: string): Target {
  const dir = stateDir();
  const running = runningSandboxes().find((r) => r.state.name === name);
  const rdir = recordDir(dir, name);
  const record = readRecord(rdir);
  if (running || record)
    return { name, running, record: record && listRecords(dir).find((r) => r.record.name === name)?.record, recordDir: record ? rdir : undefined };
  const known = [...runningSandboxes().map((r) => r.state.name), ...listRecords(dir).map((r) => r.record.name)];
  const near = suggest(name, known);
  throw new HutchError(`no sandbox named "${name}"`, { hint: near ? `did you mean "${near}"? (hutch ps -a)` : 'hutch ps -a lists them' });
}

function usage(verb: string, args: string, what: string, flags: FlagDef[]): string {
  return `Usage: hutch ${verb} ${args}\n\n${what}\n\nFlags:\n${formatFlagHelp(flags)}\n`;
}

function parse(argv: string[], verb: string, args: string, what: string, flags: FlagDef[]) {
  const all = [...flags, HELP];
  const p = parseArgs(argv, all, verb);
  if (flagBool(p, 'help')) {
    process.stdout.write(usage(verb, args, what, all));
    return undefined;
  }
  if (!p.positionals.length) throw new HutchError(`hutch ${verb} needs a sandbox name`, { hint: `hutch ${verb} ${args} (see hutch ps -a)` });
  return p;
}

function hutchPid(t: Target): number | undefined {
  const pid = t.running?.state.pid ?? t.record?.hutchPid;
  return pid && alive(pid) ? pid : undefined;
}

function signal(pid: number | undefined, sig: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(pid, sig);
  } catch {
    /* gone meanwhile */
  }
}

async function gone(t: Target, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (!hutchPid(t)) return true;
    if (Date.now() >= deadline) return false;
    await sleep(50);
  }
}

/** SIGKILL: pid 1 of the sandbox (the kernel ends the rest; hutch records 137), else hutch (its lifeline ends the sandbox). */
function killNow(t: Target): void {
  const init = t.record?.initPid;
  if (init && alive(init)) signal(init, 'SIGKILL');
  else signal(hutchPid(t), 'SIGKILL');
}

async function stopOne(t: Target, graceS: number): Promise<void> {
  if (!hutchPid(t)) return; // already exited: podman's stop is fine with that
  signal(hutchPid(t), 'SIGTERM'); // hutch forwards it to the command
  if (await gone(t, graceS * 1000)) return;
  killNow(t);
  if (!(await gone(t, 10_000)))
    throw new HutchError(`sandbox "${t.name}" did not stop after SIGKILL`, { hint: 'see hutch ps; its hutch may be stopped (SIGSTOP)' });
}

export async function stopCommand(argv: string[]): Promise<number> {
  const flags: FlagDef[] = [{ name: 'time', short: 't', kind: 'string', valueName: 'SECONDS', help: 'grace time before SIGKILL (default 10)' }];
  const p = parse(argv, 'stop', '[-t SECONDS] NAME...', 'Stop running sandboxes: SIGTERM to the command, SIGKILL after the grace time.', flags);
  if (!p) return 0;
  const t = flagString(p, 'time') ?? '10';
  if (!/^\d+$/.test(t)) throw new HutchError(`--time: "${t}" is not a whole number of seconds`, { hint: 'hutch stop -t 5 NAME' });
  const targets = p.positionals.map(target);
  for (const x of targets) {
    await stopOne(x, Number(t));
    process.stdout.write(`${x.name}\n`);
  }
  return 0;
}

export async function killCommand(argv: string[]): Promise<number> {
  const flags: FlagDef[] = [{ name: 'signal', short: 's', kind: 'string', valueName: 'SIGNAL', help: 'signal to send (default KILL)' }];
  const p = parse(argv, 'kill', '[-s SIGNAL] NAME...', 'Send a signal to the command of running sandboxes.', flags);
  if (!p) return 0;
  const raw = (flagString(p, 'signal') ?? 'KILL').toUpperCase();
  const sig = (/^\d+$/.test(raw) ? Object.entries(constants.signals).find(([, n]) => n === Number(raw))?.[0] : raw.startsWith('SIG') ? raw : `SIG${raw}`) as
    | NodeJS.Signals
    | undefined;
  if (!sig || (sig !== 'SIGKILL' && !FORWARDED_SIGNALS.includes(sig))) {
    throw new HutchError(`--signal: ${raw} cannot be sent to a sandbox`, { hint: `one of KILL, ${FORWARDED_SIGNALS.map((s) => s.slice(3)).join(', ')}` });
  }
  for (const x of p.positionals.map(target)) {
    if (!hutchPid(x)) throw new HutchError(`sandbox "${x.name}" is not running`, { hint: `hutch ps -a; hutch rm ${x.name} removes it` });
    if (sig === 'SIGKILL') killNow(x);
    else signal(hutchPid(x), sig);
    process.stdout.write(`${x.name}\n`);
  }
  return 0;
}

export async function rmCommand(argv: string[]): Promise<number> {
  const flags: FlagDef[] = [{ name: 'force', short: 'f', kind: 'bool', help: 'stop (SIGKILL) a running sandbox first' }];
  const p = parse(argv, 'rm', '[-f] NAME...', "Remove exited sandboxes' records (ps -a, logs); -f also running ones.", flags);
  if (!p) return 0;
  const force = flagBool(p, 'force');
  const targets = p.positionals.map(target);
  for (const x of targets) {
    if (hutchPid(x)) {
      if (!force) throw new HutchError(`sandbox "${x.name}" is running`, { hint: `hutch stop ${x.name} first, or hutch rm -f ${x.name}` });
      killNow(x);
      if (!(await gone(x, 10_000))) throw new HutchError(`sandbox "${x.name}" did not stop after SIGKILL`);
    }
    if (x.recordDir) removeRecord(x.recordDir);
    process.stdout.write(`${x.name}\n`);
  }
  return 0;
}

export async function inspectCommand(argv: string[]): Promise<number> {
  const p = parse(
    argv,
    'inspect',
    'NAME...',
    'Print what hutch knows of sandboxes as JSON: the spec as resolved, the plan the helper executed, the state, ports, limits, network and the detached record.',
    [],
  );
  if (!p) return 0;
  const out = p.positionals.map(target).map((x) => inspectView({ ...x, status: hutchPid(x) ? 'running' : 'exited' }));
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  return 0;
}

export async function waitCommand(argv: string[]): Promise<number> {
  const p = parse(argv, 'wait', 'NAME...', 'Wait until sandboxes exit and print their exit status.', []);
  if (!p) return 0;
  for (const x of p.positionals.map(target)) {
    await gone(x, Infinity);
    const rec = x.recordDir ? readRecord(x.recordDir) : undefined;
    process.stdout.write(`${rec?.exitCode ?? (x.recordDir ? 'unknown' : '-')}\n`);
  }
  return 0;
}

export async function logsCommand(argv: string[]): Promise<number> {
  const flags: FlagDef[] = [
    { name: 'follow', short: 'f', kind: 'bool', help: 'keep printing new output until the sandbox exits' },
    { name: 'tail', kind: 'string', valueName: 'N', help: 'only the last N lines' },
  ];
  const p = parse(argv, 'logs', '[-f] [--tail N] NAME', 'Print the output of a detached sandbox (hutch run -d).', flags);
  if (!p) return 0;
  const x = target(p.positionals[0]);
  if (!x.recordDir)
    throw new HutchError(`sandbox "${x.name}" was not started with -d: its output went to its terminal`, { hint: 'hutch run -d --name NAME ... keeps a log' });
  const tail = flagString(p, 'tail');
  if (tail !== undefined && !/^\d+$/.test(tail)) throw new HutchError(`--tail: "${tail}" is not a number of lines`);
  const fd = openSync(join(x.recordDir, LOG_FILE), 'r');
  try {
    let pos = 0;
    if (tail !== undefined) pos = tailStart(fd, Number(tail));
    const buf = Buffer.alloc(65536);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n > 0) {
        pos += n;
        process.stdout.write(buf.subarray(0, n));
        continue;
      }
      if (!flagBool(p, 'follow') || !hutchPid(x)) {
        // one last read: what was written just before the exit
        if (flagBool(p, 'follow') && fstatSync(fd).size > pos) continue;
        return 0;
      }
      await sleep(100);
    }
  } finally {
    closeSync(fd);
  }
}

/** Offset of the last `lines` lines of the file. */
function tailStart(fd: number, lines: number): number {
  const size = fstatSync(fd).size;
  const buf = Buffer.alloc(Math.min(size, 4 << 20));
  const start = size - buf.length;
  readSync(fd, buf, 0, buf.length, start);
  let end = buf.length;
  if (end && buf[end - 1] === 0x0a) end--;
  let seen = 0;
  for (let i = end - 1; i >= 0; i--) if (buf[i] === 0x0a && ++seen === lines) return start + i + 1;
  return lines === 0 ? size : start;
}
