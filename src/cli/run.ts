// `hutch run`: profile + flags -> SandboxSpec -> plan -> helper.

import { capabilityWarnings } from '../spec/cap-warnings';
import { gatherHostFacts, type HostFacts } from '../host/facts';
import { requireSubordinateIds } from '../doctor/probe-ids';
import { loadProfile, type ProfileFs, type ResolvedProfile } from '../profile/index';
import { checkFuseForSubordinateRoot, chooseDriver } from '../rootfs/choose';
import { rootWrites } from '../rootfs/ownership';
import { keepIdUser } from '../sandbox/keep-id';
import { sandboxMaps } from '../helper/identity';
import type { StorageDriver } from '../rootfs/types';
import { imageDefaultsFor, imageLayers } from '../sandbox/image-root';
import { Store } from '../image/store';
import type { SandboxSpec } from '../spec/types';
import type { SandboxSetup } from '../sandbox/assemble';
import { dryRunPlan, formatPlan, runSandbox } from '../sandbox/lifecycle';
import { etcFilesFor } from '../net/etc-files';
import { withEtcExtras } from '../net/etc-extras';
import { checkSandboxName, randomName, resolveSpec, type SpecOverrides } from '../spec/resolve';
import { exposureWarnings } from '../spec/exposure';
import { accountInfo } from '../host/ids';
import { cacheOffReason, launchCache, type LaunchCache } from '../cache/launch';
import { flagBool, flagList, flagString, formatFlagHelp, parseArgs, type FlagDef, type ParsedArgs } from './args';
import { trace } from '../util/trace';
import { HutchError } from '../util/errors';
import { printNotFoundHint } from './run-hints';
import { terminalSetup, type TerminalRequest } from '../sandbox/terminal';
import {
  detachedSetup,
  messagesToLog,
  NeedsResidentHutch,
  netResidentReason,
  newRecord,
  recordExit,
  recordHook,
  residentReason,
  startDetached,
  takeDetachedRecord,
} from './detach';
import { DEFAULT_LOG_MAX, ownerOf, removeRecord, updateRecord } from '../state/records';
import { parseSize } from '../util/units';
import type { LaunchHook } from '../helper/spawn';
import { suspendHook } from '../sandbox/suspend';
import { parseRestart, shouldRestart, watchPaths, type RestartPolicy } from './restart';
import { handOver, handoverBlocker, type Handover } from './handover';
import { statusOf } from '../helper/spawn';
import { formatDuration } from '../util/units';
import { isatty } from 'node:tty';

