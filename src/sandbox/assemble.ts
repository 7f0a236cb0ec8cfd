// SandboxSpec + what we know about the host -> the helper's plan.
// Every decision about what the sandbox sees is made here (or in the modules
// it calls), so `--dry-run` shows it all.

import { existsSync } from 'node:fs';
import { HutchError } from '../util/errors';
import type { IdentityInfo } from '../host/ids';
import type { HutchPaths } from '../host/paths';
import type { TopLevelEntry } from '../rootfs/host-scan';
import { rootfsInnerOps, rootfsOuterOps, SYSTEM_DIRS, type ResolvedDriver, type RootfsInput } from '../rootfs/layout';
import type { SandboxSpec } from '../spec/types';
import { etcFileOps, type EtcFiles } from '../net/etc-files';
import { volumeDataPath } from '../volume/store';
import { PlanBuilder, type Plan } from '../helper/plan';
import { procMaskOps, systemMountOps } from './system-mounts';

export interface HostContext {
  ids: IdentityInfo;
  paths: HutchPaths;
  hostTop: TopLevelEntry[];
  driver: ResolvedDriver;
  fuseOverlayfs?: string;
  /** Per-sandbox state directory (removed by the helper at exit). */
  sandboxDir: string;
  /** hutch's own files (helper binary, bundle/executable): never writable inside. */
  protectedFiles: string[];
  hasTimeNamespace: boolean;
  /**
   * Stop after the user/ipc/uts/net namespaces exist and wait for hutch
   * (cgroup join, network attach) before the pid and cgroup namespaces.
   */
  syncBeforeStart?: boolean;
  /** Image root: the layer store and the layer ids, top first (src/image/runtime.ts fills it). */
  imageLayers?: { store: string; ids: string[]; base?: string; label?: string };
  /** /etc/hosts and /etc/resolv.conf for the sandbox (src/net/etc-files.ts); undefined: the root filesystem's own. */
  etcFiles?: EtcFiles;
}

export function rootfsInput(spec: SandboxSpec, host: HostContext): RootfsInput {
  let rootfs: RootfsInput['rootfs'];
  if (host.imageLayers) {
    const { store, ids, base, label } = host.imageLayers;
    rootfs = { kind: 'layers', label: label ?? (spec.rootfs.kind === 'image' ? `image ${spec.rootfs.name}` : 'layers'), store, ids, base };
  } else if (spec.rootfs.kind === 'image') {
    throw new Error(`internal: image ${spec.rootfs.name} without resolved layers`);
  } else rootfs = spec.rootfs;
  return {
    rootfs,
    driver: host.driver,
    readOnly: spec.readOnly,
    keep: spec.keep,
    sandboxDir: host.sandboxDir,
    hostTop: host.hostTop,
    fuseOverlayfs: host.fuseOverlayfs,
  };
}

