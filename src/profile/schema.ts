// The sandbox profile schema: the one definition behind validation (with
// positions), the JSON Schema in sandbox-profiles/hutch-profile.schema.json
// and the `ProfileLayer` type (one file's validated, normalised content).

import { suggest } from '../util/suggest';
import { CAPABILITIES, DEFAULT_CAPABILITIES, isCapability, normaliseCapability } from './capabilities';
import { field, type INVALID, requiredField, s, toJsonSchema, type Infer, type JsonSchema, type Schema } from './schema-dsl';
import { parseExpose, parseMountString, parsePortMapping, VOLUME_NAME_RE, type ProfileMount } from './values';
import { NETWORK_NAME_RE, RESERVED_NETWORK_NAMES } from '../spec/network';

export type NetworkMode = 'none' | 'host' | 'slirp' | 'pasta';
export type StorageDriver = 'auto' | 'overlay' | 'fuse-overlayfs';

/** `host`: the host's / as the lower layer; `dir`: a directory; `image`: an imported image. */
export type RootfsSpec = { kind: 'host' } | { kind: 'dir'; path: string } | { kind: 'image'; name: string };

export const NETWORK_MODES = ['none', 'host', 'slirp', 'pasta'] as const satisfies readonly NetworkMode[];
export const STORAGE_DRIVERS = ['auto', 'overlay', 'fuse-overlayfs'] as const satisfies readonly StorageDriver[];
export const HOME_MODES = ['hidden', 'none'] as const;
export const HIDE_HOMES = ['own', 'all'] as const;
export const LIMIT_MODES = ['warn', 'strict'] as const;
export const SUBID_MODES = ['auto', 'required'] as const;
export const SECCOMP_MODES = ['default', 'unconfined'] as const;
export const USERNS_MODES = ['root', 'keep-id'] as const;
export type UsernsMode = (typeof USERNS_MODES)[number];

export const SCHEMA_FILE_NAME = 'hutch-profile.schema.json';

// ------------------------------------------------------------- leaf types

/**
 * A list field as written in one file: a plain list is appended to the
 * inherited one; `{replace: [...]}` replaces it.
 */
export interface ListLayer<T> {
  replace: boolean;
  items: T[];
}
function list<T>(item: Schema<T>): Schema<ListLayer<T>> {
  const plain = s.array(item);
  return s.union(
    [
      s.transform(plain, (items): ListLayer<T> => ({ replace: false, items })),
      s.transform(
        s.object({
          replace: requiredField(plain, 'Use this list instead of the inherited one (a plain list is appended to it).'),
        }),
        (v): ListLayer<T> => ({ replace: true, items: v.replace }),
      ),
    ],
    `${plain.expected()} (or {replace: [...]} to drop the inherited entries)`,
  );
}

