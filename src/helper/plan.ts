// The helper's plan: an explicit, ordered list of typed operations (see
// helper-c/PLAN.md and ./ops.ts). Built here, printed by --dry-run, executed
// by the helper. The text form is the only interface between the two sides.

import { HutchError, type Origin } from '../util/errors';
import { fieldsOf, type Op, type OpName } from './ops';

export interface Plan {
  ops: Op[];
  /** Human notes printed by --dry-run as `#` comments before the op they precede. */
  notes: Map<number, string>;
  /**
   * What the user asked for that produced an op (`-w /srv`, `-v ./a:/a`), by
   * op index: error messages name it instead of the op.
   */
  origins: Map<number, Origin>;
}

const ESCAPES: Record<string, string> = { '%': '%25', '\t': '%09', '\n': '%0A', '\r': '%0D' };

export function escapeField(s: string): string {
  // No path, argument or environment value can hold a NUL (the kernel takes C
  // strings), and the plan has no escape for one: refuse rather than let the
  // helper cut the value short.
  if (s.includes('\0')) {
    throw new HutchError(`${JSON.stringify(s.replace(/\0/g, '\\0'))} contains a NUL byte, which no path, argument or variable can hold`, {
      hint: 'remove the \\0 from the profile or flag',
    });
  }
  return s.replace(/[%\t\n\r]/g, (c) => ESCAPES[c]);
}

export class PlanBuilder {
  private readonly ops: Op[] = [];
  private readonly notes = new Map<number, string>();
  private readonly origins = new Map<number, Origin>();

  /** Append ops; `origin` names the flag or profile field they come from. */
  add(op: Op | readonly Op[], origin?: Origin): this {
    for (const o of Array.isArray(op) ? (op as readonly Op[]) : [op as Op]) {
      if (origin) this.origins.set(this.ops.length, origin);
      this.ops.push(o);
    }
    return this;
  }

  note(text: string): this {
    const at = this.ops.length;
    const prev = this.notes.get(at);
    this.notes.set(at, prev ? `${prev}\n${text}` : text);
    return this;
  }

  has(op: OpName): boolean {
    return this.ops.some((o) => o.op === op);
  }

  build(): Plan {
    return { ops: [...this.ops], notes: new Map(this.notes), origins: new Map(this.origins) };
  }
}

/** A plan of ops alone (probes, userns commands). */
export function planOf(ops: readonly Op[]): Plan {
  return new PlanBuilder().add(ops).build();
}

export function opLine(o: Op): string {
  return [o.op, ...fieldsOf(o)].map(escapeField).join('\t');
}

/** The exact text the helper reads on fd 3 (notes become comments). */
export function formatPlan(plan: Plan, withNotes = true): string {
  const lines: string[] = ['# hutch helper plan v1'];
  plan.ops.forEach((o, i) => {
    const note = withNotes ? plan.notes.get(i) : undefined;
    if (note) for (const l of note.split('\n')) lines.push(`# ${l}`);
    lines.push(opLine(o));
  });
  lines.push('end');
  return `${lines.join('\n')}\n`;
}

/**
 * The op index for a 1-based line number of the text `formatPlan(plan,
 * false)` produced (the helper names failing ops by line): line 1 is the
 * header, ops follow one per line.
 */
export function opIndexOfLine(line: number): number {
  return line - 2;
}
