// Running sandboxes by name, for `hutch stats/pause/resume/update/ps`: the
// state directory says where each one's cgroup is.

import { identity } from '../host/ids';
import { hutchPaths } from '../host/paths';
import { HutchError } from '../util/errors';
import { listSandboxes, type SandboxState } from '../state/sandboxes';
import { suggest } from '../util/suggest';
import { SandboxCgroup } from './sandbox-cgroup';

export interface Running {
  dir: string;
  state: SandboxState;
}

export function runningSandboxes(env: NodeJS.ProcessEnv = process.env): Running[] {
  const ids = identity(env);
  return listSandboxes(hutchPaths(env, ids.home, ids.uid).stateDir).sort((a, b) => a.state.startedAt.localeCompare(b.state.startedAt));
}

export function findSandbox(name: string, all: Running[] = runningSandboxes()): Running {
  const found = all.find((r) => r.state.name === name);
  if (found) return found;
  const near = suggest(
    name,
    all.map((r) => r.state.name),
  );
  throw new HutchError(`no running sandbox named "${name}"`, {
    hint: near
      ? `did you mean "${near}"?`
      : all.length
        ? `running: ${all.map((r) => r.state.name).join(', ')}`
        : 'no sandbox is running (start one with hutch run --name NAME)',
  });
}

/** The sandbox's cgroup, or an error that says why it has none. */
export function cgroupOf(r: Running, forWhat: string): SandboxCgroup {
  if (!r.state.cgroup) {
    throw new HutchError(`sandbox "${r.state.name}" has no cgroup, so it cannot be ${forWhat}`, {
      hint: 'this host gave hutch no delegated cgroup v2 subtree when it started; `hutch run --dry-run` says why',
    });
  }
  return new SandboxCgroup(r.state.cgroup);
}
