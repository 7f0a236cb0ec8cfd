// The only code that starts hutch-helper. Every use goes through
// `startHelper`: a sandbox with hooks and inherited stdio (`launch`), a probe
// with captured output (`runPlanCaptured`), a host command in the user
// namespace for image layers (`spawnInUserns` in ./userns.ts).
//
// The plan goes in on fd 3, which then stays open as the lifeline: if hutch
// dies, even by SIGKILL, the helper sees EOF and tears the sandbox down.
// When the plan has `report`, fd 4 carries the helper's report lines; with
// `sync`, the helper stops after creating the network namespace and before
// the pid/cgroup namespaces, reports its pid and waits for a byte on fd 5:
// that is where hooks attach a cgroup, so nothing inside ever runs
// unlimited. With `sync-exec` the init waits for a byte right before the
// command starts (hooks' beforeExec): a NAT started at the `init` line is
// ready by then, so nothing inside runs unconnected. Each go byte is a round
// trip through this event loop; a plan has `sync` only when a hook must act
// before the init exists.

import { spawn, type ChildProcess, type StdioNull, type StdioPipe } from 'node:child_process';
import { constants } from 'node:os';
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { HutchError } from '../util/errors';
import { trace } from '../util/trace';
import { helperPath } from '../host/self';
import { formatPlan, type Plan } from './plan';

/** How long a foreground run's Node stays after the command started before it hands over (HelperOptions.handover). */
export const HANDOVER_DELAY_MS = 1000;

export const FORWARDED_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGCONT'];

/** Work done outside the sandbox around its life (cgroup, network, timers). */
export interface LaunchHook {
  /**
   * The helper has created the namespaces it shares with `monitorPid` and waits.
   * `heldByMonitor`: hutch's end of a socket pair whose other end the monitor holds
   * for its whole life (op `hold`; detached runs): EOF on it = the monitor is gone.
   */
  beforeStart?(ctx: { monitorPid: number; heldByMonitor?: Socket }): Promise<void> | void;
  /** The sandbox's pid 1 exists (host pid). */
  started?(ctx: { monitorPid: number; initPid: number; kill: (sig: NodeJS.Signals) => void; heldByMonitor?: Socket }): void;
  /** A plan with `sync-exec`: the init has set up and waits; the command starts once every hook's promise resolved. */
  beforeExec?(): Promise<void> | void;
  /** `net ADDR` on the report pipe: the sandbox's address on its named network (`net-attach`). */
  attached?(ctx: { address: string }): void;
  /** The helper exited (always called once beforeStart ran, or started with `sync-exec`, also on failure; not after `detached`). */
  afterExit?(ctx: { exitCode: number }): Promise<void> | void;
  /** `run -d`: the command runs and hutch leaves; the monitor does what afterExit would. Let go of timers and handles. */
  detached?(): void;
}

export interface HelperResult {
  /** The command's code, or 128+N for signal N (the helper's own status likewise). */
  exitCode: number;
  monitorPid?: number;
  initPid?: number;
  /** `error` lines of the report pipe (setup errors, exec failures). */
  errors: HelperFailure[];
  /** hutch left a running sandbox to its monitor (HelperOptions.detach); exitCode is 0 then. */
  detached?: boolean;
  /** HelperOptions.handover: the command runs and the monitor watches hutch's pid; hutch is to exec `hutch-helper await` now. */
  handedOver?: { monitorPid: number; initPid: number; child: ChildProcess };
}

/**
 * One `error LINE ERRNO TEXT` line of the report pipe (helper-c/PLAN.md):
 * facts only; src/sandbox/errors.ts says what they mean for the user.
 */
export interface HelperFailure {
  /** Plan line of the failing op (`formatPlan(plan, false)`), 0 when no op is to blame (an exec failure, a bad plan). */
  line: number;
  /** Symbolic errno (`ENOENT`), a number for one the helper has no name for, undefined when none. */
  errno?: string;
  /** What the helper was doing (`bind destination /newroot/x`), or a whole message (`ls: command not found`). */
  text: string;
}

export function parseFailure(arg: string): HelperFailure {
  const m = /^(\d+) (\S+) (.*)$/s.exec(arg);
  if (!m) return { line: 0, text: arg };
  return { line: Number(m[1]), errno: m[2] === '-' ? undefined : m[2], text: m[3] };
}

type Stdio = StdioPipe | StdioNull | 'inherit' | number;

