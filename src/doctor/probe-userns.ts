// User namespaces: the one thing hutch cannot run without. The sysctls that
// forbid them differ per distribution (upstream user.max_user_namespaces,
// Debian's kernel.unprivileged_userns_clone, Ubuntu 24.04's AppArmor
// restriction); the final word is an unshare tried for real by the helper.

import { userNamespaceOps, ownIdOnly } from '../helper/identity';
import { runPlanCaptured } from '../helper/spawn';
import { PlanBuilder } from '../helper/plan';
import { sudo } from '../host/fixes';
import type { IdentityInfo } from '../host/ids';
import { check, readSysctl, sysctlFix, type Check } from './probe';

/** Creates a user namespace mapping only our own ids, through the helper. */
export async function tryUserns(helper: string, ids: IdentityInfo): Promise<{ ok: boolean; detail: string }> {
  const b = new PlanBuilder();
  b.add(userNamespaceOps(ownIdOnly(ids)));
  b.add({ op: 'exec', argv: ['/proc/self/exe', '--version'] }); // the helper itself
  const r = await runPlanCaptured(b.build(), 10_000, helper);
  return { ok: r.code === 0, detail: (r.stderr.trim() || `exit ${r.code}`).replace(/^hutch: /, '') };
}

/**
 * Why the kernel refused a user namespace, most specific first, from the
 * sysctls this probe checks (said when a sandbox's `userns` op fails).
 */
export function usernsRefusalHint(read: (name: string) => string | undefined = readSysctl): string {
  if (read('kernel.unprivileged_userns_clone') === '0')
    return 'unprivileged user namespaces are disabled: sysctl kernel.unprivileged_userns_clone=1 enables them (hutch doctor)';
  if (read('user.max_user_namespaces') === '0') return 'user namespaces are disabled: sysctl user.max_user_namespaces is 0 (hutch doctor)';
  if (read('kernel.apparmor_restrict_unprivileged_userns') === '1') {
    return 'AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1): hutch doctor prints the command that gives the helper a profile with the `userns` permission';
  }
  return 'hutch doctor checks kernel.unprivileged_userns_clone, user.max_user_namespaces, kernel.apparmor_restrict_unprivileged_userns; a container or seccomp policy may forbid it too';
}

/**
 * An AppArmor profile that allows user namespaces for the helper (the
 * process that calls unshare), written where apparmor_parser loads it.
 * The `*` covers every helper version hutch extracts.
 */
export function apparmorFix(helperGlob: string, s: string): string {
  const profile = `abi <abi/4.0>,\\ninclude <tunables/global>\\nprofile hutch-helper ${helperGlob} flags=(unconfined) {\\n  userns,\\n}\\n`;
  return `printf '${profile}' | ${s}tee /etc/apparmor.d/hutch-helper && ${s}apparmor_parser -r /etc/apparmor.d/hutch-helper`;
}

export async function probeUserns(helper: string, helperGlob: string, ids: IdentityInfo): Promise<Check[]> {
  const s = sudo();
  const out: Check[] = [];
  const area = 'user namespaces';
  const max = readSysctl('user.max_user_namespaces');
  out.push(
    max === undefined
      ? check({
          id: 'userns.max',
          area,
          status: 'error',
          summary: 'user.max_user_namespaces does not exist: the kernel has no user namespaces',
          fix: 'use a kernel built with CONFIG_USER_NS=y',
        })
      : Number(max) > 0
        ? check({ id: 'userns.max', area, status: 'ok', summary: `user.max_user_namespaces = ${max}`, facts: { value: Number(max) } })
        : check({
            id: 'userns.max',
            area,
            status: 'error',
            summary: 'user.max_user_namespaces = 0: user namespaces are disabled',
            fix: sysctlFix('user.max_user_namespaces', 28633, s),
            facts: { value: 0 },
          }),
  );
  const clone = readSysctl('kernel.unprivileged_userns_clone');
  if (clone !== undefined) {
    out.push(
      clone === '1'
        ? check({ id: 'userns.debian-clone', area, status: 'ok', summary: 'kernel.unprivileged_userns_clone = 1', facts: { value: 1 } })
        : check({
            id: 'userns.debian-clone',
            area,
            status: ids.uid === 0 ? 'warning' : 'error',
            summary: `kernel.unprivileged_userns_clone = ${clone}: only root may create user namespaces (Debian's switch)`,
            fix: sysctlFix('kernel.unprivileged_userns_clone', 1, s),
            facts: { value: Number(clone) },
          }),
    );
  }
  const aa = readSysctl('kernel.apparmor_restrict_unprivileged_userns');
  if (aa !== undefined) {
    out.push(
      aa === '0'
        ? check({ id: 'userns.apparmor', area, status: 'ok', summary: 'kernel.apparmor_restrict_unprivileged_userns = 0', facts: { value: 0 } })
        : check({
            id: 'userns.apparmor',
            area,
            status: 'warning', // the real unshare below decides whether it blocks
            summary:
              'kernel.apparmor_restrict_unprivileged_userns = 1: AppArmor allows user namespaces only to programs with a profile saying so (Ubuntu 24.04)',
            detail:
              'the fix gives the hutch helper such a profile; the alternative, turning the restriction off for every program, is `' +
              sysctlFix('kernel.apparmor_restrict_unprivileged_userns', 0, s) +
              '`',
            fix: apparmorFix(helperGlob, s),
            facts: { value: Number(aa) },
          }),
    );
  }
  const real = await tryUserns(helper, ids);
  const aaCheck = out.find((c) => c.id === 'userns.apparmor');
  if (real.ok && aaCheck && aaCheck.status !== 'ok') {
    // The restriction is on, but a profile (or privilege) lets hutch through.
    Object.assign(aaCheck, { status: 'ok', summary: `${aaCheck.summary}; hutch's helper is allowed`, fix: undefined, detail: undefined });
  }
  const blockers = out.filter((c) => c.status !== 'ok' && c.fix);
  out.push(
    real.ok
      ? check({ id: 'userns.create', area, status: 'ok', summary: 'a user namespace was created (tried for real)' })
      : check({
          id: 'userns.create',
          area,
          status: 'error',
          summary: `creating a user namespace failed: ${real.detail}`,
          detail: blockers.length
            ? `see ${blockers.map((c) => c.id).join(', ')} above`
            : 'a container runtime or a seccomp policy around this session may forbid unshare(CLONE_NEWUSER)',
          fix:
            blockers[0]?.fix ??
            'run hutch outside containers that forbid user namespaces (e.g. docker needs --security-opt seccomp=unconfined --security-opt apparmor=unconfined)',
        }),
  );
  return out;
}
