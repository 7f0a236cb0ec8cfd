// The storage driver interface: how a sandbox's copy-on-write root is built
// from read-only lower layers and a private upper layer. One file per driver
// (overlay.ts, fuse-overlayfs.ts); choose.ts picks one for this host.

import type { PlanBuilder } from '../helper/plan';
import type { TopLevelEntry } from '../host/host-scan';
import type { RootfsSpec } from '../spec/types';

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
  /** Host directories the launcher creates before the helper starts. */
  hostDirs(r: RootfsInput): string[];
  /** Directories created in the RAM budget tmpfs when it is mounted, before any daemon starts. */
  ramDirs(r: RootfsInput): string[];
  /** Ops run by the monitor before the init exists (a daemon). */
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
