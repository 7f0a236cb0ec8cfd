// `hutch run -d`: a sandbox that outlives the hutch that starts it.
//
// Normally no hutch (Node) process stays: this hutch sets the sandbox up like
// any other run, with a plan whose monitor takes over what hutch would do
// after the start (helper-c/PLAN.md, "Detached sandboxes": the log with
// rotation, the exit status in the record, --timeout, the sandbox cgroup's
// removal, slirp4netns's lifetime through an fd the monitor holds, --rm), and
// leaves as soon as the command's exec succeeded: it prints the name, as
// podman prints the container id. The monitor, in a session of its own, is
// then all that keeps the sandbox (about 0.1 MiB with its init).
//
// A few things need a hutch after the start (residentReason,
// netResidentReason): restarting the command (--restart, --watch), the
// report at exit (--report, --summary), ending pasta (it has no exit fd) and
// relaying an IPv6 published port of slirp4netns (src/net/proxy.ts). Only
// then does hutch run itself again in a session of its own (startDetached)
// and stay, as `hutch ps` shows; it records the exit itself (recordExit).

import { spawn } from 'node:child_process';
import { appendFileSync, openSync, closeSync, readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { join } from 'node:path';
import type { HutchPaths } from '../host/paths';
import { isSingleExecutable } from '../host/self';
import type { LaunchHook } from '../helper/spawn';
import type { DetachedSetup } from '../sandbox/assemble';
import type { SandboxSpec } from '../spec/types';
import { createRecord, LOG_FILE, EXIT_FILE, ownerOf, readRecord, removeRecord, updateRecord, type SandboxRecord } from '../state/records';
import { HutchError } from '../util/errors';

export const RECORD_ENV = 'HUTCH_DETACHED_RECORD';

/** The record of the resident detached run this process is (taken out of the environment, so nothing below inherits it). */
export function takeDetachedRecord(): string | undefined {
  const dir = process.env[RECORD_ENV];
  delete process.env[RECORD_ENV];
  return dir || undefined;
}

/** Why a detached sandbox needs a hutch after its start, by its flags; undefined: its monitor alone keeps it. */
export function residentReason(a: { restart: { kind: string }; watch: string[]; report?: string; summary: boolean }): string | undefined {
  if (a.restart.kind !== 'no') return '--restart';
  if (a.watch.length) return '--watch';
  if (a.report) return '--report';
  if (a.summary) return '--summary';
  return undefined;
}

/** The same, by its user-mode network (known once the driver is chosen). */
export function netResidentReason(net: { choice: { name: string }; forwards: { hostIp: string }[] } | undefined): string | undefined {
  if (net?.choice.name === 'pasta') return 'the pasta network driver (hutch ends pasta with the sandbox)';
  if (net?.choice.name === 'slirp4netns' && net.forwards.some((f) => isIPv6(f.hostIp))) return 'an IPv6 published port (relayed by hutch)';
  return undefined;
}

/** Thrown by a run that was to leave when its network turns out to need a resident hutch. */
export class NeedsResidentHutch extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

export function newRecord(paths: HutchPaths, uid: number, spec: SandboxSpec, autoRemove: boolean, resident?: string): string {
  return createRecord(paths.recordsDir, uid, {
    name: spec.name,
    command: spec.command,
    profile: spec.profiles,
    createdAt: new Date().toISOString(),
    status: 'starting',
    ...ownerOf(process.pid),
    resident,
    autoRemove,
  });
}

/** What the plan of a detached sandbox adds (src/sandbox/assemble.ts detachedOps). */
export function detachedSetup(
  dir: string,
  o: { leave: boolean; logMaxSize: number; autoRemove: boolean; timeoutMs?: number; cgroupPrefix?: string; holdFd?: number },
): DetachedSetup {
  return {
    log: join(dir, LOG_FILE),
    logMaxSize: o.logMaxSize,
    leave: o.leave,
    exitFile: o.leave && !o.autoRemove ? join(dir, EXIT_FILE) : undefined,
    removeRecord: o.leave && o.autoRemove ? dir : undefined,
    timeoutMs: o.leave ? o.timeoutMs : undefined,
    cgroupPrefix: o.leave ? o.cgroupPrefix : undefined,
    holdFd: o.leave ? o.holdFd : undefined,
  };
}

/** This hutch, run again: the single executable, or node and the bundle. */
function selfArgv(args: string[]): [string, string[]] {
  return [process.execPath, isSingleExecutable() ? args : [process.argv[1], ...args]];
}

/** The resident case: hutch again, in a session of its own, that stays for the sandbox's life. */
export async function startDetached(
  argv: string[],
  spec: SandboxSpec,
  paths: HutchPaths,
  uid: number,
  autoRemove: boolean,
  nameGiven: boolean,
  resident: string,
): Promise<number> {
  const dir = newRecord(paths, uid, spec, autoRemove, resident);
  const log = openSync(join(dir, LOG_FILE), 'a', 0o600);
  const [cmd, args] = selfArgv(['run', ...(nameGiven ? [] : ['--name', spec.name]), ...argv]);
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', log, log], env: { ...process.env, [RECORD_ENV]: dir } });
  closeSync(log);
  if (child.pid) updateRecord(dir, ownerOf(child.pid));
  const exited = new Promise<number>((resolve) => {
    child.on('exit', (code, _signal) => resolve(code ?? 128));
    child.on('error', () => resolve(125));
  });
  for (;;) {
    const rec = readRecord(dir);
    if (rec?.initPid) break; // started (it may have exited already: that is its business, see hutch logs)
    const code = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(r, 50))]);
    if (code === undefined) continue;
    const rec2 = readRecord(dir);
    if (!rec2 || rec2.initPid) break; // started (no record: it ran and --rm removed it)
    // setup failed before anything ran: say why, leave nothing behind
    let out = '';
    try {
      out = readFileSync(join(dir, LOG_FILE), 'utf8');
    } catch {
      /* no log */
    }
    removeRecord(dir);
    process.stderr.write(out.replace(/^\S+ (?:stdout|stderr) [FP] /gm, ''));
    if (code === 0) throw new HutchError(`sandbox "${spec.name}" did not start`, { hint: 'run it without -d to see what happens' });
    return code;
  }
  child.unref();
  process.stdout.write(`${spec.name}\n`);
  return 0;
}

