// What the CLI prints for an error that is not a HutchError: one sentence.
// A failed system call (ENOENT, EACCES... with the path Node names) reads as
// what happened to which file; anything else is an internal error, with the
// stack only when HUTCH_DEBUG=1.

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EEXIST: 'already exists',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
  ENOSPC: 'no space left on the device',
  EROFS: 'read-only file system',
  ENOTEMPTY: 'directory not empty',
  EBUSY: 'busy',
  EMFILE: 'too many open files',
  EXDEV: 'on another file system',
};

export function describeUnexpected(err: unknown, debug: boolean): string {
  const e = err as NodeJS.ErrnoException | undefined;
  const stack = debug && err instanceof Error && err.stack ? `\n${err.stack}` : '';
  if (e && typeof e === 'object' && typeof e.code === 'string' && typeof e.syscall === 'string') {
    const what = ERRNO_TEXT[e.code] ?? e.code;
    const subject = e.path ? `${e.path}: ` : '';
    return `${subject}${what} (${e.syscall}${e.code in ERRNO_TEXT ? `, ${e.code}` : ''})${stack || (debug ? '' : '\n  hint: HUTCH_DEBUG=1 shows where it happened')}`;
  }
  const message = err instanceof Error ? err.message : String(err);
  return `internal error: ${message}${stack || '\n  hint: this is a bug in hutch; HUTCH_DEBUG=1 prints the stack'}`;
}