const insidePath = s.string({ pattern: /^\//, expected: 'an absolute path inside the sandbox (starting with /)' });
const hostPath = s.string({
  minLength: 1,
  expected: 'a host path',
  examples: ['.', './src', '~/.npmrc', '${PWD}/data', '/opt/tools'],
});

const rootfsText = s.transform(
  s.string({
    pattern: /^(host|dir:.+|image:.+)$/,
    expected: '"host", "dir:PATH" or "image:NAME"',
    words: ['host'],
    examples: ['host', 'dir:./rootfs', 'image:debian'],
  }),
  (v): RootfsSpec => (v === 'host' ? { kind: 'host' } : v.startsWith('dir:') ? { kind: 'dir', path: v.slice(4) } : { kind: 'image', name: v.slice(6) }),
);
const rootfsObject = s.transform(
  s.object(
    {
      dir: field(
        s.string({ minLength: 1 }),
        'A host directory used as the root filesystem (relative paths resolve against the working directory of `hutch run`).',
      ),
      image: field(
        s.string({ minLength: 1 }),
        'A stored image (hutch image ls) or a registry reference such as debian:bookworm, pulled when missing (hutch run --pull).',
      ),
    },
    {
      check: (v, node, path, ctx) => {
        if ((v.dir === undefined) === (v.image === undefined)) {
          ctx.report(node, path, 'give exactly one of dir or image', 'e.g. rootfs: {dir: ./rootfs} or rootfs: {image: debian}');
          return false;
        }
        return true;
      },
    },
  ),
  (v): RootfsSpec => (v.dir !== undefined ? { kind: 'dir', path: v.dir } : { kind: 'image', name: v.image! }),
);
const rootfs = s.union([rootfsText, rootfsObject], '"host", "dir:PATH", {dir: PATH} or {image: NAME}');

const octalMode = s.transform(s.string({ coerceScalars: true, pattern: /^0?[0-7]{3,4}$/, expected: 'an octal mode such as "1777" or "0755"' }), (v) =>
  parseInt(v, 8),
);

const bindMount = s.object(
  {
    type: requiredField(s.literal('bind'), 'A host file or directory made visible inside the sandbox.'),
    source: requiredField(hostPath, 'Host path: absolute, relative to the working directory of `hutch run`, `~/...`, or with ${VAR} references.'),
    target: requiredField(insidePath, 'Where it appears inside the sandbox.'),
    readOnly: field(s.boolean(), 'Mount read-only.', { default: false }),
  },
  { title: 'bind mount' },
);
const tmpfsMount = s.object(
  {
    type: requiredField(s.literal('tmpfs'), 'An empty in-memory file system, discarded when the sandbox ends.'),
    target: requiredField(insidePath, 'Where it is mounted inside the sandbox.'),
    size: field(s.size(), 'Size limit, e.g. 256m (default: the kernel default, half of RAM).'),
    mode: field(octalMode, 'Permission bits of its root as octal text, e.g. "1777" (default "755").'),
  },
  { title: 'tmpfs mount' },
);
const volumeMount = s.object(
  {
    type: requiredField(s.literal('volume'), 'A named volume that persists across sandboxes (created on first use).'),
    source: requiredField(s.string({ pattern: VOLUME_NAME_RE, expected: 'a volume name (letters, digits, "_", "." and "-")' }), 'The volume name.'),
    target: requiredField(insidePath, 'Where it appears inside the sandbox.'),
    readOnly: field(s.boolean(), 'Mount read-only.', { default: false }),
  },
  { title: 'volume mount' },
);
const mountText = s.transform(
  s.string({
    pattern: /^.+:\/.*$/,
    expected: 'a mount "SOURCE:TARGET[:ro|rw]"',
    examples: ['.:/work', '~/.cache/pip:/root/.cache/pip:ro', 'cache:/root/.cache'],
  }),
  (v, node, path, ctx): ProfileMount | typeof INVALID => {
    const r = parseMountString(v);
    return r.ok ? r.value : ctx.report(node, path, r.message, r.hint);
  },
);
const mount = s.union(
  [
    mountText,
    s.tagged('type', {
      bind: s.transform(bindMount, (m): ProfileMount => ({ ...m, readOnly: m.readOnly ?? false })),
      tmpfs: s.transform(tmpfsMount, (m): ProfileMount => m),
      volume: s.transform(volumeMount, (m): ProfileMount => ({ ...m, readOnly: m.readOnly ?? false })),
    }),
  ],
  'a string "SOURCE:TARGET[:ro|rw]" or a map with type: bind | tmpfs | volume',
);

const publish = s.transform(
  s.string({
    coerceScalars: true,
    expected: 'a port mapping such as "8080:80"',
    examples: ['8080:80', '127.0.0.1:5353:53/udp', '3000'],
  }),
  (v, node, path, ctx) => {
    const r = parsePortMapping(v);
    return r.ok ? v : ctx.report(node, path, r.message, r.hint);
  },
);
const expose = s.transform(
  s.string({ coerceScalars: true, expected: 'a port such as 3000 or "53/udp"', examples: ['3000', '53/udp'] }),
  (v, node, path, ctx) => {
    const r = parseExpose(v);
    return r.ok ? r.value : ctx.report(node, path, r.message, r.hint);
  },
);

export interface NetworkLayer {
  mode?: NetworkMode;
  /** Named networks (hutch network create) the sandbox joins; several: a member of each. */
  name?: string | string[];
  aliases?: string[];
  /** The address on each named network, by network name. */
  ip?: Record<string, string>;
  allowHostLoopback?: boolean;
  publish?: ListLayer<string>;
  expose?: ListLayer<string>;
}
const networkName = s.transform(
  s.string({ pattern: NETWORK_NAME_RE, expected: 'a network name made by `hutch network create` (letters, digits, _ . -)', examples: ['backend'] }),
  (v, node, path, ctx) =>
    RESERVED_NETWORK_NAMES.includes(v)
      ? ctx.report(node, path, `"${v}" is a network mode or reserved, not a network name`, `use mode: ${v} for a mode, or a name made by hutch network create`)
      : v,
);
const networkObject = s.object({
  name: field(
    s.union([networkName, s.array(networkName)], 'a network name or a list of them'),
    'Named network(s) made by `hutch network create` to join (as --network NAME; a list: a member of each). Outbound traffic leaves through the first non-internal one in lexical order.',
    { examples: ['backend', ['backend', 'frontend']] },
  ),
  aliases: field(
    s.array(s.string({ pattern: /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/, expected: 'a DNS label', examples: ['db'] })),
    "More names the named networks' DNS answers for this sandbox (as --network-alias).",
  ),
  ip: field(
    s.map(
      s.string({
        pattern: /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/,
        expected: "an IPv4 address inside the network's subnet",
        examples: ['10.89.0.5'],
      }),
      { keyPattern: NETWORK_NAME_RE, keyExpected: 'a network name of network.name' },
    ),
    "The sandbox's address on each named network, by network name (as --network NAME:ip=ADDR); kept across --restart.",
    { examples: [{ backend: '10.89.0.5' }] },
  ),
  mode: field(
    s.enumOf(NETWORK_MODES),
    'none: no network (loopback only); host: share the host network; slirp: user-mode NAT through slirp4netns; pasta: user-mode NAT through pasta.',
    { default: 'none' },
  ),
  allowHostLoopback: field(
    s.boolean(),
    "Let the sandbox reach services on the host's 127.0.0.1 (slirp/pasta). Off by default: a sandboxed program should not talk to your local databases.",
    { default: false },
  ),
  publish: field(
    list(publish),
    'Ports to publish on the host, podman -p syntax: [[IP:][HOST_PORT]:]PORT[/udp]. The host address defaults to 127.0.0.1. Appended to the inherited list ({replace: [...]} replaces it).',
  ),
  expose: field(
    list(expose),
    'Ports the sandboxed program listens on (documentation, and the ports `hutch run -P` publishes). Appended to the inherited list ({replace: [...]} replaces it).',
  ),
});
const network = s.union(
  [
    s.transform(s.enumOf(NETWORK_MODES), (mode): NetworkLayer => ({ mode })),
    s.transform(networkObject as Schema<NetworkLayer>, (v, node, path, ctx) =>
      v.mode !== undefined && v.name !== undefined
        ? ctx.report(node, path, 'network: mode and name exclude each other', 'name: joins named networks; mode: none, host, slirp or pasta')
        : v.mode !== undefined && v.ip !== undefined
          ? ctx.report(
              node,
              path,
              'network: mode and ip exclude each other',
              'ip gives addresses on named networks: network: {name: backend, ip: {backend: 10.89.0.5}}',
            )
          : v,
    ),
  ],
  `one of ${NETWORK_MODES.join(', ')} or a map {mode | name, aliases, ip, allowHostLoopback, publish, expose}`,
);

function capabilityName(allowAll: boolean) {
  const inner = s.transform(
    s.string({
      pattern: /^[A-Za-z_]+$/,
      expected: 'a capability name such as NET_BIND_SERVICE',
      check: (v) => {
        const n = normaliseCapability(v);
        if (isCapability(n) || (allowAll && n === 'ALL')) return undefined;
        const near = suggest(n, allowAll ? [...CAPABILITIES, 'ALL'] : CAPABILITIES);
        return {
          message: `unknown capability ${JSON.stringify(v)}${near ? `; did you mean "${near}"?` : ''}`,
          hint: 'capability names are those of capabilities(7) without CAP_, e.g. CHOWN, NET_BIND_SERVICE, SYS_PTRACE' + (allowAll ? ', or ALL' : ''),
        };
      },
    }),
    (v) => normaliseCapability(v),
  );
  return s.withJson(inner, () => capNameJson(allowAll));
}
// The JSON Schema offers the canonical names for completion but also accepts
// lower-case and CAP_-prefixed spellings, which hutch normalises.
const capNameJson = (allowAll: boolean): JsonSchema => ({
  anyOf: [{ enum: allowAll ? [...CAPABILITIES, 'ALL'] : [...CAPABILITIES] }, { type: 'string', pattern: '^([Cc][Aa][Pp]_)?[A-Za-z_]+$' }],
});

export type CapabilitiesLayer = { set: string[] } | { add: string[]; drop: string[] };
const capabilityList = s.array(capabilityName(true));
const capabilities = s.union(
  [
    s.transform(capabilityList, (set): CapabilitiesLayer => ({ set })),
    s.transform(
      s.object({
        add: field(s.array(capabilityName(true)), 'Capabilities to add to the inherited set (ALL for every capability).'),
        drop: field(s.array(capabilityName(true)), 'Capabilities to remove from the inherited set (ALL for every capability); applied before add.'),
      }),
      (v): CapabilitiesLayer => ({ add: v.add ?? [], drop: v.drop ?? [] }),
    ),
  ],
  'a list of capability names or a map {add: [...], drop: [...]}',
);

const limits = s.object({
  memory: field(s.size(), 'Memory limit (cgroup memory.max), e.g. 512m, 4g.'),
  memorySwap: field(s.size(), 'Memory plus swap limit, as podman --memory-swap (must be at least memory).'),
  cpus: field(s.number({ min: 0, exclusiveMin: true }), 'CPU time limit in CPUs, e.g. 1.5 (cgroup cpu.max).'),
  cpuWeight: field(s.number({ integer: true, min: 1, max: 10000 }), 'Relative CPU weight, 1-10000 (cgroup cpu.weight; the default is 100).'),
  pidsLimit: field(s.number({ integer: true, min: 1 }), 'Maximum number of processes and threads (cgroup pids.max).'),
  ioWeight: field(s.number({ integer: true, min: 1, max: 10000 }), 'Relative I/O weight, 1-10000 (cgroup io.weight; the default is 100).'),
  timeout: field(s.duration(), 'Wall-clock limit, e.g. 90s, 10m, 1h: the sandbox is killed when it runs longer.'),
  mode: field(s.enumOf(LIMIT_MODES), 'warn: if a limit cannot be enforced on this host (no delegated cgroup), warn and run anyway; strict: refuse to run.', {
    default: 'warn',
  }),
});

const security = s.object({
  allowSetuid: field(
    s.boolean(),
    'false (the default): the command cannot give a file the setuid or setgid bit (chmod, or a mode on file creation, fails with EPERM), so no sandbox leaves a set-id program in a directory it can write for another user to run (with seccomp: default, which also refuses io_uring); true: allowed (extracting archives of system images with `tar -p`, for example).',
    { default: false },
  ),
});

const envValue = s.string({ coerceScalars: true, examples: ['${HOME}/bin:/usr/bin', '${EDITOR:-vi}'] });
const envVarName = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** One `setup:` step as written: a command, or files copied in from the profile's directory. */
export interface SetupStepLayer {
  run?: string;
  copy?: { from: string; to: string };
}
const setupStep = s.object(
  {
    run: field(
      s.string({ minLength: 1, coerceScalars: true }),
      'A shell command (run with sh -c as root inside) over the layers below; what it changes becomes a new read-only layer, cached until the step or anything below it changes.',
    ),
    copy: field(
      s.object({
        from: requiredField(hostPath, "A file or directory, relative to this profile file's directory."),
        to: requiredField(insidePath, 'Where it goes inside the image (a directory source is copied as that directory).'),
      }),
      "Files from the profile's directory copied into the image as a new cached layer (the cache key includes their content).",
    ),
  },
  {
    title: 'setup step',
    check: (v, node, path, ctx) => {
      if ((v.run === undefined) === (v.copy === undefined)) {
        ctx.report(node, path, 'give exactly one of run or copy', 'e.g. - run: apt-get update  or  - copy: {from: ./app, to: /opt/app}');
        return false;
      }
      return true;
    },
  },
);

// --------------------------------------------------------------- profile

export const profileFields = {
  extends: field(
    s.string({ minLength: 1 }),
    'Profile this one builds on: a name (user profiles in ~/.config/hutch/profiles, then built-ins: default, untrusted, dev-server, ci) or a path relative to this file.',
    {
      examples: ['default', 'untrusted', './base.yaml'],
    },
  ),
  description: field(s.string(), 'One line saying what this profile is for (shown by `hutch profile ls`).'),
  rootfs: field(
    rootfs,
    'Root filesystem: "host" (the host\'s / under a copy-on-write layer), "dir:PATH" or {dir: PATH} (a directory), {image: NAME} (a stored image, or a registry reference pulled when missing).',
    { default: 'host' },
  ),
  storageDriver: field(s.enumOf(STORAGE_DRIVERS), 'Copy-on-write driver: auto (probe), overlay (kernel overlayfs), fuse-overlayfs.', { default: 'auto' }),
  readOnly: field(s.boolean(), 'Make the root filesystem read-only; writes go only to tmpfs, bind and volume mounts.', { default: false }),
  tmpfsBudget: field(
    s.size(),
    "RAM budget of the sandbox, e.g. 1g: everything it writes to memory-backed places together (the throw-away upper layer of the root, /tmp, /run, /dev, /dev/shm, the hidden home, --tmpfs mounts without a size) fails with ENOSPC past it. Default: half of the host's RAM (the kernel's default for a single tmpfs).",
  ),
  hostname: field(
    s.string({
      pattern: /^(?=.{1,64}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/,
      expected: 'a host name (letters, digits, "-" and ".", at most 64 characters)',
    }),
    'Host name inside the sandbox (default: the sandbox name).',
  ),
  workdir: field(insidePath, 'Working directory inside the sandbox.', { default: '/' }),
  command: field(
    s.array(s.string({ coerceScalars: true })),
    'Default command (argv list) when none is given on the command line, e.g. [npm, run, dev]. For a shell line: [sh, -c, "..."].',
    {
      examples: [['sh'], ['npm', 'run', 'dev']],
    },
  ),
  env: field(
    s.map(envValue, { keyPattern: envVarName, keyExpected: 'an environment variable name' }),
    'Environment variables set inside. Values may use ${HOST_VAR} (an error if unset) or ${HOST_VAR:-default}; $$ is a literal $. Merged key by key with the inherited env.',
  ),
  envFile: field(
    list(hostPath),
    'Files of KEY=value lines added to the environment (before env), relative to this profile file. Appended to the inherited list ({replace: [...]} replaces it).',
  ),
  passEnv: field(
    list(s.string({ pattern: /^[A-Za-z_*?][A-Za-z0-9_*?]*$/, expected: 'a variable name or glob such as LC_*' })),
    'Host environment variables passed through when set (globs with * allowed, e.g. LC_*). Appended to the inherited list ({replace: [...]} replaces it).',
    { examples: [['TERM', 'LANG', 'LC_*']] },
  ),
  home: field(
    s.enumOf(HOME_MODES),
    "hidden: an empty, writable tmpfs at your home directory's path; none: an empty, read-only directory there (nothing of your home is visible, nothing can be written to it). Either way, what is mounted into it stays visible.",
    { default: 'hidden' },
  ),
  hideHomes: field(
    s.enumOf(HIDE_HOMES),
    "Which home directories are hidden when rootfs is host: own: yours, as the password database names it (and $HOME too when it differs); all: also every other home of the host (/home and /root), so other users' world-readable files are not visible either.",
    { default: 'own' },
  ),
  mounts: field(
    list(mount),
    'Mounts, each "SOURCE:TARGET[:ro|rw]" (podman -v: SOURCE is a host path such as ., ~/x, ${PWD}/x, or a volume name) or a map {type: bind|tmpfs|volume, ...}. Appended to the inherited list ({replace: [...]} replaces it).',
  ),
  hide: field(
    list(hostPath),
    'Extra host paths hidden inside when rootfs is host (they appear empty). Appended to the inherited list ({replace: [...]} replaces it).',
  ),
  network: field(network, 'Network: none, host, slirp, pasta, or a map {mode | name, aliases, ip, allowHostLoopback, publish, expose}.', { default: 'none' }),
  capabilities: field(
    capabilities,
    'Capabilities kept inside (names of capabilities(7) without CAP_): a list is the exact set; {add, drop} changes the inherited set (drop first, then add; ALL allowed).',
    { default: [...DEFAULT_CAPABILITIES] },
  ),
  limits: field(limits, 'Resource limits (cgroup v2), merged field by field with the inherited limits.'),
  setup: field(
    list(setupStep as Schema<SetupStepLayer>),
    'Build steps over the root filesystem (an image or a directory): each `run:` command or `copy:` becomes a cached read-only layer. `hutch build` builds them; `hutch run` builds what is missing first. Appended to the inherited list ({replace: [...]} replaces it).',
  ),
  user: field(
    s.string(),
    "Run the command as USER[:GROUP] (a name from the sandbox's /etc/passwd, or a number). Default: root (uid 0 inside, your own uid outside). Users other than root need subordinate ids and get no capabilities.",
  ),
  userns: field(
    s.enumOf(USERNS_MODES),
    "root: you are uid 0 inside (your own uid outside); keep-id (podman's name): you keep your uid and gid inside, not root, with your subordinate ids mapped around them, so files written in bind mounts are yours and tools that refuse to run as root work (needs subordinate ids; as real root it is just root).",
    { default: 'root' },
  ),
  seccomp: field(
    s.enumOf(SECCOMP_MODES),
    'default: a seccomp filter refuses (EPERM) the system calls that reach kernel state shared with the host or widen its attack surface (keyrings, bpf, perf_event_open, userfaultfd, io_uring, module and kexec loading, ...), and calls from other ABIs; unconfined: no filter.',
    { default: 'default' },
  ),
  security: field(security, 'Security switches, merged field by field with the inherited ones.'),
  subordinateIds: field(
    s.enumOf(SUBID_MODES),
    'auto: map your /etc/subuid and /etc/subgid ranges through newuidmap/newgidmap when available, else only your own uid (as 0); required: refuse to run without them (for programs that chown files or switch users, e.g. apt).',
    { default: 'auto' },
  ),
};

export const profileSchema = s.object(profileFields);

/** One profile file's validated, normalised content (before `extends` merging). */
export type ProfileLayer = Infer<typeof profileSchema>;
export type ProfileLimits = Infer<typeof limits>;
export type LimitMode = (typeof LIMIT_MODES)[number];
export type HomeMode = (typeof HOME_MODES)[number];
export type HideHomes = (typeof HIDE_HOMES)[number];

/** The JSON Schema (draft 2020-12) of a profile file, for editors. */
export function profileJsonSchema(): JsonSchema {
  return toJsonSchema(profileSchema, {
    title: 'hutch sandbox profile',
    description: 'A hutch sandbox profile: what a sandbox may see, reach and use. See sandbox-profiles/*.yaml for commented examples.',
  });
}
