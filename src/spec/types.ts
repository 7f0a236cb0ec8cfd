// The fully resolved description of one sandbox. Profiles (src/profile) and
// CLI flags (src/cli) produce it; src/sandbox turns it into the
// helper's plan. Nothing downstream re-reads profiles or flags.

import type { PortMapping } from '../profile/values';
import type { Origin } from '../util/errors';

// The profile's vocabulary for these is the spec's too.
export type { NetworkMode, RootfsSpec, StorageDriver, UsernsMode } from '../profile/schema';
import type { NetworkMode, RootfsSpec, StorageDriver, UsernsMode } from '../profile/schema';

/** User-mode NAT drivers (src/net implements them). */
export type NetDriverName = 'slirp4netns' | 'pasta';
export const NET_DRIVERS: readonly NetDriverName[] = ['slirp4netns', 'pasta'];

export type MountSpec =
  | { type: 'bind'; source: string; target: string; readOnly: boolean }
  | { type: 'tmpfs'; target: string; size?: number; mode?: number }
  | { type: 'volume'; name: string; target: string; readOnly: boolean };

/** A block device and a byte rate (podman --device-read-bps/--device-write-bps). */
export interface DeviceRate {
  device: string;
  major: number;
  minor: number;
  bytesPerSecond: number;
}

/** Resource limits (cgroup v2, src/cgroup); flags over profile `limits:`. */
export interface LimitsSpec {
  /** bytes (memory.max) */
  memory?: number;
  /** memory + swap in bytes, -1 = unlimited swap (podman --memory-swap) */
  memorySwap?: number;
  /** CPUs of time per period (cpu.max), e.g. 1.5 */
  cpus?: number;
  /** 1-10000 (cpu.weight) */
  cpuWeight?: number;
  /** processes and threads (pids.max) */
  pidsLimit?: number;
  /** 1-10000 (io.weight) */
  ioWeight?: number;
  deviceReadBps: DeviceRate[];
  deviceWriteBps: DeviceRate[];
  /** wall clock, ms: the whole sandbox is killed after it */
  timeoutMs?: number;
  /** warn: run with a warning when a limit cannot be enforced; strict: refuse (125) */
  mode: 'warn' | 'strict';
}

export interface SandboxSpec {
  /** Sandbox name: hostname default, state directory key. */
  name: string;
  /** Profile chain that produced this spec, most derived first (for messages). */
  profiles: string[];
  rootfs: RootfsSpec;
  storageDriver: StorageDriver;
  /** Root filesystem read-only (writes only to tmpfs/binds/volumes). */
  readOnly: boolean;
  /**
   * Bytes of RAM all memory-backed writes together may use (one tmpfs: the
   * upper layer unless kept, /tmp, /run, /dev, /dev/shm, the home tmpfs,
   * unsized --tmpfs mounts); ENOSPC past it.
   */
  tmpfsBudget: number;
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
  /** `--network NAME` (repeatable) of named networks, sorted (docs/NETWORKS.md); `network` is then `none` plus one interface per network. */
  namedNetworks?: string[];
  /** --network-alias: more names the named network's DNS answers for this sandbox. */
  networkAliases?: string[];
  /** --ip: this sandbox's address on its named network. */
  networkIp?: string;
  /** `--network NAME:ip=ADDR,alias=X` (profile network.ip): per named network, the address and names of that network only. */
  networkOptions?: Record<string, import('./network-option').NetworkOptions>;
  /** --link NAME[:ALIAS] (named networks): /etc/hosts, the link variables, the networks' DNS. */
  links?: { name: string; alias: string }[];
  /** --add-host NAME:IP: more /etc/hosts lines. */
  addHosts?: { name: string; ip: string }[];
  /** --dns IP: the nameservers of /etc/resolv.conf (after a named network's responders). */
  dns?: string[];
  /** User-mode NAT driver (slirp/pasta modes): auto picks pasta where it can run, else slirp4netns (src/net/choose.ts). */
  networkDriver: 'auto' | 'slirp4netns' | 'pasta';
  /** slirp/pasta: the sandbox may reach the host's 127.0.0.1 through its gateway address. */
  allowHostLoopback: boolean;
  /** Published ports (podman -p; -P adds the exposed ones); no hostPort = a free port chosen at start. */
  ports: PortMapping[];
  /** Ports the program listens on (profile expose + --expose), normalised `PORT[-END]/PROTO`. */
  expose: string[];
  /** Run the command as USER[:GROUP] (names from the sandbox's /etc/passwd); undefined: uid 0. */
  user?: string;
  /** root: the caller is uid 0 inside; keep-id: the caller keeps its uid and gid inside (src/helper/identity.ts keepIdMaps). */
  userns: UsernsMode;
  /** System calls refused inside (seccomp, EPERM); empty: no filter. */
  seccompDeny: string[];
  /** Profile security.allowSetuid: without it the command cannot set S_ISUID/S_ISGID on a file (seccomp, `no-setid`). */
  allowSetuid: boolean;
  /** Capabilities kept inside, upper-case without CAP_ prefix (e.g. NET_BIND_SERVICE). */
  capabilities: string[];
  /** How the invoking user's home directory appears in `host` mode: empty and writable, or empty and read-only. */
  home: 'hidden' | 'none';
  /** Whose home directories are hidden in `host` mode: the caller's own (account and $HOME), or every home of the host. */
  hideHomes: 'own' | 'all';
  /** Host paths that stay hidden even in `host` rootfs mode (home, runtime dir, hutch's dirs, bus socket). Computed by the runtime, extendable by profiles. */
  hide: string[];
  limits: LimitsSpec;
  /** required: refuse to run when the subordinate id ranges cannot be mapped. */
  subordinateIds: 'auto' | 'required';
  /** Which flag or profile field gave the values a setup step can fail on (error messages only). */
  origins: SpecOrigins;
}

/** Where the values of a spec that the sandbox's setup can fail on came from. */
export interface SpecOrigins {
  workdir: Origin;
  rootfs: Origin;
  keep?: Origin;
  readOnly?: Origin;
  user?: Origin;
  /** By mount target (targets are unique in `mounts`). */
  mounts: Record<string, Origin>;
}

/** Spec defaults an image brings (the profile and flags override them). */
export interface ImageDefaults {
  env: Record<string, string>;
  workdir?: string;
  entrypoint?: string[];
  cmd?: string[];
  expose: string[];
  /** The image's USER (name or uid, optional :group). */
  user?: string;
}
