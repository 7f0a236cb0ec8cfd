// --keep DIR: the sandbox's upper layer (and the overlay's work directory,
// which the kernel empties at every mount) live in DIR. So DIR must be
// hutch's: hutch uses it only when it is missing or empty (then marks it) or
// carries that mark from an earlier run. A directory of the user's own is
// refused before anything is written to it.

import { lstatSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HutchError } from '../util/errors';

/** The file that says hutch made (or adopted an empty) DIR for --keep. */
export const KEEP_MARKER = '.hutch-keep';

/** Make DIR usable for --keep, or refuse (125) when it holds something that is not hutch's. */
export function claimKeepDir(dir: string): void {
  let st: ReturnType<typeof lstatSync> | undefined;
  let marked = false;
  try {
    st = lstatSync(dir);
  } catch {
    st = undefined;
  }
  if (st && !st.isDirectory()) {
    throw new HutchError(`--keep ${dir}: not a directory`, { hint: 'give --keep a new or empty directory' });
  }
  if (st) {
    const entries = readdirSync(dir);
    marked = entries.includes(KEEP_MARKER);
    if (entries.length && !marked) {
      throw new HutchError(`--keep ${dir}: the directory is not empty and was not made by hutch (no ${KEEP_MARKER} in it)`, {
        hint: `the sandbox's writable layer would be written into it, and the kernel empties its work/ subdirectory: give --keep a new or empty directory, e.g. --keep ${join(dir, 'hutch-keep')}`,
      });
    }
  } else {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }
  if (!marked) writeFileSync(join(dir, KEEP_MARKER), "This directory holds a hutch sandbox's kept writable layer (hutch run --keep).\n", { flag: 'wx' });
}
