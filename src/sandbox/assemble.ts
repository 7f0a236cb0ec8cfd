// SandboxSpec + what we know about the host -> the helper's plan.
// Every decision about what the sandbox sees is made here (or in the modules
// it calls), so `--dry-run` shows it all.

import { HutchError } from '../util/errors';
import type { HostFacts } from '../host/facts';
import type { LayeredRoot, RootfsInput, StorageDriver } from '../rootfs/types';
import type { SandboxSpec } from '../spec/types';
import { etcFileOps, type EtcFiles } from '../net/etc-files';
import { volumeDataPath } from '../volume/store';
import { userNamespaceOps } from '../helper/identity';
import type { Namespace } from '../helper/ops';
import { PlanBuilder, type Plan } from '../helper/plan';
import { procMaskOps, systemMountOps } from './system-mounts';

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
  /** Image (or setup-step) root: the layer store and the layer ids, top first (src/sandbox/image-root.ts). */
  imageLayers?: Omit<LayeredRoot, 'kind' | 'label'> & { label?: string };
  /** /etc/hosts and /etc/resolv.conf for the sandbox (src/net/etc-files.ts); undefined: the root filesystem's own. */
  etcFiles?: EtcFiles;
  /** A named network: join its holder's user namespace (instead of a new one) and attach to its bridge under these names. */
  networkJoin?: { socket: string; address?: string; names: string[] };
}

