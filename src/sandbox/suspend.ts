// Ctrl-Z at the host terminal (SIGTSTP to hutch) suspends hutch and the
// sandbox together, and `fg` (SIGCONT) resumes both: the sandbox's cgroup is
// frozen where it has one; otherwise every process of its pid namespace gets
// SIGSTOP (hutch owns the sandbox's user namespace, so it may signal them)
// and SIGCONT on the way back. With -t the host terminal is in raw mode and
// Ctrl-Z goes to the sandbox's own terminal instead.

import { readdirSync, readlinkSync } from 'node:fs';
import type { LaunchHook } from '../helper/spawn';
import { SandboxCgroup } from '../cgroup/sandbox-cgroup';
import { readState } from '../state/sandboxes';
import { sandboxMember } from '../util/proc';

/** Host pids in the pid namespace of `initPid` (the sandbox's pid 1 included). */
function pidsInNamespaceOf(initPid: number): number[] {
  let ns: string;
  try {
    ns = readlinkSync(`/proc/${sandboxMember(initPid)}/ns/pid`);
  } catch {
    return [];
  }
  // pid 1 itself, whose ns link the user cannot read (util/proc.ts sandboxMember)
  const out: number[] = [initPid];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (Number(p) !== initPid && readlinkSync(`/proc/${p}/ns/pid`) === ns) out.push(Number(p));
    } catch {
      /* gone, or not ours */
    }
  }
  return out;
}

function signalAll(pids: number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      /* exited meanwhile */
    }
  }
}

export function suspendHook(sandboxDir: string): LaunchHook {
  let handler: (() => void) | undefined;
  return {
    started: ({ initPid }) => {
      handler = () => {
        const cg = readState(sandboxDir)?.cgroup;
        const freeze = async (on: boolean) => {
          if (cg) return void (await new SandboxCgroup(cg).freeze(on).catch(() => undefined));
          // twice: a process forked while the first round ran is caught by the second
          for (let round = 0; round < (on ? 2 : 1); round++) signalAll(pidsInNamespaceOf(initPid), on ? 'SIGSTOP' : 'SIGCONT');
        };
        void freeze(true).then(async () => {
          process.kill(process.pid, 'SIGSTOP'); // what SIGTSTP would have done; fg sends SIGCONT
          await freeze(false);
        });
      };
      process.on('SIGTSTP', handler);
    },
    afterExit: () => {
      if (handler) process.off('SIGTSTP', handler);
    },
  };
}
