// SandboxSpec + what we know about the host -> the helper's plan.
// Every decision about what the sandbox sees is made here (or in the modules
// it calls), so `--dry-run` shows it all.

import { posix } from 'node:path';
import { HutchError } from '../util/errors';
import type { HostFacts } from '../host/facts';
import type { LayeredRoot, RootfsInput, StorageDriver } from '../rootfs/types';
import type { SandboxSpec } from '../spec/types';
import { etcFileOps, hostnameFileOps, type EtcFiles } from '../net/etc-files';
import { volumeDataPath } from '../volume/store';
import { describeMap, isChildUserNamespace, sandboxMaps, userNamespaceOps } from '../helper/identity';
import { keepIdEtcOps, keepIdUser } from './keep-id';
import { ownerOutsideMap } from '../rootfs/ownership';
import type { Namespace, Op } from '../helper/ops';
import { PlanBuilder, type Plan } from '../helper/plan';
import { procMaskOps, systemMountOps } from './system-mounts';
import { RAM_MOUNT, ramBudgetInnerOps, ramBudgetOuterOps, ramDirOps, ramHostDir } from './ram-budget';

/** What was decided for this one sandbox before its plan is assembled (the host's facts aside). */
export interface SandboxSetup {
  /** Per-sandbox state directory (removed by the helper at exit). */
  sandboxDir: string;
  storage: StorageDriver;
  /**
   * Stop after the user/ipc/uts/net namespaces exist and wait for hutch
   * (cgroup join, network attach) before the pid and cgroup namespaces.
   */
  syncBeforeStart: boolean;
  /**
   * Wait for hutch once the init has set up, right before the command starts
   * (`sync-exec`): a user-mode NAT starts when the init exists (the report
   * pipe's `init` line) and is waited for only here. Needs no
   * syncBeforeStart: that round trip through hutch comes on top, before the
   * init is even forked, so it is planned only for what needs it.
   */
  syncBeforeExec?: boolean;
  /** Image (or setup-step) root: the layer store and the layer ids, top first (src/sandbox/image-root.ts). */
  imageLayers?: Omit<LayeredRoot, 'kind' | 'label'> & { label?: string };
  /** The host's own addresses, made unreachable inside before the command starts (src/net/host-addresses.ts). */
  unreachable?: string[];
  /** /etc/hosts and /etc/resolv.conf for the sandbox (src/net/etc-files.ts); undefined: the root filesystem's own. */
  etcFiles?: EtcFiles;
  /** Bind a file with spec.hostname over /etc/hostname (`hutch run`; not `setup:` steps, whose writes to /etc/hostname are the layer's). */
  hostnameFile?: boolean;
  /** The terminal ops (src/sandbox/terminal.ts): a pty inside, or relayed stdio. */
  terminal?: Op[];
  /** Named networks: join the holders' user namespace (instead of a new one), attach to each bridge; ports through the routed one. */
  networkJoin?: NetworkJoin;
  /** `run -d`: the helper's monitor alone keeps the sandbox and cleans up after it (no hutch stays). */
  detached?: DetachedSetup;
  /** A foreground run handed over to `hutch-helper await` (src/cli/handover.ts): what the monitor then owns. */
  handover?: { holdFd?: number; cgroupPrefix?: string };
}

/** What the monitor of a detached sandbox does in hutch's place (src/cli/detach.ts decides it). */
export interface DetachedSetup {
  /** The command's stdout/stderr, k8s-file lines, rotated to LOG.1 at logMaxSize bytes. */
  log: string;
  logMaxSize: number;
  /** hutch leaves once the command runs (`detach`); false: a resident hutch keeps the sandbox, the monitor only writes the log. */
  leave: boolean;
  /** Where the monitor writes "CODE TIME" at exit; undefined with --rm. */
  exitFile?: string;
  /** --rm: the record directory, removed by the monitor at exit. */
  removeRecord?: string;
  /** --timeout: the monitor kills pid 1 (exit 124). */
  timeoutMs?: number;
  /** The sandbox cgroup's path without its `.MONITORPID` suffix (src/cgroup/sandbox-cgroup.ts). */
  cgroupPrefix?: string;
  /** An fd the monitor keeps open for its whole life: its peer is slirp4netns's --exit-fd. */
  holdFd?: number;
}