export const RUN_FLAGS: FlagDef[] = [
  {
    name: 'profile',
    kind: 'string',
    valueName: 'NAME|FILE',
    help: 'sandbox profile (built-in name, ~/.config/hutch/profiles/NAME.yaml, or a file); default: default',
  },
  { name: 'name', kind: 'string', help: 'sandbox name (hostname default, address for other hutch commands)' },
  {
    name: 'volume',
    short: 'v',
    kind: 'string',
    repeat: true,
    valueName: 'SRC:DST[:ro]',
    help: 'bind mount a host path, or mount a named volume (NAME:DST, created on first use)',
  },
  { name: 'tmpfs', kind: 'string', repeat: true, valueName: 'DST[:size=N]', help: 'mount a tmpfs' },
  { name: 'env', short: 'e', kind: 'string', repeat: true, valueName: 'KEY[=VALUE]', help: 'set an environment variable (KEY alone copies it from the host)' },
  { name: 'env-file', kind: 'string', repeat: true, valueName: 'FILE', help: 'read KEY=VALUE lines from a file' },
  { name: 'workdir', short: 'w', kind: 'string', valueName: 'DIR', help: 'working directory inside' },
  { name: 'hostname', kind: 'string', help: 'hostname inside (default: the sandbox name)' },
  { name: 'read-only', kind: 'bool', help: 'make the root filesystem read-only' },
  { name: 'cap-add', kind: 'string', repeat: true, valueName: 'CAP', help: 'add capabilities (e.g. NET_RAW, a comma list, or ALL)' },
  { name: 'cap-drop', kind: 'string', repeat: true, valueName: 'CAP', help: 'drop capabilities (a comma list, or ALL)' },
  {
    name: 'user',
    short: 'u',
    kind: 'string',
    valueName: 'USER[:GROUP]',
    help: 'run the command as this user (name or uid; ids other than 0 need subordinate ids)',
  },
  {
    name: 'userns',
    kind: 'string',
    valueName: 'root|keep-id',
    help: 'root (default): you are uid 0 inside; keep-id: your own uid and gid inside (files in bind mounts stay yours, no capabilities; needs subordinate ids)',
  },
  {
    name: 'security-opt',
    kind: 'string',
    repeat: true,
    valueName: 'seccomp=unconfined',
    help: "seccomp=unconfined: no seccomp filter (default: the profile's, normally the default filter)",
  },
  {
    name: 'network',
    kind: 'string',
    repeat: true,
    valueName: 'MODE',
    help: "none (loopback only) | host (the host's network) | slirp (user-mode NAT) | pasta (user-mode NAT through pasta) | NAME (a network made by hutch network create; repeatable; NAME:ip=ADDR,alias=X: the address and a name on that network only)",
  },
  { name: 'network-alias', kind: 'string', repeat: true, valueName: 'NAME', help: "named network: one more name the network's DNS answers for this sandbox" },
  { name: 'ip', kind: 'string', valueName: 'ADDR', help: "named network: this sandbox's IPv4 address (several networks: --network NAME:ip=ADDR)" },
  {
    name: 'link',
    kind: 'string',
    repeat: true,
    valueName: 'NAME[:ALIAS]',
    help: 'named network: reach sandbox NAME as ALIAS (/etc/hosts, ALIAS_PORT_... variables, DNS)',
  },
  { name: 'add-host', kind: 'string', repeat: true, valueName: 'NAME:IP', help: 'one more /etc/hosts line' },
  { name: 'dns', kind: 'string', repeat: true, valueName: 'IP', help: 'a nameserver for /etc/resolv.conf' },
  {
    name: 'network-driver',
    kind: 'string',
    valueName: 'DRIVER',
    help: 'user-mode NAT driver: auto (pasta where it runs and has no bulk-upload stall, else slirp4netns) | slirp4netns | pasta',
  },
  {
    name: 'publish',
    short: 'p',
    kind: 'string',
    repeat: true,
    valueName: '[IP:][HOSTPORT:]PORT[/udp]',
    help: 'publish a sandbox port on the host (default address 127.0.0.1; ranges 8000-8010:8000-8010; [::1]:8080:80)',
  },
  { name: 'publish-all', short: 'P', kind: 'bool', help: 'publish every exposed port (profile network.expose, --expose) on a free host port' },
  { name: 'expose', kind: 'string', repeat: true, valueName: 'PORT[/PROTO]', help: 'declare a port the program listens on (published by -P)' },
  { name: 'allow-host-loopback', kind: 'bool', help: "let the sandbox reach services on the host's 127.0.0.1 (through its gateway address)" },
  {
    name: 'rootfs',
    kind: 'string',
    valueName: 'host|dir:PATH|image:NAME',
    help: 'root filesystem: the host, a directory, or an imported image (hutch image ls)',
  },
  { name: 'pull', kind: 'string', valueName: 'missing|always|never', help: 'for --rootfs image:REF: pull when not stored (default), every time, or never' },
  { name: 'storage-driver', kind: 'string', valueName: 'DRIVER', help: 'auto | overlay | fuse-overlayfs' },
  {
    name: 'tmpfs-budget',
    kind: 'string',
    valueName: 'SIZE',
    help: "RAM budget for all memory-backed writes together (upper layer, /tmp, /run, /dev/shm, home, --tmpfs without size): ENOSPC past it; default: the profile's tmpfsBudget, else half of RAM",
  },
  { name: 'keep', kind: 'string', valueName: 'DIR', help: 'keep the writable layer in DIR instead of discarding it' },
  { name: 'rm', kind: 'bool', help: 'with -d: remove the record (ps -a, logs) when the sandbox exits (attached runs always leave none)' },
  { name: 'restart', kind: 'string', valueName: 'no|on-failure[:N]|always', help: 'start the command again when it exits (a fresh sandbox, same spec)' },
  {
    name: 'watch',
    kind: 'string',
    repeat: true,
    valueName: 'PATH',
    help: 'restart the command when files under PATH change (debounced; .git and node_modules ignored)',
  },
  {
    name: 'detach',
    short: 'd',
    kind: 'bool',
    help: 'run in the background: print the name and return once the command runs; output in hutch logs NAME. No hutch process stays (the helper keeps the sandbox), except with --restart, --watch, --report, --summary, pasta or an IPv6 published port',
  },
  {
    name: 'log-max-size',
    kind: 'string',
    valueName: 'SIZE',
    help: 'with -d: rotate the log (to log.1) at this size (default 4m; both files together stay under twice it)',
  },
  { name: 'memory', short: 'm', kind: 'string', valueName: 'SIZE', help: 'memory limit, e.g. 512m, 2g (cgroup memory.max; OOM kill -> exit 137)' },
  { name: 'memory-swap', kind: 'string', valueName: 'SIZE', help: 'memory plus swap limit (-1: unlimited swap; default: as much swap as memory)' },
  { name: 'cpus', kind: 'string', valueName: 'N', help: 'CPU time limit in CPUs, e.g. 1.5 (cgroup cpu.max)' },
  { name: 'cpu-weight', kind: 'string', valueName: 'N', help: 'relative CPU weight 1-10000 (default 100)' },
  { name: 'cpu-shares', kind: 'string', valueName: 'N', help: 'relative CPU weight as podman/docker shares 2-262144 (converted to --cpu-weight)' },
  { name: 'pids-limit', kind: 'string', valueName: 'N', help: 'maximum processes and threads (cgroup pids.max; -1: none)' },
  { name: 'io-weight', kind: 'string', valueName: 'N', help: 'relative block I/O weight 1-10000 (cgroup io.weight)' },
  {
    name: 'device-read-bps',
    kind: 'string',
    repeat: true,
    valueName: 'DEV:RATE',
    help: 'read rate limit of a block device, e.g. /dev/sda:10mb (cgroup io.max)',
  },
  { name: 'device-write-bps', kind: 'string', repeat: true, valueName: 'DEV:RATE', help: 'write rate limit of a block device, e.g. /dev/sda:10mb' },
  { name: 'timeout', kind: 'string', valueName: 'DURATION', help: 'wall-clock limit, e.g. 90s, 10m: the whole sandbox is killed, hutch exits 124' },
  {
    name: 'limits',
    kind: 'string',
    valueName: 'warn|strict',
    help: 'when a limit cannot be enforced on this host: warn and run (default), or refuse (exit 125)',
  },
  {
    name: 'report',
    kind: 'string',
    valueName: 'FILE',
    help: 'write a JSON usage report at exit (exit status, wall time, CPU, peak memory and pids, OOM kills, limits)',
  },
  { name: 'summary', kind: 'bool', help: 'print a one-line usage summary on stderr at exit' },
  { name: 'interactive', short: 'i', kind: 'bool', help: "keep stdin open (without -i, a terminal's stdin is /dev/null inside)" },
  { name: 'tty', short: 't', kind: 'bool', help: "a terminal of the sandbox's own (job control, Ctrl-C inside); -it for an interactive shell" },
  { name: 'dry-run', kind: 'bool', help: 'print the resolved profile and the helper plan; run nothing' },
  {
    name: 'no-cache',
    kind: 'bool',
    help: 'compute the spec and plan afresh, neither reading nor writing the launch cache (also HUTCH_NO_CACHE=1)',
  },
  { name: 'help', short: 'h', kind: 'bool', help: 'show this help' },
];

