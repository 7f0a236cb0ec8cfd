// Detached sandboxes (`hutch run -d`) have a record that outlives them:
// $XDG_STATE_HOME/hutch/records/<name>/{record.json,log,log.1,exit}. It is
// persistent storage, like podman's container store: a reboot (or a lost
// runtime directory) leaves the records of what ran, and says honestly that
// their status is unknown. The running sandbox itself is found through its
// state directory (sandboxes.ts) as always; the record adds what podman users
// expect of an exited container: `ps -a`, `logs`, `wait`.
//
// Who writes what: hutch writes record.json while it starts the sandbox; from
// then on the helper's monitor owns the sandbox (helper-c/PLAN.md, "Detached
// sandboxes"): it writes `log` (k8s-file lines, rotated to log.1) and, at exit,
// `exit` ("CODE TIME"), and with --rm removes the whole directory. Only the
// runs that keep a resident hutch (--restart, --watch, ...: src/cli/detach.ts)
// have hutch record the exit itself (recordExit).

import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePrivateDir } from '../host/paths';
import { HutchError } from '../util/errors';
import { running as alive } from '../util/proc';

export interface SandboxRecord {
  name: string;
  command: string[];
  profile: string[];
  createdAt: string;
  /** starting: hutch is setting it up; running: its pid 1 exists; exited: exitCode says how (none: unknown). */
  status: 'starting' | 'running' | 'exited';
  /** The process that keeps the sandbox: the helper's monitor, or a resident hutch (`resident`). */
  pid?: number;
  /** Its start time (/proc/PID/stat field 22) and the boot it ran in: a reused pid, or a reboot, is not it. */
  pidStart?: number;
  bootId?: string;
  /** A hutch process stays for this sandbox (--restart, --watch, ...), and says why. */
  resident?: string;
  /** Host pid of the sandbox's pid 1 (the helper's init). */
  initPid?: number;
  exitCode?: number;
  exitedAt?: string;
  /** --rm: the record goes when the sandbox exits. */
  autoRemove: boolean;
}

export const LOG_FILE = 'log';
/** Written by the monitor at exit: "CODE TIME". */
export const EXIT_FILE = 'exit';
/** `hutch run --log-max-size` default: log and log.1 together stay under twice this. */
export const DEFAULT_LOG_MAX = 4 << 20;

export function recordDir(recordsDir: string, name: string): string {
  return join(recordsDir, name);
}

/** The monitor's "CODE TIME" (helper-c/monitor.c write_exit_files). */
function readExit(dir: string): Pick<SandboxRecord, 'exitCode' | 'exitedAt'> | undefined {
  try {
    const m = /^(\d+) (\S+)\n$/.exec(readFileSync(join(dir, EXIT_FILE), 'utf8'));
    return m ? { exitCode: Number(m[1]), exitedAt: m[2] } : undefined;
  } catch {
    return undefined;
  }
}

export function readRecord(dir: string): SandboxRecord | undefined {
  let rec: SandboxRecord;
  try {
    rec = JSON.parse(readFileSync(join(dir, 'record.json'), 'utf8')) as SandboxRecord;
  } catch {
    return undefined;
  }
  const exit = readExit(dir);
  return exit ? { ...rec, ...exit, status: 'exited' } : rec;
}

/** Atomic, like writeState: `ps -a` never reads half a record. */
export function writeRecord(dir: string, rec: SandboxRecord): void {
  const tmp = join(dir, `.record.json.${process.pid}`);
  writeFileSync(tmp, `${JSON.stringify(rec, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, join(dir, 'record.json'));
}

export function updateRecord(dir: string, change: Partial<SandboxRecord>): void {
  let rec: SandboxRecord;
  try {
    rec = JSON.parse(readFileSync(join(dir, 'record.json'), 'utf8')) as SandboxRecord;
  } catch {
    return; // removed meanwhile (--rm)
  }
  writeRecord(dir, { ...rec, ...change });
}

export function bootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Start time of a process in clock ticks since boot, undefined when it is gone. */
export function pidStartTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  } catch {
    return undefined;
  }
}

/** What identifies the process that keeps a sandbox, for the record. */
export function ownerOf(pid: number): Pick<SandboxRecord, 'pid' | 'pidStart' | 'bootId'> {
  return { pid, pidStart: pidStartTime(pid), bootId: bootId() };
}

/** The process that keeps the sandbox still runs: same boot, same pid, same start time. */
export function ownerAlive(rec: SandboxRecord): boolean {
  if (!rec.pid || !alive(rec.pid)) return false;
  if (rec.bootId && rec.bootId !== bootId()) return false;
  if (rec.pidStart !== undefined) {
    const now = pidStartTime(rec.pid);
    if (now !== undefined && now !== rec.pidStart) return false;
  }
  return true;
}

/**
 * The record as it really is: one that says starting/running whose keeper is
 * gone (its monitor SIGKILLed, the machine rebooted) is exited, status unknown.
 */
export function effective(rec: SandboxRecord): SandboxRecord {
  if (rec.status !== 'exited' && !ownerAlive(rec)) return { ...rec, status: 'exited' };
  return rec;
}

/** Claim a record for `name`; an exited one of the same name must be removed first (podman's rule). */
export function createRecord(recordsDir: string, uid: number, rec: SandboxRecord): string {
  mkdirSync(recordsDir, { recursive: true, mode: 0o700 });
  // a real path, private to the user: the monitor's `cleanup` (--rm) removes a record only under such a parent
  const base = ensurePrivateDir(recordsDir, uid, 'the records directory');
  const dir = recordDir(base, rec.name);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const old = readRecord(dir);
    if (!old || effective(old).status === 'exited') {
      throw new HutchError(`a sandbox named "${rec.name}" exists (exited)`, { hint: `remove it with hutch rm ${rec.name}, or choose another --name` });
    }
    throw new HutchError(`a sandbox named "${rec.name}" is already running`, { hint: `hutch stop ${rec.name}, or choose another --name` });
  }
  writeRecord(dir, rec);
  return dir;
}

export function listRecords(recordsDir: string): { dir: string; record: SandboxRecord }[] {
  let names: string[];
  try {
    names = readdirSync(recordsDir);
  } catch {
    return [];
  }
  const out: { dir: string; record: SandboxRecord }[] = [];
  for (const n of names) {
    const dir = recordDir(recordsDir, n);
    const record = readRecord(dir);
    if (record) out.push({ dir, record: effective(record) });
  }
  return out.sort((a, b) => a.record.createdAt.localeCompare(b.record.createdAt));
}

export function removeRecord(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
