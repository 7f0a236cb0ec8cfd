// The fully resolved description of one sandbox. Profiles (src/profile) and
// CLI flags (src/cli) produce it; the runtime (src/runtime) turns it into the
// helper's plan. Nothing downstream re-reads profiles or flags.

export type NetworkMode = 'none' | 'host' | 'slirp' | 'pasta';
export type StorageDriver = 'auto' | 'overlay' | 'fuse-overlayfs';

/** `host`: the host's / as the lower layer; `dir`: a directory; `image`: an imported image (later). */
export type RootfsSpec =
  | { kind: 'host' }
  | { kind: 'dir'; path: string }
  | { kind: 'image'; name: string };

export type MountSpec =
  | { type: 'bind'; source: string; target: string; readOnly: boolean }
  | { type: 'tmpfs'; target: string; size?: number; mode?: number }
  | { type: 'volume'; name: string; target: string; readOnly: boolean };

export interface SandboxSpec {
  /** Sandbox name: hostname default, state directory key. */
  name: string;
  /** Profile chain that produced this spec, most derived first (for messages). */
  profiles: string[];
  rootfs: RootfsSpec;
  storageDriver: StorageDriver;
  /** Root filesystem read-only (writes only to tmpfs/binds/volumes). */
  readOnly: boolean;
  /** Keep the writable upper layer in this host directory instead of discarding it. */
  keep?: string;
  hostname: string;
  workdir: string;
  /** argv of the command; empty means the profile's/default shell. */
  command: string[];
  /** Final environment inside (already merged: passEnv from host, profile env, env files, -e). */
  env: Record<string, string>;
  mounts: MountSpec[];
  network: NetworkMode;
  /** Capabilities kept inside, upper-case without CAP_ prefix (e.g. NET_BIND_SERVICE). */
  capabilities: string[];
  /** Host paths that stay hidden even in `host` rootfs mode (home, runtime dir, hutch's dirs, bus socket). Computed by the runtime, extendable by profiles. */
  hide: string[];
}
