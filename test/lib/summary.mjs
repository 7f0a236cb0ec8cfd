// Pure logic of the test runner (test/run.mjs): reading uvu's summary out of
// a test process's output, turning one process's outcome into counts, and the
// closing line. Plain JS so that run.mjs needs no build step; unit-tested by
// test/unit/runner.test.ts. Types: summary.d.mts.

// CSI / OSC escape sequences (colours from kleur when FORCE_COLOR is set).
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)/g;

export function stripAnsi(text) {
  return String(text).replace(ANSI, '');
}

function lastNumber(text, label) {
  const re = new RegExp(`^[ \\t]*${label}:[ \\t]+(\\d+)[ \\t]*$`, 'gm');
  let m;
  let value = null;
  while ((m = re.exec(text)) !== null) value = Number(m[1]);
  return value;
}

/**
 * uvu prints, once, when a test process finishes:
 *
 *     Total:     3
 *     Passed:    2
 *     Skipped:   1
 *     Duration:  1.23ms
 *
 * `Total` counts tests that were run (skipped ones are not in it), so
 * failed = Total - Passed. Returns null when there is no complete summary
 * (the process crashed, hung, or never called `test.run()`).
 */
export function parseSummary(output) {
  const text = stripAnsi(output);
  const total = lastNumber(text, 'Total');
  const passed = lastNumber(text, 'Passed');
  const skipped = lastNumber(text, 'Skipped');
  if (total === null || passed === null || skipped === null) return null;
  return { total, passed, skipped, failed: Math.max(0, total - passed) };
}

/**
 * Outcome of one test process. `run` is
 *   { output, code, signal, timedOut?, error? }
 * (`error`: the process could not be started or compiled). Returns
 *   { passed, failed, skipped, crashed, reason }
 * A process that crashed, was killed, timed out, or printed no summary
 * counts (at least) one failure; so does one that exited non-zero although
 * its summary showed no failed test.
 */
export function judgeRun(run) {
  const summary = run.error ? null : parseSummary(run.output ?? '');
  const passed = summary ? summary.passed : 0;
  let failed = summary ? summary.failed : 0;
  const skipped = summary ? summary.skipped : 0;
  let crashed = false;
  let reason = '';

  if (run.error) {
    crashed = true;
    reason = String(run.error);
  } else if (run.timedOut) {
    crashed = true;
    reason = 'timed out and was killed';
  } else if (!summary) {
    crashed = true;
    reason = run.signal ? `killed by ${run.signal}, no uvu summary` : `exited with code ${run.code}, no uvu summary`;
  } else if (run.signal) {
    crashed = true;
    reason = `killed by ${run.signal} after its summary`;
  } else if (run.code !== 0 && failed === 0) {
    crashed = true;
    reason = `exited with code ${run.code} although no test failed`;
  } else if (failed > 0) {
    reason = `${failed} test${failed === 1 ? '' : 's'} failed`;
  }
  if (crashed) failed += 1;
  return { passed, failed, skipped, crashed, reason };
}

export function addCounts(a, b) {
  return {
    passed: a.passed + b.passed,
    failed: a.failed + b.failed,
    skipped: a.skipped + b.skipped,
  };
}

/** `N passed, N failed`, plus `, N skipped` when N > 0. */
export function closingLine({ passed, failed, skipped }) {
  return `${passed} passed, ${failed} failed` + (skipped > 0 ? `, ${skipped} skipped` : '');
}

/** 1 when anything failed or crashed, or when no test ran at all. */
export function exitCodeFor({ passed, failed }) {
  if (failed > 0) return 1;
  if (passed === 0) return 1;
  return 0;
}

/** Splits a stream into complete lines; `flush()` returns the rest. */
export function lineSplitter(onLine) {
  let rest = '';
  return {
    push(chunk) {
      rest += chunk;
      let i;
      while ((i = rest.indexOf('\n')) !== -1) {
        onLine(rest.slice(0, i));
        rest = rest.slice(i + 1);
      }
    },
    flush() {
      if (rest.length) onLine(rest);
      rest = '';
    },
  };
}
