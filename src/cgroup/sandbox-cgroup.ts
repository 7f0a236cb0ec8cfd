// One cgroup per sandbox, a child of the delegated subtree:
//
//   <base>/                      delegated to the user; holds no processes once
//   ├─ hutch.leaf/               hutch has run (no-internal-processes rule): the
//   │                            processes that were in <base> are moved here
//   └─ hutch.<name>.<hutch pid>/ one per running sandbox, a leaf with its limits
//
// The hutch pid in the name makes crash cleanup safe without a daemon: a
// sandbox cgroup whose hutch is gone is killed and removed by the next hutch
// that creates one.

import { mkdirSync, readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { HutchError } from '../util/errors';
import { LEAF, type CgroupProbe, type Controller } from './delegation';
import { readKeyed, readList, readNumber, readPids, readText, writeCg } from './files';
import { alive } from '../util/proc';

const NAME_RE = /^hutch\.(.+)\.(\d+)$/;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException).code;
}

/**
 * Make `controllers` available to children of `probe.base`: move whatever
 * runs in base into base/hutch.leaf (unless base is the root cgroup, which
 * may hold processes), then enable the controllers in base's
 * cgroup.subtree_control. Retries when a process forks into base meanwhile.
 */
export function enableControllers(probe: CgroupProbe, controllers: Controller[]): void {
  const base = probe.base!;
  const isRoot = base === probe.mount;
  let lastError: unknown;
  for (let attempt = 0; attempt < 10; attempt++) {
    const enabled = readList(join(base, 'cgroup.subtree_control'));
    const missing = controllers.filter((c) => !enabled.includes(c));
    if (!missing.length) return;
    if (!isRoot) {
      const leaf = join(base, LEAF);
      try {
        mkdirSync(leaf);
      } catch (e) {
        if (errno(e) !== 'EEXIST') throw cgError(`cannot create ${leaf}`, e);
      }
      for (const pid of readPids(base)) {
        try {
          writeCg(leaf, 'cgroup.procs', String(pid));
        } catch (e) {
          if (errno(e) !== 'ESRCH') lastError = e;
        }
      }
    }
    try {
      writeCg(base, 'cgroup.subtree_control', missing.map((c) => `+${c}`).join(' '));
      return;
    } catch (e) {
      lastError = e;
      if (errno(e) !== 'EBUSY') break;
    }
  }
  throw cgError(`cannot enable the ${controllers.join(', ')} controllers in ${base}/cgroup.subtree_control`, lastError);
}

function cgError(what: string, e: unknown): HutchError {
  const code = errno(e);
  return new HutchError(`${what}: ${(e as Error)?.message ?? e}`, {
    hint:
      code === 'EBUSY'
        ? 'processes keep arriving in the delegated cgroup; start hutch from a shell inside it'
        : code === 'EACCES' || code === 'EPERM'
          ? 'the cgroup is not delegated to you (see `hutch run --dry-run`)'
          : 'see `hutch run --dry-run` for what this host supports',
  });
}

/** Kill and remove sandbox cgroups whose hutch process is gone (hutch or the machine crashed). */
export async function removeStale(base: string): Promise<string[]> {
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const n of names) {
    const m = NAME_RE.exec(n);
    if (!m || alive(Number(m[2]))) continue;
    const cg = new SandboxCgroup(join(base, n));
    try {
      await cg.remove();
      removed.push(cg.path);
    } catch {
      /* another hutch is removing it, or it is still busy: the next run tries again */
    }
  }
  return removed;
}

/** The plan's `remove-cgroup PREFIX`: the monitor appends `.MONITORPID`, as nameFor does. */
export function cgroupPrefix(probe: CgroupProbe, sandbox: string): string {
  return join(probe.base!, `hutch.${sandbox}`);
}

export interface CgroupStats {
  cpu: { usageUsec: number; userUsec: number; systemUsec: number; nrPeriods: number; nrThrottled: number; throttledUsec: number };
  memory?: { current: number; max: number | null; peak?: number; swapCurrent?: number; oom: number; oomKill: number; maxHits: number };
  pids?: { current: number; max: number | null; peak?: number; refused: number };
  io?: { readBytes: number; writeBytes: number };
  frozen: boolean;
  populated: boolean;
}

export class SandboxCgroup {
  constructor(readonly path: string) {}

  /** `ownerPid`: hutch's, or the monitor's of a detached sandbox (it removes the cgroup itself: op `remove-cgroup`). */
  static nameFor(sandbox: string, ownerPid = process.pid): string {
    return `hutch.${sandbox}.${ownerPid}`;
  }

