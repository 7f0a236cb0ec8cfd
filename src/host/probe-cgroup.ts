// cgroup v2: where the unified tree is mounted, which cgroup we are in,
// whether we may create children there (delegation), and which controllers
// it offers. In hybrid mode (v1 hierarchies for cpu/memory/pids, as on many
// older systemd hosts) a controller bound to v1 never appears in v2, so
// limits cannot be enforced: that is explained, with the boot option that
// fixes it.

import { accessSync, constants, statSync } from 'node:fs';
import { join } from 'node:path';
import { packageManager, sudo } from './fixes';
import { hostMounts, type MountEntry } from './mounts';
import { check, readText, type Check } from './probe';

/** Controllers hutch's limits use: memory.max, cpu.max/cpu.weight, pids.max, io.weight. */
export const LIMIT_CONTROLLERS = ['memory', 'cpu', 'pids', 'io'] as const;

export interface CgroupFacts {
  mode: 'unified' | 'hybrid' | 'legacy' | 'none';
  v2Mount?: string;
  /** v1 hierarchies' controllers (cpu, memory, ...; name=systemd excluded). */
  v1Controllers: string[];
  /** Our cgroup path inside the v2 tree (/proc/self/cgroup `0::`). */
  own?: string;
  ownDir?: string;
  /** Where we may create child cgroups: our own cgroup, or systemd's user@UID.service. */
  delegated?: string;
  /** Controllers available in the delegated (else own) cgroup. */
  controllers: string[];
}

export function cgroupFacts(mounts: MountEntry[] = hostMounts(), uid = process.getuid!()): CgroupFacts {
  const v2 = mounts.filter((m) => m.fsType === 'cgroup2');
  const v1 = mounts.filter((m) => m.fsType === 'cgroup');
  // /proc/cgroups: a controller with a non-zero hierarchy id is bound to a v1 hierarchy.
  const v1Controllers = (readText('/proc/cgroups') ?? '')
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 4 && !f[0].startsWith('#') && f[1] !== '0' && f[3] === '1')
    .map((f) => (f[0] === 'blkio' ? 'io' : f[0])); // v1's blkio is v2's io
  const v2Mount = (v2.find((m) => m.mountPoint === '/sys/fs/cgroup') ?? v2[0])?.mountPoint;
  const mode: CgroupFacts['mode'] = v2Mount ? (v1Controllers.length ? 'hybrid' : 'unified') : v1.length ? 'legacy' : 'none';
  const facts: CgroupFacts = { mode, v2Mount, v1Controllers, controllers: [] };
  if (!v2Mount) return facts;
  const own = (readText('/proc/self/cgroup') ?? '').match(/^0::(.*)$/m)?.[1];
  if (own === undefined) return facts;
  facts.own = own;
  facts.ownDir = join(v2Mount, own);
  const candidates = [facts.ownDir, join(v2Mount, `user.slice/user-${uid}.slice/user@${uid}.service`)];
  facts.delegated = candidates.find((d) => writableCgroup(d, uid));
  const ctl = readText(join(facts.delegated ?? facts.ownDir, 'cgroup.controllers'));
  facts.controllers = (ctl ?? '').trim().split(/\s+/).filter(Boolean);
  return facts;
}

/** A cgroup we may create children in and move processes into. */
function writableCgroup(dir: string, uid: number): boolean {
  try {
    accessSync(dir, constants.W_OK);
    accessSync(join(dir, 'cgroup.procs'), constants.W_OK);
    return uid === 0 || statSync(dir).uid === uid;
  } catch {
    return false;
  }
}

function bootFix(): string {
  const s = sudo();
  const args = 'systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all';
  return packageManager() === 'dnf'
    ? `${s}grubby --update-kernel=ALL --args="${args}" && ${s}reboot`
    : `${s}sed -i 's/^GRUB_CMDLINE_LINUX="/&${args} /' /etc/default/grub && ${s}update-grub && ${s}reboot`;
}

function delegateFix(): string {
  const s = sudo();
  return `${s}mkdir -p /etc/systemd/system/user@.service.d && printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' | ${s}tee /etc/systemd/system/user@.service.d/delegate.conf && ${s}systemctl daemon-reload  # then log out and back in`;
}

export function probeCgroups(): Check[] {
  const area = 'cgroups';
  const f = cgroupFacts();
  const facts = f as unknown as Record<string, unknown>;
  const out: Check[] = [];
  const limitsOff = 'profiles with limits run with a warning (limits.mode: warn) or are refused (limits.mode: strict)';
  if (!f.v2Mount) {
    out.push(check({ id: 'cgroup.v2', area, status: 'warning', summary: 'cgroup v2 is not mounted', detail: `resource limits cannot be enforced; ${limitsOff}`, fix: bootFix(), facts }));
    return out;
  }
  out.push(check({ id: 'cgroup.v2', area, status: 'ok', summary: `cgroup v2 mounted at ${f.v2Mount}${f.mode === 'hybrid' ? ' (hybrid mode: v1 hierarchies too)' : ''}`, facts }));
  if (f.mode === 'hybrid') {
    const lost = LIMIT_CONTROLLERS.filter((c) => f.v1Controllers.includes(c));
    out.push(
      check({
        id: 'cgroup.hybrid',
        area,
        status: lost.length ? 'warning' : 'ok',
        summary: lost.length
          ? `hybrid cgroups: ${lost.join(', ')} are bound to cgroup v1 hierarchies, so they can never appear in the v2 tree hutch uses`
          : 'hybrid cgroups, but no limit controller is bound to v1',
        detail: lost.length ? `a controller lives in exactly one hierarchy: memory, cpu and pids limits cannot be enforced here; ${limitsOff}` : undefined,
        fix: lost.length ? bootFix() : undefined,
        facts: { v1Controllers: f.v1Controllers },
      }),
    );
  }
  if (f.own === undefined) {
    out.push(check({ id: 'cgroup.own', area, status: 'warning', summary: 'no cgroup v2 line in /proc/self/cgroup', detail: limitsOff }));
    return out;
  }
  out.push(
    f.delegated
      ? check({ id: 'cgroup.delegated', area, status: 'ok', summary: `you may create cgroups under ${f.delegated} (own cgroup: ${f.own})`, facts: { own: f.own, delegated: f.delegated } })
      : check({
          id: 'cgroup.delegated',
          area,
          status: 'warning',
          summary: `your cgroup ${f.own} is not delegated to you (not writable)`,
          detail: `hutch cannot create a cgroup for the sandbox; ${limitsOff}`,
          fix: delegateFix(),
          facts: { own: f.own },
        }),
  );
  const missing = LIMIT_CONTROLLERS.filter((c) => !f.controllers.includes(c));
  out.push(
    missing.length === 0
      ? check({ id: 'cgroup.controllers', area, status: 'ok', summary: `controllers: ${f.controllers.join(' ')}`, facts: { controllers: f.controllers } })
      : check({
          id: 'cgroup.controllers',
          area,
          status: 'warning',
          summary: `controllers available: ${f.controllers.join(' ') || 'none'}; missing: ${missing.join(' ')}`,
          detail: f.mode === 'hybrid' && missing.some((c) => f.v1Controllers.includes(c)) ? 'the missing ones are held by cgroup v1 (see cgroup.hybrid)' : `limits on ${missing.join(', ')} cannot be enforced`,
          fix: f.mode === 'hybrid' && missing.some((c) => f.v1Controllers.includes(c)) ? bootFix() : delegateFix(),
          facts: { controllers: f.controllers, missing },
        }),
  );
  return out;
}
