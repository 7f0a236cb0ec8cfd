// Subordinate ids: /etc/subuid and /etc/subgid ranges for the user, and
// newuidmap/newgidmap (setuid root or with file capabilities) to map them.
// Without them hutch still runs, but only uid 0 exists inside: programs that
// chown or switch users fail. The mapping is tried for real when possible.

import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { userNamespaceOps } from '../helper/identity';
import { runPlanCaptured } from '../helper/spawn';
import { PlanBuilder } from '../helper/plan';
import { HutchError } from '../util/errors';
import { installCommand, installHint, sudo } from '../host/fixes';
import { parseSubidFile, type IdentityInfo } from '../host/ids';
import { check, readText, type Check } from './probe';
import { findExecutable } from '../host/which';

/** The first free 65536-aligned range after every range in both files. */
export function freeSubidRange(subuid: string, subgid: string, count = 65536): { start: number; count: number } {
  let end = 100000;
  for (const text of [subuid, subgid]) {
    for (const line of text.split('\n')) {
      const [, start, n] = line.trim().split(':');
      const e = Number(start) + Number(n);
      if (Number.isInteger(e) && e > end) end = e;
    }
  }
  return { start: Math.ceil(end / count) * count, count };
}

/** `usermod --add-subuids` is the tool made for this (shadow-utils >= 4.2). */
export function subidFix(user: string, subuid: string, subgid: string): string {
  const r = freeSubidRange(subuid, subgid);
  const range = `${r.start}-${r.start + r.count - 1}`;
  return `${sudo()}usermod --add-subuids ${range} --add-subgids ${range} ${user}`;
}

/** How newuidmap gets its privilege: setuid root, file capabilities, or neither. */
export function mapperPrivilege(path: string): { ok: boolean; how: string } {
  const st = statSync(path);
  if (st.uid === 0 && st.mode & 0o4000) return { ok: true, how: 'setuid root' };
  const getcap = findExecutable('getcap');
  if (getcap) {
    try {
      const out = execFileSync(getcap, [path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      if (/cap_set[ug]id/i.test(out)) return { ok: true, how: `file capabilities (${out.trim().split(/\s+/).slice(1).join(' ')})` };
      return { ok: false, how: 'neither setuid root nor file capabilities' };
    } catch {
      /* fall through */
    }
  }
  return { ok: false, how: 'not setuid root (file capabilities not checked: getcap is missing)' };
}

export async function probeSubids(helper: string, ids: IdentityInfo, env: NodeJS.ProcessEnv): Promise<Check[]> {
  const area = 'subordinate ids';
  const out: Check[] = [];
  const subuidText = readText('/etc/subuid') ?? '';
  const subgidText = readText('/etc/subgid') ?? '';
  const subu = parseSubidFile(subuidText, ids.user, ids.uid);
  const subg = parseSubidFile(subgidText, ids.user, ids.gid);
  const fix = subidFix(ids.user, subuidText, subgidText);
  const why = 'without them only uid 0 exists inside the sandbox (programs that chown files or switch users fail)';
  for (const [file, ranges] of [
    ['/etc/subuid', subu],
    ['/etc/subgid', subg],
  ] as const) {
    const id = `subids.${file.slice(5)}`;
    out.push(
      ranges.length
        ? check({
            id,
            area,
            status: 'ok',
            summary: `${file}: ${ranges.map((r) => `${r.start}-${r.start + r.count - 1}`).join(', ')} for ${ids.user}`,
            facts: { ranges },
          })
        : check({ id, area, status: 'warning', summary: `${file} has no range for ${ids.user}`, detail: why, fix, facts: { ranges: [] } }),
    );
  }
  const mappers: Record<string, string | undefined> = {};
  for (const tool of ['newuidmap', 'newgidmap']) {
    const path = findExecutable(tool, env);
    mappers[tool] = path;
    if (!path) {
      out.push(
        check({
          id: `subids.${tool}`,
          area,
          status: 'warning',
          summary: `${tool} is not installed`,
          detail: why,
          fix: installCommand('uidmap'),
          facts: { hint: installHint('uidmap') },
        }),
      );
      continue;
    }
    const p = mapperPrivilege(path);
    out.push(
      p.ok
        ? check({ id: `subids.${tool}`, area, status: 'ok', summary: `${path} (${p.how})`, facts: { path, privilege: p.how } })
        : check({
            id: `subids.${tool}`,
            area,
            status: 'warning',
            summary: `${path} is ${p.how}: it cannot map subordinate ids`,
            fix: `${sudo()}chmod u+s ${path}`,
            facts: { path },
          }),
    );
  }
  if (subu.length && subg.length && mappers.newuidmap && mappers.newgidmap) {
    const b = new PlanBuilder();
    b.add(
      userNamespaceOps({
        uidMap: [
          { inside: 0, outside: ids.uid, count: 1 },
          { inside: 1, outside: subu[0].start, count: subu[0].count },
        ],
        gidMap: [
          { inside: 0, outside: ids.gid, count: 1 },
          { inside: 1, outside: subg[0].start, count: subg[0].count },
        ],
        newuidmap: mappers.newuidmap,
        newgidmap: mappers.newgidmap,
      }),
    );
    b.add({ op: 'exec', argv: ['/proc/self/exe', '--version'] }); // the helper itself
    const r = await runPlanCaptured(b.build(), 10_000, helper);
    out.push(
      r.code === 0
        ? check({
            id: 'subids.map',
            area,
            status: 'ok',
            summary: `mapped ${subu[0].count} subordinate uids and ${subg[0].count} gids through newuidmap/newgidmap (tried for real)`,
          })
        : check({
            id: 'subids.map',
            area,
            status: 'warning',
            summary: `mapping the subordinate ranges failed: ${r.stderr.trim().replace(/^hutch: /, '') || `exit ${r.code}`}`,
            detail: 'hutch falls back to mapping only your own uid',
            fix: "check that the ranges in /etc/subuid and /etc/subgid do not overlap your own uid or other users' ranges",
          }),
    );
  }
  return out;
}

/**
 * For `subordinateIds: required`: throws, with the same fix `hutch doctor`
 * prints, when the ranges cannot be mapped (no entry, or no newuidmap).
 */
export function requireSubordinateIds(ids: IdentityInfo, what = 'profile subordinateIds: required'): void {
  if (ids.newuidmap && ids.newgidmap) return;
  const subuidText = readText('/etc/subuid') ?? '';
  const subgidText = readText('/etc/subgid') ?? '';
  const hasRanges = parseSubidFile(subuidText, ids.user, ids.uid).length > 0 && parseSubidFile(subgidText, ids.user, ids.gid).length > 0;
  if (!hasRanges) {
    throw new HutchError(`${what}: /etc/subuid and /etc/subgid have no ranges for ${ids.user}`, {
      hint: `add them: ${subidFix(ids.user, subuidText, subgidText)}`,
    });
  }
  const tool = ids.newuidmap ? 'newgidmap' : 'newuidmap';
  throw new HutchError(`${what}: ${tool} is not installed (or not on PATH), so the subordinate ids cannot be mapped`, {
    hint: installHint('uidmap'),
  });
}
