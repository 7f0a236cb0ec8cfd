// Progress of long imports and builds: a redrawn bar on a terminal, plain
// start/finish lines otherwise (CI logs, pipes), all on stderr so stdout
// stays parseable.

import { formatBytes } from '../util/units';

export { formatBytes };

export class Progress {
  private readonly tty: boolean;
  private lastDraw = 0;
  private label = '';
  private total = 0;
  private started = 0;
  private drawn = false;

  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly quiet = false,
  ) {
    this.tty = !!out.isTTY && process.env.TERM !== 'dumb';
  }

  /** A plain message line (clears a bar first). */
  line(text: string): void {
    if (this.quiet) return;
    this.clear();
    this.out.write(`${text}\n`);
  }

  start(label: string, total: number): void {
    this.label = label;
    this.total = total;
    this.started = Date.now();
    if (!this.tty) this.line(`${label}${total ? ` (${formatBytes(total)})` : ''} ...`);
  }

  update(done: number): void {
    if (this.quiet || !this.tty) return;
    const now = Date.now();
    if (now - this.lastDraw < 100) return;
    this.lastDraw = now;
    const width = 30;
    const frac = this.total ? Math.min(1, done / this.total) : 0;
    const bar = this.total ? `[${'#'.repeat(Math.round(frac * width)).padEnd(width, '.')}] ${String(Math.floor(frac * 100)).padStart(3)}%` : '';
    this.out.write(`\r\x1b[K${this.label} ${bar} ${formatBytes(done)}${this.total ? ` / ${formatBytes(this.total)}` : ''}`);
    this.drawn = true;
  }

  finish(text: string): void {
    const s = ((Date.now() - this.started) / 1000).toFixed(1);
    this.line(`${text} in ${s}s`);
  }

  private clear(): void {
    if (this.drawn) {
      this.out.write('\r\x1b[K');
      this.drawn = false;
    }
  }
}