  /** mkdir the sandbox cgroup under base (controllers must be enabled first). */
  static create(base: string, sandbox: string, ownerPid = process.pid): SandboxCgroup {
    const path = join(base, SandboxCgroup.nameFor(sandbox, ownerPid));
    try {
      mkdirSync(path);
    } catch (e) {
      throw cgError(`cannot create the sandbox cgroup ${path}`, e);
    }
    return new SandboxCgroup(path);
  }

  /** Move a process (and, for later forks, its children) into this cgroup. */
  join(pid: number): void {
    writeCg(this.path, 'cgroup.procs', String(pid));
  }

  events(): Record<string, number> {
    return readKeyed(join(this.path, 'cgroup.events')) ?? {};
  }

  /** Freeze (true) or thaw (false); resolves once the kernel reports the state. */
  async freeze(on: boolean, timeoutMs = 5000): Promise<void> {
    writeCg(this.path, 'cgroup.freeze', on ? '1' : '0');
    const want = on ? 1 : 0;
    const deadline = Date.now() + timeoutMs;
    while (this.events().frozen !== want) {
      if (Date.now() > deadline) throw new HutchError(`${this.path}: the kernel did not report frozen ${want} within ${timeoutMs / 1000} s`);
      await sleep(10);
    }
  }

  /** SIGKILL everything in the cgroup (cgroup.kill; before Linux 5.14: each process, until empty). */
  kill(): void {
    try {
      writeCg(this.path, 'cgroup.kill', '1');
      return;
    } catch (e) {
      if (errno(e) !== 'ENOENT') throw e;
    }
    for (const pid of readPids(this.path)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }

  /** Remove the cgroup, killing what is left in it after a grace period. */
  async remove(graceMs = 500, timeoutMs = 5000): Promise<void> {
    const started = Date.now();
    let killed = false;
    for (;;) {
      try {
        rmdirSync(this.path);
        return;
      } catch (e) {
        const code = errno(e);
        if (code === 'ENOENT') return;
        if (code !== 'EBUSY' && code !== 'ENOTEMPTY') throw e;
        const waited = Date.now() - started;
        if (waited > timeoutMs) throw new HutchError(`cannot remove ${this.path}: ${(e as Error).message}`);
        if (!killed && (waited >= graceMs || this.events().populated === 1)) {
          if (this.events().frozen === 1) writeCg(this.path, 'cgroup.freeze', '0');
          this.kill();
          killed = true;
        }
        await sleep(10);
      }
    }
  }

  stats(): CgroupStats {
    const p = (f: string) => join(this.path, f);
    const cpu = readKeyed(p('cpu.stat')) ?? {};
    const ev = this.events();
    const s: CgroupStats = {
      cpu: {
        usageUsec: cpu.usage_usec ?? 0,
        userUsec: cpu.user_usec ?? 0,
        systemUsec: cpu.system_usec ?? 0,
        nrPeriods: cpu.nr_periods ?? 0,
        nrThrottled: cpu.nr_throttled ?? 0,
        throttledUsec: cpu.throttled_usec ?? 0,
      },
      frozen: ev.frozen === 1,
      populated: ev.populated === 1,
    };
    const current = readNumber(p('memory.current'));
    if (typeof current === 'number') {
      const mev = readKeyed(p('memory.events')) ?? {};
      s.memory = {
        current,
        max: readNumber(p('memory.max')) ?? null,
        peak: readNumber(p('memory.peak')) ?? undefined,
        swapCurrent: readNumber(p('memory.swap.current')) ?? undefined,
        oom: mev.oom ?? 0,
        oomKill: mev.oom_kill ?? 0,
        maxHits: mev.max ?? 0,
      };
    }
    const pids = readNumber(p('pids.current'));
    if (typeof pids === 'number') {
      s.pids = {
        current: pids,
        max: readNumber(p('pids.max')) ?? null,
        peak: readNumber(p('pids.peak')) ?? undefined,
        refused: readKeyed(p('pids.events'))?.max ?? 0,
      };
    }
    const io = readText(p('io.stat'));
    if (io !== undefined) {
      let readBytes = 0;
      let writeBytes = 0;
      for (const m of io.matchAll(/rbytes=(\d+)/g)) readBytes += Number(m[1]);
      for (const m of io.matchAll(/wbytes=(\d+)/g)) writeBytes += Number(m[1]);
      s.io = { readBytes, writeBytes };
    }
    return s;
  }
}
