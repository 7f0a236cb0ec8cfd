// Progress of long work (imports, builds, commits, layer downloads): redrawn
// bars on a terminal, plain lines otherwise (CI logs, pipes), all on stderr
// so stdout stays parseable. `Progress`: one task at a time, one bar;
// `MultiProgress`: concurrent downloads, one redrawn line per layer in flight.

import { formatBytes } from '../util/units';

export { formatBytes };

/** Redraws at most this often: a bar drawn per chunk would cost more than the work. */
const REDRAW_MS = 100;

const bar = (frac: number, width: number) => `[${'#'.repeat(Math.round(frac * width)).padEnd(width, '.')}]`;

/** What both kinds share: terminal or not, quiet, plain lines that go above what is drawn. */
abstract class Output {
  protected readonly tty: boolean;
  private lastDraw = 0;

  constructor(
    protected readonly out: NodeJS.WriteStream = process.stderr,
    protected readonly quiet = false,
  ) {
    this.tty = !!out.isTTY && process.env.TERM !== 'dumb';
  }

  /** A plain message line: what is drawn is erased first and drawn again below it. */
  line(text: string): void {
    if (this.quiet) return;
    this.erase();
    this.out.write(`${text}\n`);
    this.redraw();
  }

  /** Time to draw (a terminal, not quiet, and `force` or the last draw long enough ago). */
  protected due(force: boolean): boolean {
    if (this.quiet || !this.tty) return false;
    const now = Date.now();
    if (!force && now - this.lastDraw < REDRAW_MS) return false;
    this.lastDraw = now;
    return true;
  }

  protected abstract erase(): void;
  protected redraw(): void {}
}

export class Progress extends Output {
  private label = '';
  private total = 0;
  private started = 0;
  private drawn = false;

  start(label: string, total: number): void {
    this.label = label;
    this.total = total;
    this.started = Date.now();
    if (!this.tty) this.line(`${label}${total ? ` (${formatBytes(total)})` : ''} ...`);
  }

  update(done: number): void {
    if (!this.due(false)) return;
    const frac = this.total ? Math.min(1, done / this.total) : 0;
    const shown = this.total ? `${bar(frac, 30)} ${String(Math.floor(frac * 100)).padStart(3)}%` : '';
    this.out.write(`\r\x1b[K${this.label} ${shown} ${formatBytes(done)}${this.total ? ` / ${formatBytes(this.total)}` : ''}`);
    this.drawn = true;
  }

  finish(text: string): void {
    const s = ((Date.now() - this.started) / 1000).toFixed(1);
    this.line(`${text} in ${s}s`);
  }

  protected override erase(): void {
    if (this.drawn) {
      this.out.write('\r\x1b[K');
      this.drawn = false;
    }
  }
}

interface Row {
  label: string;
  total: number;
  done: number;
  phase: string;
}

export class MultiProgress extends Output {
  private readonly rows = new Map<string, Row>();
  private drawnLines = 0;

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

  /** The cursor goes up over the block drawn last. */
  protected override erase(): void {
    if (!this.tty || !this.drawnLines) return;
    this.out.write(`\x1b[${this.drawnLines}A\r\x1b[J`);
    this.drawnLines = 0;
  }

  protected override redraw(): void {
    this.draw(true);
  }

  private draw(force: boolean): void {
    if (!this.due(force)) return;
    this.erase();
    const cols = Math.max(40, this.out.columns || 80);
    let text = '';
    for (const r of this.rows.values()) {
      const frac = r.total ? Math.min(1, r.done / r.total) : 0;
      text += `${`${r.label} ${r.phase} ${bar(frac, 20)} ${formatBytes(r.done)} / ${formatBytes(r.total)}`.slice(0, cols - 1)}\n`;
    }
    this.out.write(text);
    this.drawnLines = this.rows.size;
  }
}
