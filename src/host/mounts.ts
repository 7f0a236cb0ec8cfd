// The host's mount table, read from /proc/self/mountinfo. The root
// filesystem planner needs to know which top-level directories carry
// submounts: kernel overlayfs in a user namespace refuses a lower layer with
// locked submounts, so those directories are bound read-only instead.

import { readFileSync } from 'node:fs';

export interface MountEntry {
  /** The mounted directory inside its filesystem (field 4: a bind's source path). */
  root: string;
  mountPoint: string;
  fsType: string;
  source: string;
  /** Per-mount options (rw, nosuid, ...). */
  options: string;
  /** Superblock options (for cgroup v1: the controllers of the hierarchy). */
  superOptions: string;
}

function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [left, right] = line.split(' - ');
    const f = left.split(' ');
    const r = (right ?? '').split(' ');
    out.push({
      root: unescapeOctal(f[3]),
      mountPoint: unescapeOctal(f[4]),
      options: f[5],
      fsType: r[0] ?? '',
      source: unescapeOctal(r[1] ?? ''),
      superOptions: r[2] ?? '',
    });
  }
  return out;
}

export function hostMounts(): MountEntry[] {
  return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));
}