export const RUN_USAGE = `Usage: hutch run [FLAGS] [--] [COMMAND [ARG...]]

Run COMMAND (default: the profile's command, else /bin/sh) in a new rootless
sandbox: fresh user, mount, pid, ipc, uts, network and cgroup namespaces, a
copy-on-write root filesystem and a small init as pid 1.

Flags:
${formatFlagHelp(RUN_FLAGS)}
`;

/** The resource-limit flags as given; `hutch update` takes the same ones. */
export function limitFlagsOf(p: ParsedArgs) {
  return {
    memory: flagString(p, 'memory'),
    memorySwap: flagString(p, 'memory-swap'),
    cpus: flagString(p, 'cpus'),
    cpuWeight: flagString(p, 'cpu-weight'),
    cpuShares: flagString(p, 'cpu-shares'),
    pidsLimit: flagString(p, 'pids-limit'),
    ioWeight: flagString(p, 'io-weight'),
    deviceReadBps: flagList(p, 'device-read-bps'),
    deviceWriteBps: flagList(p, 'device-write-bps'),
  };
}

export function overridesFromFlags(argv: string[]): {
  o: SpecOverrides;
  profile: string;
  dryRun: boolean;
  noCache: boolean;
  help: boolean;
  report?: string;
  summary: boolean;
  pull?: string;
  terminal: TerminalRequest;
  detach: boolean;
  autoRemove: boolean;
  logMaxSize: number;
  restart: RestartPolicy;
  watch: string[];
} {
  const p = parseArgs(argv, RUN_FLAGS, 'run', true);
  const o: SpecOverrides = {
    name: flagString(p, 'name'),
    volumes: flagList(p, 'volume'),
    tmpfs: flagList(p, 'tmpfs'),
    env: flagList(p, 'env'),
    envFiles: flagList(p, 'env-file'),
    workdir: flagString(p, 'workdir'),
    hostname: flagString(p, 'hostname'),
    readOnly: p.flags.has('read-only') ? flagBool(p, 'read-only') : undefined,
    capAdd: flagList(p, 'cap-add'),
    capDrop: flagList(p, 'cap-drop'),
    securityOpt: flagList(p, 'security-opt'),
    user: flagString(p, 'user'),
    userns: flagString(p, 'userns'),
    network: flagList(p, 'network')[0],
    moreNetworks: flagList(p, 'network').slice(1),
    net: {
      publish: flagList(p, 'publish'),
      publishAll: flagBool(p, 'publish-all'),
      expose: flagList(p, 'expose'),
      networkDriver: flagString(p, 'network-driver'),
      allowHostLoopback: p.flags.has('allow-host-loopback') ? flagBool(p, 'allow-host-loopback') : undefined,
      aliases: flagList(p, 'network-alias'),
      ip: flagString(p, 'ip'),
      links: flagList(p, 'link'),
      addHosts: flagList(p, 'add-host'),
      dns: flagList(p, 'dns'),
    },
    rootfs: flagString(p, 'rootfs'),
    storageDriver: flagString(p, 'storage-driver'),
    keep: flagString(p, 'keep'),
    tmpfsBudget: flagString(p, 'tmpfs-budget'),
    limits: { ...limitFlagsOf(p), timeout: flagString(p, 'timeout'), mode: flagString(p, 'limits') },
    command: p.positionals,
  };
  return {
    o,
    profile: flagString(p, 'profile') ?? 'default',
    dryRun: flagBool(p, 'dry-run'),
    noCache: flagBool(p, 'no-cache'),
    help: flagBool(p, 'help'),
    report: flagString(p, 'report'),
    summary: flagBool(p, 'summary'),
    pull: flagString(p, 'pull'),
    terminal: { interactive: flagBool(p, 'interactive'), tty: flagBool(p, 'tty') },
    detach: flagBool(p, 'detach'),
    restart: parseRestart(flagString(p, 'restart')),
    watch: flagList(p, 'watch'),
    autoRemove: flagBool(p, 'rm'),
    logMaxSize: logMaxSizeOf(flagString(p, 'log-max-size')),
  };
}

