// Host readiness checks for `hutch doctor`: one result per fact, each
// ok / warning / error with the exact command that fixes it. The checks
// themselves live in probe-*.ts, one file per area; where a feature can be
// tried for real (a user namespace, an overlay mount in one, newuidmap) it
// is, through the helper, rather than guessed from configuration.

import { readFileSync } from 'node:fs';

export type Status = 'ok' | 'warning' | 'error';

export interface Check {
  /** Stable identifier, e.g. `userns.create`, `storage.fuse-overlayfs` (tests and scripts key on it). */
  id: string;
  /** Area heading: user namespaces, subordinate ids, storage, network, cgroups, security, hutch. */
  area: string;
  status: Status;
  /** One line: what was found. */
  summary: string;
  /** More explanation (why it matters, what was tried). */
  detail?: string;
  /** The exact command (or file change) that fixes a warning or error. */
  fix?: string;
  /** Facts for --json consumers (paths, values, controller lists...). */
  facts?: Record<string, unknown>;
}

export function check(c: Check): Check {
  return c;
}

/** A /proc/sys value (trimmed), or undefined when the file does not exist on this kernel. */
export function readSysctl(name: string): string | undefined {
  try {
    return readFileSync(`/proc/sys/${name.replace(/\./g, '/')}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

export function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** `sudo sysctl -w k=v` plus the line that keeps it across reboots. */
export function sysctlFix(name: string, value: string | number, sudo: string): string {
  return `${sudo}sysctl -w ${name}=${value} && echo '${name} = ${value}' | ${sudo}tee /etc/sysctl.d/90-hutch.conf`;
}
