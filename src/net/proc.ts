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