/**
 * The record follows the sandbox: running with its pid 1, kept by the
 * monitor (`leave`) or by this resident hutch; `left` once hutch is gone.
 */
export function recordHook(dir: string, leave: boolean, onLeft?: () => void): LaunchHook {
  return {
    started: ({ monitorPid, initPid }) => updateRecord(dir, { status: 'running', ...ownerOf(leave ? monitorPid : process.pid), initPid }),
    detached: () => onLeft?.(),
  };
}

/** A resident hutch: the exit, as the monitor writes it when none stays. */
export function recordExit(dir: string, exitCode: number): void {
  const rec = readRecord(dir);
  // --rm, once it ran; a sandbox that never started is removed by the `run -d` that waits for it
  if (rec?.autoRemove && rec.initPid) removeRecord(dir);
  else updateRecord(dir, { status: 'exited', exitCode, exitedAt: new Date().toISOString() } satisfies Partial<SandboxRecord>);
}

/**
 * A resident hutch's own messages (--restart, --watch) go into the log as the
 * monitor writes it (k8s-file lines, stream stderr), so `hutch logs` shows
 * them in order with the command's output; opened each time, as the monitor
 * may have rotated the file since.
 */
export function messagesToLog(dir: string): void {
  const path = join(dir, LOG_FILE);
  let rest = '';
  process.stderr.write = ((chunk: string | Uint8Array, ...more: unknown[]) => {
    const lines = (rest + (typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'))).split('\n');
    rest = lines.pop()!;
    const ts = new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000000Z');
    try {
      if (lines.length) appendFileSync(path, lines.map((l) => `${ts} stderr F ${l}\n`).join(''), { mode: 0o600 });
    } catch {
      /* the record is gone (hutch rm): nothing to say it to */
    }
    const cb = more.find((m) => typeof m === 'function') as (() => void) | undefined;
    cb?.();
    return true;
  }) as typeof process.stderr.write;
}