export interface HelperOptions {
  /** stdin, stdout, stderr of the helper (default: inherited). */
  stdio?: [Stdio, Stdio, Stdio];
  hooks?: LaunchHook[];
  /** Forward hutch's own signals to the helper while it runs (a sandbox in the foreground). */
  forwardSignals?: boolean;
  /** SIGKILL the helper after this long (probes). */
  timeoutMs?: number;
  /** Default: the verified helper of this hutch (host/self.ts). */
  helper?: string;
  /** `exec`: the plan joins a running sandbox (op `join`). */
  mode?: 'run' | 'exec';
  /**
   * The plan has `detach`: the helper gets a session of its own and none of
   * hutch's stdio (stderr is relayed while hutch is there), and `done`
   * resolves once the command's exec succeeded (`running`), when hutch writes
   * `d` on the lifeline and lets go. `hold`: fd 6 is a socket pair's end for
   * the plan's `hold 6` (the other end goes to LaunchHook.beforeStart).
   */
  detach?: { hold: boolean };
  /**
   * A foreground run that hands hutch's process over (src/cli/handover.ts):
   * stdio and signals as usual, and `done` resolves once the command runs,
   * after an `a` on the lifeline told the monitor to watch hutch's pid
   * instead of fd 3 (which the exec closes). `hold` as for detach.
   */
  handover?: { hold: boolean };
}

export interface HelperRun {
  child: ChildProcess;
  done: Promise<HelperResult>;
}

export function statusOf(code: number | null, signal: NodeJS.Signals | null): number {
  return code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
}

export function startHelper(plan: Plan, opts: HelperOptions = {}): HelperRun {
  const helper = opts.helper ?? helperPath();
  const hooks = opts.hooks ?? [];
  const reported = plan.ops.some((o) => o.op === 'report');
  const synced = plan.ops.some((o) => o.op === 'sync');
  const syncExec = plan.ops.some((o) => o.op === 'sync-exec');
  const [i, o, e] = opts.stdio ?? ['inherit', 'inherit', 'inherit'];
  const hold = !!(opts.detach?.hold || opts.handover?.hold);
  const extra: StdioPipe[] = reported || synced || opts.detach || opts.handover ? ['pipe', 'pipe', ...(hold ? ['pipe' as const] : [])] : [];
  const stdio: Stdio[] = opts.detach ? ['ignore', 'ignore', 'pipe'] : [i, o, e];
  trace('helper: spawning');
  // argv0: the private copy's path is /proc/self/fd/N (src/host/self.ts)
  const child = spawn(helper, [opts.mode ?? 'run'], { argv0: 'hutch-helper', stdio: [...stdio, 'pipe', ...extra], detached: !!opts.detach });
  if (opts.detach) child.stderr?.on('data', (d: Buffer) => process.stderr.write(d));
  const held = hold ? (child.stdio as unknown as Socket[])[6] : undefined;
  held?.on('error', () => {});
  trace('helper: spawned');
  const lifeline = child.stdio[3] as Writable;
  lifeline.on('error', () => {
    /* the helper exited early; its exit status tells why */
  });
  lifeline.write(formatPlan(plan, false));

  const result: HelperResult = { exitCode: 0, errors: [] };
  let hookError: unknown;
  let hooksRan = false;
  const kill = (sig: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
  };
  let running = false;
  let left = false;
  let leave = () => {};
  let handoverTimer: NodeJS.Timeout | undefined;
  let handoverArmed = 0; // a signal between the timer and its immediate re-arms it

  if (extra.length) {
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
        const sp = line.indexOf(' ');
        const what = sp < 0 ? line : line.slice(0, sp);
        const arg = sp < 0 ? '' : line.slice(sp + 1);
        if (what === 'pid') {
          result.monitorPid = Number(arg);
          hooksRan = true;
          (async () => {
            for (const h of hooks) await h.beforeStart?.({ monitorPid: result.monitorPid!, heldByMonitor: held });
            if (!syncExec) held?.destroy(); // the NAT process has its copy now: only the monitor's end keeps it
          })().then(
            () => (syncExec ? go.write('g') : go.end('g')),
            (err) => {
              hookError = err;
              go.destroy(); // EOF without a go byte: the helper aborts (125)
            },
          );
        } else if (what === 'init') {
          result.initPid = Number(arg);
          // sync-exec without sync (a NAT, nothing to do before the init): the hooks start here
          if (syncExec) hooksRan = true;
          for (const h of hooks) h.started?.({ monitorPid: result.monitorPid ?? child.pid ?? 0, initPid: result.initPid, kill, heldByMonitor: held });
          if (syncExec) {
            (async () => {
              for (const h of hooks) await h.beforeExec?.();
              held?.destroy(); // the NAT (attached from `started`) has its copy now
            })().then(
              () => go.end('g'),
              (err) => {
                hookError ??= err;
                go.destroy(); // EOF at sync-exec: the init aborts (125), the command never starts
              },
            );
          }
          leave();
        } else if (what === 'running') {
          running = true;
          leave();
        } else if (what === 'net') {
          for (const h of hooks) h.attached?.({ address: arg });
        } else if (what === 'error') {
          result.errors.push(parseFailure(arg));
        }
      }
    });
  }

  // every forwarded signal (SIGCONT after Ctrl-Z too) puts a pending handover off (HelperOptions.handover)
  let rearmHandover = () => {};
  const handlers = opts.forwardSignals
    ? FORWARDED_SIGNALS.map(
        (s) =>
          [
            s,
            () => {
              kill(s);
              rearmHandover();
            },
          ] as const,
      )
    : [];
  for (const [s, h] of handlers) process.on(s, h);
  const timer = opts.timeoutMs ? setTimeout(() => kill('SIGKILL'), opts.timeoutMs) : undefined;
  const settle = () => {
    if (timer) clearTimeout(timer);
    for (const [s, h] of handlers) process.off(s, h);
  };

  const done = new Promise<HelperResult>((resolve, reject) => {
    leave = () => {
      // `init` and `running` come from two processes: leave once both are known
      if (left || !(opts.detach || opts.handover) || !running || result.initPid === undefined || hookError) return;
      if (opts.handover) {
        // Not at once, and only after HANDOVER_DELAY_MS without a signal: a
        // signal that reaches hutch while it execs (the kernel takes 10-100 ms
        // to end a Node process's threads and memory) is not forwarded. Node
        // cannot block signals across the exec; they are SIG_DFL from the
        // decision on, so one is never lost: it ends hutch (the shell sees
        // that signal), and the monitor, watching hutch's pid, tears the
        // sandbox down. Signals sent soon after the start (`kill` after the
        // first output, Ctrl-C, Ctrl-Z and fg) find Node's forwarding.
        // The timer fires before the loop's poll phase, the immediate after it: a
        // signal that came until then is forwarded by Node's handler, not dropped
        // with it by settle().
        rearmHandover = () => {
          clearTimeout(handoverTimer);
          const armed = ++handoverArmed;
          handoverTimer = setTimeout(() => setImmediate(() => armed === handoverArmed && handOverNow()), HANDOVER_DELAY_MS);
        };
        if (!handoverTimer) rearmHandover();
        const handOverNow = () => {
          if (left || child.exitCode !== null || child.signalCode !== null) return; // its close event follows: the usual end
          left = true;
          const handedOver = { monitorPid: result.monitorPid ?? child.pid ?? 0, initPid: result.initPid!, child };
          settle();
          for (const h of hooks) h.detached?.();
          for (const s of child.stdio.slice(4)) (s as Readable | null)?.destroy();
          (lifeline as Writable).write('a', () => {
            trace('helper: handed over (an `a` on the lifeline)');
            resolve({ ...result, exitCode: 0, handedOver });
          });
        };
        return;
      }
      left = true;
      const lifelineEnd = lifeline as Writable;
      lifelineEnd.end('d');
      for (const h of hooks) h.detached?.();
      for (const s of child.stdio.slice(4)) (s as Readable | null)?.destroy();
      child.stderr?.destroy();
      settle();
      child.unref();
      trace('helper: left to its monitor');
      resolve({ ...result, exitCode: 0, detached: true });
    };
    child.on('error', (err: NodeJS.ErrnoException) => {
      settle();
      reject(
        new HutchError(`cannot start the helper ${helper}: ${err.message}`, {
          hint: 'rebuild with `npm run build`, or set HUTCH_HELPER to the helper binary',
        }),
      );
    });
    child.on('close', async (code, signal) => {
      if (left) return; // the monitor's business now
      clearTimeout(handoverTimer);
      trace('helper: exited');
      settle();
      lifeline.destroy();
      result.exitCode = statusOf(code, signal);
      if (hooksRan) {
        for (const h of [...hooks].reverse()) {
          try {
            await h.afterExit?.({ exitCode: result.exitCode });
          } catch (err) {
            hookError ??= err;
          }
        }
      }
      if (hookError) reject(hookError);
      else resolve(result);
    });
  });
  return { child, done };
}

