// `hutch run`: profile + flags -> SandboxSpec -> plan -> helper.

import { gatherHostFacts, type HostFacts } from '../host/facts';
import { requireSubordinateIds } from '../doctor/probe-ids';
import { loadProfile, type ResolvedProfile } from '../profile/index';
import { chooseDriver } from '../rootfs/choose';
import type { StorageDriver } from '../rootfs/types';
import { imageDefaultsFor, imageLayers } from '../sandbox/image-root';
import { Store } from '../image/store';
import type { SandboxSpec } from '../spec/types';
import type { SandboxSetup } from '../sandbox/assemble';
import { dryRunPlan, formatPlan, runSandbox } from '../sandbox/lifecycle';
import { etcFilesFor } from '../net/etc-files';
import { resolveSpec, type SpecOverrides } from '../spec/resolve';
import { flagBool, flagList, flagString, formatFlagHelp, parseArgs, type FlagDef, type ParsedArgs } from './args';
import { trace } from '../util/trace';
import { printNotFoundHint } from './run-hints';

export const RUN_FLAGS: FlagDef[] = [
  { name: 'profile', kind: 'string', valueName: 'NAME|FILE', help: 'sandbox profile (built-in name, ~/.config/hutch/profiles/NAME.yaml, or a file); default: default' },
  { name: 'name', kind: 'string', help: 'sandbox name (hostname default, address for other hutch commands)' },
  { name: 'volume', short: 'v', kind: 'string', repeat: true, valueName: 'SRC:DST[:ro]', help: 'bind mount a host path, or mount a named volume (NAME:DST, created on first use)' },
  { name: 'tmpfs', kind: 'string', repeat: true, valueName: 'DST[:size=N]', help: 'mount a tmpfs' },
  { name: 'env', short: 'e', kind: 'string', repeat: true, valueName: 'KEY[=VALUE]', help: 'set an environment variable (KEY alone copies it from the host)' },
  { name: 'env-file', kind: 'string', repeat: true, valueName: 'FILE', help: 'read KEY=VALUE lines from a file' },
  { name: 'workdir', short: 'w', kind: 'string', valueName: 'DIR', help: 'working directory inside' },
  { name: 'hostname', kind: 'string', help: 'hostname inside (default: the sandbox name)' },
  { name: 'read-only', kind: 'bool', help: 'make the root filesystem read-only' },
  { name: 'cap-add', kind: 'string', repeat: true, valueName: 'CAP', help: 'add a capability (e.g. NET_RAW, or ALL)' },
  { name: 'cap-drop', kind: 'string', repeat: true, valueName: 'CAP', help: 'drop a capability (or ALL)' },
  { name: 'user', short: 'u', kind: 'string', valueName: 'USER[:GROUP]', help: 'run the command as this user (name or uid; ids other than 0 need subordinate ids)' },
  { name: 'security-opt', kind: 'string', repeat: true, valueName: 'seccomp=unconfined', help: 'seccomp=unconfined: no seccomp filter (default: the profile\'s, normally the default filter)' },
  { name: 'network', kind: 'string', valueName: 'MODE', help: 'none (loopback only) | host (the host\'s network) | slirp (user-mode NAT) | pasta (user-mode NAT through pasta) | NAME (a network made by hutch network create)' },
  { name: 'network-alias', kind: 'string', repeat: true, valueName: 'NAME', help: 'named network: one more name the network\'s DNS answers for this sandbox' },
  { name: 'ip', kind: 'string', valueName: 'ADDR', help: 'named network: this sandbox\'s IPv4 address (inside the subnet, not taken)' },
  { name: 'network-driver', kind: 'string', valueName: 'DRIVER', help: 'user-mode NAT driver: auto (pasta where it runs, else slirp4netns) | slirp4netns | pasta' },
  { name: 'publish', short: 'p', kind: 'string', repeat: true, valueName: '[IP:][HOSTPORT:]PORT[/udp]', help: 'publish a sandbox port on the host (default address 127.0.0.1; ranges 8000-8010:8000-8010; [::1]:8080:80)' },
  { name: 'publish-all', short: 'P', kind: 'bool', help: 'publish every exposed port (profile network.expose, --expose) on a free host port' },
  { name: 'expose', kind: 'string', repeat: true, valueName: 'PORT[/PROTO]', help: 'declare a port the program listens on (published by -P)' },
  { name: 'allow-host-loopback', kind: 'bool', help: "let the sandbox reach services on the host's 127.0.0.1 (through its gateway address)" },
  { name: 'rootfs', kind: 'string', valueName: 'host|dir:PATH|image:NAME', help: 'root filesystem: the host, a directory, or an imported image (hutch image ls)' },
  { name: 'storage-driver', kind: 'string', valueName: 'DRIVER', help: 'auto | overlay | fuse-overlayfs' },
  { name: 'keep', kind: 'string', valueName: 'DIR', help: 'keep the writable layer in DIR instead of discarding it' },
  { name: 'rm', kind: 'bool', help: 'accepted for podman compatibility: sandboxes are always removed' },
  { name: 'memory', short: 'm', kind: 'string', valueName: 'SIZE', help: 'memory limit, e.g. 512m, 2g (cgroup memory.max; OOM kill -> exit 137)' },
  { name: 'memory-swap', kind: 'string', valueName: 'SIZE', help: 'memory plus swap limit (-1: unlimited swap; default: as much swap as memory)' },
  { name: 'cpus', kind: 'string', valueName: 'N', help: 'CPU time limit in CPUs, e.g. 1.5 (cgroup cpu.max)' },
  { name: 'cpu-weight', kind: 'string', valueName: 'N', help: 'relative CPU weight 1-10000 (default 100)' },
  { name: 'cpu-shares', kind: 'string', valueName: 'N', help: 'relative CPU weight as podman/docker shares 2-262144 (converted to --cpu-weight)' },
  { name: 'pids-limit', kind: 'string', valueName: 'N', help: 'maximum processes and threads (cgroup pids.max; -1: none)' },
  { name: 'io-weight', kind: 'string', valueName: 'N', help: 'relative block I/O weight 1-10000 (cgroup io.weight)' },
  { name: 'device-read-bps', kind: 'string', repeat: true, valueName: 'DEV:RATE', help: 'read rate limit of a block device, e.g. /dev/sda:10mb (cgroup io.max)' },
  { name: 'device-write-bps', kind: 'string', repeat: true, valueName: 'DEV:RATE', help: 'write rate limit of a block device, e.g. /dev/sda:10mb' },
  { name: 'timeout', kind: 'string', valueName: 'DURATION', help: 'wall-clock limit, e.g. 90s, 10m: the whole sandbox is killed, hutch exits 124' },
  { name: 'limits', kind: 'string', valueName: 'warn|strict', help: 'when a limit cannot be enforced on this host: warn and run (default), or refuse (exit 125)' },
  { name: 'report', kind: 'string', valueName: 'FILE', help: 'write a JSON usage report at exit (exit status, wall time, CPU, peak memory and pids, OOM kills, limits)' },
  { name: 'summary', kind: 'bool', help: 'print a one-line usage summary on stderr at exit' },
  { name: 'dry-run', kind: 'bool', help: 'print the resolved profile and the helper plan; run nothing' },
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

function overridesFromFlags(argv: string[]): { o: SpecOverrides; profile: string; dryRun: boolean; help: boolean; report?: string; summary: boolean } {
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
    network: flagString(p, 'network'),
    net: {
      publish: flagList(p, 'publish'),
      publishAll: flagBool(p, 'publish-all'),
      expose: flagList(p, 'expose'),
      networkDriver: flagString(p, 'network-driver'),
      allowHostLoopback: p.flags.has('allow-host-loopback') ? flagBool(p, 'allow-host-loopback') : undefined,
      aliases: flagList(p, 'network-alias'),
      ip: flagString(p, 'ip'),
    },
    rootfs: flagString(p, 'rootfs'),
    storageDriver: flagString(p, 'storage-driver'),
    keep: flagString(p, 'keep'),
    limits: { ...limitFlagsOf(p), timeout: flagString(p, 'timeout'), mode: flagString(p, 'limits') },
    command: p.positionals,
  };
  return {
    o,
    profile: flagString(p, 'profile') ?? 'default',
    dryRun: flagBool(p, 'dry-run'),
    help: flagBool(p, 'help'),
    report: flagString(p, 'report'),
    summary: flagBool(p, 'summary'),
  };
}

