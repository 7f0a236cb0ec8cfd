// --add-host and --dns (podman's flags): lines of /etc/hosts and the
// nameservers of /etc/resolv.conf, on top of what the network mode writes
// (src/net/etc-files.ts for none/slirp/pasta, src/net/named.ts for members).
// --network host keeps the host's own files (refused in src/spec/network.ts).

import type { SandboxSpec } from '../spec/types';
import type { EtcFiles } from './etc-files';

/** `IP\tNAME` lines for --add-host (after the mode's own lines: the first match wins in glibc, as podman orders them). */
export function addHostLines(spec: Pick<SandboxSpec, 'addHosts'>): string {
  return (spec.addHosts ?? []).map((h) => `${h.ip}\t${h.name}\n`).join('');
}

/** --dns replaces the mode's nameservers; `search`/`options` lines stay. */
export function withDns(resolvConf: string | undefined, dns: string[]): string {
  const kept = (resolvConf ?? '').split('\n').filter((l) => /^(search|domain|options)\s/.test(l));
  return `# written by hutch: --dns\n${dns.map((d) => `nameserver ${d}\n`).join('')}${kept.map((l) => `${l}\n`).join('')}`;
}

export function withEtcExtras(files: EtcFiles | undefined, spec: Pick<SandboxSpec, 'addHosts' | 'dns'>): EtcFiles | undefined {
  if (!files || (!spec.addHosts?.length && !spec.dns?.length)) return files;
  return {
    ...files,
    hosts: files.hosts + addHostLines(spec),
    ...(spec.dns?.length ? { resolvConf: withDns(files.resolvConf, spec.dns) } : {}),
  };
}
