// Progress of concurrent layer downloads: on a terminal, one redrawn line per
// layer in flight (cursor moves up over the block it drew); otherwise a line
// when a layer starts and one when it is done (CI logs, pipes). stderr only.

import { formatBytes } from '../progress';

interface Row {
  label: string;
  total: number;
  done: number;
  phase: string;
}

export class MultiProgress {
  private readonly tty: boolean;
  private readonly rows = new Map<string, Row>();
  private drawnLines = 0;
  private lastDraw = 0;

  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly quiet = false,
  ) {
    this.tty = !!out.isTTY && process.env.TERM !== 'dumb';
  }

  line(text: string): void {
    if (this.quiet) return;
    this.erase();
    this.out.write(`${text}\n`);
    this.draw(true);
  }

  start(id: string, label: string, total: number): void {
    this.rows.set(id, { label, total, done: 0, phase: 'downloading' });
    if (!this.tty) this.line(`${label}: downloading ${formatBytes(total)}`);
    else this.draw(true);
  }

  update(id: string, done: number, phase?: string): void {
    const r = this.rows.get(id);
    if (!r) return;
    r.done = done;
    if (phase) {
      r.phase = phase;
      if (!this.tty) this.line(`${r.label}: ${phase}`);
    }
    this.draw(!!phase);
  }

  finish(id: string, text: string): void {
    this.rows.delete(id);
    this.line(text);
  }

  private erase(): void {
    if (!this.tty || !this.drawnLines) return;
    this.out.write(`\x1b[${this.drawnLines}A\r\x1b[J`);
    this.drawnLines = 0;
  }

  private draw(force: boolean): void {
    if (this.quiet || !this.tty) return;
    const now = Date.now();
    if (!force && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    this.erase();
    const cols = Math.max(40, this.out.columns || 80);
    let text = '';
    for (const r of this.rows.values()) {
      const frac = r.total ? Math.min(1, r.done / r.total) : 0;
      const bar = `[${'#'.repeat(Math.round(frac * 20)).padEnd(20, '.')}]`;
      text += `${`${r.label} ${r.phase} ${bar} ${formatBytes(r.done)} / ${formatBytes(r.total)}`.slice(0, cols - 1)}\n`;
    }
    this.out.write(text);
    this.drawnLines = this.rows.size;
  }
}