function isUnder(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

/**
 * Host paths hidden in `host` mode. /run and /tmp are fresh in every sandbox,
 * so what lives there (the runtime dir, the session bus) is gone already.
 */
export function hiddenPaths(spec: SandboxSpec, host: HostContext): { tmpfsHome?: string; masks: string[] } {
  if (spec.rootfs.kind !== 'host') return { masks: [] };
  const candidates = [
    host.paths.runtimeDir,
    host.paths.stateDir,
    host.paths.dataDir,
    host.paths.cacheDir,
    host.paths.configDir,
    host.sandboxDir,
    ...(host.paths.sessionBus ? [host.paths.sessionBus] : []),
    ...spec.hide,
  ];
  const home = host.ids.home;
  const hidden: string[] = [home, '/run', '/tmp'];
  const masks: string[] = [];
  for (const p of candidates) {
    if (!p.startsWith('/') || hidden.some((h) => isUnder(p, h))) continue;
    hidden.push(p);
    masks.push(p);
  }
  return { tmpfsHome: home, masks };
}

export function assemblePlan(spec: SandboxSpec, host: HostContext): Plan {
  const b = new PlanBuilder();
  const rootfs = rootfsInput(spec, host);

  b.note('removed by the helper when the sandbox ends, also when hutch itself is killed');
  b.add('cleanup', host.sandboxDir);

  // Identity: nothing runs inside before these maps are written.
  b.note(
    host.ids.uidMap.length > 1
      ? `user namespace: uid ${host.ids.uid} -> 0, subordinate ids through newuidmap/newgidmap`
      : `user namespace: uid ${host.ids.uid} -> 0 only${host.ids.subidNote ? ` (${host.ids.subidNote})` : ''}`,
  );
  for (const m of host.ids.uidMap) b.add('uidmap', m.inside, m.outside, m.count);
  for (const m of host.ids.gidMap) b.add('gidmap', m.inside, m.outside, m.count);
  if (host.ids.uidMap.length > 1) {
    b.add('newuidmap', host.ids.newuidmap!);
    b.add('newgidmap', host.ids.newgidmap!);
  }
  b.add('userns');

  const first = ['ipc', 'uts'];
  if (spec.network !== 'host') first.push('net');
  if (host.driver === 'fuse-overlayfs') first.unshift('mount'); // the daemon's mount namespace
  b.add('unshare', first.join(','));
  if (host.syncBeforeStart) {
    b.note('wait for hutch: cgroup and network are attached before anything runs inside');
    b.add('report');
    b.add('sync');
  }
  const second = ['pid', 'cgroup'];
  if (host.hasTimeNamespace) second.push('time');
  b.add('unshare', second.join(','));

  rootfsOuterOps(b, rootfs);

  b.note('private scratch tmpfs; the host stays reachable as /oldroot until the final pivot');
  b.add('base', '/tmp');
  rootfsInnerOps(b, rootfs);
  systemMountOps(b);

  const { tmpfsHome, masks } = hiddenPaths(spec, host);
  if (tmpfsHome) {
    b.note(`hide the home directory ${tmpfsHome} (only what is mounted into it is visible)`);
    b.add('mkdir', `/newroot${tmpfsHome}`, '700');
    b.add('tmpfs', `/newroot${tmpfsHome}`, '700');
  }
  if (masks.length) b.note("hide hutch's own directories and the session bus");
  for (const p of masks) b.add('mask', `/newroot${p}`);

  if (host.etcFiles) etcFileOps(b, host.etcFiles, spec);
  userMountOps(b, spec, host);
  procMaskOps(b);

  if (spec.readOnly && rootfs.rootfs.kind === 'host' && rootfs.driver === 'overlay') {
    b.note('--read-only: every overlay read-only; mounts made on top keep their own mode');
    // A directory that another mount covers entirely (the home tmpfs at
    // /root, -v x:/opt) is invisible: `self` would hit that mount instead.
    const covering = new Set([tmpfsHome, ...masks, ...spec.mounts.map((m) => m.target)]);
    for (const e of host.hostTop) {
      if (e.kind === 'dir' && e.readable && !e.submounts && !SYSTEM_DIRS.has(e.name) && !covering.has(`/${e.name}`)) {
        b.add('remount-ro', `/newroot/${e.name}`, 'self');
      }
    }
  }
  if (tmpfsHome && spec.home === 'none') {
    b.note('home: none: the home directory is empty and read-only (mounts into it keep their mode)');
    b.add('remount-ro', `/newroot${tmpfsHome}`, 'self');
  }

  b.add('hostname', spec.hostname);
  if (spec.network !== 'host') b.add('lo-up');
  b.add('pivot', '/newroot');
  if (spec.readOnly) b.add('remount-root-ro');

  commandOps(b, spec);
  return b.build();
}

function userMountOps(b: PlanBuilder, spec: SandboxSpec, host: HostContext): void {
  if (spec.mounts.length) b.note('mounts from the profile and the command line');
  for (const m of spec.mounts) {
    if (m.type === 'bind') {
      if (!existsSync(m.source)) {
        throw new HutchError(`bind mount source ${m.source} does not exist`, {
          hint: `create it first, or fix the mount "${m.source}:${m.target}"`,
        });
      }
      b.add('bind', `/oldroot${m.source}`, `/newroot${m.target}`, m.readOnly ? 'ro,rec' : 'rw,rec');
      if (!m.readOnly) protectOwnFiles(b, m.source, m.target, host.protectedFiles);
    } else if (m.type === 'tmpfs') {
      b.add('mkdir', `/newroot${m.target}`, (m.mode ?? 0o1777).toString(8));
      b.add('tmpfs', `/newroot${m.target}`, (m.mode ?? 0o1777).toString(8), ...(m.size ? [m.size] : []));
    } else {
      // Named volume: a bind of its data directory (created by the launcher on first use).
      b.add('bind', `/oldroot${volumeDataPath(host.paths, m.name)}`, `/newroot${m.target}`, m.readOnly ? 'ro,rec' : 'rw,rec');
    }
  }
}

/** A read-write bind that contains hutch's own files gets them back read-only. */
function protectOwnFiles(b: PlanBuilder, source: string, target: string, files: string[]): void {
  for (const f of files) {
    if (!isUnder(f, source)) continue;
    const inside = target + f.slice(source.length);
    b.note(`hutch's own file ${f} stays read-only inside`);
    b.add('bind', `/oldroot${f}`, `/newroot${inside}`, 'ro');
  }
}

function commandOps(b: PlanBuilder, spec: SandboxSpec): void {
  b.add('clearenv');
  for (const [k, v] of Object.entries(spec.env)) b.add('env', k, v);
  b.add('chdir', spec.workdir);
  b.note('new session: nothing inside can push keystrokes into your terminal (TIOCSTI)');
  b.add('setsid');
  b.add('no-new-privs');
  b.add('caps', spec.capabilities.length ? spec.capabilities.join(',') : '-');
  if (spec.user) {
    b.note(`run as ${spec.user}: a user other than root has no capabilities`);
    b.add('user', spec.user);
  }
  if (spec.seccompDeny.length) {
    b.note('seccomp: these system calls fail with EPERM inside (profile seccomp: unconfined turns this off)');
    b.add('seccomp', spec.seccompDeny.join(','));
  }
  b.add('exec', ...spec.command);
}
