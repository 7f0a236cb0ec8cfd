// HUTCH_TRACE=1 prints the time spent in each stage of a command on stderr
// (milliseconds since the process started): the start-up budget is tight.

const on = process.env.HUTCH_TRACE === '1';

export function trace(stage: string): void {
  if (on) process.stderr.write(`hutch-trace ${performance.now().toFixed(1)} ms ${stage}\n`);
}
