// One error type for everything hutch itself rejects (bad flag, bad profile,
// missing host feature). The CLI prints `hutch: <message>` plus the hint and
// exits with `exitCode` (125 unless stated otherwise), as podman does.

export interface SourceLocation {
  file: string;
  line: number; // 1-based
  column: number; // 1-based
}

/**
 * What the user asked for that a part of the sandbox carries out: a flag with
 * its value (`-w /srv`, `-v ./a:/a`) or a profile field (`mounts[0]`, with its
 * file:line:col), so that a failure names it instead of the machinery.
 */
export interface Origin {
  what: string;
  location?: SourceLocation;
}

export class HutchError extends Error {
  readonly exitCode: number;
  readonly hint?: string;
  readonly location?: SourceLocation;

  constructor(message: string, opts: { hint?: string; location?: SourceLocation; exitCode?: number } = {}) {
    super(message);
    this.name = 'HutchError';
    this.exitCode = opts.exitCode ?? 125;
    this.hint = opts.hint;
    this.location = opts.location;
  }

  /** `file:line:col: message` followed by the hint on its own line. */
  format(): string {
    const where = this.location ? `${this.location.file}:${this.location.line}:${this.location.column}: ` : '';
    return `${where}${this.message}${this.hint ? `\n  hint: ${this.hint}` : ''}`;
  }
}