function logMaxSizeOf(text: string | undefined): number {
  if (text === undefined) return DEFAULT_LOG_MAX;
  const n = parseSize(text, '--log-max-size');
  if (n < 4096) throw new HutchError(`--log-max-size: ${text} is below 4k`, { hint: 'e.g. --log-max-size 10m' });
  return n;
}

/** `--rootfs image:REF` or a profile's `rootfs: {image: REF}`: the image, pulled when missing (src/image/registry). */
async function ensureRootImage(o: SpecOverrides, profile: ResolvedProfile, pull: string | undefined, dryRun: boolean): Promise<void> {
  const pv = profile.values.rootfs;
  const text = o.rootfs?.startsWith('image:') ? o.rootfs.slice(6) : !o.rootfs && pv.kind === 'image' ? pv.name : undefined;
  if (text === undefined) {
    if (pull !== undefined) throw new HutchError('--pull applies to an image root filesystem only', { hint: 'use it with --rootfs image:REF' });
    return;
  }
  const reg = await import('../image/registry/index');
  const policy = reg.parsePullPolicy(pull);
  // --dry-run runs nothing, so it pulls nothing either.
  const name = await reg
    .ensureImage(text, dryRun ? 'never' : policy, (l) => process.stderr.write(`${l}\n`))
    .catch((e: unknown) => {
      if (dryRun && e instanceof HutchError)
        throw new HutchError(`rootfs image "${text}" is not stored, and --dry-run pulls nothing`, { hint: `hutch pull ${text} first` });
      throw e;
    });
  o.rootfs = `image:${name}`;
}

/** The root's layers (bottom first) and their lowers, for image roots and profiles with `setup:` steps. */
async function rootLayers(
  profile: ResolvedProfile | undefined,
  spec: SandboxSpec,
  facts: HostFacts,
  storage: StorageDriver,
  dryRun: boolean,
): Promise<{ layers: string[]; imageLayers?: SandboxSetup['imageLayers'] }> {
  if (profile?.values.setup?.length) {
    const { ensureBuilt } = await import('../layers/build');
    const built = await ensureBuilt(profile, spec, facts, storage, { dryRun });
    return { layers: built.layers, imageLayers: built.lowers };
  }
  if (spec.rootfs.kind !== 'image') return { layers: [] };
  const store = new Store(facts.paths.dataDir);
  const img = store.requireImage(spec.rootfs.name, 'rootfs image');
  return { layers: img.layers, imageLayers: imageLayers(store, img.layers) };
}