/** A sandbox in the foreground: hutch's stdio, signals forwarded, hooks run. */
export function launch(
  plan: Plan,
  hooks: LaunchHook[] = [],
  helper?: string,
  stdin: 'inherit' | 'ignore' = 'inherit',
  detach?: HelperOptions['detach'],
  handover?: HelperOptions['handover'],
): Promise<HelperResult> {
  return startHelper(plan, { hooks, forwardSignals: true, helper, stdio: [stdin, 'inherit', 'inherit'], detach, handover }).done;
}

/** Collect a child's piped output (capped: probes and tools print little). */
export function collect(stream: Readable | null | undefined, cap = 64 * 1024): () => string {
  let text = '';
  stream?.setEncoding('utf8').on('data', (d: string) => {
    if (text.length < cap) text += d;
  });
  return () => text;
}

/** Run a short plan with captured output (probes). */
export async function runPlanCaptured(plan: Plan, timeoutMs = 10_000, helper?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const run = startHelper(plan, { stdio: ['ignore', 'pipe', 'pipe'], timeoutMs, helper });
  const stdout = collect(run.child.stdout);
  const stderr = collect(run.child.stderr);
  try {
    const r = await run.done;
    return { code: r.exitCode, stdout: stdout(), stderr: stderr() };
  } catch (e) {
    return { code: 125, stdout: stdout(), stderr: (e as Error).message };
  }
}
