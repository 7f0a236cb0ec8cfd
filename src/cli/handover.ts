// A foreground `hutch run` without a resident Node: hutch sets the sandbox up
// as always and waits until the command runs (so that every setup error is
// still hutch's sentence, exit 125), then writes `a` on the lifeline and
// replaces itself with `hutch-helper await` (process.execve: same pid, so the
// shell's wait, `hutch ps` and the monitor's parent stay what they were).
// The monitor then watches that pid instead of fd 3 (helper-c/PLAN.md,
// "Handover"); await waits for the monitor, forwards signals and does what
// hutch's hooks did after the start (helper-c/await.c). The exec waits until
// the command has run for a second without a signal to forward (spawn.ts
// HANDOVER_DELAY_MS: one that came during the exec would end hutch). About 19 MiB of
// Node become well under 1 MiB for the sandbox's life (npm run bench
// --group memory).
//
// A few features need Node after the start, as for `run -d` (detach.ts):
// --restart, --watch, --report, --summary, pasta, an IPv6 published port;
// and Ctrl-Z at a terminal in a sandbox without a cgroup (src/sandbox/
// suspend.ts signals every process of its pid namespace, await only freezes
// a cgroup). Then hutch stays, as before; HUTCH_TRACE and --dry-run say which.

import { residentReason } from './detach';

// declared here: @types/node 20 (the typings of the bundle's node20 target) has no process.execve
type Execve = (file: string, args?: string[], env?: NodeJS.ProcessEnv) => never;

/** process.execve: Node 22.15 / 23.11 on (the single executable's node has it; the bundle run by an older node does not). */
function execveOf(): Execve | undefined {
  const f = (process as unknown as { execve?: Execve }).execve;
  return typeof f === 'function' ? f : undefined;
}

/** Why this foreground run keeps hutch resident, known from its flags; undefined: it hands over. */
export function handoverBlocker(a: Parameters<typeof residentReason>[0] & { dryRun: boolean }): string | undefined {
  if (!execveOf()) return `this node (${process.version}) has no process.execve`;
  return residentReason(a);
}

export interface Handover {
  helper: string;
  monitorPid: number;
  initPid: number;
  /** the sandbox cgroup (await reads its OOM count, removes it; freezes it at Ctrl-Z) */
  cgroup?: string;
  /** removed by await when the monitor was killed (it ran no cleanup) */
  stateDir: string;
  timeoutMs?: number;
  /** what await says when --timeout fires; '' or undefined: hutch's own timer fired already (await then only keeps the 124) */
  timeoutText?: string;
}

/** Replaces this process by `hutch-helper await`; returns only when the exec failed (the error). */
export function handOver(h: Handover): Error {
  const args = ['hutch-helper', 'await', String(h.monitorPid), String(h.initPid), h.cgroup ?? '-', h.stateDir, String(h.timeoutMs ?? 0), h.timeoutText || '-'];
  try {
    execveOf()!(h.helper, args, process.env);
  } catch (e) {
    return e as Error;
  }
  return new Error('process.execve returned');
}