export function rootfsInput(spec: SandboxSpec, facts: Pick<HostFacts, 'hostTop'>, setup: SandboxSetup): RootfsInput {
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
    hostTop: rootfs.kind === 'host' && setup.storage.needsHostTop ? facts.hostTop : [],
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
 * Host paths hidden in `host` mode. /run and /tmp are fresh in every sandbox,
 * so what lives there (the runtime dir, the session bus) is gone already.
 */
export function hiddenPaths(spec: SandboxSpec, host: Pick<HostFacts, 'paths' | 'ids'>, sandboxDir: string): { tmpfsHome?: string; masks: string[] } {
  if (spec.rootfs.kind !== 'host') return { masks: [] };
  const candidates = [
    host.paths.runtimeDir,
    host.paths.stateDir,
    host.paths.dataDir,
    host.paths.cacheDir,
    host.paths.configDir,
    sandboxDir,
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

/** The helper's plan for one sandbox: a pure function of the spec, the host's facts and the setup. */
export function assemblePlan(spec: SandboxSpec, host: HostFacts, setup: SandboxSetup): Plan {
  const b = new PlanBuilder();
  const rootfs = rootfsInput(spec, host, setup);
  const driver = setup.storage;

  b.note('removed by the helper when the sandbox ends, also when hutch itself is killed');
  b.add({ op: 'cleanup', path: setup.sandboxDir });

  // Identity: nothing runs inside before these maps are written.
  b.note(
    host.ids.uidMap.length > 1
      ? `user namespace: uid ${host.ids.uid} -> 0, subordinate ids through newuidmap/newgidmap`
      : `user namespace: uid ${host.ids.uid} -> 0 only${host.ids.subidNote ? ` (${host.ids.subidNote})` : ''}`,
  );
  if (setup.networkJoin) {
    b.note("named network: the network holder's user namespace (same id maps), shared by the network's members");
    b.add({ op: 'net-join', socket: setup.networkJoin.socket });
  } else b.add(userNamespaceOps(host.ids));

  const first: Namespace[] = ['ipc', 'uts'];
  if (spec.network !== 'host') first.push('net');
  if (driver.usesDaemon) first.unshift('mount'); // the daemon's mount namespace
  b.add({ op: 'unshare', ns: first });
  if (setup.syncBeforeStart) {
    b.note('wait for hutch: cgroup and network are attached before anything runs inside');
    b.add({ op: 'report' });
    b.add({ op: 'sync' });
  }
  if (setup.networkJoin) {
    if (!setup.syncBeforeStart) throw new Error('internal: a named network needs the report pipe');
    b.note('named network: eth0, a veth pair to the holder\'s bridge; the names the network\'s DNS answers');
    b.add({ op: 'net-attach', address: setup.networkJoin.address, names: setup.networkJoin.names });
  }
  const second: Namespace[] = ['pid', 'cgroup'];
  if (host.hasTimeNamespace) second.push('time');
  b.add({ op: 'unshare', ns: second });

  driver.outerOps(b, rootfs);

  b.note('private scratch tmpfs; the host stays reachable as /oldroot until the final pivot');
  b.add({ op: 'base', dir: '/tmp' });
  driver.innerOps(b, rootfs);
  systemMountOps(b);

  const { tmpfsHome, masks } = hiddenPaths(spec, host, setup.sandboxDir);
  if (tmpfsHome) {
    b.note(`hide the home directory ${tmpfsHome} (only what is mounted into it is visible)`);
    b.add({ op: 'mkdir', path: `/newroot${tmpfsHome}`, mode: 0o700 });
    b.add({ op: 'tmpfs', dest: `/newroot${tmpfsHome}`, mode: 0o700 });
  }
  if (masks.length) b.note("hide hutch's own directories and the session bus");
  for (const p of masks) b.add({ op: 'mask', path: `/newroot${p}` });

  if (setup.etcFiles) etcFileOps(b, setup.etcFiles, lowerRootsOf(spec, setup));
  userMountOps(b, spec, host);
  procMaskOps(b);

  if (spec.readOnly) driver.readOnlyOps(b, rootfs, new Set([tmpfsHome, ...masks, ...spec.mounts.map((m) => m.target)]));
  if (tmpfsHome && spec.home === 'none') {
    b.note('home: none: the home directory is empty and read-only (mounts into it keep their mode)');
    b.add({ op: 'remount-ro', dest: `/newroot${tmpfsHome}`, self: true });
  }

  b.add({ op: 'hostname', name: spec.hostname });
  if (spec.network !== 'host') b.add({ op: 'lo-up' });
  b.add({ op: 'pivot', dir: '/newroot' });
  if (spec.readOnly) b.add({ op: 'remount-root-ro' });

  commandOps(b, spec);
  return b.build();
}

function userMountOps(b: PlanBuilder, spec: SandboxSpec, host: HostFacts): void {
  if (spec.mounts.length) b.note('mounts from the profile and the command line');
  for (const m of spec.mounts) {
    if (m.type === 'bind') {
      if (!host.fs.exists(m.source)) {
        throw new HutchError(`bind mount source ${m.source} does not exist`, {
          hint: `create it first, or fix the mount "${m.source}:${m.target}"`,
        });
      }
      b.add({ op: 'bind', src: `/oldroot${m.source}`, dest: `/newroot${m.target}`, flags: { ro: m.readOnly, rec: true } });
      if (!m.readOnly) protectOwnFiles(b, m.source, m.target, host.protectedFiles);
    } else if (m.type === 'tmpfs') {
      b.add({ op: 'mkdir', path: `/newroot${m.target}`, mode: m.mode ?? 0o1777 });
      b.add({ op: 'tmpfs', dest: `/newroot${m.target}`, mode: m.mode ?? 0o1777, size: m.size || undefined });
    } else {
      // Named volume: a bind of its data directory (created by the launcher on first use).
      b.add({ op: 'bind', src: `/oldroot${volumeDataPath(host.paths, m.name)}`, dest: `/newroot${m.target}`, flags: { ro: m.readOnly, rec: true } });
    }
  }
}

/** A read-write bind that contains hutch's own files gets them back read-only. */
function protectOwnFiles(b: PlanBuilder, source: string, target: string, files: readonly string[]): void {
  for (const f of files) {
    if (!isUnder(f, source)) continue;
    const inside = target + f.slice(source.length);
    b.note(`hutch's own file ${f} stays read-only inside`);
    b.add({ op: 'bind', src: `/oldroot${f}`, dest: `/newroot${inside}`, flags: { ro: true } });
  }
}

function commandOps(b: PlanBuilder, spec: SandboxSpec): void {
  b.add({ op: 'clearenv' });
  for (const [k, v] of Object.entries(spec.env)) b.add({ op: 'env', name: k, value: v });
  b.add({ op: 'chdir', dir: spec.workdir });
  b.note('new session: nothing inside can push keystrokes into your terminal (TIOCSTI)');
  b.add({ op: 'setsid' });
  b.add({ op: 'no-new-privs' });
  b.add({ op: 'caps', caps: spec.capabilities });
  if (spec.user) {
    b.note(`run as ${spec.user}: a user other than root has no capabilities`);
    b.add({ op: 'user', user: spec.user });
  }
  if (spec.seccompDeny.length) {
    b.note('seccomp: these system calls fail with EPERM inside (profile seccomp: unconfined turns this off)');
    b.add({ op: 'seccomp', deny: spec.seccompDeny });
  }
  b.add({ op: 'exec', argv: spec.command });
}