export async function runCommand(argv: string[]): Promise<number> {
  const record = takeDetachedRecord(); // set: this is the resident hutch of a `run -d`
  if (record) messagesToLog(record);
  const args = overridesFromFlags(argv);
  const { o, profile: profileRef, dryRun, help, detach, autoRemove, pull } = args;
  if (help) {
    process.stdout.write(RUN_USAGE);
    return 0;
  }
  trace('run: flags parsed');
  const facts = gatherHostFacts();
  const { cwd, ids, paths } = facts;
  trace('run: host facts');
  // The launch cache (src/cache/): the spec (and below, the plan) of the same
  // inputs, or computed here with every read recorded.
  const cache = launchCache(args, !!record, facts);
  const name = checkSandboxName(o.name ?? randomName());
  let profile: ResolvedProfile | undefined;
  const resolve = async (f: HostFacts, pfs: ProfileFs | undefined, asName: string) => {
    profile = await loadProfile(profileRef, { cwd, env: f.env, fs: pfs });
    trace('run: profile loaded');
    await ensureRootImage(o, profile, pull, dryRun);
    // the fields resolveSpec reads, not a spread of the facts: that would read every lazy fact (the host's /, mounts, homes)
    return resolveSpec(
      profile,
      { ...o, name: asName },
      { env: f.env, cwd: f.cwd, arch: f.arch, fs: f.fs, totalMemory: f.totalMemory, image: (n) => imageDefaultsFor(paths, n) },
    );
  };
  const spec = cache ? await cache.spec(name, resolve, () => profile) : await resolve(facts, undefined, name);
  trace(cache ? `run: spec resolved (cache: ${cache.status()})` : 'run: spec resolved');
  for (const w of exposureWarnings(spec, [ids.home, accountInfo().homedir])) process.stderr.write(`hutch: ${w}\n`);
  if (detach && args.terminal.tty)
    throw new HutchError('-t with -d: a detached sandbox has no terminal to relay', {
      hint: 'drop -t; hutch logs -f NAME shows its output, hutch exec -it NAME sh gives a terminal inside',
    });
  if (detach && !dryRun && !record) {
    const why = residentReason(args);
    if (why) return startDetached(argv, spec, paths, ids.uid, autoRemove, o.name !== undefined, why);
    return runLeaving({ args, facts, profile, spec }, argv);
  }
  if (record) updateRecord(record, ownerOf(process.pid));
  const once = dryRun || (args.restart.kind === 'no' && !args.watch.length);
  // a plain foreground run hands its process over once the command runs (handover.ts)
  const foreground: RunContext['foreground'] = once && !record ? { stay: handoverBlocker({ ...args, dryRun }) } : undefined;
  const ctx: RunContext = { args, facts, profile, spec, record, cache, foreground };
  let code = 125;
  try {
    code = once ? await runOnce(ctx) : await runRestarting(ctx);
    if (foreground?.handedOver) return await handOverOrWait(foreground.handedOver);
    return code;
  } finally {
    if (record) recordExit(record, code);
  }
}

/** The exec into `hutch-helper await`; should it fail, this hutch waits for the monitor as before. */
async function handOverOrWait(h: Handover & { child: import('node:child_process').ChildProcess }): Promise<number> {
  const err = handOver(h);
  process.stderr.write(`hutch: warning: cannot hand over to ${h.helper} (${err.message}): hutch waits for the sandbox itself\n`);
  if (h.child.exitCode !== null || h.child.signalCode !== null) return statusOf(h.child.exitCode, h.child.signalCode);
  return new Promise((resolve) => h.child.on('exit', (c, sig) => resolve(statusOf(c, sig))));
}

/**
 * `run -d` that leaves no hutch behind: set up here, hand the sandbox to its
 * monitor once the command runs, print the name. A sandbox that never ran
 * (a setup error, a command not found) leaves no record: the error is printed here.
 */
async function runLeaving(ctx: Omit<RunContext, 'record'>, argv: string[]): Promise<number> {
  const { spec, facts, args } = ctx;
  const dir = newRecord(facts.paths, facts.ids.uid, spec, args.autoRemove);
  let left = false;
  try {
    const code = await runOnce({ ...ctx, record: dir, leave: { onLeft: () => (left = true) } });
    if (left) {
      process.stdout.write(`${spec.name}\n`);
      return 0;
    }
    removeRecord(dir);
    return code;
  } catch (e) {
    removeRecord(dir);
    if (e instanceof NeedsResidentHutch) return startDetached(argv, spec, facts.paths, facts.ids.uid, args.autoRemove, args.o.name !== undefined, e.reason);
    throw e;
  }
}

