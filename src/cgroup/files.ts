// Reading and writing cgroup v2 interface files. Errors keep the kernel's
// errno (EBUSY, EINVAL, ENOENT...) so callers can tell "not enabled" from
// "refused".

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** `key value` lines (cpu.stat, memory.events, pids.events, cgroup.events) -> numbers. */
export function readKeyed(path: string): Record<string, number> | undefined {
  const t = readText(path);
  if (t === undefined) return undefined;
  const out: Record<string, number> = {};
  for (const line of t.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined) out[k] = Number(v);
  }
  return out;
}

/** A single number, `max` -> null (no limit), missing file -> undefined. */
export function readNumber(path: string): number | null | undefined {
  const t = readText(path)?.trim();
  if (t === undefined || t === '') return undefined;
  if (t === 'max') return null;
  const n = Number(t.split(/\s+/)[0]);
  return Number.isFinite(n) ? n : undefined;
}

export function writeCg(dir: string, file: string, value: string): void {
  writeFileSync(join(dir, file), value);
}

/** Space-separated list files (cgroup.controllers, cgroup.subtree_control). */
export function readList(path: string): string[] {
  return (readText(path) ?? '').trim().split(/\s+/).filter(Boolean);
}

/** Pids in a cgroup.procs file. */
export function readPids(dir: string): number[] {
  return (readText(join(dir, 'cgroup.procs')) ?? '').split('\n').filter(Boolean).map(Number);
}
