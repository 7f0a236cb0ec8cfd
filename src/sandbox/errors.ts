// What a failure of the helper means for the user. The helper reports facts
// only (`error LINE ERRNO TEXT`: the plan line of the op, the errno, what it
// was doing; helper-c/PLAN.md); here the op is looked up in the plan, and the
// sentence names what the user asked for that made the op (the plan's
// origins: `-w /srv`, `-v ./a:/a`, a profile's `mounts[0]` at file:line:col),
// or, for the parts hutch adds by itself, that part ("mounting /proc"). Fix
// hints live here, not in C.

import { getSystemErrorMap } from 'node:util';
import { HutchError } from '../util/errors';
import type { HelperFailure, HelperResult } from '../helper/spawn';
import type { Op } from '../helper/ops';
import { opIndexOfLine, type Plan } from '../helper/plan';
import { usernsRefusalHint } from '../doctor/probe-userns';

let errnoText: Map<string, string> | undefined;

/** `ENOENT` -> "no such file or directory" (libuv's wording, as Node prints it). */
export function describeErrno(name: string): string {
  if (!errnoText) {
    errnoText = new Map();
    for (const [, [n, msg]] of getSystemErrorMap()) errnoText.set(n, msg);
  }
  return errnoText.get(name) ?? (/^\d+$/.test(name) ? `error ${name}` : name);
}

/** A path of the sandbox as the command sees it (`/newroot/srv` -> `/srv`). */
function inside(p: string): string {
  return p === '/newroot' ? '/' : p.startsWith('/newroot/') ? p.slice('/newroot'.length) : p;
}

/** A path of the host as the user wrote it (`/oldroot/home/me` -> `/home/me`). */
function onHost(p: string): string {
  return p === '/oldroot' ? '/' : p.startsWith('/oldroot/') ? p.slice('/oldroot'.length) : p;
}

/** The part of the sandbox an op builds, for ops no flag or profile field asked for. */
export function partOf(o: Op): string {
  switch (o.op) {
    case 'uidmap':
    case 'gidmap':
    case 'newuidmap':
    case 'newgidmap':
    case 'userns':
      return 'creating the user namespace';
    case 'unshare':
      return `creating the ${o.ns.join(', ')} namespace${o.ns.length > 1 ? 's' : ''}`;
    case 'report':
    case 'sync':
      return 'waiting for hutch';
    case 'sync-exec':
      return "waiting for the sandbox's network";
    case 'daemon':
      return `starting ${o.argv[0]}`;
    case 'base':
      return 'preparing the scratch root';
    case 'tmpfs':
      return `mounting a tmpfs on ${inside(o.dest)}`;
    case 'overlay':
      return `mounting the overlay on ${inside(o.dest)}`;
    case 'proc':
    case 'sysfs':
    case 'devpts':
    case 'mqueue':
      return `mounting ${inside(o.dest)}`;
    case 'bind':
      return `mounting ${o.src.startsWith('/oldroot') ? onHost(o.src) : inside(o.src)} on ${inside(o.dest)}`;
    case 'remount-ro':
      return `making ${inside(o.dest)} read-only`;
    case 'chown':
      return `setting the owner of ${inside(o.path)}`;
    case 'net-holder':
    case 'net-join':
    case 'net-attach':
    case 'net-nat':
    case 'net-share':
      return 'joining the named network';
    case 'net-publish':
      return 'publishing a port of the named network member';
    case 'tty':
    case 'relay':
      return 'setting up the terminal';
    case 'join':
      return 'joining the sandbox';
    case 'scratch':
      return 'mounting the RAM budget tmpfs';
    case 'detach':
    case 'log':
    case 'timeout':
    case 'hold':
    case 'exit-file':
    case 'remove-cgroup':
      return "setting up the detached sandbox's log and monitor";
    case 'unreachable':
      return `blocking the host address ${o.addr}`;
    case 'no-setid':
      return 'installing the setuid/setgid filter';
    case 'mkdir':
    case 'symlink':
    case 'file':
      return `creating ${inside(o.path)}`;
    case 'mask':
      return `hiding ${inside(o.path)}`;
    case 'hostname':
      return 'setting the hostname';
    case 'lo-up':
      return 'bringing up the loopback interface';
    case 'pivot':
      return "switching to the sandbox's root";
    case 'remount-root-ro':
      return 'making / read-only';
    case 'clearenv':
    case 'env':
      return 'setting the environment';
    case 'chdir':
      return `changing to ${o.dir}`;
    case 'setsid':
      return 'starting a new session';
    case 'no-new-privs':
      return 'setting no-new-privs';
    case 'caps':
      return 'dropping capabilities';
    case 'seccomp':
      return 'installing the seccomp filter';
    case 'user':
      return `switching to user ${o.user}`;
    case 'keep-fd':
      return `passing fd ${o.fd} on`;
    case 'exec':
      return `running ${o.argv[0]}`;
    case 'cleanup':
      return `removing ${o.path}`;
  }
}

const NEW_MOUNT_POINT = 'mount onto a directory that exists in the sandbox, or under a new top-level one such as /work';

/** The mount point of DEST could not be made (its parent is not writable for the sandbox's root). */
function mountPoint(dest: string, errno: string | undefined): { problem: string; hint?: string } {
  const why = errno ? describeErrno(errno) : 'failed';
  if (errno === 'EACCES' || errno === 'EPERM') {
    return {
      problem: `cannot create the mount point ${inside(dest)}: ${why} (its parent directory belongs to a user outside the sandbox)`,
      hint: NEW_MOUNT_POINT,
    };
  }
  if (errno === 'EROFS') return { problem: `cannot create the mount point ${inside(dest)}: it is on a read-only file system`, hint: NEW_MOUNT_POINT };
  return { problem: `cannot create the mount point ${inside(dest)}: ${why}` };
}

