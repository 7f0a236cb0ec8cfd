// Linux capability names (without the CAP_ prefix), in kernel order.

import { HutchError } from './errors';
import { suggest } from './suggest';

export const CAPABILITIES = [
  'CHOWN',
  'DAC_OVERRIDE',
  'DAC_READ_SEARCH',
  'FOWNER',
  'FSETID',
  'KILL',
  'SETGID',
  'SETUID',
  'SETPCAP',
  'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE',
  'NET_BROADCAST',
  'NET_ADMIN',
  'NET_RAW',
  'IPC_LOCK',
  'IPC_OWNER',
  'SYS_MODULE',
  'SYS_RAWIO',
  'SYS_CHROOT',
  'SYS_PTRACE',
  'SYS_PACCT',
  'SYS_ADMIN',
  'SYS_BOOT',
  'SYS_NICE',
  'SYS_RESOURCE',
  'SYS_TIME',
  'SYS_TTY_CONFIG',
  'MKNOD',
  'LEASE',
  'AUDIT_WRITE',
  'AUDIT_CONTROL',
  'SETFCAP',
  'MAC_OVERRIDE',
  'MAC_ADMIN',
  'SYSLOG',
  'WAKE_ALARM',
  'BLOCK_SUSPEND',
  'AUDIT_READ',
  'PERFMON',
  'BPF',
  'CHECKPOINT_RESTORE',
] as const;

/** `cap_net_raw`, `CAP_NET_RAW`, ` net_raw` -> `NET_RAW` (the spelling only, not checked). */
export function capabilitySpelling(name: string): string {
  return name.trim().toUpperCase().replace(/^CAP_/, '');
}

/** `cap_net_raw`, `NET_RAW`, `CAP_NET_RAW` -> `NET_RAW`; anything else is an error naming `what`. */
export function normalizeCap(raw: string, what: string): string {
  const name = capabilitySpelling(raw);
  if ((CAPABILITIES as readonly string[]).includes(name)) return name;
  const near = suggest(name, [...CAPABILITIES]);
  throw new HutchError(`${what}: unknown capability "${raw}"`, {
    hint: near ? `did you mean ${near}?` : 'see capabilities(7) for the names',
  });
}
