// Resource limits for `hutch run`: what the host can enforce (probe, plan),
// the warning or the strict refusal, and the launch hook. Loaded lazily by
// src/cli/run.ts only when limits, a report or a delegated cgroup matter.

import { HutchError } from '../util/errors';
import type { SandboxSpec } from '../spec/types';
import { probeCgroups, type CgroupProbe } from './delegation';
import { planLimits, type LimitsPlan } from './limits';
import { hasCgroupLimits } from '../spec/limits';
import { requestDelegatedScope } from './systemd';

export { LimitsHook } from './hook';
export { cgroupPrefix } from './sandbox-cgroup';
export type { CgroupProbe } from './delegation';
export type { LimitsPlan } from './limits';

export interface LimitsSetup {
  probe: CgroupProbe;
  plan: LimitsPlan;
}

/**
 * Probe the host and decide. `ask` allows asking systemd for a delegated
 * scope (a real run with limits; never for --dry-run, which changes nothing).
 */
const SKIPPED = 'nothing needs one: no limits, --timeout, --report/--summary or --name';

export function setupLimits(spec: SandboxSpec, uid: number, env: NodeJS.ProcessEnv, ask: boolean, want: boolean): LimitsSetup {
  if (ask && !want && !hasCgroupLimits(spec.limits)) {
    // Nothing will use a cgroup: keep the cgroup probe off the launch path
    // (--dry-run still probes, to show what this host would enforce).
    const probe: CgroupProbe = { usable: false, available: [], v1: [], systemd: false };
    return { probe, plan: { ...planLimits(spec.limits, probe), skipped: SKIPPED } };
  }
  let probe = probeCgroups(uid, env);
  if (ask && !probe.usable && probe.systemd && !probe.v1.length && hasCgroupLimits(spec.limits)) {
    const r = requestDelegatedScope(env);
    if (r.ok) probe = probeCgroups(uid, env);
    else if (probe.problem) probe.problem += ` (asking systemd for a delegated scope failed: ${r.why})`;
  }
  const plan = planLimits(spec.limits, probe);
  // Moving the helper into a cgroup costs an RCU grace period (10-17 ms
  // measured here) on the launch path: only pay it when something needs the
  // cgroup (limits, --timeout, --report/--summary, or a --name that other
  // hutch commands can address for stats/pause/update).
  if (!want && !hasCgroupLimits(spec.limits)) {
    plan.cgroup = false;
    plan.skipped = SKIPPED;
  }
  return { probe, plan };
}

/** Print the one warning, or refuse with --limits strict. */
export function enforceMode(spec: SandboxSpec, plan: LimitsPlan, warn: (line: string) => void): void {
  if (!plan.problem) return;
  if (spec.limits.mode === 'strict') {
    const from = spec.profiles.length && spec.profiles[0] !== 'default' ? ` (limits.mode: strict, profile ${spec.profiles[0]})` : '';
    throw new HutchError(`refusing to run: ${plan.problem.message}; --limits strict${from} forbids running without them`, {
      hint: `${plan.problem.fix}; or pass --limits warn to run unlimited`,
    });
  }
  warn(`warning: ${plan.problem.message}. Fix: ${plan.problem.fix}. Running without them (--limits strict refuses instead).`);
}

/** `--dry-run` lines: which limits this host would enforce, and why. */
export function describePlan(setup: LimitsSetup): string[] {
  const { probe, plan } = setup;
  const lines: string[] = [];
  if (probe.usable && plan.skipped) lines.push(`cgroup: none for this sandbox, ${plan.skipped} (delegated subtree: ${probe.base})`);
  else if (probe.usable) lines.push(`cgroup: sandbox cgroup under ${probe.base} (controllers available: ${probe.available.join(', ') || 'none'})`);
  else lines.push(`cgroup: none for this sandbox: ${probe.problem}`);
  if (probe.usable && probe.problem) lines.push(`cgroup: ${probe.problem}`);
  if (!plan.decisions.length) lines.push('limits: none requested');
  for (const d of plan.decisions) lines.push(`limit ${d.what}: ${d.enforced ? 'enforced' : 'NOT enforced'}: ${d.how}`);
  if (plan.problem) lines.push(`limits fix: ${plan.problem.fix}`);
  return lines;
}
