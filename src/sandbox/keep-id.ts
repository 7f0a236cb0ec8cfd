// `--userns keep-id` inside the sandbox: the caller's uid and gid (the maps
// are src/helper/identity.ts's keepIdMaps), a home directory the caller owns,
// and, as podman does, an /etc/passwd and /etc/group entry when the root
// filesystem has none for them, so `whoami`, `id -un` and $HOME resolve. The
// files are written into the scratch tmpfs and bound read-only over the
// root's own (which is never modified), like /etc/hosts (src/net/etc-files.ts).

import { hostFs, type HostFs } from '../host/facts';
import type { IdentityInfo } from '../host/ids';
import type { PlanBuilder } from '../helper/plan';
import type { RootfsInput } from '../rootfs/types';
import type { SandboxSpec } from '../spec/types';
import { etcPathInRoot } from '../net/etc-files';

const SCRATCH = '/hutch-etc';

/** The caller's ids inside when the command runs as the caller (keep-id, not real root). */
export function keepIdUser(spec: Pick<SandboxSpec, 'userns'>, ids: Pick<IdentityInfo, 'uid' | 'gid'>): { uid: number; gid: number } | undefined {
  return spec.userns === 'keep-id' && ids.uid !== 0 ? { uid: ids.uid, gid: ids.gid } : undefined;
}

type Fs = Pick<HostFs, 'readText' | 'exists' | 'link'>;

function readOr(fs: Fs, path: string | undefined): string | undefined {
  if (!path) return undefined;
  try {
    return fs.readText(path);
  } catch {
    return undefined;
  }
}

/** The host path of /etc/NAME as the root filesystem has it (the top layer holding it). */
function rootEtcFile(r: RootfsInput, name: string, host: Fs): string | undefined {
  const fs = r.rootfs;
  if (fs.kind === 'host') return `/etc/${name}`;
  if (fs.kind === 'dir') return `${fs.path}${etcPathInRoot(fs.path, name, host)}`;
  for (const id of fs.ids) {
    const p = `${fs.store}/${id}/root/etc/${name}`;
    if (host.exists(p)) return p;
  }
  return fs.base ? `${fs.base}${etcPathInRoot(fs.base, name, host)}` : undefined;
}

const hasId = (text: string, id: number) => text.split('\n').some((l) => l.split(':')[2] === String(id));
const withLine = (text: string, line: string) => `${text}${text && !text.endsWith('\n') ? '\n' : ''}${line}\n`;

/** The host's name of group GID (the caller's primary group), else the user's name. */
function hostGroupName(gid: number, fallback: string, fs: Fs): string {
  const line = (readOr(fs, '/etc/group') ?? '').split('\n').find((l) => l.split(':')[2] === String(gid));
  return line?.split(':')[0] || fallback;
}

/** Bind an /etc/passwd and /etc/group that know the caller, where the root's do not. */
export function keepIdEtcOps(b: PlanBuilder, r: RootfsInput, ids: IdentityInfo, fs: Fs = hostFs): void {
  const passwd = readOr(fs, rootEtcFile(r, 'passwd', fs)) ?? '';
  const group = readOr(fs, rootEtcFile(r, 'group', fs)) ?? '';
  const inside = (name: string) =>
    r.rootfs.kind === 'dir' ? etcPathInRoot(r.rootfs.path, name, fs) : r.rootfs.kind === 'host' ? etcPathInRoot('/', name, fs) : `/etc/${name}`;
  if (!hasId(passwd, ids.uid)) {
    b.note(`--userns keep-id: /etc/passwd gets an entry for ${ids.user} (uid ${ids.uid}), bound read-only over the root's own`);
    b.add({
      op: 'file',
      path: `${SCRATCH}/passwd`,
      mode: 0o644,
      content: withLine(passwd, `${ids.user}:x:${ids.uid}:${ids.gid}:${ids.user}:${ids.home}:/bin/sh`),
    });
    b.add({ op: 'bind', src: `${SCRATCH}/passwd`, dest: `/newroot${inside('passwd')}`, flags: { ro: true } });
  }
  if (!hasId(group, ids.gid)) {
    const name = hostGroupName(ids.gid, ids.user, fs);
    b.note(`--userns keep-id: /etc/group gets ${name} (gid ${ids.gid})`);
    b.add({ op: 'file', path: `${SCRATCH}/group`, mode: 0o644, content: withLine(group, `${name}:x:${ids.gid}:`) });
    b.add({ op: 'bind', src: `${SCRATCH}/group`, dest: `/newroot${inside('group')}`, flags: { ro: true } });
  }
}
