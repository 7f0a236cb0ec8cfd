// The helper's plan: an explicit, ordered list of operations (see
// helper-c/PLAN.md). Built here, printed by --dry-run, executed by the
// helper. The text form is the only interface between the two sides.

export interface PlanOp {
  op: string;
  args: string[];
}

export interface Plan {
  ops: PlanOp[];
  /** Human notes printed by --dry-run as `#` comments before the op they precede. */
  notes: Map<number, string>;
}

const ESCAPES: Record<string, string> = { '%': '%25', '\t': '%09', '\n': '%0A', '\r': '%0D' };

export function escapeField(s: string): string {
  return s.replace(/[%\t\n\r]/g, (c) => ESCAPES[c]);
}

export class PlanBuilder {
  private readonly ops: PlanOp[] = [];
  private readonly notes = new Map<number, string>();

  add(op: string, ...args: (string | number)[]): this {
    this.ops.push({ op, args: args.map(String) });
    return this;
  }

  note(text: string): this {
    const at = this.ops.length;
    const prev = this.notes.get(at);
    this.notes.set(at, prev ? `${prev}\n${text}` : text);
    return this;
  }

  has(op: string): boolean {
    return this.ops.some((o) => o.op === op);
  }

  build(): Plan {
    return { ops: [...this.ops], notes: new Map(this.notes) };
  }
}

/** The exact text the helper reads on fd 3 (notes become comments). */
export function formatPlan(plan: Plan, withNotes = true): string {
  const lines: string[] = ['# hutch helper plan v1'];
  plan.ops.forEach((o, i) => {
    const note = withNotes ? plan.notes.get(i) : undefined;
    if (note) for (const l of note.split('\n')) lines.push(`# ${l}`);
    lines.push([o.op, ...o.args].map(escapeField).join('\t'));
  });
  lines.push('end');
  return `${lines.join('\n')}\n`;
}