function detachedOps(b: PlanBuilder, d: DetachedSetup): void {
  if (d.leave) {
    b.note('detached: hutch leaves once the command runs (a `d` on fd 3); the monitor keeps the log, the status and the cleanup');
    b.add({ op: 'detach' });
  } else b.note('detached with a resident hutch: the monitor writes the log');
  b.add({ op: 'log', path: d.log, maxSize: d.logMaxSize });
  if (d.timeoutMs !== undefined) b.add({ op: 'timeout', ms: d.timeoutMs });
  if (d.holdFd !== undefined) b.add({ op: 'hold', fd: d.holdFd });
  if (d.cgroupPrefix) b.add({ op: 'remove-cgroup', prefix: d.cgroupPrefix });
  if (d.removeRecord) b.add({ op: 'cleanup', path: d.removeRecord });
  if (d.exitFile) b.add({ op: 'exit-file', path: d.exitFile });
}

export interface NetworkJoin {
  /** A holder's socket: its user namespace is every holder's of the user (net-share). */
  socket: string;
  /** One interface per network, lexical order; `route`: the default route and the published ports go there. */
  attach: { socket: string; ifname: string; address?: string; route: boolean; shared: boolean; nofwd?: boolean; names: string[] }[];
  publish: { protocol: 'tcp' | 'udp'; hostIp: string; hostPort: number; port: number }[];
}

export function rootfsInput(spec: SandboxSpec, facts: Pick<HostFacts, 'hostTop' | 'ids' | 'fs'>, setup: SandboxSetup): RootfsInput {
  let rootfs: RootfsInput['rootfs'];
  if (setup.imageLayers) {
    const { store, ids, base, label } = setup.imageLayers;
    rootfs = { kind: 'layers', label: label ?? (spec.rootfs.kind === 'image' ? `image ${spec.rootfs.name}` : 'layers'), store, ids, base };
  } else if (spec.rootfs.kind === 'image') {
    throw new Error(`internal: image ${spec.rootfs.name} without resolved layers`);
  } else rootfs = spec.rootfs;
  return {
    rootfs,
    readOnly: spec.readOnly,
    keep: spec.keep,
    sandboxDir: setup.sandboxDir,
    ram: { host: ramHostDir(setup.sandboxDir), inside: RAM_MOUNT },
    hostTop: rootfs.kind === 'host' && setup.storage.needsHostTop ? facts.hostTop : [],
    dirTop: rootfs.kind === 'dir' && setup.storage.needsHostTop && ownerOutsideMap(rootfs.path, facts.ids, facts.fs) ? facts.fs.scanTop(rootfs.path) : [],
    childUserNamespace: isChildUserNamespace(facts.ids),
    origins: { root: rootfs.kind === 'host' ? undefined : spec.origins.rootfs, keep: spec.origins.keep, readOnly: spec.origins.readOnly },
  };
}

/** The root filesystem's lower layers as host paths, top first. */
function lowerRootsOf(spec: SandboxSpec, setup: SandboxSetup): string[] {
  if (setup.imageLayers) {
    const { store, ids, base } = setup.imageLayers;
    return [...ids.map((id) => `${store}/${id}/root`), ...(base ? [base] : [])];
  }
  return [spec.rootfs.kind === 'dir' ? spec.rootfs.path : '/'];
}

