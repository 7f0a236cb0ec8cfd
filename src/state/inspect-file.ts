// What `hutch inspect NAME` shows of a sandbox beyond its live state: the
// spec as resolved and the plan the helper executed, written once the plan
// is assembled into the state directory and, for a detached sandbox, into
// its record (which outlives the state directory), so an exited sandbox can
// still be inspected.
//
// Only what the sandbox itself gets is written: the spec's `env` is the
// environment inside (passEnv already applied), the plan's `env` ops the
// same; the host's own environment is never part of either. `origins` are
// error-message bookkeeping (flags, profile file:line), left out.

import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { Op } from '../helper/ops';
import type { SandboxSpec } from '../spec/types';
import type { SandboxState } from './sandboxes';

export const INSPECT_FILE = 'inspect.json';

export interface InspectFile {
  spec: Omit<SandboxSpec, 'origins'>;
  /** The helper's plan as executed (helper-c/PLAN.md), one op each. */
  plan: Op[];
  /** The state at start (the host ports chosen, the network driver); the live state.json follows changes. */
  state: Omit<SandboxState, 'initPid'>;
}

export function writeInspectFile(dir: string, spec: SandboxSpec, plan: { ops: Op[] }, state: Omit<SandboxState, 'initPid'>): void {
  const { origins: _, ...shown } = spec;
  const data: InspectFile = { spec: shown, plan: plan.ops, state };
  // atomic: an inspect in another terminal never reads half a file
  const tmp = join(dir, `.${INSPECT_FILE}.${process.pid}`);
  writeFileSync(tmp, `${JSON.stringify(data)}\n`, { mode: 0o600 });
  renameSync(tmp, join(dir, INSPECT_FILE));
}

export function readInspectFile(dir: string | undefined): InspectFile | undefined {
  if (!dir) return undefined;
  try {
    return JSON.parse(readFileSync(join(dir, INSPECT_FILE), 'utf8')) as InspectFile;
  } catch {
    return undefined;
  }
}
