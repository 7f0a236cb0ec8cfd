// HUTCH_TRACE=1 prints the time spent in each stage of a command on stderr
// (milliseconds since the process started): the start-up budget is tight.

import { writeSync } from 'node:fs';

// Read at each call, not when the module loads: the single executable's
// startup snapshot initialises modules at build time (src/main.ts).
export function trace(stage: string): void {
  // fd 2 directly: the first use of process.stderr builds a stream (~5 ms),
  // which would be charged to the traced stage.
  if (process.env.HUTCH_TRACE === '1') writeSync(2, `hutch-trace ${performance.now().toFixed(1)} ms ${stage}\n`);
}
