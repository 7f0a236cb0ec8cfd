// Parent side of a sandbox: start the helper, hand it the plan on fd 3, keep
// fd 3 open as its lifeline (if hutch dies, even by SIGKILL, the helper sees
// EOF and tears the sandbox down), forward signals, return the exit status.
//
// When the plan has a `sync` op, the helper stops after creating the
// network namespace and before the pid/cgroup namespaces, reports its pid on
// fd 4 and waits for a byte on fd 5: that is where hooks attach a cgroup and a
// network, so nothing inside ever runs unlimited or unconnected.

import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { HutchError } from '../util/errors';
import { formatPlan, type Plan } from './plan';
import { trace } from '../util/trace';

export const FORWARDED_SIGNALS: NodeJS.Signals[] = [
  'SIGTERM',
  'SIGINT',
  'SIGHUP',
  'SIGQUIT',
  'SIGUSR1',
  'SIGUSR2',
  'SIGWINCH',
  'SIGCONT',
];

/** Work done outside the sandbox around its life (cgroup, network, timers). */
export interface LaunchHook {
  /** The helper has created the namespaces it shares with `monitorPid` and waits. */
  beforeStart?(ctx: { monitorPid: number }): Promise<void> | void;
  /** The sandbox's pid 1 exists (host pid). */
  started?(ctx: { monitorPid: number; initPid: number; kill: (sig: NodeJS.Signals) => void }): void;
  /** The helper exited (always called once beforeStart ran, also on failure). */
  afterExit?(ctx: { exitCode: number }): Promise<void> | void;
}

export interface LaunchResult {
  /** The status hutch exits with: the command's code, or 128+N for signal N. */
  exitCode: number;
  monitorPid?: number;
  initPid?: number;
}

function statusOf(code: number | null, signal: NodeJS.Signals | null): number {
  return code ?? 128 + (constants.signals[signal as NodeJS.Signals] ?? 0);
}

export function launch(helperPath: string, plan: Plan, hooks: LaunchHook[] = []): Promise<LaunchResult> {
  const synced = plan.ops.some((o) => o.op === 'sync');
  return new Promise((resolve, reject) => {
    const child = spawn(helperPath, ['run'], {
      stdio: ['inherit', 'inherit', 'inherit', 'pipe', ...(synced ? (['pipe', 'pipe'] as const) : [])],
    });
    trace('launch: helper spawned');
    const lifeline = child.stdio[3] as Writable;
    lifeline.on('error', () => {
      /* the helper exited early; its exit status tells why */
    });
    child.on('exit', () => trace('launch: helper exited'));
    lifeline.write(formatPlan(plan, false));

    const result: LaunchResult = { exitCode: 0 };
    let hookError: unknown;
    let hooksRan = false;
    const kill = (sig: NodeJS.Signals) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    };

    if (synced) {
      const pipes = child.stdio as unknown as (Readable & Writable)[];
      const report: Readable = pipes[4];
      const go: Writable = pipes[5];
      go.on('error', () => {});
      let buf = '';
      report.setEncoding('utf8').on('data', (d: string) => {
        buf += d;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          const [what, arg] = [line.slice(0, line.indexOf(' ')), line.slice(line.indexOf(' ') + 1)];
          if (what === 'pid') {
            result.monitorPid = Number(arg);
            hooksRan = true;
            (async () => {
              for (const h of hooks) await h.beforeStart?.({ monitorPid: result.monitorPid! });
            })().then(
              () => go.end('g'),
              (e) => {
                hookError = e;
                go.destroy(); // EOF without a go byte: the helper aborts (125)
              },
            );
          } else if (what === 'init') {
            result.initPid = Number(arg);
            for (const h of hooks) h.started?.({ monitorPid: result.monitorPid ?? 0, initPid: result.initPid, kill });
          }
        }
      });
    }

    const forward = (sig: NodeJS.Signals) => () => kill(sig);
    const handlers = FORWARDED_SIGNALS.map((s) => [s, forward(s)] as const);
    for (const [s, h] of handlers) process.on(s, h);

    child.on('error', (err: NodeJS.ErrnoException) => {
      for (const [s, h] of handlers) process.off(s, h);
      reject(
        new HutchError(`cannot start the helper ${helperPath}: ${err.message}`, {
          hint: 'rebuild with `npm run build`, or set HUTCH_HELPER to the helper binary',
        }),
      );
    });
    child.on('close', async (code, signal) => {
      trace('launch: helper pipes closed');
      for (const [s, h] of handlers) process.off(s, h);
      lifeline.destroy();
      result.exitCode = statusOf(code, signal);
      if (hooksRan) {
        for (const h of [...hooks].reverse()) {
          try {
            await h.afterExit?.({ exitCode: result.exitCode });
          } catch (e) {
            hookError ??= e;
          }
        }
      }
      if (hookError) reject(hookError);
      else resolve(result);
    });
  });
}

/** Run a short plan with captured output (probes). */
export function runPlanCaptured(helperPath: string, plan: Plan, timeoutMs = 10_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(helperPath, ['run'], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const lifeline = child.stdio[3] as Writable;
    lifeline.on('error', () => {});
    lifeline.write(formatPlan(plan, false));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: 125, stdout, stderr: e.message });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      lifeline.destroy();
      resolve({ code: statusOf(code, signal), stdout, stderr });
    });
  });
}
