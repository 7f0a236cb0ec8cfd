// The attack scripts of test/integration/attacks/, run by python3 inside a
// real sandbox: the one way the security tests start them. A script prints
// one JSON line (its report) and, given `wait`, stays until a line comes on
// its stdin, so the host can look at the sandbox while it runs.

import fs from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { repoPath, spawnHutch, waitFor, type RunOptions } from './hutch';

/** The host's python3 (the default root filesystem is the host's /). */
export const PY = '/usr/bin/python3';
export const hasPython = fs.existsSync(PY);
export const noPython = `${PY} is missing (the default root filesystem is the host's /)`;
export const ATTACKS_DIR = repoPath('test', 'integration', 'attacks');

/** `hutch run` flags and command that run attacks/SCRIPT (bound read-only at /t). */
export function attackCommand(script: string, args: string[] = []): string[] {
  return ['-v', `${ATTACKS_DIR}:/t:ro`, '--', PY, `/t/${script}`, ...args];
}

export interface AttackRun {
  /** hutch's exit status, and all it printed */
  code: number | null;
  out: string;
  err: string;
}

/**
 * `hutch RUNARGS -v attacks:/t:ro -- python3 /t/SCRIPT ARGS` (ARGS should end with `wait`):
 * `whileRunning` gets the report (parsed, and its line) while the sandbox
 * still runs; then a line on stdin ends the script, whatever `whileRunning`
 * did, and this resolves once hutch exited.
 */
export async function runAttack<R = Record<string, unknown>>(
  runArgs: string[],
  script: string,
  args: string[],
  whileRunning: (report: R, line: string, child: ChildProcess) => void | Promise<void>,
  opts: RunOptions = {},
): Promise<AttackRun> {
  const child = spawnHutch([...runArgs, ...attackCommand(script, args)], opts);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
  try {
    const line = await waitFor(() => out.split('\n').find((l) => l.startsWith('{')), 60_000, { what: `the report of ${script} (stderr: ${err})` });
    await whileRunning(JSON.parse(line) as R, line, child);
  } finally {
    child.stdin!.end('\n');
  }
  return { code: await exited, out, err };
}
