// src/image/progress.ts, the one owner of progress output: plain lines when
// stderr is not a terminal (CI logs, pipes), redrawn bars on one, and
// plain lines that never leave a half-drawn bar behind.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MultiProgress, Progress } from '../../src/image/progress';

// the bars are for terminals other than dumb ones
process.env.TERM = 'xterm';

function stream(tty: boolean): { out: NodeJS.WriteStream; text: () => string } {
  let text = '';
  const out = { isTTY: tty, columns: 80, write: (s: string) => ((text += s), true) } as unknown as NodeJS.WriteStream;
  return { out, text: () => text };
}

test('not a terminal: a start and a finish line each, no escape sequences, no bar', () => {
  const s = stream(false);
  const p = new Progress(s.out);
  p.start('importing x', 2048);
  p.update(1024);
  p.line('a note');
  p.finish('imported x');
  assert.match(s.text(), /^importing x \(2(\.0)? KiB\) \.\.\.\na note\nimported x in \d+\.\ds\n$/);
  const m = stream(false);
  const mp = new MultiProgress(m.out);
  mp.start('a', 'layer a', 100);
  mp.update('a', 50);
  mp.update('a', 100, 'verifying');
  mp.finish('a', 'layer a: done');
  assert.is(m.text(), 'layer a: downloading 100 B\nlayer a: verifying\nlayer a: done\n');
  assert.not.match(s.text() + m.text(), /\x1b/);
});

test('a terminal: a bar redrawn in place; a line erases it first; the rows of downloads are redrawn below the line', () => {
  const s = stream(true);
  const p = new Progress(s.out);
  p.start('importing x', 100);
  p.update(50);
  assert.is(s.text(), `\r\x1b[Kimporting x [${'#'.repeat(15)}${'.'.repeat(15)}]  50% 50 B / 100 B`);
  p.line('note');
  assert.ok(s.text().endsWith('\r\x1b[Knote\n'), JSON.stringify(s.text()));
  const m = stream(true);
  const mp = new MultiProgress(m.out);
  mp.start('a', 'layer a', 100);
  mp.start('b', 'layer b', 100);
  const before = m.text().length;
  mp.line('hello');
  // up over the two rows, the line, both rows again
  assert.match(m.text().slice(before), /^\x1b\[2A\r\x1b\[Jhello\nlayer a downloading \[\.+\] 0 B \/ 100 B\nlayer b downloading/);
  assert.not.match(m.text(), /downloading 100 B\n/, 'no plain start lines on a terminal');
});

test('quiet: nothing at all', () => {
  const s = stream(true);
  const p = new Progress(s.out, true);
  p.start('x', 1);
  p.update(1);
  p.finish('x');
  const mp = new MultiProgress(s.out, true);
  mp.start('a', 'a', 1);
  mp.finish('a', 'a');
  assert.is(s.text(), '');
});

test.run();