/** What went wrong, relative to what the op was for (its origin or part names the op itself). */
export function problemOf(o: Op, f: HelperFailure): { problem: string; hint?: string } {
  const e = f.errno;
  const why = e ? describeErrno(e) : f.text;
  switch (o.op) {
    case 'chdir':
      if (e === 'ENOENT')
        return { problem: 'no such directory in the sandbox', hint: 'choose a directory that exists in the root filesystem, or mount one there (-v, --tmpfs)' };
      if (e === 'ENOTDIR') return { problem: 'not a directory in the sandbox' };
      if (e === 'EACCES') return { problem: `${why} in the sandbox`, hint: 'the user the command runs as (-u) cannot enter that directory' };
      return { problem: why };
    case 'bind':
      if (f.text.startsWith('bind source ')) {
        const src = o.src.startsWith('/oldroot') ? onHost(o.src) : `${inside(o.src)} in the sandbox`;
        if (e === 'ENOENT') return { problem: `${src} does not exist`, hint: 'create it first, or fix the mount' };
        return { problem: `cannot open ${src}: ${why}` };
      }
      if (f.text.startsWith('bind destination ')) return mountPoint(o.dest, e);
      if (e === 'EINVAL' && !o.flags.rec)
        return { problem: why, hint: 'a non-recursive bind of a mount with locked submounts is refused in a user namespace: bind it recursively' };
      return { problem: why };
    case 'tmpfs':
    case 'proc':
    case 'sysfs':
    case 'devpts':
    case 'mqueue':
    case 'overlay':
      if (f.text.startsWith('mount point ')) return mountPoint(o.dest, e);
      if (o.op === 'proc' && e === 'EPERM')
        return { problem: why, hint: 'a fresh procfs needs a pid namespace owned by the user namespace and a fully visible /proc on the host' };
      if (o.op === 'sysfs' && e === 'EPERM') return { problem: why, hint: 'only the owner of the network namespace may mount sysfs' };
      if (o.op === 'overlay' && e === 'EINVAL')
        return { problem: why, hint: 'see dmesg; a lower directory with submounts, such as /, cannot be used in a user namespace' };
      return { problem: why };
    case 'mkdir':
      if (e === 'EACCES' || e === 'EPERM')
        return { problem: `cannot create ${inside(o.path)}: ${why} (its parent directory belongs to a user outside the sandbox)`, hint: NEW_MOUNT_POINT };
      if (e === 'EROFS') return { problem: `cannot create ${inside(o.path)}: it is on a read-only file system`, hint: NEW_MOUNT_POINT };
      return { problem: `cannot create ${inside(o.path)}: ${why}` };
    case 'remount-ro':
      return e === 'EINVAL' ? { problem: `${why} (not a mount point?)` } : { problem: why };
    case 'hostname':
      return e === 'EPERM' ? { problem: why, hint: 'the plan needs `unshare uts` before it' } : { problem: why };
    case 'pivot':
      return e === 'EINVAL' ? { problem: `${why} (is it a mount point?)` } : { problem: why };
    case 'userns':
      // the kernel's refusal (unshare, or the map of the caller's own id); a mapper's failure speaks for itself
      if (/^(unshare\(CLONE_NEWUSER\)|writing \/proc\/self\/uid_map)/.test(f.text)) return { problem: `${f.text}: ${why}`, hint: usernsRefusalHint() };
      return { problem: e ? `${f.text}: ${why}` : f.text };
    case 'user':
      if (e === 'EINVAL') {
        const file = f.text.startsWith('switch to group') ? '/etc/subgid' : '/etc/subuid';
        return {
          problem: `${f.text.replace(/^switch to /, '')} is not mapped in the sandbox: ids other than 0 need subordinate ids in ${file}`,
          hint: 'hutch doctor checks the subordinate ids (/etc/subuid, /etc/subgid, newuidmap)',
        };
      }
      return { problem: e ? `${f.text}: ${why}` : f.text };
    default:
      return { problem: e ? `${f.text}: ${why}` : f.text };
  }
}

/** The sentence for one failure of the helper running `plan`. */
export function failureError(plan: Plan, f: HelperFailure): HutchError {
  const i = f.line > 0 ? opIndexOfLine(f.line) : -1;
  const o = plan.ops[i];
  if (!o) return new HutchError(f.errno ? `${f.text}: ${describeErrno(f.errno)}` : f.text);
  const { problem, hint } = problemOf(o, f);
  const origin = plan.origins.get(i);
  if (origin) return new HutchError(`${origin.what}: ${problem}`, { location: origin.location, hint });
  return new HutchError(`${partOf(o)}: ${problem}`, { hint });
}

/**
 * After the helper: a setup failure (125 with an op's line) becomes the
 * sentence, thrown; other reported lines (an exec failure: `NAME: command
 * not found`, with the command's 126/127) are printed as they are.
 */
export function checkHelperResult(plan: Plan, r: HelperResult, print: (line: string) => void): HelperResult {
  const setup = r.exitCode === 125 ? (r.errors.find((f) => f.line > 0) ?? r.errors[0]) : undefined;
  if (setup) throw failureError(plan, setup);
  for (const f of r.errors) print(f.errno ? `${f.text}: ${describeErrno(f.errno)}` : f.text);
  return r;
}
