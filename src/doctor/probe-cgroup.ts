// cgroup v2: where the unified tree is mounted, which cgroup we are in,
// whether we may create children there (delegation), and which controllers
// it offers. In hybrid mode (v1 hierarchies for cpu/memory/pids, as on many
// older systemd hosts) a controller bound to v1 never appears in v2, so
// limits cannot be enforced: that is explained, with the boot option that
// fixes it.

import { probeCgroups as probeDelegation } from '../cgroup/delegation';
import { packageManager, sudo } from '../host/fixes';
import { check, type Check } from './probe';

/** Controllers hutch's limits use: memory.max, cpu.max/cpu.weight, pids.max, io.weight. */
export const LIMIT_CONTROLLERS = ['memory', 'cpu', 'pids', 'io'] as const;

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

/**
 * The same probe `hutch run` uses (src/cgroup/delegation), presented as
 * doctor checks, so doctor and --dry-run never disagree.
 */
export function probeCgroups(uid = process.getuid!(), env: NodeJS.ProcessEnv = process.env): Check[] {
  const area = 'cgroups';
  const p = probeDelegation(uid, env);
  const facts = p as unknown as Record<string, unknown>;
  const out: Check[] = [];
  const limitsOff = 'profiles with limits run with a warning (limits.mode: warn) or are refused (limits.mode: strict)';
  if (!p.mount) {
    out.push(
      check({
        id: 'cgroup.v2',
        area,
        status: 'warning',
        summary: 'cgroup v2 is not mounted',
        detail: `resource limits cannot be enforced; ${limitsOff}`,
        fix: bootFix(),
        facts,
      }),
    );
    return out;
  }
  const hybrid = p.v1.length > 0;
  out.push(
    check({ id: 'cgroup.v2', area, status: 'ok', summary: `cgroup v2 mounted at ${p.mount}${hybrid ? ' (hybrid mode: v1 hierarchies too)' : ''}`, facts }),
  );
  if (hybrid) {
    out.push(
      check({
        id: 'cgroup.hybrid',
        area,
        status: 'warning',
        summary: `hybrid cgroups: ${p.v1.join(', ')} ${p.v1.length > 1 ? 'are' : 'is'} bound to cgroup v1 hierarchies, so they can never appear in the v2 tree hutch uses`,
        detail: `a controller lives in exactly one hierarchy: those limits cannot be enforced here; ${limitsOff}`,
        fix: bootFix(),
        facts: { v1Controllers: p.v1 },
      }),
    );
  }
  out.push(
    p.usable
      ? check({
          id: 'cgroup.delegated',
          area,
          status: 'ok',
          summary: `you may create cgroups under ${p.base} (own cgroup: ${p.own})`,
          facts: { own: p.own, delegated: p.base },
        })
      : check({
          id: 'cgroup.delegated',
          area,
          status: 'warning',
          summary: `your cgroup ${p.own ?? '(none)'} is not delegated to you (not writable)`,
          detail: `hutch cannot create a cgroup for the sandbox; ${limitsOff}`,
          fix: p.systemd ? delegateFix() : (p.fix ?? delegateFix()),
          facts: { own: p.own },
        }),
  );
  const missing = LIMIT_CONTROLLERS.filter((c) => !p.available.includes(c));
  const heldByV1 = missing.some((c) => p.v1.includes(c));
  out.push(
    missing.length === 0
      ? check({ id: 'cgroup.controllers', area, status: 'ok', summary: `controllers: ${p.available.join(' ')}`, facts: { controllers: p.available } })
      : check({
          id: 'cgroup.controllers',
          area,
          status: 'warning',
          summary: `controllers available: ${p.available.join(' ') || 'none'}; missing: ${missing.join(' ')}`,
          detail: heldByV1 ? 'the missing ones are held by cgroup v1 (see cgroup.hybrid)' : `limits on ${missing.join(', ')} cannot be enforced`,
          fix: heldByV1 ? bootFix() : delegateFix(),
          facts: { controllers: p.available, missing },
        }),
  );
  return out;
}
