// /etc/hosts and /etc/resolv.conf inside the sandbox. They are written into
// the helper's private scratch tmpfs (`file` op) and bound read-only over the
// sandbox's paths, so the host's own files are never touched, and it works
// with --read-only roots. Where the root filesystem's /etc/resolv.conf is a
// symlink (systemd-resolved: ../run/systemd/resolve/stub-resolv.conf), the
// file is bound at the link's target, inside the sandbox.

import { readFileSync } from 'node:fs';
import { hostFs, type HostFs } from '../host/facts';
import { posix } from 'node:path';
import type { PlanBuilder } from '../helper/plan';
import type { SandboxSpec } from '../spec/types';
import type { NetLayout } from './types';

export interface EtcFiles {
  hosts: string;
  resolvConf?: string;
}

const SCRATCH = '/hutch-etc';

/** Names the sandbox reaches the host's loopback under (podman's name, and ours). */
export const HOST_ALIASES = ['host.hutch.internal', 'host.containers.internal'];

export function hostsFile(hostname: string, address: string, hostLoopbackVia?: string): string {
  const lines = ['# written by hutch for this sandbox', '127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', `${address}\t${hostname}`];
  if (hostLoopbackVia) lines.push(`${hostLoopbackVia}\t${HOST_ALIASES.join(' ')}`);
  return `${lines.join('\n')}\n`;
}

/** The forwarder as the only nameserver; `search`/`domain`/`options` copied from the host's file. */
export function resolvConf(dns: string, driver: string, hostText?: string): string {
  const kept = (hostText ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^(search|domain|options)\s/.test(l));
  return `# written by hutch: DNS goes through ${driver}'s forwarder\nnameserver ${dns}\n${kept.map((l) => `${l}\n`).join('')}`;
}

export function hostResolvConf(): string | undefined {
  try {
    return readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    return undefined;
  }
}

/** The files for a sandbox: none for `host` (it uses the host's), hosts only for `none`. */
export function etcFilesFor(spec: SandboxSpec, net?: { layout: NetLayout; driver: string }): EtcFiles | undefined {
  if (spec.network === 'host') return undefined;
  if (!net) return { hosts: hostsFile(spec.hostname, '127.0.1.1') };
  const via = spec.allowHostLoopback && net.layout.gateway ? net.layout.gateway : undefined;
  return {
    hosts: hostsFile(spec.hostname, net.layout.address, via),
    resolvConf: resolvConf(net.layout.dns, net.driver, hostResolvConf()),
  };
}

/** `/etc/NAME` inside a root made of `lowerRoots` (top first, as overlayfs stacks them), following symlinks within that root. */
export function etcPathInRoot(lowerRoots: string | readonly string[], name: string, fs: Pick<HostFs, 'link'> = hostFs): string {
  const roots = typeof lowerRoots === 'string' ? [lowerRoots] : lowerRoots;
  let p = `/etc/${name}`;
  for (let hops = 0; hops < 8; hops++) {
    // The top-most layer that has the path decides what it is (whiteouts aside).
    let target: string | null | undefined;
    for (const root of roots) {
      target = fs.link(posix.join(root, p));
      if (target !== undefined) break;
    }
    if (typeof target !== 'string') return p;
    p = posix.resolve(posix.dirname(p), target);
  }
  return `/etc/${name}`;
}

/** `lowerRoots`: the root filesystem's layers on the host, top first (the host's `/`, a dir: root, or an image's layer dirs). */
export function etcFileOps(b: PlanBuilder, files: EtcFiles, lowerRoots: readonly string[], fs: Pick<HostFs, 'link'> = hostFs): void {
  const entries: [string, string | undefined][] = [
    ['hosts', files.hosts],
    ['resolv.conf', files.resolvConf],
  ];
  for (const [name, content] of entries) {
    if (content === undefined) continue;
    etcFileOp(b, name, content, lowerRoots, fs);
  }
}

/**
 * /etc/hostname: the sandbox's hostname (what the `hostname` op sets), as
 * podman writes it, so programs that read the file (not uname) agree with
 * `hostname`. Apart from the network's files: it is written for every
 * network mode, `host` included, since the sandbox has its own UTS namespace.
 */
export function hostnameFileOps(b: PlanBuilder, hostname: string, lowerRoots: readonly string[], fs: Pick<HostFs, 'link'> = hostFs): void {
  etcFileOp(b, 'hostname', `${hostname}\n`, lowerRoots, fs);
}

function etcFileOp(b: PlanBuilder, name: string, content: string, lowerRoots: readonly string[], fs: Pick<HostFs, 'link'>): void {
  const inside = etcPathInRoot(lowerRoots, name, fs);
  // A user mount of the file (or of its directory) wins: it comes later in the plan.
  b.note(`/etc/${name}: written by hutch into the scratch tmpfs, bound read-only${inside !== `/etc/${name}` ? ` at the symlink's target ${inside}` : ''}`);
  b.add({ op: 'file', path: `${SCRATCH}/${name}`, mode: 0o644, content: content });
  b.add({ op: 'bind', src: `${SCRATCH}/${name}`, dest: `/newroot${inside}`, flags: { ro: true } });
}
