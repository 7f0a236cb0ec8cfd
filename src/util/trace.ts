// HUTCH_TRACE=1 prints the time spent in each stage of a command on stderr
// (milliseconds since the process started): the start-up budget is tight.

// Read at each call, not when the module loads: the single executable's
// startup snapshot initialises modules at build time (src/main.ts).
export function trace(stage: string): void {
  if (process.env.HUTCH_TRACE === '1') process.stderr.write(`hutch-trace ${performance.now().toFixed(1)} ms ${stage}\n`);
}
