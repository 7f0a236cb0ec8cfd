// The launch hook that puts a sandbox under its limits (src/helper/spawn.ts
// LaunchHook). Timeline:
//
//   beforeStart  the helper waits before unshare(pid, cgroup): clean up what
//                dead runs left, create the sandbox cgroup, write its limits,
//                move the monitor into it. The cgroup namespace is created
//                next, rooted there; the init and the command inherit the
//                cgroup, so nothing inside ever runs unlimited.
//   started      the init exists: move the monitor back out (so that the OOM
//                killer, cgroup.kill and the freezer reach the sandbox, never
//                the process that cleans up after it); start the --timeout clock.
//   afterExit    read the figures, print the OOM message / summary, write the
//                report, remove the cgroup.

import { HutchError } from '../util/errors';
import type { LaunchHook } from '../helper/spawn';
import { readState, writeState } from '../state/sandboxes';
import type { SandboxSpec } from '../spec/types';
import { cgroupDir, cgroupPathOf, type CgroupProbe } from './delegation';
import { writeCg } from './files';
import { formatDuration } from './format';
import { applyLimits, controllersFor, describeLimit, type LimitsPlan } from './limits';
import { buildReport, oomMessage, summaryLine, writeReport } from './report';
import { enableControllers, removeStale, SandboxCgroup, type CgroupStats } from './sandbox-cgroup';

export interface LimitsHookOptions {
  spec: SandboxSpec;
  probe: CgroupProbe;
  plan: LimitsPlan;
  /** the sandbox's state directory (state.json gets the cgroup path) */
  sandboxDir: string;
  reportFile?: string;
  summary: boolean;
  warn: (line: string) => void;
  /** `run -d` without a resident hutch: the cgroup is named after the monitor, which kills (--timeout) and removes it. */
  ownedByMonitor?: boolean;
}

/** Exit status when --timeout ended the sandbox (as timeout(1)). */
export const TIMEOUT_EXIT = 124;

const THAW_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT'];

export class LimitsHook implements LaunchHook {
  cgroup?: SandboxCgroup;
  private startedAt = Date.now();
  private timer?: NodeJS.Timeout;
  private timedOut = false;
  private thawOnSignal?: () => void;

  constructor(private readonly o: LimitsHookOptions) {}

  async beforeStart({ monitorPid }: { monitorPid: number }): Promise<void> {
    this.startedAt = Date.now();
    const { spec, probe, plan } = this.o;
    if (!plan.cgroup) return;
    await removeStale(probe.base!);
    enableControllers(probe, controllersFor(spec.limits, probe.available));
    this.cgroup = SandboxCgroup.create(probe.base!, spec.name, this.o.ownedByMonitor ? monitorPid : process.pid);
    const missing = applyLimits(this.cgroup.path, spec.limits, probe.available);
    if (missing.length) {
      const what = missing.map((w) => `${w.what} (${describeLimit(w, spec.limits)}: this kernel has no ${w.file})`).join(', ');
      if (spec.limits.mode === 'strict') {
        throw new HutchError(`limits not enforced on this host: ${what}`, { hint: 'drop that limit, or use --limits warn to run without it' });
      }
      this.o.warn(`warning: limits not enforced on this host: ${what}`);
    }
    this.cgroup.join(monitorPid);
    const st = readState(this.o.sandboxDir);
    if (st) writeState(this.o.sandboxDir, { ...st, cgroup: this.cgroup.path, limits: spec.limits });
  }

  started({ monitorPid, initPid, kill }: { monitorPid: number; initPid: number; kill: (sig: NodeJS.Signals) => void }): void {
    if (this.cgroup) {
      const own = cgroupPathOf('self');
      try {
        if (own !== undefined) writeCg(cgroupDir(this.o.probe, own), 'cgroup.procs', String(monitorPid));
      } catch (e) {
        this.o.warn(`warning: cannot move the helper out of the sandbox cgroup: ${(e as Error).message}`);
      }
    }
    if (this.cgroup) {
      // A signal for a paused sandbox (Ctrl-C, kill) would wait in the frozen
      // processes until someone runs `hutch resume`: thaw it so the command
      // gets the signal hutch forwards now.
      const cg = this.cgroup;
      this.thawOnSignal = () => {
        try {
          if (cg.events().frozen === 1) writeCg(cg.path, 'cgroup.freeze', '0');
        } catch {
          /* already gone */
        }
      };
      for (const sig of THAW_SIGNALS) process.on(sig, this.thawOnSignal);
    }
    const timeout = this.o.spec.limits.timeoutMs;
    if (timeout !== undefined) {
      this.timer = setTimeout(() => {
        this.timedOut = true;
        this.o.warn(`killed: timeout ${formatDuration(timeout)} reached`);
        try {
          if (this.cgroup) this.cgroup.kill();
          else process.kill(initPid, 'SIGKILL'); // pid 1 gone = its pid namespace gone
        } catch {
          kill('SIGKILL');
        }
      }, timeout);
    }
  }

  /** hutch leaves: the monitor has its own --timeout (op `timeout`) and removes the cgroup. */
  detached(): void {
    clearTimeout(this.timer);
    if (this.thawOnSignal) for (const sig of THAW_SIGNALS) process.off(sig, this.thawOnSignal);
  }

  async afterExit({ exitCode }: { exitCode: number }): Promise<void> {
    clearTimeout(this.timer);
    if (this.thawOnSignal) for (const sig of THAW_SIGNALS) process.off(sig, this.thawOnSignal);
    const finished = Date.now();
    let stats: CgroupStats | undefined;
    try {
      stats = this.cgroup?.stats();
      const oom = this.timedOut ? undefined : oomMessage(stats, exitCode);
      if (oom) this.o.warn(oom);
      if (this.o.reportFile || this.o.summary) {
        const report = buildReport({
          name: this.o.spec.name,
          command: this.o.spec.command,
          exitCode: this.exitCode(exitCode),
          killedBy: this.timedOut ? 'timeout' : oom && exitCode === 137 ? 'oom' : null,
          started: this.startedAt,
          finished,
          cgroup: this.cgroup?.path,
          stats,
          note: this.o.probe.problem ? `usage not measured: ${this.o.probe.problem}` : undefined,
          limits: this.o.spec.limits,
          enforcement: this.o.plan.decisions,
        });
        if (this.o.summary) this.o.warn(summaryLine(report).replace(/^hutch: /, ''));
        if (this.o.reportFile) writeReport(this.o.reportFile, report);
      }
    } finally {
      await this.cgroup?.remove();
    }
  }

  /** --timeout has fired (hutch-helper await then only keeps the 124: src/cli/run.ts). */
  get timeoutFired(): boolean {
    return this.timedOut;
  }

  /** The status hutch exits with. */
  exitCode(helperStatus: number): number {
    return this.timedOut ? TIMEOUT_EXIT : helperStatus;
  }
}
