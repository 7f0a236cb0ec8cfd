// `hutch ps | head -1`: once the reader is gone, the next write to stdout
// fails with EPIPE. A C or Go program (podman, git) is killed by SIGPIPE
// there, silently; Node ignores SIGPIPE and raises an unhandled 'error'
// event instead (a stack trace on stderr). hutch ends the way they do:
// quietly, with the status a shell shows for a SIGPIPE death (128 + 13).
// Installed once, in main.ts, for every verb.

import { constants } from 'node:os';

export const SIGPIPE_STATUS = 128 + constants.signals.SIGPIPE;

function endQuietly(stream: NodeJS.WriteStream): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    // stderr closed too: nothing can be said anyway
    if (e.code === 'EPIPE') process.exit(SIGPIPE_STATUS);
    throw e;
  });
}

/**
 * On the stream's first use, not now: process.stdout and process.stderr are
 * made when first read (a tty, pipe or file stream: 2-4 ms of a launch), and
 * `hutch run` writes neither unless it has something to say (its trace goes
 * to fd 2 directly, the command gets the descriptors themselves).
 */
export function endQuietlyOnClosedOutput(): void {
  for (const name of ['stdout', 'stderr'] as const) {
    const d = Object.getOwnPropertyDescriptor(process, name);
    if (!d?.get || !d.configurable) {
      endQuietly(process[name]);
      continue;
    }
    const make = d.get;
    let made: NodeJS.WriteStream | undefined;
    Object.defineProperty(process, name, {
      configurable: true,
      enumerable: d.enumerable,
      get() {
        if (!made) {
          made = make.call(process) as NodeJS.WriteStream;
          endQuietly(made);
        }
        return made;
      },
    });
  }
}
