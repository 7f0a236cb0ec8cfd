// The helper's operations as a TypeScript union that mirrors
// helper-c/PLAN.md one to one: a wrong op name, a missing field or a field of
// the wrong type is a compile error, and `fieldsOf` is the only place that
// knows how each op is written as text.

export type Namespace = 'mount' | 'ipc' | 'uts' | 'net' | 'pid' | 'cgroup' | 'time';

/** bind FLAGS: `ro` (else rw), `rec`, `dev`, `try`. */
export interface BindFlags {
  ro?: boolean;
  rec?: boolean;
  dev?: boolean;
  try?: boolean;
}

export type Op =
  // identity and namespaces (monitor)
  | { op: 'uidmap' | 'gidmap'; inside: number; outside: number; count: number }
  | { op: 'newuidmap' | 'newgidmap'; path: string }
  | { op: 'userns' }
  | { op: 'unshare'; ns: Namespace[] }
  | { op: 'report' }
  | { op: 'sync' }
  | { op: 'daemon'; waitPath: string; argv: string[] }
  | { op: 'scratch'; dir: string; size: number; subdirs: string[] }
  | { op: 'tty'; input: boolean }
  | { op: 'relay'; fds: (0 | 1 | 2)[] }
  // exec mode (hutch-helper exec): a command in a running sandbox
  | { op: 'join'; pid: number; cgroup?: string }
  // filesystem (init)
  | { op: 'base'; dir: string }
  | { op: 'tmpfs'; dest: string; mode: number; size?: number }
  /** `userxattr`: overlay keeps its xattrs in user.* (required inside a user namespace, where trusted.* is refused). */
  | { op: 'overlay'; dest: string; lowers: string; upper: string; work: string; userxattr: boolean }
  | { op: 'bind'; src: string; dest: string; flags: BindFlags }
  | { op: 'remount-ro'; dest: string; self?: boolean }
  | { op: 'proc' | 'sysfs' | 'devpts' | 'mqueue'; dest: string }
  | { op: 'mkdir'; path: string; mode: number }
  | { op: 'symlink'; target: string; path: string }
  | { op: 'file'; path: string; mode: number; content: string }
  | { op: 'chown'; path: string; uid: number; gid: number }
  | { op: 'mask'; path: string }
  | { op: 'hostname'; name: string }
  | { op: 'lo-up' }
  | { op: 'unreachable'; addr: string }
  | { op: 'pivot'; dir: string }
  | { op: 'remount-root-ro' }
  | { op: 'sync-exec' }
  // the command
  | { op: 'clearenv' }
  | { op: 'env'; name: string; value: string }
  | { op: 'chdir'; dir: string }
  | { op: 'setsid' }
  | { op: 'no-new-privs' }
  | { op: 'caps'; caps: string[] }
  | { op: 'user'; user: string }
  | { op: 'seccomp'; deny: string[] }
  | { op: 'no-setid' }
  | { op: 'keep-fd'; fd: number }
  | { op: 'exec'; argv: string[] }
  // after exit (monitor)
  | { op: 'cleanup'; path: string }
  // named networks (helper-c/netns.c, docs/NETWORKS.md)
  /** guard: ebtables-restore, for the rules that tie each member's veth to its address (netns.c) */
  | { op: 'net-holder'; dir: string; cidr: string; internal: boolean; guard?: string }
  /** the network's NAT (nat.c): slirp4netns with its API socket at `state`, or pasta with its pid file there */
  | { op: 'net-nat'; binary: string; iptables: string; state: string; driver: 'slirp4netns' | 'pasta' }
  | { op: 'net-share'; dir: string }
  | { op: 'net-join'; socket: string }
  | { op: 'net-attach'; socket: string; ifname: string; address?: string; route: boolean; shared: boolean; nofwd?: boolean; names: string[] }
  | { op: 'net-publish'; protocol: 'tcp' | 'udp'; hostIp: string; hostPort: number; port: number }
  // detached sandboxes (helper-c/log.c, monitor.c): the monitor alone keeps them and cleans up
  | { op: 'detach' }
  | { op: 'log'; path: string; maxSize: number }
  | { op: 'timeout'; ms: number }
  | { op: 'hold'; fd: number }
  | { op: 'exit-file'; path: string }
  | { op: 'remove-cgroup'; prefix: string };

