// `hutch ps | head -1`: once the reader is gone, the next write to stdout
// fails with EPIPE. A C or Go program (podman, git) is killed by SIGPIPE
// there, silently; Node ignores SIGPIPE and raises an unhandled 'error'
// event instead (a stack trace on stderr). hutch ends the way they do:
// quietly, with the status a shell shows for a SIGPIPE death (128 + 13).
// Installed once, in main.ts, for every verb.

import { constants } from 'node:os';

export const SIGPIPE_STATUS = 128 + constants.signals.SIGPIPE;

export function endQuietlyOnClosedOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      // stderr closed too: nothing can be said anyway
      if (e.code === 'EPIPE') process.exit(SIGPIPE_STATUS);
      throw e;
    });
  }
}
