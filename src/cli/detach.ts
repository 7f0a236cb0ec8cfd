// `hutch run -d`: the sandbox runs under a hutch of its own, in a new session
// with no terminal, its output in the record's log (src/state/records.ts).
// This hutch resolves the spec first (so a bad flag fails here, 125), claims
// the record, starts `hutch run` again with the same flags and
// HUTCH_DETACHED_RECORD set, and returns as soon as the sandbox's pid 1
// exists: it prints the name, as podman prints the container id. The one
// lifecycle (runSandbox) serves attached and detached runs alike.

import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HutchPaths } from '../host/paths';
import { isSingleExecutable } from '../host/self';
import type { LaunchHook } from '../helper/spawn';
import type { SandboxSpec } from '../spec/types';
import { createRecord, LOG_FILE, readRecord, removeRecord, updateRecord } from '../state/records';
import { HutchError } from '../util/errors';

export const RECORD_ENV = 'HUTCH_DETACHED_RECORD';

/** The record of the detached run this process is (taken out of the environment, so nothing below inherits it). */
export function takeDetachedRecord(): string | undefined {
  const dir = process.env[RECORD_ENV];
  delete process.env[RECORD_ENV];
  return dir || undefined;
}

/** This hutch, run again: the single executable, or node and the bundle. */
function selfArgv(args: string[]): [string, string[]] {
  return [process.execPath, isSingleExecutable() ? args : [process.argv[1], ...args]];
}

export async function startDetached(
  argv: string[],
  spec: SandboxSpec,
  paths: HutchPaths,
  uid: number,
  autoRemove: boolean,
  nameGiven: boolean,
): Promise<number> {
  const dir = createRecord(paths.stateDir, uid, {
    name: spec.name,
    command: spec.command,
    profile: spec.profiles,
    createdAt: new Date().toISOString(),
    status: 'starting',
    autoRemove,
  });
  const log = openSync(join(dir, LOG_FILE), 'a', 0o600);
  const [cmd, args] = selfArgv(['run', ...(nameGiven ? [] : ['--name', spec.name]), ...argv]);
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', log, log], env: { ...process.env, [RECORD_ENV]: dir } });
  closeSync(log);
  if (child.pid) updateRecord(dir, { hutchPid: child.pid });
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
    process.stderr.write(out);
    if (code === 0) throw new HutchError(`sandbox "${spec.name}" did not start`, { hint: 'run it without -d to see what happens' });
    return code;
  }
  child.unref();
  process.stdout.write(`${spec.name}\n`);
  return 0;
}

/** The detached hutch's own side: the record follows the sandbox (running with its pid 1, then exited). */
export function recordHook(dir: string): LaunchHook {
  return {
    started: ({ initPid }) => updateRecord(dir, { status: 'running', hutchPid: process.pid, initPid }),
  };
}

export function recordExit(dir: string, exitCode: number): void {
  const rec = readRecord(dir);
  // --rm, once it ran; a sandbox that never started is removed by the `run -d` that waits for it
  if (rec?.autoRemove && rec.initPid) removeRecord(dir);
  else updateRecord(dir, { status: 'exited', exitCode, exitedAt: new Date().toISOString() });
}
