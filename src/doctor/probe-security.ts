// Kernel security features a profile can build on: seccomp filters and the
// Landlock LSM. Node cannot make the probing syscalls itself, so the answers
// come from procfs and securityfs, then the kernel's own config.

import { gunzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { check, readSysctl, readText, type Check } from './probe';

export function seccompFacts(): { filter: boolean; actions: string[] } {
  const status = readText('/proc/self/status') ?? '';
  const actions = (readSysctl('kernel.seccomp.actions_avail') ?? '').split(/\s+/).filter(Boolean);
  return { filter: /^Seccomp_filters:/m.test(status) || actions.length > 0, actions };
}

/** Landlock: `active` (in the LSM list), `inactive`, or `unknown`, and where that came from. */
export function landlockFacts(): { state: 'active' | 'inactive' | 'unknown'; source: string } {
  const lsm = readText('/sys/kernel/security/lsm');
  if (lsm !== undefined) return { state: lsm.split(',').includes('landlock') ? 'active' : 'inactive', source: '/sys/kernel/security/lsm' };
  let config: string | undefined;
  try {
    config = gunzipSync(readFileSync('/proc/config.gz')).toString('utf8');
  } catch {
    const release = readText('/proc/sys/kernel/osrelease')?.trim();
    config = release ? readText(`/boot/config-${release}`) : undefined;
  }
  if (config === undefined) return { state: 'unknown', source: 'securityfs is not mounted and the kernel config is not readable' };
  if (!/^CONFIG_SECURITY_LANDLOCK=y/m.test(config)) return { state: 'inactive', source: 'kernel config: CONFIG_SECURITY_LANDLOCK is not set' };
  // lsm= on the command line replaces CONFIG_LSM.
  const cmdline = readText('/proc/cmdline') ?? '';
  const lsmArg = cmdline.match(/(?:^|\s)lsm=(\S+)/)?.[1];
  const list = lsmArg ?? config.match(/^CONFIG_LSM="([^"]*)"/m)?.[1] ?? '';
  return list.split(',').includes('landlock')
    ? { state: 'active', source: lsmArg ? 'kernel command line lsm=' : 'kernel config CONFIG_LSM' }
    : { state: 'inactive', source: lsmArg ? 'kernel command line lsm= omits landlock' : 'CONFIG_LSM omits landlock' };
}

export function probeSecurity(): Check[] {
  const area = 'security';
  const sc = seccompFacts();
  const ll = landlockFacts();
  return [
    sc.filter
      ? check({
          id: 'security.seccomp',
          area,
          status: 'ok',
          summary: `seccomp filters available${sc.actions.length ? ` (actions: ${sc.actions.join(' ')})` : ''}`,
          facts: sc,
        })
      : check({
          id: 'security.seccomp',
          area,
          status: 'warning',
          summary: 'seccomp filters are not available in this kernel',
          detail: 'syscall filtering cannot be applied',
          fix: 'use a kernel built with CONFIG_SECCOMP_FILTER=y',
          facts: sc,
        }),
    ll.state === 'active'
      ? check({ id: 'security.landlock', area, status: 'ok', summary: `Landlock is active (${ll.source})`, facts: ll })
      : check({
          id: 'security.landlock',
          area,
          status: 'warning',
          summary: ll.state === 'unknown' ? `Landlock availability unknown: ${ll.source}` : `Landlock is not active (${ll.source})`,
          detail: 'file-access rules enforced by the kernel are unavailable; namespaces and mounts still isolate',
          fix:
            ll.state === 'unknown'
              ? 'sudo mount -t securityfs securityfs /sys/kernel/security'
              : 'boot with landlock in lsm=, e.g. add lsm=landlock,lockdown,yama,integrity,apparmor,bpf to the kernel command line',
          facts: ll,
        }),
  ];
}