function isUnder(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

/**
 * Host paths hidden in `host` mode: the home directories (yours, by the
 * password database and $HOME; with hideHomes: all, every home of the host)
 * become empty tmpfs, hutch's own directories are masked. /run and /tmp are
 * fresh in every sandbox, so what lives there (the runtime dir, the session
 * bus) is gone already.
 */
export function hiddenPaths(
  spec: SandboxSpec,
  host: Pick<HostFacts, 'paths' | 'homes'>,
  sandboxDir: string,
): { homes: string[]; ownHomes: string[]; masks: string[] } {
  if (spec.rootfs.kind !== 'host') return { homes: [], ownHomes: [], masks: [] };
  const candidates = [
    host.paths.runtimeDir,
    host.paths.stateDir,
    host.paths.recordsDir,
    host.paths.dataDir,
    host.paths.cacheDir,
    host.paths.configDir,
    sandboxDir,
    ...(host.paths.sessionBus ? [host.paths.sessionBus] : []),
    ...spec.hide,
  ];
  const homes = [...(spec.hideHomes === 'all' ? host.homes.all : host.homes.own)];
  const hidden: string[] = [...homes, '/run', '/tmp'];
  const masks: string[] = [];
  for (const p of candidates) {
    if (!p.startsWith('/') || hidden.some((h) => isUnder(p, h))) continue;
    hidden.push(p);
    masks.push(p);
  }
  return { homes, ownHomes: [...host.homes.own], masks };
}

/** The helper's plan for one sandbox: a pure function of the spec, the host's facts and the setup. */
export function assemblePlan(spec: SandboxSpec, host: HostFacts, setup: SandboxSetup): Plan {
  const b = new PlanBuilder();
  const rootfs = rootfsInput(spec, host, setup);
  const driver = setup.storage;

  b.note('removed by the helper when the sandbox ends, also when hutch itself is killed');
  b.add({ op: 'cleanup', path: setup.sandboxDir });
  b.note('failures are reported to hutch (fd 4), which names the flag or profile field behind the op');
  b.add({ op: 'report' });

  // Identity: nothing runs inside before these maps are written.
  const maps = sandboxMaps(spec.userns, host.ids);
  const keepId = keepIdUser(spec, host.ids);
  if (keepId) {
    b.note(`user namespace, --userns keep-id: you keep uid ${keepId.uid} and gid ${keepId.gid} inside; root inside is a subordinate id`);
    b.note(`uid map (inside -> host): ${describeMap(maps.uidMap)}`);
    b.note(`gid map (inside -> host): ${describeMap(maps.gidMap)}`);
  } else {
    b.note(
      host.ids.uidMap.length > 1
        ? `user namespace: uid ${host.ids.uid} -> 0, subordinate ids through newuidmap/newgidmap`
        : `user namespace: uid ${host.ids.uid} -> 0 only${host.ids.subidNote ? ` (${host.ids.subidNote})` : ''}`,
    );
  }
  if (setup.networkJoin) {
    b.note("named network: the network holder's user namespace (same id maps), shared by the network's members");
    b.add({ op: 'net-join', socket: setup.networkJoin.socket });
  } else b.add(userNamespaceOps(maps));

  // mount: the monitor's own mount namespace holds the RAM budget tmpfs (and a daemon's mount)
  const first: Namespace[] = ['mount', 'ipc', 'uts'];
  if (spec.network !== 'host') first.push('net');
  b.add({ op: 'unshare', ns: first });
  // Before the sync point, where the monitor joins the sandbox cgroup: a
  // storage daemon forked later would be in it, its threads counted against
  // --pids-limit (fuse-overlayfs: a dozen). Outside, as podman runs it; its
  // writes to the upper layer are bounded by the RAM budget tmpfs instead.
  ramBudgetOuterOps(b, spec, setup.sandboxDir, driver.ramDirs(rootfs));
  driver.outerOps(b, rootfs);
  // (the `report` op at the top also tells hutch the sandbox's pid 1, which hutch exec joins)
  if (setup.syncBeforeStart) {
    b.note('wait for hutch: the sandbox cgroup is joined before anything runs inside (user-mode NAT attaches later, see sync-exec)');
    b.add({ op: 'sync' });
  }
  if (setup.networkJoin) {
    if (!setup.syncBeforeStart) throw new Error('internal: a named network needs the report pipe');
    for (const a of setup.networkJoin.attach) {
      b.note(`named network: ${a.ifname}, a veth pair to the holder's bridge; the names the network's DNS answers${a.route ? '; the default route' : ''}`);
      b.add({ op: 'net-attach', ...a });
      if (a.route) for (const p of setup.networkJoin.publish) b.add({ op: 'net-publish', ...p });
    }
  }
  const second: Namespace[] = ['pid', 'cgroup'];
  if (host.hasTimeNamespace) second.push('time');
  b.add({ op: 'unshare', ns: second });
  if (setup.terminal?.length) {
    b.note(
      setup.terminal[0].op === 'tty'
        ? "a terminal of the sandbox's own (its devpts), relayed by the helper"
        : "the host terminal's fds stay outside: pipes, relayed by the helper",
    );
    b.add(setup.terminal);
  }
  if (setup.detached) detachedOps(b, setup.detached);
  if (setup.handover) {
    b.note('handover: once the command runs hutch writes `a` on fd 3 and execs `hutch-helper await` in its own process; the monitor watches that pid');
    if (setup.handover.holdFd !== undefined) b.add({ op: 'hold', fd: setup.handover.holdFd });
    if (setup.handover.cgroupPrefix) b.add({ op: 'remove-cgroup', prefix: setup.handover.cgroupPrefix });
  }

  b.note('private scratch tmpfs (mount points only); the host stays reachable as /oldroot until the final pivot');
  b.add({ op: 'base', dir: '/tmp' });
  ramBudgetInnerOps(b, setup.sandboxDir);
  driver.innerOps(b, rootfs);
  // sysfs: only the owner of the network namespace may mount a fresh one.
  systemMountOps(b, { freshSysfs: spec.network !== 'host' });

  const { homes, ownHomes, masks } = hiddenPaths(spec, host, setup.sandboxDir);
  if (homes.length) {
    b.note(
      spec.hideHomes === 'all'
        ? `hide every home directory of the host: ${homes.join(', ')} (only what is mounted into them is visible)`
        : `hide the home directory ${homes.join(', ')} (only what is mounted into it is visible)`,
    );
  }
  // keep-id: the caller gets an empty home of its own on every root (HOME comes from /etc/passwd).
  const keepIdHome = keepId && !homes.includes(host.ids.home) ? host.ids.home : undefined;
  if (keepIdHome) b.note(`--userns keep-id: an empty home directory ${keepIdHome}`);
  for (const h of keepIdHome ? [...homes, keepIdHome] : homes) {
    // a parent of other homes (/home) stays traversable: your own home is made inside it
    const mode = homes.some((o) => o !== h && isUnder(o, h)) ? 0o755 : 0o700;
    b.add({ op: 'mkdir', path: `/newroot${h}`, mode });
    // every hidden home is a directory of the RAM budget (writes there count against it)
    ramDirOps(b, `home${h.replace(/\//g, '-')}`, mode, `/newroot${h}`);
    if (keepId && (h === keepIdHome || (ownHomes.includes(h) && h === host.ids.home)))
      b.add({ op: 'chown', path: `/newroot${h}`, uid: keepId.uid, gid: keepId.gid });
  }
  if (masks.length) b.note("hide hutch's own directories and the session bus");
  for (const p of masks) b.add({ op: 'mask', path: `/newroot${p}` });

  if (setup.etcFiles) etcFileOps(b, setup.etcFiles, lowerRootsOf(spec, setup), host.fs);
  if (setup.hostnameFile) hostnameFileOps(b, spec.hostname, lowerRootsOf(spec, setup), host.fs);
  if (keepId) keepIdEtcOps(b, rootfs, host.ids, host.fs);
  userMountOps(b, spec, host);
  procMaskOps(b);

  if (spec.readOnly) driver.readOnlyOps(b, rootfs, new Set([...homes, ...masks, ...spec.mounts.map((m) => m.target)]));
  if (ownHomes.length && spec.home === 'none') {
    b.note('home: none: the home directory is empty and read-only (mounts into it keep their mode)');
    for (const h of ownHomes) b.add({ op: 'remount-ro', dest: `/newroot${h}`, self: true });
  }

  b.add({ op: 'hostname', name: spec.hostname });
  if (spec.network !== 'host') b.add({ op: 'lo-up' });
  if (setup.unreachable?.length) {
    b.note("the host's own addresses are unreachable (user-mode NAT would connect to them on the host); allowHostLoopback lifts this");
    for (const addr of setup.unreachable) b.add({ op: 'unreachable', addr });
  }
  b.add({ op: 'pivot', dir: '/newroot' });
  if (spec.readOnly) b.add({ op: 'remount-root-ro' }, spec.origins.readOnly);
  if (setup.syncBeforeExec) {
    b.note("wait for hutch again: the network's NAT, started once pid 1 exists, is ready before the command starts");
    b.add({ op: 'sync-exec' });
  }

  commandOps(b, spec, keepId);
  return b.build();
}

function userMountOps(b: PlanBuilder, spec: SandboxSpec, host: HostFacts): void {
  if (spec.mounts.length) b.note('mounts from the profile and the command line');
  for (const [i, m] of spec.mounts.entries()) {
    const origin = spec.origins.mounts[m.target];
    if (m.type === 'bind') {
      if (!host.fs.exists(m.source)) {
        throw new HutchError(`${origin ? `${origin.what}: ` : ''}the bind mount source ${m.source} does not exist`, {
          location: origin?.location,
          hint: `create it first, or fix the mount "${m.source}:${m.target}"`,
        });
      }
      if (!m.readOnly) refuseOwnSource(m, [...host.protectedFiles, ...host.protectedDirs]);
      b.add({ op: 'bind', src: `/oldroot${m.source}`, dest: `/newroot${m.target}`, flags: { ro: m.readOnly, rec: true } }, origin);
      if (!m.readOnly) protectOwnFiles(b, m.source, m.target, [...host.protectedFiles, ...host.protectedDirs]);
      maskHostProc(b, m.source, m.target, host.procMounts);
    } else if (m.type === 'tmpfs') {
      b.add({ op: 'mkdir', path: `/newroot${m.target}`, mode: m.mode ?? 0o1777 }, origin);
      // With a size of its own, a tmpfs of that size; without, a directory of the RAM budget.
      if (m.size) b.add({ op: 'tmpfs', dest: `/newroot${m.target}`, mode: m.mode ?? 0o1777, size: m.size }, origin);
      else ramDirOps(b, `tmpfs${i}`, m.mode ?? 0o1777, `/newroot${m.target}`, origin);
    } else {
      // Named volume: a bind of its data directory (created by the launcher on first use).
      b.add({ op: 'bind', src: `/oldroot${volumeDataPath(host.paths, m.name)}`, dest: `/newroot${m.target}`, flags: { ro: m.readOnly, rec: true } }, origin);
    }
  }
}

/** The paths of `own` strictly inside `source`, shallowest first, none inside another. */
export function ownPathsUnder(source: string, own: readonly string[]): string[] {
  return own
    .filter((p) => isUnder(p, source) && p !== source)
    .sort((x, y) => x.length - y.length)
    .filter((p, i, all) => !all.slice(0, i).some((q) => isUnder(p, q)));
}

/**
 * A read-write bind that contains hutch's own files or directories gets them
 * back read-only (`try`: one that does not exist is skipped; the launcher
 * creates the missing directories first, src/sandbox/lifecycle.ts). The
 * directories leading to them inside the bind are pinned (each bound onto
 * itself, read-write): a mount point cannot be renamed (EBUSY), so the
 * sandbox cannot move `~/.cache` aside and put a directory of its own where
 * hutch looks next time.
 */
export function protectOwnFiles(b: PlanBuilder, source: string, target: string, own: readonly string[]): void {
  const inside = (p: string) => (p === source ? target : posix.join(target, posix.relative(source, p)));
  const mine = ownPathsUnder(source, own);
  const pins = new Set<string>();
  for (const p of mine) for (let d = posix.dirname(p); d !== source && isUnder(d, source); d = posix.dirname(d)) pins.add(d);
  for (const d of [...pins].sort((x, y) => x.length - y.length)) {
    b.add({ op: 'bind', src: `/oldroot${d}`, dest: `/newroot${inside(d)}`, flags: { ro: false, rec: true, try: true } });
  }
  for (const p of mine) {
    b.note(`hutch's own ${p} stays read-only inside`);
    b.add({ op: 'bind', src: `/oldroot${p}`, dest: `/newroot${inside(p)}`, flags: { ro: true, rec: true, try: true } });
  }
}

/**
 * The host's /proc inside a bind (`-v /:/host`, `-v /proc:/p`) is masked: it
 * shows the processes of hutch's that live outside the sandbox's pid
 * namespace but inside its user namespace (the monitor, a fuse-overlayfs
 * daemon), and the daemon, started by exec there, could be traced through
 * it by a command with CAP_SYS_PTRACE. The sandbox has a /proc of its own.
 */
function maskHostProc(b: PlanBuilder, source: string, target: string, procs: readonly string[]): void {
  for (const p of procs) {
    if (!isUnder(p, source)) continue;
    const inside = p === source ? target : posix.join(target, posix.relative(source, p));
    b.note(`the host's ${p} is not shown inside (the sandbox has its own /proc)`);
    b.add({ op: 'mask', path: `/newroot${inside}` });
  }
}

/** A read-write bind of something inside hutch's own directories is refused: it would hand the sandbox what protectOwnFiles keeps from it. */
function refuseOwnSource(m: { source: string; target: string }, own: readonly string[]): void {
  const hit = own.find((p) => isUnder(m.source, p));
  if (hit) {
    throw new HutchError(`the read-write mount "${m.source}:${m.target}" is inside hutch's own ${hit}: a sandbox must not be able to change hutch's files`, {
      hint: `mount it read-only ("${m.source}:${m.target}:ro"), or copy what the sandbox needs elsewhere`,
    });
  }
}

function commandOps(b: PlanBuilder, spec: SandboxSpec, keepId?: { uid: number; gid: number }): void {
  b.add({ op: 'clearenv' });
  for (const [k, v] of Object.entries(spec.env)) b.add({ op: 'env', name: k, value: v });
  b.add({ op: 'chdir', dir: spec.workdir }, spec.origins.workdir);
  b.note('new session: nothing inside can push keystrokes into your terminal (TIOCSTI)');
  b.add({ op: 'setsid' });
  b.add({ op: 'no-new-privs' });
  b.add({ op: 'caps', caps: spec.capabilities });
  if (spec.user) {
    b.note(`run as ${spec.user}: a user other than root has no capabilities`);
    b.add({ op: 'user', user: spec.user }, spec.origins.user);
  } else if (keepId) {
    b.note(`--userns keep-id: run as your own uid ${keepId.uid} and gid ${keepId.gid}, with no capabilities (as podman); HOME from /etc/passwd`);
    b.add({ op: 'user', user: `${keepId.uid}:${keepId.gid}` });
  }
  if (spec.seccompDeny.length) {
    b.note('seccomp: these system calls fail with EPERM inside (profile seccomp: unconfined turns this off)');
    b.add({ op: 'seccomp', deny: spec.seccompDeny });
  }
  if (!spec.allowSetuid) {
    b.note('no setuid/setgid files: chmod and file creation with those bits fail with EPERM (profile security.allowSetuid: true allows them)');
    b.add({ op: 'no-setid' });
  }
  b.add({ op: 'exec', argv: spec.command });
}
