// Small process helpers shared by the drivers: keep the tail of a child's
// stderr for error messages, wait for its exit, stop it politely then firmly.

import type { ChildProcess } from 'node:child_process';

/** Collects a child's stderr (last 4 KiB), dropping pasta's syslog noise. */
export function stderrTail(child: ChildProcess): () => string {
  let buf = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    buf = (buf + d).slice(-4096);
  });
  return () =>
    buf
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('Failed to send') && !l.startsWith('api_handler: got request'))
      .join('; ')
      .slice(-600);
}

export function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Resolves when the child has exited (immediately if it already has). */
export function waitExit(child: ChildProcess): Promise<void> {
  if (exited(child)) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the child is gone. */
export async function stopChild(child: ChildProcess, graceMs = 2000): Promise<void> {
  if (exited(child)) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await waitExit(child);
  clearTimeout(timer);
}

/**
 * Tells the child to go and does not wait for it: our ends of its pipes are
 * closed and it no longer keeps hutch alive. For a NAT nothing on the host
 * waits for (no published port to free): its exit is the kernel tearing down
 * the sandbox's network namespace and tap device, about 20 ms hutch need not
 * spend; the process is gone moments later, also when hutch has exited.
 */
export function letGo(child: ChildProcess, signal: NodeJS.Signals | undefined): void {
  if (signal && !exited(child)) child.kill(signal);
  for (const s of child.stdio) s?.destroy();
  child.unref();
}