export type OpName = Op['op'];

const octal = (m: number) => m.toString(8);

function bindFlags(f: BindFlags): string {
  return [f.ro ? 'ro' : 'rw', ...(f.rec ? ['rec'] : []), ...(f.dev ? ['dev'] : []), ...(f.try ? ['try'] : [])].join(',');
}

/** The op's fields after its name, as PLAN.md writes them (not yet escaped). */
export function fieldsOf(o: Op): string[] {
  switch (o.op) {
    case 'uidmap':
    case 'gidmap':
      return [String(o.inside), String(o.outside), String(o.count)];
    case 'newuidmap':
    case 'newgidmap':
      return [o.path];
    case 'userns':
    case 'report':
    case 'sync':
    case 'lo-up':
    case 'remount-root-ro':
    case 'sync-exec':
    case 'clearenv':
    case 'setsid':
    case 'no-new-privs':
    case 'no-setid':
    case 'detach':
      return [];
    case 'log':
      return [o.path, String(o.maxSize)];
    case 'timeout':
      return [String(o.ms)];
    case 'hold':
      return [String(o.fd)];
    case 'exit-file':
      return [o.path];
    case 'remove-cgroup':
      return [o.prefix];
    case 'unshare':
      return [o.ns.join(',')];
    case 'daemon':
      return [o.waitPath, ...o.argv];
    case 'scratch':
      return [o.dir, String(o.size), ...o.subdirs];
    case 'unreachable':
      return [o.addr];
    case 'tty':
      return [o.input ? 'stdin' : '-'];
    case 'relay':
      return [o.fds.join(',')];
    case 'join':
      return [String(o.pid), o.cgroup ?? '-'];
    case 'base':
      return [o.dir];
    case 'net-holder':
      return [o.dir, o.cidr, ...(o.internal ? ['internal'] : []), ...(o.guard ? [`guard=${o.guard}`] : [])];
    case 'net-nat':
      return [o.binary, o.iptables, o.state, ...(o.driver === 'pasta' ? ['pasta'] : [])];
    case 'net-share':
      return [o.dir];
    case 'net-join':
      return [o.socket];
    case 'net-attach': {
      const flags = [...(o.route ? ['route'] : []), ...(o.shared ? ['shared'] : []), ...(o.nofwd ? ['nofwd'] : [])];
      return [o.socket, o.ifname, o.address ?? '-', flags.join(',') || '-', ...o.names];
    }
    case 'net-publish':
      return [o.protocol, o.hostIp, String(o.hostPort), String(o.port)];
    case 'tmpfs':
      return [o.dest, octal(o.mode), ...(o.size !== undefined ? [String(o.size)] : [])];
    case 'overlay':
      return [o.dest, o.lowers, o.upper, o.work, ...(o.userxattr ? ['userxattr'] : [])];
    case 'bind':
      return [o.src, o.dest, bindFlags(o.flags)];
    case 'remount-ro':
      return [o.dest, ...(o.self ? ['self'] : [])];
    case 'proc':
    case 'sysfs':
    case 'devpts':
    case 'mqueue':
      return [o.dest];
    case 'mkdir':
      return [o.path, octal(o.mode)];
    case 'symlink':
      return [o.target, o.path];
    case 'file':
      return [o.path, octal(o.mode), o.content];
    case 'chown':
      return [o.path, String(o.uid), String(o.gid)];
    case 'mask':
      return [o.path];
    case 'hostname':
      return [o.name];
    case 'pivot':
      return [o.dir];
    case 'env':
      return [o.name, o.value];
    case 'chdir':
      return [o.dir];
    case 'caps':
      return [o.caps.length ? o.caps.join(',') : '-'];
    case 'user':
      return [o.user];
    case 'seccomp':
      return [o.deny.join(',')];
    case 'keep-fd':
      return [String(o.fd)];
    case 'exec':
      return [...o.argv];
    case 'cleanup':
      return [o.path];
  }
}
