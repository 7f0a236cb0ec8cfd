// Counting test-helper.sh's check lines for the helper tier (test/lib/helpertier.mjs).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { countCheckLines, judgeChecks } from '../lib/helpertier.mjs';

const OUTPUT = `# hutch-helper tests as root (uid 0), helper /x/hutch-helper
ok   --version
FAIL caps: every capability set empty
     output lacks: CapAmb: 0
     | ok   not a check: indented output of the failing check
skip fuse-overlayfs: no /dev/fuse
\x1b[32mok   coloured\x1b[0m
# root: 2 passed, 1 failed, 1 skipped
`;

test('counts ok, FAIL and skip lines, nothing else', () => {
  const c = countCheckLines(OUTPUT);
  assert.equal([c.passed, c.failed, c.skipped], [2, 1, 1]);
  assert.equal(c.failedNames, ['caps: every capability set empty']);
});

test('a clean exit with failed checks is a failure, not a crash', () => {
  const j = judgeChecks({ output: OUTPUT, code: 1, signal: null });
  assert.equal([j.passed, j.failed, j.skipped, j.crashed], [2, 1, 1, false]);
});

test('a non-zero exit without a FAIL line, a timeout, or no check line at all count one failure', () => {
  assert.equal(judgeChecks({ output: 'ok   a\n', code: 2, signal: null }).failed, 1);
  assert.equal(judgeChecks({ output: 'ok   a\n', code: null, signal: 'SIGKILL', timedOut: true }).crashed, true);
  const none = judgeChecks({ output: 'no helper at /x\n', code: 0, signal: null });
  assert.equal([none.passed, none.failed, none.crashed], [0, 1, true]);
});

test.run();
