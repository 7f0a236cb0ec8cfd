// Detached sandboxes (`hutch run -d`) have a record that outlives them:
// <runtime dir>/hutch/.records/<name>/{record.json,log}. It holds the output
// and, once the command ended, its exit status, until `hutch rm` (or at exit
// with --rm). The running sandbox itself is found through its state
// directory (sandboxes.ts) as always; the record only adds what podman users
// expect of an exited container: `ps -a`, `logs`, `wait`.

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
  /** starting: hutch is setting it up; running: its pid 1 exists; exited: exitCode says how. */
  status: 'starting' | 'running' | 'exited';
  /** The hutch process that owns the sandbox while it runs. */
  hutchPid?: number;
  /** Host pid of the sandbox's pid 1 (the helper's init). */
  initPid?: number;
  exitCode?: number;
  exitedAt?: string;
  /** --rm: the record goes when the sandbox exits. */
  autoRemove: boolean;
}

export const RECORDS = '.records';
export const LOG_FILE = 'log';

export function recordDir(stateDir: string, name: string): string {
  return join(stateDir, RECORDS, name);
}

export function readRecord(dir: string): SandboxRecord | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'record.json'), 'utf8')) as SandboxRecord;
  } catch {
    return undefined;
  }
}

/** Atomic, like writeState: `ps -a` never reads half a record. */
export function writeRecord(dir: string, rec: SandboxRecord): void {
  const tmp = join(dir, `.record.json.${process.pid}`);
  writeFileSync(tmp, `${JSON.stringify(rec, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, join(dir, 'record.json'));
}

export function updateRecord(dir: string, change: Partial<SandboxRecord>): void {
  const rec = readRecord(dir);
  if (rec) writeRecord(dir, { ...rec, ...change });
}

/**
 * The record as it really is: a record that says starting/running whose hutch
 * is gone (SIGKILLed, or the runtime directory lost) is exited, status unknown.
 */
export function effective(rec: SandboxRecord): SandboxRecord {
  if (rec.status !== 'exited' && !(rec.hutchPid && alive(rec.hutchPid))) return { ...rec, status: 'exited' };
  return rec;
}

/** Claim a record for `name`; an exited one of the same name must be removed first (podman's rule). */
export function createRecord(stateDir: string, uid: number, rec: SandboxRecord): string {
  ensurePrivateDir(stateDir, uid);
  mkdirSync(join(stateDir, RECORDS), { recursive: true, mode: 0o700 });
  const dir = recordDir(stateDir, rec.name);
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

export function listRecords(stateDir: string): { dir: string; record: SandboxRecord }[] {
  let names: string[];
  try {
    names = readdirSync(join(stateDir, RECORDS));
  } catch {
    return [];
  }
  const out: { dir: string; record: SandboxRecord }[] = [];
  for (const n of names) {
    const dir = recordDir(stateDir, n);
    const record = readRecord(dir);
    if (record) out.push({ dir, record: effective(record) });
  }
  return out.sort((a, b) => a.record.createdAt.localeCompare(b.record.createdAt));
}

export function removeRecord(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
