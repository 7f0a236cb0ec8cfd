// How the sandbox meets the terminal hutch runs in (podman's -i and -t).
// Nothing inside ever holds a descriptor of the host's terminal: with -t the
// helper gives the command a pseudo-terminal of the sandbox's own devpts and
// relays it; without -t every stdio fd that is a terminal becomes a pipe the
// helper relays (op `relay`), and stdin is /dev/null unless -i (podman's
// behaviour), so a sandbox run in the background cannot read what the user
// types at the shell.

import { isatty } from 'node:tty';
import type { Op } from '../helper/ops';

export interface TerminalRequest {
  /** -i: keep stdin open. */
  interactive: boolean;
  /** -t: a pseudo-terminal inside. */
  tty: boolean;
}

export interface TerminalSetup {
  /** Monitor ops (`tty` or `relay`), none when no stdio fd is a terminal. */
  ops: Op[];
  /** The helper's stdin: hutch's own, or /dev/null. */
  stdin: 'inherit' | 'ignore';
}

export function terminalSetup(req: TerminalRequest, isTerminal: (fd: number) => boolean = isatty): TerminalSetup {
  if (req.tty) return { ops: [{ op: 'tty', input: req.interactive }], stdin: req.interactive ? 'inherit' : 'ignore' };
  const stdin = !req.interactive && isTerminal(0) ? 'ignore' : 'inherit';
  const fds = ([0, 1, 2] as const).filter((fd) => isTerminal(fd) && !(fd === 0 && stdin === 'ignore'));
  return { ops: fds.length ? [{ op: 'relay', fds: [...fds] }] : [], stdin };
}
