// Where hutch may create cgroups: the cgroup v2 subtree delegated to the
// user. hutch's own cgroup (from /proc/self/cgroup) is usable when the user
// owns its directory, cgroup.procs and cgroup.subtree_control (what
// systemd's Delegate=yes, or an administrator's chown, gives) and the
// controllers hutch needs are available in it. Read-only: probing changes
// nothing (`hutch run --dry-run` uses it).

import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { readList } from './files';
import { hostMounts } from '../host/mounts';

export type Controller = 'cpu' | 'memory' | 'pids' | 'io';
export const CONTROLLERS: Controller[] = ['cpu', 'memory', 'pids', 'io'];
/** Child of the delegated root that holds the processes that were in it (no-internal-processes rule). */
export const LEAF = 'hutch.leaf';

export interface CgroupProbe {
  /** hutch can create sandbox cgroups under `base`. */
  usable: boolean;
  /** cgroup2 mount point, e.g. /sys/fs/cgroup */
  mount?: string;
  /** the mount's root inside the hierarchy (usually /) */
  mountRoot?: string;
  /** directory of hutch's own cgroup */
  own?: string;
  /** the delegated subtree: sandbox cgroups are created below it */
  base?: string;
  /** controllers available to sandbox cgroups under `base` */
  available: Controller[];
  /** controllers the kernel binds to cgroup v1 (hybrid hosts) */
  v1: Controller[];
  /** why `usable` is false, or why controllers are missing */
  problem?: string;
  /** how to fix `problem` */
  fix?: string;
  /** a systemd user manager is there to ask for a delegated scope */
  systemd: boolean;
}

const V1_NAMES: Record<string, Controller> = { cpu: 'cpu', memory: 'memory', pids: 'pids', blkio: 'io' };

/** The cgroup v2 path of a process ("0::/path"), or undefined on a v1-only host. */
export function cgroupPathOf(pid: number | 'self'): string | undefined {
  try {
    const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'));
    return line?.slice(3);
  } catch {
    return undefined;
  }
}

/** The directory of a cgroup v2 path (as /proc/PID/cgroup shows it) under the probed mount. */
export function cgroupDir(probe: CgroupProbe, path: string): string {
  const root = probe.mountRoot ?? '/';
  const rel = root === '/' ? path : path.startsWith(root) ? path.slice(root.length) : path;
  return join(probe.mount!, rel);
}

function ownedAndWritable(path: string, uid: number): boolean {
  try {
    const st = statSync(path);
    if (uid !== 0 && st.uid !== uid) return false;
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export function hasSystemdUserManager(env: NodeJS.ProcessEnv): boolean {
  if (!existsSync('/run/systemd/system')) return false;
  const bus = env.DBUS_SESSION_BUS_ADDRESS?.match(/unix:path=([^,;]+)/)?.[1] ?? (env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'bus') : undefined);
  return !!bus && existsSync(bus);
}

export function probeCgroups(uid: number, env: NodeJS.ProcessEnv = process.env): CgroupProbe {
  const all = hostMounts();
  const v1 = [
    ...new Set(
      all
        .filter((m) => m.fsType === 'cgroup')
        .flatMap((m) => m.superOptions.split(','))
        .map((o) => V1_NAMES[o])
        .filter(Boolean),
    ),
  ];
  const systemd = hasSystemdUserManager(env);
  const probe: CgroupProbe = { usable: false, available: [], v1, systemd };
  const v2 = all.find((m) => m.fsType === 'cgroup2');
  const path = cgroupPathOf('self');
  if (!v2 || path === undefined) {
    probe.problem = 'this host has no cgroup v2 hierarchy';
    probe.fix = 'boot with systemd.unified_cgroup_hierarchy=1 (or cgroup_no_v1=all) to get cgroup v2';
    return probe;
  }
  probe.mount = v2.mountPoint;
  probe.mountRoot = v2.root;
  const own = cgroupDir(probe, path);
  probe.own = own;
  probe.base = basename(own) === LEAF ? dirname(own) : own;
  const base = probe.base;
  const controllers = readList(join(base, 'cgroup.controllers')).filter((c): c is Controller => (CONTROLLERS as string[]).includes(c));
  probe.available = controllers;
  const missing = CONTROLLERS.filter((c) => !controllers.includes(c));
  const inV1 = missing.filter((c) => v1.includes(c));
  const owned = ownedAndWritable(base, uid) && ownedAndWritable(join(base, 'cgroup.procs'), uid) && ownedAndWritable(join(base, 'cgroup.subtree_control'), uid);
  probe.usable = owned;
  if (inV1.length) {
    // Hybrid host: the most fundamental problem, whoever owns the cgroup.
    const v2has = readList(join(v2.mountPoint, 'cgroup.controllers')).join(', ') || 'no controllers';
    probe.problem = `cgroups are in hybrid mode: ${inV1.join(', ')} ${inV1.length > 1 ? 'are' : 'is'} bound to cgroup v1, and the cgroup v2 tree at ${v2.mountPoint} has only ${v2has}`;
    probe.fix = 'boot the host with systemd.unified_cgroup_hierarchy=1 (or cgroup_no_v1=all) so that every controller is on cgroup v2';
  } else if (!owned) {
    probe.problem = `hutch's cgroup ${path} is not delegated to uid ${uid} (its cgroup.procs and cgroup.subtree_control are not yours to write)`;
    probe.fix = systemd
      ? 'run hutch under `systemd-run --user --scope -p Delegate=yes` (hutch asks systemd for such a scope itself when limits are set)'
      : 'start hutch in a cgroup v2 subtree delegated to you: as root, chown a cgroup directory and its cgroup.procs, cgroup.subtree_control, cgroup.threads to you and move your shell into it (what systemd Delegate=yes does)';
  } else if (missing.length) {
    probe.problem = `the ${missing.join(', ')} controller${missing.length > 1 ? 's are' : ' is'} not available in ${base}`;
    probe.fix = systemd
      ? 'delegate them: `systemctl edit user@.service` with [Service] Delegate=cpu cpuset io memory pids, or run under `systemd-run --user --scope -p Delegate=yes`'
      : "enable them in the parent cgroup's cgroup.subtree_control (as root)";
  }
  return probe;
}
