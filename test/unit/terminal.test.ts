// What reaches the helper for -i/-t (src/sandbox/terminal.ts) and --restart (src/cli/restart.ts).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { terminalSetup } from '../../src/sandbox/terminal';
import { parseRestart, shouldRestart } from '../../src/cli/restart';
import { fails } from './lib/fails';

const ttys =
  (...fds: number[]) =>
  (fd: number) =>
    fds.includes(fd);

test('-t: a pty; stdin only with -i', () => {
  assert.equal(terminalSetup({ tty: true, interactive: true }, ttys(0, 1, 2)), { ops: [{ op: 'tty', input: true }], stdin: 'inherit' });
  assert.equal(terminalSetup({ tty: true, interactive: false }, ttys(0, 1, 2)), { ops: [{ op: 'tty', input: false }], stdin: 'ignore' });
});

test('without -t: terminals become relayed pipes; a terminal stdin is /dev/null unless -i', () => {
  assert.equal(terminalSetup({ tty: false, interactive: false }, ttys(0, 1, 2)), { ops: [{ op: 'relay', fds: [1, 2] }], stdin: 'ignore' });
  assert.equal(terminalSetup({ tty: false, interactive: true }, ttys(0, 1, 2)), { ops: [{ op: 'relay', fds: [0, 1, 2] }], stdin: 'inherit' });
  // pipes and files pass through as they are (echo hi | hutch run cat)
  assert.equal(terminalSetup({ tty: false, interactive: false }, ttys()), { ops: [], stdin: 'inherit' });
  assert.equal(terminalSetup({ tty: false, interactive: false }, ttys(2)), { ops: [{ op: 'relay', fds: [2] }], stdin: 'inherit' });
});

test('--restart policies', () => {
  assert.equal(parseRestart(undefined), { kind: 'no' });
  assert.equal(parseRestart('on-failure:3'), { kind: 'on-failure', max: 3 });
  assert.ok(shouldRestart(parseRestart('on-failure'), 1, 100));
  assert.not.ok(shouldRestart(parseRestart('on-failure'), 0, 0));
  assert.not.ok(shouldRestart(parseRestart('on-failure:2'), 1, 2));
  assert.ok(shouldRestart(parseRestart('always'), 0, 5));
  assert.not.ok(shouldRestart(parseRestart('no'), 1, 0));
  assert.match(fails(() => parseRestart('on-failure:x')).message, /--restart: "on-failure:x" is not a restart policy/);
});

test.run();