/** The root's layers (bottom first) and their lowers, for image roots and profiles with `setup:` steps. */
async function rootLayers(
  profile: ResolvedProfile,
  spec: SandboxSpec,
  facts: HostFacts,
  storage: StorageDriver,
  dryRun: boolean,
): Promise<{ layers: string[]; imageLayers?: SandboxSetup['imageLayers'] }> {
  if (profile.values.setup?.length) {
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
  const { o, profile: profileRef, dryRun, help, report, summary } = overridesFromFlags(argv);
  if (help) {
    process.stdout.write(RUN_USAGE);
    return 0;
  }
  trace('run: flags parsed');
  const facts = gatherHostFacts();
  const { env, cwd, ids, paths } = facts;
  const profile = await loadProfile(profileRef, { cwd, env });
  trace('run: profile loaded');
  const spec = resolveSpec(profile, o, { ...facts, image: (name) => imageDefaultsFor(paths, name) });
  trace('run: spec resolved');
  if (spec.subordinateIds === 'required') requireSubordinateIds(ids);
  // User-mode NAT (slirp/pasta): the driver and the host ports are settled
  // before anything starts, so a busy port fails here with exit 125.
  const netMod = spec.network === 'slirp' || spec.network === 'pasta' ? await import('../net/index') : undefined;
  const net = await netMod?.prepareNetwork(spec, env, !dryRun);
  const named = spec.namedNetwork ? await import('../net/named') : undefined;
  const member = named && (await named.prepareMember(spec, facts, !dryRun));
  if (spec.network === 'host') process.stderr.write(`hutch: network host: the sandbox shares the host's network namespace\n`);
  if (spec.capabilities.includes('SYS_ADMIN')) {
    process.stderr.write('hutch: warning: CAP_SYS_ADMIN lets the command undo read-only and hiding mounts inside the sandbox\n');
  }

  const choice = await chooseDriver(spec.storageDriver, facts.helper, ids, paths.cacheDir, env);
  trace('run: helper + storage driver');
  // Image root, and a profile's `setup:` layers (built first when missing).
  const { layers, imageLayers: lowers } = await rootLayers(profile, spec, facts, choice.driver, dryRun);
  trace('run: root layers');
  // Limits (src/cgroup): what this host enforces; a sandbox cgroup whenever a
  // delegated cgroup v2 subtree exists (stats, pause, report), a sync point
  // to join it before anything runs inside.
  const cg = await import('../cgroup/index');
  const limits = cg.setupLimits(spec, ids.uid, env, !dryRun, spec.limits.timeoutMs !== undefined || !!report || summary || o.name !== undefined);
  const setup = {
    storage: choice.driver,
    imageLayers: lowers,
    etcFiles: member ? member.etcFiles : etcFilesFor(spec, net && { layout: net.layout, driver: net.choice.name }),
    networkJoin: member?.join,
    syncBeforeStart: member !== undefined || net !== undefined || !!limits.plan.cgroup || spec.limits.timeoutMs !== undefined || !!report || summary,
  };
  trace('run: limits planned');

  if (dryRun) {
    const plan = dryRunPlan(spec, facts, setup);
    process.stdout.write(`# profile: ${spec.profiles.join(' <- ')}\n`);
    process.stdout.write(`# storage driver: ${choice.driver.name} (${choice.why})\n`);
    if (net) process.stdout.write(`# network driver: ${net.choice.name} (${net.choice.why})\n`);
    for (const line of cg.describePlan(limits)) process.stdout.write(`# ${line}\n`);
    process.stdout.write(`# sandbox spec\n${JSON.stringify(spec, null, 2)}\n`);
    process.stdout.write(`# helper plan (what ${facts.helper} would execute)\n${formatPlan(plan)}`);
    return 0;
  }

  const warn = (line: string) => process.stderr.write(`hutch: ${line}\n`);
  cg.enforceMode(spec, limits.plan, warn);
  let limitsHook: InstanceType<typeof cg.LimitsHook> | undefined;
  const { exitCode } = await runSandbox({
    spec,
    facts,
    setup,
    layers,
    say: warn,
    state: {
      profile: spec.profiles,
      command: spec.command,
      rootfs: spec.rootfs.kind === 'dir' ? `dir:${spec.rootfs.path}` : spec.rootfs.kind,
      network: spec.namedNetwork ?? spec.network,
      networks: spec.namedNetwork ? [spec.namedNetwork] : undefined,
      networkDriver: net?.choice.name,
      ports: net?.forwards.map(({ protocol, hostIp, hostPort, containerPort }) => ({ protocol, hostIp, hostPort, containerPort })),
    },
    hooks: (sandboxDir) => {
      limitsHook = new cg.LimitsHook({ ...limits, spec, sandboxDir, reportFile: report, summary, warn });
      trace('run: plan assembled, state written');
      return [limitsHook, ...(net ? [netMod!.networkHook(net, spec, sandboxDir)] : []), ...(member ? [member.hook(sandboxDir)] : [])];
    },
  }).finally(() => member?.hold?.release());
  trace('run: sandbox exited');
  printNotFoundHint(exitCode, spec, paths);
  return limitsHook ? limitsHook.exitCode(exitCode) : exitCode;
}
