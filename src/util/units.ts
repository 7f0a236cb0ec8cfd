// Sizes and durations the way podman and docker users write them.

import { HutchError } from './errors';

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** `512m`, `2g`, `1.5G`, `4096`, `64MiB` -> bytes. */
export function parseSize(text: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgtb]?)(?:i?b)?\s*$/i.exec(text ?? '');
  if (!m) throw new HutchError(`${what}: "${text}" is not a size`, { hint: 'write e.g. 512m, 2g or a number of bytes' });
  return Math.round(Number(m[1]) * SIZE_UNITS[m[2].toLowerCase()]);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `90s`, `10m`, `1h30m`, `500ms`, `30` (seconds) -> milliseconds. */
export function parseDuration(text: string, what: string): number {
  const t = String(text).trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let consumed = 0;
  for (const m of t.matchAll(re)) {
    total += Number(m[1]) * DURATION_UNITS[m[2]];
    consumed += m[0].length;
  }
  if (consumed !== t.length || consumed === 0) {
    throw new HutchError(`${what}: "${text}" is not a duration`, { hint: 'write e.g. 30s, 10m, 1h30m' });
  }
  return Math.round(total);
}

/** Bytes -> `512 MiB`, `1.5 GiB` (1024-based); null is "unlimited", undefined or NaN "-". */
export function formatBytes(n: number | null | undefined): string {
  if (n === null) return 'unlimited';
  if (n === undefined || !Number.isFinite(n)) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const text = i === 0 ? String(v) : v >= 100 || Number.isInteger(v) ? v.toFixed(0) : v.toFixed(1);
  return `${text} ${units[i]}`;
}

const DURATION_FACTORS: [string, number][] = [
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
  ['ms', 1],
];

/** Milliseconds -> `1h30m`, `90s` as `1m30s`, `500ms`: the syntax parseDuration reads. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let out = '';
  let rest = ms;
  for (const [u, f] of DURATION_FACTORS) {
    if (rest >= f) {
      out += `${Math.floor(rest / f)}${u}`;
      rest %= f;
    }
  }
  return out;
}