interface RunContext {
  args: ReturnType<typeof overridesFromFlags>;
  facts: HostFacts;
  /** undefined: the spec came from the launch cache (a profile without `setup:` steps or an image root). */
  profile?: ResolvedProfile;
  cache?: LaunchCache;
  spec: SandboxSpec;
  /** `run -d`: the record directory (src/state/records.ts). */
  record?: string;
  /** `run -d` without a resident hutch: hutch leaves once the command runs. */
  leave?: { onLeft: () => void };
  /** extra hooks (restart.ts: the kill of the running sandbox) */
  hooks?: LaunchHook[];
  /**
   * A plain foreground run (handover.ts): `stay` says why hutch stays resident
   * (undefined: it hands over); runOnce fills `handedOver` once the command runs.
   */
  foreground?: { stay?: string; handedOver?: Handover & { child: import('node:child_process').ChildProcess } };
}

/** --restart, --watch: the same spec, a fresh sandbox each time, until hutch is told to stop. */
async function runRestarting(ctx: RunContext): Promise<number> {
  const warn = (line: string) => process.stderr.write(`hutch: ${line}\n`);
  const { restart, watch } = ctx.args;
  let stopping = false;
  let kill: ((sig: NodeJS.Signals) => void) | undefined;
  let changed: string | undefined;
  let wake: (() => void) | undefined;
  const stop = () => {
    stopping = true;
    wake?.();
  };
  const stopSignals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];
  for (const s of stopSignals) process.on(s, stop);
  const unwatch = watch.length
    ? watchPaths(watch, ctx.facts.cwd, (what) => {
        changed = what;
        warn(`--watch: ${what} changed, restarting`);
        if (kill) {
          kill('SIGTERM');
          const k = kill;
          setTimeout(() => k('SIGKILL'), 10_000).unref();
        }
        wake?.();
      })
    : () => {};
  const hook: LaunchHook = { started: (c) => (kill = c.kill), afterExit: () => void (kill = undefined) };
  let code = 0;
  try {
    for (let restarts = 0; ; ) {
      changed = undefined;
      code = await runOnce({ ...ctx, hooks: [hook] });
      kill = undefined;
      if (stopping) break;
      if (changed) continue;
      if (shouldRestart(restart, code, restarts)) {
        restarts++;
        warn(`--restart ${restart.kind}: the command exited with ${code}, starting it again (${restarts})`);
        continue;
      }
      if (!watch.length) break;
      warn(`the command exited with ${code}; waiting for a change under ${watch.join(', ')} (Ctrl-C ends)`);
      await new Promise<void>((r) => (wake = r));
      wake = undefined;
      if (stopping) break;
    }
  } finally {
    unwatch();
    for (const s of stopSignals) process.off(s, stop);
  }
  return code;
}

