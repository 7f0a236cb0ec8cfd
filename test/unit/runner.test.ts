// The test runner's own logic (test/lib/summary.mjs, test/lib/testuser.mjs).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseSummary, judgeRun, closingLine, exitCodeFor, addCounts, lineSplitter, stripAnsi } from '../lib/summary.mjs';
import { parseSubids, freeSubidRange, packageNames } from '../lib/testuser.mjs';
import { parseCommand } from '../lib/hutch';

// What uvu 0.5 prints, verbatim (trailing blank line included).
const PASSING = `• • •   (3 / 3)

  Total:     3
  Passed:    3
  Skipped:   0
  Duration:  1.52ms

`;

const FAILING = `• ✘ •   (2 / 3)

   FAIL   "adds"
    Expected values to be strictly equal:  (is)

  Total:     3
  Passed:    2
  Skipped:   1
  Duration:  0.91ms

`;

test('parseSummary reads a passing run', () => {
  assert.equal(parseSummary(PASSING), { total: 3, passed: 3, skipped: 0, failed: 0 });
});

test('parseSummary reads failures and skips', () => {
  assert.equal(parseSummary(FAILING), { total: 3, passed: 2, skipped: 1, failed: 1 });
});

test('parseSummary sees through kleur colours', () => {
  const coloured = '\n  Total:     4\x1b[31m\n  Passed:    1\x1b[39m\n  Skipped:   \x1b[33m2\x1b[39m\n  Duration:  1ms\n';
  assert.equal(parseSummary(coloured), { total: 4, passed: 1, skipped: 2, failed: 3 });
  assert.is(stripAnsi('\x1b[1m\x1b[41m FAIL \x1b[49m\x1b[22m'), ' FAIL ');
});

test('parseSummary: no or partial summary is null', () => {
  assert.is(parseSummary(''), null);
  assert.is(parseSummary('TypeError: x is not a function\n    at file.mjs:1:1\n'), null);
  assert.is(parseSummary('  Total:     3\n  Passed:    3\n'), null); // cut off before Skipped
  assert.is(parseSummary('a line mentioning Total: 3 inline\n'), null);
});

test('parseSummary: zero tests', () => {
  const zero = '\n  Total:     0\n  Passed:    0\n  Skipped:   0\n  Duration:  0.01ms\n\n';
  assert.equal(parseSummary(zero), { total: 0, passed: 0, skipped: 0, failed: 0 });
});

test('judgeRun: clean pass and ordinary failure', () => {
  assert.equal(judgeRun({ output: PASSING, code: 0, signal: null }), {
    passed: 3,
    failed: 0,
    skipped: 0,
    crashed: false,
    reason: '',
  });
  const j = judgeRun({ output: FAILING, code: 1, signal: null });
  assert.equal([j.passed, j.failed, j.skipped, j.crashed], [2, 1, 1, false]);
});

test('judgeRun: crash, signal, timeout, spawn error count as failures', () => {
  const crash = judgeRun({ output: 'Error: boom\n', code: 1, signal: null });
  assert.equal([crash.passed, crash.failed, crash.crashed], [0, 1, true]);
  assert.match(crash.reason, 'no uvu summary');
  const early = judgeRun({ output: 'Exiting early before testing is finished.\n', code: 1, signal: null });
  assert.is(early.failed, 1);
  const killed = judgeRun({ output: PASSING, code: null, signal: 'SIGKILL' });
  assert.equal([killed.passed, killed.failed, killed.crashed], [3, 1, true]);
  const late = judgeRun({ output: PASSING, code: 7, signal: null });
  assert.equal([late.passed, late.failed], [3, 1]);
  const hung = judgeRun({ output: '• ', code: null, signal: 'SIGKILL', timedOut: true });
  assert.equal([hung.failed, hung.reason], [1, 'timed out and was killed']);
  const noSpawn = judgeRun({ code: null, signal: null, error: new Error('ENOENT') });
  assert.equal([noSpawn.failed, noSpawn.crashed], [1, true]);
});

test('closingLine and exit code', () => {
  assert.is(closingLine({ passed: 12, failed: 0, skipped: 0 }), '12 passed, 0 failed');
  assert.is(closingLine({ passed: 3, failed: 2, skipped: 4 }), '3 passed, 2 failed, 4 skipped');
  assert.is(exitCodeFor({ passed: 12, failed: 0, skipped: 0 }), 0);
  assert.is(exitCodeFor({ passed: 12, failed: 1, skipped: 0 }), 1);
  assert.is(exitCodeFor({ passed: 0, failed: 0, skipped: 0 }), 1, 'zero tests is a failure');
  assert.is(exitCodeFor({ passed: 0, failed: 0, skipped: 5 }), 1, 'only skips is a failure');
  assert.equal(addCounts({ passed: 1, failed: 2, skipped: 3 }, { passed: 10, failed: 20, skipped: 30 }), {
    passed: 11,
    failed: 22,
    skipped: 33,
  });
});

test('lineSplitter keeps partial lines until complete', () => {
  const lines: string[] = [];
  const s = lineSplitter((l) => lines.push(l));
  s.push('• • ');
  s.push('(2 / 2)\nTot');
  s.push('al: 2\n\nrest');
  assert.equal(lines, ['• • (2 / 2)', 'Total: 2', '']);
  s.flush();
  assert.equal(lines.at(-1), 'rest');
});

test('subordinate id ranges: parse and pick a free one', () => {
  const ranges = parseSubids('hutchdev:100000:65536\n# comment\n\nbroken line\n1005:300000:65536\n');
  assert.equal(ranges, [
    { owner: 'hutchdev', start: 100000, count: 65536 },
    { owner: '1005', start: 300000, count: 65536 },
  ]);
  assert.is(freeSubidRange([]), 300000);
  assert.is(freeSubidRange(ranges), 393216); // 300000 is taken: next 65536-aligned start after it
  assert.is(freeSubidRange([{ owner: 'x', start: 290000, count: 20000 }]), 327680);
  assert.is(freeSubidRange([{ owner: 'x', start: 200000, count: 65536 }]), 300000);
});

test('packageNames drops builtins and relative imports', () => {
  assert.equal(packageNames(['uvu', 'uvu/assert', 'node:fs', 'fs', './x.js', '@types/node/x', 'yaml']), ['uvu', '@types/node', 'yaml']);
});

test('HUTCH command prefix: words or a JSON array', () => {
  assert.equal(parseCommand('node /r/dist/hutch.cjs'), ['node', '/r/dist/hutch.cjs']);
  assert.equal(parseCommand('  /r/dist/hutch  '), ['/r/dist/hutch']);
  assert.equal(parseCommand('["node", "/a b/dist/hutch.cjs"]'), ['node', '/a b/dist/hutch.cjs']);
  assert.throws(() => parseCommand('[1, 2]'));
});

test.run();
