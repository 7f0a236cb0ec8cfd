// Parent side of a sandbox: start the helper, hand it the plan on fd 3, keep
// fd 3 open as its lifeline (if hutch dies, even by SIGKILL, the helper sees
// EOF and tears the sandbox down), forward signals, return the exit status.

import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { Writable } from 'node:stream';
import { HutchError } from '../errors';
import { formatPlan, type Plan } from './plan';

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

export interface LaunchResult {
  /** The status hutch exits with: the command's code, or 128+N for signal N. */
  exitCode: number;
}

export function launch(helperPath: string, plan: Plan): Promise<LaunchResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(helperPath, ['run'], {
      stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
      // The helper must not inherit Node's ignored/blocked signal dispositions.
      detached: false,
    });
    const lifeline = child.stdio[3] as Writable;
    lifeline.on('error', () => {
      /* the helper exited early; its exit status tells why */
    });
    lifeline.write(formatPlan(plan, false));

    const forward = (sig: NodeJS.Signals) => () => {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    };
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
    child.on('exit', (code, signal) => {
      for (const [s, h] of handlers) process.off(s, h);
      lifeline.destroy();
      if (code !== null) resolve({ exitCode: code });
      else resolve({ exitCode: 128 + (constants.signals[signal as NodeJS.Signals] ?? 0) });
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
      resolve({ code: code ?? 128 + (constants.signals[signal as NodeJS.Signals] ?? 0), stdout, stderr });
    });
  });
}
