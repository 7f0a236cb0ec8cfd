// Reading a detached sandbox's log (written by the helper's monitor,
// helper-c/log.c): `log.1` (older) and `log`, lines in podman's k8s-file
// format `TIMESTAMP STREAM F|P TEXT`, where P means the line goes on in the
// next entry. A line in another format (a resident hutch's crash output) is
// taken as a whole line of text without a timestamp.

import { statSync } from 'node:fs';
import { join } from 'node:path';
import { LOG_FILE } from './records';

export interface LogEntry {
  time?: string;
  stream: 'stdout' | 'stderr';
  /** The line ends here (F); false: it goes on in the next entry (P). */
  full: boolean;
  text: string;
}

const ENTRY = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z) (stdout|stderr) ([FP]) (.*)$/s;

export function parseEntry(line: string): LogEntry {
  const m = ENTRY.exec(line);
  if (!m) return { stream: 'stdout', full: true, text: line };
  return { time: m[1], stream: m[2] as LogEntry['stream'], full: m[3] === 'F', text: m[4] };
}

/** Turns entries back into output: the text as written, with --timestamps the time of each line first. */
export class LogPrinter {
  private atLineStart = true;
  constructor(
    private readonly timestamps: boolean,
    private readonly out: (s: string) => void,
  ) {}

  print(e: LogEntry): void {
    let s = '';
    if (this.timestamps && this.atLineStart) s += `${e.time ?? '-'} `;
    s += e.text;
    if (e.full) s += '\n';
    this.atLineStart = e.full;
    this.out(s);
  }
}

/** Splits bytes into complete lines; keeps the unfinished rest for the next chunk. */
export class LineSplitter {
  private rest = '';
  push(chunk: string): string[] {
    const lines = (this.rest + chunk).split('\n');
    this.rest = lines.pop()!;
    return lines;
  }
}

/** Entries of the last `n` lines (a line is one or more P entries and the F that ends it). */
export function lastLines(entries: LogEntry[], n: number): LogEntry[] {
  if (n === 0) return [];
  let seen = 0;
  for (let i = entries.length - 1; i >= 0; i--) {
    // an entry that ends a line starts counting the line before it
    if (entries[i].full && i !== entries.length - 1) {
      if (++seen === n) return entries.slice(i + 1);
    }
  }
  return entries;
}

/** The inode of the current log file, to notice a rotation (undefined: none yet). */
export function logInode(dir: string): number | undefined {
  try {
    return statSync(join(dir, LOG_FILE)).ino;
  } catch {
    return undefined;
  }
}
