// podman's verbs for sandboxes by name: `logs`, `stop`, `kill`, `rm`, `wait`.
// A sandbox is running while its state directory (src/state/sandboxes.ts)
// has a live hutch; a detached one also has a record (src/state/records.ts)
// with its log and, once it exited, its status.

import { openSync, readSync, closeSync, fstatSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { constants } from 'node:os';
import { writeCg } from '../cgroup/files';
import { runningSandboxes, type Running } from '../cgroup/running';
import { SandboxCgroup } from '../cgroup/sandbox-cgroup';
import { identity } from '../host/ids';
import { hutchPaths } from '../host/paths';
import { FORWARDED_SIGNALS } from '../helper/spawn';
import { LineSplitter, LogPrinter, lastLines, logInode, parseEntry } from '../state/logs';
import { listRecords, LOG_FILE, ownerAlive, readRecord, recordDir, removeRecord, type SandboxRecord } from '../state/records';
import { HutchError } from '../util/errors';
import { inspectView } from './inspect';
import { running as alive } from '../util/proc';
import { suggest } from '../util/suggest';
import { flagBool, flagString, formatFlagHelp, parseArgs, type FlagDef } from './args';

const HELP: FlagDef = { name: 'help', short: 'h', kind: 'bool', help: 'show this help' };
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function recordsDir(): string {
  const ids = identity(process.env);
  return hutchPaths(process.env, ids.home, ids.uid).recordsDir;
}

interface Target {
  name: string;
  running?: Running;
  record?: SandboxRecord;
  recordDir?: string;
}

/** A sandbox by name, running or recorded; a clear 125 when there is none. */
function target(name: string): Target {
  const dir = recordsDir();
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

/** The process that keeps the sandbox (its monitor, or a resident hutch), while it runs. */
function hutchPid(t: Target): number | undefined {
  const pid = t.running?.state.pid;
  if (pid && alive(pid)) return pid;
  const rec = t.recordDir ? readRecord(t.recordDir) : undefined;
  return rec && rec.status !== 'exited' && ownerAlive(rec) ? rec.pid : undefined;
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

/**
 * A paused sandbox (hutch pause) would keep a signal pending until `hutch
 * resume`: thaw it first. An attached hutch does so when it forwards a
 * signal; a detached sandbox has only its monitor, which cannot.
 */
function thaw(t: Target): void {
  const path = t.running?.state.cgroup;
  if (!path) return;
  try {
    if (new SandboxCgroup(path).events().frozen === 1) writeCg(path, 'cgroup.freeze', '0');
  } catch {
    /* gone meanwhile */
  }
}

async function stopOne(t: Target, graceS: number): Promise<void> {
  if (!hutchPid(t)) return; // already exited: podman's stop is fine with that
  thaw(t);
  signal(hutchPid(t), 'SIGTERM'); // the monitor (or hutch) forwards it to the command
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
    else {
      thaw(x);
      signal(hutchPid(x), sig);
    }
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
    { name: 'follow', short: 'f', kind: 'bool', help: 'keep printing new output until the sandbox exits (also across a rotation of the log)' },
    { name: 'tail', kind: 'string', valueName: 'N', help: 'only the last N lines' },
    { name: 'timestamps', short: 't', kind: 'bool', help: 'print the time each line was written (UTC, nanoseconds) before it' },
  ];
  const p = parse(argv, 'logs', '[-f] [--tail N] [-t] NAME', 'Print the output of a detached sandbox (hutch run -d).', flags);
  if (!p) return 0;
  const x = target(p.positionals[0]);
  if (!x.recordDir)
    throw new HutchError(`sandbox "${x.name}" was not started with -d: its output went to its terminal`, { hint: 'hutch run -d --name NAME ... keeps a log' });
  const tail = flagString(p, 'tail');
  if (tail !== undefined && !/^\d+$/.test(tail)) throw new HutchError(`--tail: "${tail}" is not a number of lines`, { hint: 'hutch logs --tail 20 NAME' });
  const follow = flagBool(p, 'follow');
  const printer = new LogPrinter(flagBool(p, 'timestamps'), (s) => process.stdout.write(s));
  const dir = x.recordDir;
  const logPath = join(dir, LOG_FILE);
  const open = () => {
    try {
      return openSync(logPath, 'r');
    } catch {
      return undefined;
    }
  };
  // log.1 whole, then log from an fd that follow keeps reading (a rotation renames it to log.1 under us)
  const older = readText(join(dir, `${LOG_FILE}.1`));
  let fd = open();
  let pos = 0;
  const buf = Buffer.alloc(65536);
  const readMore = (): string => {
    let out = '';
    if (fd === undefined) return out;
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n <= 0) return out;
      pos += n;
      out += buf.subarray(0, n).toString('utf8');
    }
  };
  const lines = new LineSplitter();
  let entries = lines.push(older + (older && !older.endsWith('\n') ? '\n' : '') + readMore()).map(parseEntry);
  if (tail !== undefined) entries = lastLines(entries, Number(tail));
  for (const e of entries) printer.print(e);
  if (!follow) {
    if (fd !== undefined) closeSync(fd);
    return 0;
  }
  try {
    for (;;) {
      const more = readMore();
      if (more) {
        for (const l of lines.push(more)) printer.print(parseEntry(l));
        continue;
      }
      const ino = logInode(dir);
      if (ino !== undefined && (fd === undefined || ino !== fstatSync(fd).ino)) {
        // rotated (or created): finish the old file, then the new one from its start; when
        // two rotations came between two looks, the one in between is log.1 now
        if (fd !== undefined) {
          const mid = statIno(join(dir, `${LOG_FILE}.1`));
          const old = fstatSync(fd).ino;
          closeSync(fd);
          if (mid !== undefined && mid !== old) for (const l of lines.push(readText(join(dir, `${LOG_FILE}.1`)))) printer.print(parseEntry(l));
        }
        fd = open();
        pos = 0;
        continue;
      }
      if (!hutchPid(x)) {
        // one last look: what was written just before the exit
        const last = readMore();
        for (const l of lines.push(last)) printer.print(parseEntry(l));
        if (!last) return 0;
        continue;
      }
      await sleep(100);
    }
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function statIno(path: string): number | undefined {
  try {
    return statSync(path).ino;
  } catch {
    return undefined;
  }
}
