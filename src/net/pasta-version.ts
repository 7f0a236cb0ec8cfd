// Which pasta builds stall bulk uploads through a published port.
//
// passt before 2023_11_10 can stop a TCP transfer for good: the host-side
// socket reports a full window, pasta answers keepalives with a zero window
// and never reopens it, although the sandbox's side has room (passt bug 74
// and podman issue #20170, "believed to be fixed in pasta-2023-11-10").
// Measured here with Debian's 0.0~git20230309: 6 of 67 `pgbench -i` runs,
// 3 of 30 with pasta around `unshare` and no hutch, 0 of 56 with slirp4netns.
// So `auto` does not pick such a pasta: reliability before speed.
//
// Versions: releases print `pasta 2023_11_10.5ec3634` (first line of
// --version); Debian's 2023-03 build prints `pasta unknown version`, as any
// build without passt's version stamp does: an unknown version counts as
// affected (the one measured here is such a build).
//
// `pasta --version` is a process start: its answer is cached per binary
// (path, inode, size, mtime) in the cache dir, so a run only stats the file.

import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The first passt release with the window-full stall fixed. */
export const PASTA_STALL_FIXED = '2023_11_10';

export interface PastaVersion {
  /** `2023_11_10.5ec3634`, or undefined when the build does not say. */
  version?: string;
  /** True when this build has the bulk-upload stall (or cannot tell). */
  stalls: boolean;
  /** One sentence: why. */
  why: string;
}

/** Pure: the verdict on the first line of `pasta --version`. */
export function judgePastaVersion(firstLine: string): PastaVersion {
  const m = /(\d{4})_(\d{2})_(\d{2})(\.[0-9a-f]+)?/.exec(firstLine);
  if (!m) {
    return {
      stalls: true,
      why: `this pasta does not say its version ("${firstLine.trim() || 'no output'}"), like Debian's 0.0~git20230309, whose bulk uploads through published ports can stall for good (fixed in passt ${PASTA_STALL_FIXED})`,
    };
  }
  const version = m[0];
  const date = `${m[1]}_${m[2]}_${m[3]}`;
  if (date < PASTA_STALL_FIXED) {
    return { version, stalls: true, why: `pasta ${version} can stall bulk uploads through published ports for good (fixed in passt ${PASTA_STALL_FIXED})` };
  }
  return { version, stalls: false, why: `pasta ${version} has the bulk-upload stall fix (passt ${PASTA_STALL_FIXED} or later)` };
}

function askPasta(binary: string): string {
  const r = spawnSync(binary, ['--version'], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'pipe'] });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0] ?? '';
}

/** The verdict on the pasta at `binary`, cached in `cacheDir` (undefined: no cache). */
export function pastaVersion(binary: string, cacheDir: string | undefined): PastaVersion {
  let key: string;
  try {
    const st = statSync(binary);
    key = `${binary}\0${st.ino}\0${st.size}\0${st.mtimeMs}`;
  } catch {
    return judgePastaVersion(askPasta(binary));
  }
  const file = cacheDir ? join(cacheDir, 'probe-pasta.json') : undefined;
  if (file) {
    try {
      const cached = JSON.parse(readFileSync(file, 'utf8'));
      if (cached.key === key && typeof cached.firstLine === 'string') return judgePastaVersion(cached.firstLine);
    } catch {
      /* no cache yet */
    }
  }
  const firstLine = askPasta(binary);
  if (file && cacheDir) {
    try {
      mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
      const tmp = `${file}.${process.pid}`;
      writeFileSync(tmp, JSON.stringify({ key, firstLine }));
      renameSync(tmp, file);
    } catch {
      /* read-only cache: ask again next time */
    }
  }
  return judgePastaVersion(firstLine);
}
