// `hutch run`: profile + flags -> SandboxSpec -> plan -> helper.

import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { HutchError } from '../errors';
import { identity } from '../host/ids';
import { hostMounts } from '../host/mounts';
import { hutchPaths } from '../host/paths';
import { helperPath, protectedFiles } from '../host/self';
import { loadProfile } from '../profile/index';
import { chooseDriver } from '../rootfs/driver';
import { scanHostRoot } from '../rootfs/host-scan';
import { rootfsHostDirs } from '../rootfs/layout';
import { assemblePlan, rootfsInput, type HostContext } from '../runtime/assemble';
import { launch } from '../runtime/launch';
import { formatPlan } from '../runtime/plan';
import { claimSandboxDir, writeState } from '../runtime/state';
import { resolveSpec, type SpecOverrides } from '../spec-resolve';
import { flagBool, flagList, flagString, formatFlagHelp, parseArgs, type FlagDef } from './args';

export const RUN_FLAGS: FlagDef[] = [
  { name: 'profile', kind: 'string', valueName: 'NAME|FILE', help: 'sandbox profile (built-in name, ~/.config/hutch/profiles/NAME.yaml, or a file); default: default' },
  { name: 'name', kind: 'string', help: 'sandbox name (hostname default, address for other hutch commands)' },
  { name: 'volume', short: 'v', kind: 'string', repeat: true, valueName: 'SRC:DST[:ro]', help: 'bind mount a host path' },
  { name: 'tmpfs', kind: 'string', repeat: true, valueName: 'DST[:size=N]', help: 'mount a tmpfs' },
  { name: 'env', short: 'e', kind: 'string', repeat: true, valueName: 'KEY[=VALUE]', help: 'set an environment variable (KEY alone copies it from the host)' },
  { name: 'env-file', kind: 'string', repeat: true, valueName: 'FILE', help: 'read KEY=VALUE lines from a file' },
  { name: 'workdir', short: 'w', kind: 'string', valueName: 'DIR', help: 'working directory inside' },
  { name: 'hostname', kind: 'string', help: 'hostname inside (default: the sandbox name)' },
  { name: 'read-only', kind: 'bool', help: 'make the root filesystem read-only' },
  { name: 'cap-add', kind: 'string', repeat: true, valueName: 'CAP', help: 'add a capability (e.g. NET_RAW, or ALL)' },
  { name: 'cap-drop', kind: 'string', repeat: true, valueName: 'CAP', help: 'drop a capability (or ALL)' },
  { name: 'network', kind: 'string', valueName: 'MODE', help: 'none | host' },
  { name: 'rootfs', kind: 'string', valueName: 'host|dir:PATH', help: 'root filesystem lower layer' },
  { name: 'storage-driver', kind: 'string', valueName: 'DRIVER', help: 'auto | overlay | fuse-overlayfs' },
  { name: 'keep', kind: 'string', valueName: 'DIR', help: 'keep the writable layer in DIR instead of discarding it' },
  { name: 'rm', kind: 'bool', help: 'accepted for podman compatibility: sandboxes are always removed' },
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

function overridesFromFlags(argv: string[]): { o: SpecOverrides; profile: string; dryRun: boolean; help: boolean } {
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
    network: flagString(p, 'network'),
    rootfs: flagString(p, 'rootfs'),
    storageDriver: flagString(p, 'storage-driver'),
    keep: flagString(p, 'keep'),
    command: p.positionals,
  };
  return { o, profile: flagString(p, 'profile') ?? 'default', dryRun: flagBool(p, 'dry-run'), help: flagBool(p, 'help') };
}

export async function runCommand(argv: string[]): Promise<number> {
  const { o, profile: profileRef, dryRun, help } = overridesFromFlags(argv);
  if (help) {
    process.stdout.write(RUN_USAGE);
    return 0;
  }
  const env = process.env;
  const cwd = process.cwd();
  const ids = identity(env);
  const paths = hutchPaths(env, ids.home, ids.uid);
  const profile = await loadProfile(profileRef, { cwd, env });
  const spec = resolveSpec(profile, o, { env, cwd });
  if (spec.network !== 'none' && spec.network !== 'host') {
    throw new HutchError(`network mode "${spec.network}" is not available in this build`, {
      hint: 'use --network none (isolated) or --network host',
    });
  }
  if (spec.network === 'host') process.stderr.write(`hutch: network host: the sandbox shares the host's network namespace\n`);
  if (spec.capabilities.includes('SYS_ADMIN')) {
    process.stderr.write('hutch: warning: CAP_SYS_ADMIN lets the command undo read-only and hiding mounts inside the sandbox\n');
  }

  const helper = helperPath();
  const choice = await chooseDriver(spec.storageDriver, helper, ids, paths.cacheDir, env);
  const host: HostContext = {
    ids,
    paths,
    hostTop: spec.rootfs.kind === 'host' && choice.driver === 'overlay' ? scanHostRoot(hostMounts()) : [],
    driver: choice.driver,
    fuseOverlayfs: choice.fuseOverlayfs,
    sandboxDir: `${paths.stateDir}/${spec.name}`,
    protectedFiles: protectedFiles(helper),
    hasTimeNamespace: existsSync('/proc/self/ns/time'),
  };

  if (dryRun) {
    const plan = assemblePlan(spec, host);
    process.stdout.write(`# profile: ${spec.profiles.join(' <- ')}\n`);
    process.stdout.write(`# storage driver: ${choice.driver} (${choice.why})\n`);
    process.stdout.write(`# sandbox spec\n${JSON.stringify(spec, null, 2)}\n`);
    process.stdout.write(`# helper plan (what ${helper} would execute)\n${formatPlan(plan)}`);
    return 0;
  }

  host.sandboxDir = claimSandboxDir(paths.stateDir, ids.uid, spec.name);
  try {
    const plan = assemblePlan(spec, host);
    for (const d of rootfsHostDirs(rootfsInput(spec, host))) mkdirSync(d, { recursive: true, mode: 0o700 });
    writeState(host.sandboxDir, {
      name: spec.name,
      pid: process.pid,
      startedAt: new Date().toISOString(),
      profile: spec.profiles,
      command: spec.command,
      rootfs: spec.rootfs.kind === 'dir' ? `dir:${spec.rootfs.path}` : spec.rootfs.kind,
      network: spec.network,
    });
    const { exitCode } = await launch(helper, plan);
    return exitCode;
  } catch (e) {
    rmSync(host.sandboxDir, { recursive: true, force: true });
    throw e;
  }
}