async function runOnce(ctx: RunContext): Promise<number> {
  const { facts, profile, record } = ctx;
  let { spec } = ctx;
  const { o, dryRun, report, summary, terminal: termReq } = ctx.args;
  const { env, ids, paths } = facts;
  if (spec.subordinateIds === 'required') requireSubordinateIds(ids);
  const maps = sandboxMaps(spec.userns, ids); // keep-id without subordinate ids fails here, before anything starts
  // User-mode NAT (slirp/pasta): the driver and the host ports are settled
  // before anything starts, so a busy port fails here with exit 125.
  const netMod = spec.network === 'slirp' || spec.network === 'pasta' ? await import('../net/index') : undefined;
  const net = await netMod?.prepareNetwork(spec, env, !dryRun, paths.cacheDir);
  const resident = ctx.leave && netResidentReason(net);
  if (resident) throw new NeedsResidentHutch(resident); // before anything started
  if (net?.choice.warning) process.stderr.write(`hutch: ${net.choice.warning}\n`);
  const named = spec.namedNetworks ? await import('../net/named') : undefined;
  const member = named && (await named.prepareMember(spec, facts, !dryRun));
  // --link's variables; -e and the profile's win
  if (member && Object.keys(member.env).length) spec = { ...spec, env: { ...member.env, ...spec.env } };
  if (spec.network === 'host') process.stderr.write(`hutch: network host: the sandbox shares the host's network namespace\n`);
  for (const w of capabilityWarnings(spec.capabilities)) process.stderr.write(`hutch: warning: ${w}\n`);
  for (const w of net ? netMod!.capabilityWarnings(spec, net) : []) process.stderr.write(`hutch: ${w}\n`);

  // `setup:` steps (built with the same driver) run as root and write the root, whatever the command does.
  const writes = profile?.values.setup?.length
    ? rootWrites({ ...spec, readOnly: false, user: undefined }, ids, true, facts.fs)
    : rootWrites(spec, ids, !keepIdUser(spec, ids), facts.fs);
  const choice = await chooseDriver(spec.storageDriver, facts.helper, ids, paths.cacheDir, env, writes);
  if (keepIdUser(spec, ids)) checkFuseForSubordinateRoot(choice.driver, maps.uidMap[0].outside);
  trace('run: helper + storage driver');
  // Image root, and a profile's `setup:` layers (built first when missing).
  const { layers, imageLayers: lowers } = await rootLayers(profile, spec, facts, choice.driver, dryRun);
  trace('run: root layers');
  // Limits (src/cgroup): what this host enforces; a sandbox cgroup whenever a
  // delegated cgroup v2 subtree exists (stats, pause, report), a sync point
  // to join it before anything runs inside.
  const cg = await import('../cgroup/index');
  // Ctrl-Z at a terminal suspends the sandbox too: after a handover, by freezing its cgroup
  const suspendable = !!ctx.foreground && !termReq.tty && isatty(0);
  const limits = cg.setupLimits(
    spec,
    ids.uid,
    env,
    !dryRun,
    spec.limits.timeoutMs !== undefined || !!report || summary || o.name !== undefined || (suspendable && !ctx.foreground?.stay),
  );
  // a detached sandbox never meets the terminal `run -d` was typed in
  const terminal = ctx.leave ? { ops: [], stdin: 'ignore' as const } : terminalSetup(termReq);
  const stay =
    ctx.foreground &&
    (ctx.foreground.stay ??
      netResidentReason(net) ??
      (suspendable && !limits.plan.cgroup ? 'Ctrl-Z at the terminal in a sandbox without a cgroup (hutch stops its processes)' : undefined));
  const handingOver = !!ctx.foreground && !stay;
  if (ctx.foreground) trace(handingOver ? 'run: hands over to hutch-helper await once the command runs' : `run: hutch stays resident (${stay})`);
  const holdFd = (ctx.leave || handingOver) && net?.choice.name === 'slirp4netns' ? 6 : undefined;
  const cgroupPrefix = limits.plan.cgroup ? cg.cgroupPrefix(limits.probe, spec.name) : undefined;
  const etcFilesOf = (s: SandboxSpec) => withEtcExtras(etcFilesFor(s, net && { layout: net.layout, driver: net.choice.name }), s);
  const setup = {
    terminal: terminal.ops,
    storage: choice.driver,
    imageLayers: lowers,
    etcFiles: member ? member.etcFiles : etcFilesOf(spec),
    networkJoin: member?.join,
    hostnameFile: true,
    unreachable: net?.blocked ?? member?.blocked,
    syncBeforeExec: net !== undefined,
    // not for a NAT alone: it attaches at the init (syncBeforeExec); the sync
    // point would add a round trip through hutch before the init is forked
    syncBeforeStart: member !== undefined || !!limits.plan.cgroup || spec.limits.timeoutMs !== undefined || !!report || summary || !!record,
    detached: record
      ? detachedSetup(record, {
          leave: !!ctx.leave,
          logMaxSize: ctx.args.logMaxSize,
          autoRemove: ctx.args.autoRemove,
          timeoutMs: spec.limits.timeoutMs,
          cgroupPrefix,
          holdFd,
        })
      : undefined,
    handover: handingOver ? { holdFd, cgroupPrefix } : undefined,
  };
  trace('run: limits planned');
  // The plan from the launch cache: the setup made for its placeholder name (nothing else in it is per sandbox
  // here: a named network's member or a detached record puts the name elsewhere, and is not cached).
  const planFor =
    ctx.cache && !member && !record
      ? (sandboxDir: string) =>
          ctx.cache!.plan(spec.name, sandboxDir, (s, dir) => ({
            ...setup,
            etcFiles: etcFilesOf(s),
            sandboxDir: dir,
            // the handover's cgroup is named after the sandbox: the placeholder's here, so that one entry serves every name
            handover: setup.handover && { ...setup.handover, cgroupPrefix: limits.plan.cgroup ? cg.cgroupPrefix(limits.probe, s.name) : undefined },
          }))
      : (ctx.cache?.store(), undefined);

  if (dryRun) {
    const plan = dryRunPlan(spec, facts, setup, planFor);
    process.stdout.write(`# profile: ${spec.profiles.join(' <- ')}\n`);
    process.stdout.write(`# cache: ${ctx.cache ? ctx.cache.status() : `off (${cacheOffReason(ctx.args, !!record, env)})`}\n`);
    process.stdout.write(`# storage driver: ${choice.driver.name} (${choice.why})\n`);
    process.stdout.write(`# writable: ${spec.readOnly ? 'nothing of the root (--read-only)' : choice.gives}\n`);
    if (net) process.stdout.write(`# network driver: ${net.choice.name} (${net.choice.why})\n`);
    for (const line of cg.describePlan(limits)) process.stdout.write(`# ${line}\n`);
    if (ctx.foreground)
      process.stdout.write(
        `# after the start: ${handingOver ? 'hutch execs hutch-helper await in its process (no Node stays)' : `hutch stays resident (${stay})`}\n`,
      );
    // origins only name flags and profile fields in error messages
    process.stdout.write(`# sandbox spec\n${JSON.stringify({ ...spec, origins: undefined }, null, 2)}\n`);
    process.stdout.write(
      `# helper plan (what ${facts.helper.startsWith('/proc/self/fd/') ? 'the helper inside hutch' : facts.helper} would execute)\n${formatPlan(plan)}`,
    );
    return 0;
  }

  const warn = (line: string) => process.stderr.write(`hutch: ${line}\n`);
  cg.enforceMode(spec, limits.plan, warn);
  let limitsHook: InstanceType<typeof cg.LimitsHook> | undefined;
  let stateDir = '';
  let initAt = Date.now();
  const result = await runSandbox({
    spec,
    facts,
    setup,
    layers,
    say: warn,
    stdin: terminal.stdin,
    detach: ctx.leave ? { hold: holdFd !== undefined } : undefined,
    handover: handingOver ? { hold: holdFd !== undefined } : undefined,
    recordDir: record,
    plan: planFor,
    state: {
      profile: spec.profiles,
      command: spec.command,
      rootfs: spec.rootfs.kind === 'dir' ? `dir:${spec.rootfs.path}` : spec.rootfs.kind,
      network: spec.namedNetworks?.join(',') ?? spec.network,
      networks: spec.namedNetworks,
      expose: spec.expose.length ? spec.expose : undefined,
      networkDriver: net?.choice.name,
      ports: (net?.forwards ?? member?.forwards)?.map(({ protocol, hostIp, hostPort, containerPort }) => ({ protocol, hostIp, hostPort, containerPort })),
    },
    hooks: (sandboxDir) => {
      stateDir = sandboxDir;
      limitsHook = new cg.LimitsHook({ ...limits, spec, sandboxDir, reportFile: report, summary, warn, ownedByMonitor: !!ctx.leave || handingOver });
      trace('run: plan assembled, state written');
      return [
        limitsHook,
        ...(net ? [netMod!.networkHook(net, spec, sandboxDir)] : []),
        ...(record ? [recordHook(record, !!ctx.leave, ctx.leave?.onLeft)] : [suspendHook(sandboxDir)]),
        ...(member ? [member.hook(sandboxDir)] : []),
        ...(ctx.hooks ?? []),
        { started: () => void (initAt = Date.now()) }, // --timeout counts from here, also in hutch-helper await
      ];
    },
  }).finally(() => member?.release());
  if (result.handedOver) {
    const { monitorPid, initPid, child } = result.handedOver;
    // what is left of --timeout (LimitsHook's timer started with the init); at least 1 ms: 0 is none
    const ms = spec.limits.timeoutMs !== undefined ? (limitsHook?.timeoutFired ? 1 : Math.max(1, spec.limits.timeoutMs - (Date.now() - initAt))) : undefined;
    ctx.foreground!.handedOver = {
      helper: facts.helper,
      monitorPid,
      initPid,
      child,
      cgroup: limitsHook?.cgroup?.path,
      stateDir,
      timeoutMs: ms,
      // fired already (just before the handover): said once, the sandbox is being killed, await keeps the 124
      timeoutText: ms === undefined ? undefined : limitsHook?.timeoutFired ? '' : `killed: timeout ${formatDuration(spec.limits.timeoutMs!)} reached`,
    };
    return 0;
  }
  const { exitCode } = result;
  trace('run: sandbox exited');
  printNotFoundHint(exitCode, spec, paths);
  return limitsHook ? limitsHook.exitCode(exitCode) : exitCode;
}
