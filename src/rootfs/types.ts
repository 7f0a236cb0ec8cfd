// The storage driver interface: how a sandbox's copy-on-write root is built
// from read-only lower layers and a private upper layer. One file per driver
// (overlay.ts, fuse-overlayfs.ts); choose.ts picks one for this host.

import type { PlanBuilder } from '../helper/plan';
import type { TopLevelEntry } from '../host/host-scan';
import type { RootfsSpec } from '../spec/types';
import type { Origin } from '../util/errors';

export type StorageDriverName = 'overlay' | 'fuse-overlayfs';

/** Directories the system-mount stage provides fresh; never taken from the host. */
export const SYSTEM_DIRS = new Set(['proc', 'sys', 'dev', 'tmp', 'run']);

/**
 * An image (or build step) root: read-only layers from the store, top first.
 * `store` is the host directory holding them (`<store>/<id>/root` is a layer).
 */
export interface LayeredRoot {
  kind: 'layers';
  label: string;
  store: string;
  ids: string[];
  /** A host directory below every layer (a profile's `dir:` root under its setup layers). */
  base?: string;
}

export interface RootfsInput {
  rootfs: Exclude<RootfsSpec, { kind: 'image' }> | LayeredRoot;
  readOnly: boolean;
  /** Host directory that keeps the upper layer (--keep); ephemeral otherwise. */
  keep?: string;
  /** Per-sandbox host directory (state dir) for a mount point and a scratch upper. */
  sandboxDir: string;
  /**
   * The sandbox's RAM budget tmpfs (src/sandbox/ram-budget.ts): its host path
   * (the monitor's mount namespace, daemons) and where the init has it: the
   * throw-away upper layer goes there.
   */
  ram: { host: string; inside: string };
  /** The host's top-level entries (only read for a `host` root by drivers that need them). */
  hostTop: readonly TopLevelEntry[];
  /**
   * A `dir:` root's top-level entries when some are owned outside the id map
   * (ownership.ts) and the driver needs them: kernel overlayfs gets an upper
   * directory for each, so they are writable directories inside (mount
   * points, new files, rm and rename work there) although the lower ones
   * cannot be copied up.
   */
  dirTop: readonly TopLevelEntry[];
  /** The sandbox's ops run in a user namespace other than the initial one (helper/identity.ts isChildUserNamespace). */
  childUserNamespace: boolean;
  /** What the user asked for: the root (`--rootfs dir:/x`, a profile's rootfs or setup), the kept upper (`--keep DIR`), `--read-only`. */
  origins: { root?: Origin; keep?: Origin; readOnly?: Origin };
}

export interface StorageDriver {
  readonly name: StorageDriverName;
  /**
   * The driver runs a daemon in the monitor's namespaces, so the monitor
   * needs a mount namespace of its own (`unshare mount` first).
   */
  readonly usesDaemon: boolean;
  /** Whether a `host` root needs the host's top-level entries (HostFacts.hostTop). */
  readonly needsHostTop: boolean;
  /** What else than `name` decides the ops this driver adds (its binary, options): part of the launch cache's key (src/cache/run-cache.ts). */
  readonly config?: string;
  /** Host directories the launcher creates before the helper starts (missing parents get 0700). */
  hostDirs(r: RootfsInput): { path: string; mode: number }[];
  /** Directories created in the RAM budget tmpfs when it is mounted, before any daemon starts. */
  ramDirs(r: RootfsInput): string[];
  /** Ops run by the monitor before the init exists and before the sync point (a daemon: it stays out of the sandbox cgroup). */
  outerOps(b: PlanBuilder, r: RootfsInput): void;
  /** Ops run by the init after `base`: build /newroot (host paths are under /oldroot). */
  innerOps(b: PlanBuilder, r: RootfsInput): void;
  /**
   * `--read-only` before the pivot, for mounts the final `remount-root-ro`
   * does not reach; `covered` are targets other mounts hide entirely.
   */
  readOnlyOps(b: PlanBuilder, r: RootfsInput, covered: ReadonlySet<string | undefined>): void;
}

/** Escape one path for an overlay option (lowerdir entries are joined with ':'). */
export function overlayEscape(p: string): string {
  return p.replace(/\\/g, '\\\\').replace(/,/g, '\\,').replace(/:/g, '\\:');
}
