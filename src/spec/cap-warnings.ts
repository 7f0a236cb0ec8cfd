// What a capability grant gives away, said once before the sandbox starts.
// Only grants that reach past the sandbox's own files and processes get a
// line: the rest act inside the user namespace and on nothing else.

import { CAPABILITIES } from '../util/caps';

/** The warnings (without the `hutch: warning: ` prefix) for a resolved capability set. */
export function capabilityWarnings(caps: readonly string[]): string[] {
  const out: string[] = [];
  if (CAPABILITIES.every((c) => caps.includes(c))) {
    out.push(
      "ALL capabilities: the command holds every capability of the sandbox's user namespace (mounts, ptrace, raw sockets, chown to any mapped id, ...); " +
        "hutch's pid 1 and monitor keep none it can use against them, and the host outside the namespaces stays out of reach",
    );
  }
  if (caps.includes('SYS_ADMIN')) out.push('CAP_SYS_ADMIN lets the command undo read-only and hiding mounts inside the sandbox');
  if (caps.includes('SYS_PTRACE')) {
    out.push(
      "CAP_SYS_PTRACE lets the command attach to, and read the memory and environment of, every other process it starts inside the sandbox (not pid 1 or hutch's monitor: they are not dumpable)",
    );
  }
  return out;
}
