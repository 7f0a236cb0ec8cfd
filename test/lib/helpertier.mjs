// The helper tier of test/run.mjs: the C helper on its own (helper-c/).
//
//   format      clang-format --dry-run -Werror on helper-c/**/*.{c,h} (.clang-format)
//   asan build  helper-c/build.sh --sanitize -> build/helper-asan/hutch-helper
//   smoke       helper-c/test-helper.sh against build/hutch-helper, then
//               against the sanitizer build; as root it runs every check
//               again as the unprivileged test user (hutch-test)
//   fuzz        helper-c/fuzz/run.sh 20 (libFuzzer on the plan parser)
//   fuzz ts     test/fuzz/run.mjs --seconds 20 (the TypeScript readers of
//               untrusted input: tar, image layouts, profiles; one
//               `ok   fuzz NAME` / `FAIL fuzz NAME` line per target)
//
// test-helper.sh prints one line per check (`ok   NAME`, `FAIL NAME`,
// `skip NAME: why`); those lines are the counts that go into the closing
// `N passed, N failed` line. A step that cannot run here (no clang-format,
// no clang fuzzer runtime) prints why and counts as skipped.
//
// Sanitizer settings: every report is fatal (halt_on_error, and the build
// has -fno-sanitize-recover), with exit code 99, which no check expects;
// test-helper.sh also fails a check whose output holds a report.
// LeakSanitizer is on when it works: it needs ptrace of the process's own
// threads (StopTheWorld), which a seccomp policy or a ptrace restriction of
// the machine may refuse; a probe decides, and says so. It only ever runs
// at exit(): `check` and `--version`. The monitor, init and command end
// with _exit() (or exec), where no leak check happens, so leaks in those
// roles are not covered either way.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { stripAnsi } from './summary.mjs';
import { TEST_USER, ensureTestUser, which } from './testuser.mjs';

const SANITIZER_OPTIONS = {
  ASAN_OPTIONS: 'halt_on_error=1:abort_on_error=0:exitcode=99:detect_leaks=1',
  UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1:exitcode=99',
};

/** Counts test-helper.sh's check lines; `failedNames` for the summary. */
export function countCheckLines(output) {
  const counts = { passed: 0, failed: 0, skipped: 0, failedNames: [] };
  for (const raw of stripAnsi(output).split('\n')) {
    const line = raw.replace(/^\[[^\]]*\] /, ''); // a runner prefix, if any
    if (/^ok {3}/.test(line)) counts.passed++;
    else if (/^FAIL /.test(line)) {
      counts.failed++;
      counts.failedNames.push(line.slice(5).trim());
    } else if (/^skip /.test(line)) counts.skipped++;
  }
  return counts;
}

/** One step's row from its check lines, exit status and timeout. */
export function judgeChecks(run) {
  const c = countCheckLines(run.output ?? '');
  let { passed, failed } = c;
  const { skipped } = c;
  let crashed = false;
  let reason = c.failedNames.length ? c.failedNames.join('; ') : '';
  if (run.error) {
    crashed = true;
    reason = String(run.error);
  } else if (run.timedOut) {
    crashed = true;
    reason = 'timed out and was killed';
  } else if (run.code !== 0 && failed === 0) {
    crashed = true;
    reason = `exited with ${run.code ?? run.signal} although no check failed`;
  } else if (run.code === 0 && passed + failed + skipped === 0) {
    crashed = true;
    reason = 'printed no check line';
  }
  if (crashed) failed++;
  return { passed, failed, skipped, crashed, reason };
}

function row(rel, fields) {
  return { tier: 'helper', rel, passed: 0, failed: 0, skipped: 0, crashed: false, reason: '', output: '', ...fields };
}

function filesUnder(dir, exts, out = []) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) filesUnder(p, exts, out);
    else if (exts.some((x) => e.name.endsWith(x))) out.push(p);
  }
  return out.sort();
}

/** LeakSanitizer works here (the probe exits 0 and prints no LSan error)? */
function leakSanitizerWorks(helper, root) {
  const r = spawnSync(helper, ['--version'], {
    env: { ...process.env, ...SANITIZER_OPTIONS },
    encoding: 'utf8',
    cwd: root,
  });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.status === 0 && !/LeakSanitizer/.test(out)) return { ok: true };
  return {
    ok: false,
    why:
      out
        .trim()
        .split('\n')
        .find((l) => /Sanitizer|ptrace/.test(l)) || `exit ${r.status}`,
  };
}

/**
 * Runs the tier; returns rows like runTier(). ctx: { root, isRoot,
 * runStreaming, say, paint, budgetLeftMs, timeoutS }.
 */
export async function runHelperTier(ctx) {
  const { root, say, paint } = ctx;
  const rows = [];
  const deadline = Date.now() + ctx.budgetLeftMs;
  const timeoutMs = () => Math.max(1000, Math.min(ctx.timeoutS * 1000, deadline - Date.now()));
  const spent = () => Date.now() >= deadline;
  const prefixOf = (name) => paint('36', `[helper ${name}]`);
  const verdict = (r, ms) => {
    const counts = `${r.passed} passed, ${r.failed} failed` + (r.skipped ? `, ${r.skipped} skipped` : '');
    const v = r.failed ? paint('31', 'FAIL') : paint('32', 'ok');
    say(`${prefixOf(r.rel)} ${v} ${counts}${ms === undefined ? '' : ` (${(ms / 1000).toFixed(1)} s)`}${r.reason ? ' - ' + r.reason : ''}`);
  };
  const skip = (rel, why, n = 1) => {
    const r = row(rel, { skipped: n, reason: why });
    say(`${prefixOf(rel)} skip: ${why}`);
    rows.push(r);
    return r;
  };
  const budgetFail = (rel) => {
    const r = row(rel, { failed: 1, crashed: true, reason: 'not run: the time budget is spent' });
    verdict(r);
    rows.push(r);
  };
  /** A step that is one check: passes when the command exits 0. */
  const single = async (rel, argv, env = process.env) => {
    if (spent()) return budgetFail(rel);
    const run = await ctx.runStreaming(argv, { prefix: prefixOf(rel), env, cwd: root, timeoutMs: timeoutMs() });
    const ok = run.code === 0 && !run.error && !run.timedOut;
    const reason = ok ? '' : run.error ? String(run.error) : run.timedOut ? 'timed out' : `exited with ${run.code ?? run.signal}`;
    const r = row(rel, { passed: ok ? 1 : 0, failed: ok ? 0 : 1, crashed: !ok, reason, output: run.output });
    verdict(r, run.ms);
    rows.push(r);
    return r;
  };

  say(paint('1', `== helper: the C helper (format, sanitizer build, test-helper.sh, fuzzer) ==`));

  // format
  const sources = filesUnder(path.join(root, 'helper-c'), ['.c', '.h']).map((p) => path.relative(root, p));
  if (!which('clang-format')) skip('clang-format', 'clang-format is not installed (Debian: clang-format)');
  else await single('clang-format', ['clang-format', '--dry-run', '-Werror', ...sources]);

  // sanitizer build
  const asanHelper = path.join(root, 'build', 'helper-asan', 'hutch-helper');
  fs.rmSync(asanHelper, { force: true });
  const built = await single('build.sh --sanitize', ['sh', path.join(root, 'helper-c', 'build.sh'), '--sanitize'], {
    ...process.env,
    OUT: path.join(root, 'build'),
  });

  // test-helper.sh, normal and sanitizer build
  let userEnv = {};
  if (ctx.isRoot) {
    try {
      ensureTestUser((m) => say(`${prefixOf('test-helper.sh')} ${TEST_USER}: ${m}`));
      userEnv = { HUTCH_TEST_USER: TEST_USER };
    } catch (e) {
      // test-helper.sh then prints `skip unprivileged run: no user ...`
      say(`${prefixOf('test-helper.sh')} cannot prepare ${TEST_USER}: ${e.message}`);
      userEnv = { HUTCH_TEST_USER: `${TEST_USER}-unavailable` };
    }
  }
  const smoke = async (label, helper, extraEnv) => {
    const rel = `test-helper.sh ${label}`;
    if (spent()) return budgetFail(rel);
    const run = await ctx.runStreaming(['bash', path.join(root, 'helper-c', 'test-helper.sh')], {
      prefix: prefixOf(rel),
      env: { ...process.env, ...userEnv, ...extraEnv, HELPER: helper },
      cwd: root,
      timeoutMs: timeoutMs(),
    });
    const r = row(rel, { ...judgeChecks(run), output: run.output });
    verdict(r, run.ms);
    rows.push(r);
  };
  await smoke('(build/hutch-helper)', path.join(root, 'build', 'hutch-helper'), {});
  if (built.passed && fs.existsSync(asanHelper)) {
    const env = { ...SANITIZER_OPTIONS };
    const lsan = leakSanitizerWorks(asanHelper, root);
    if (!lsan.ok) {
      env.ASAN_OPTIONS = env.ASAN_OPTIONS.replace('detect_leaks=1', 'detect_leaks=0');
      say(`${prefixOf('test-helper.sh')} LeakSanitizer does not work here (${lsan.why}): detect_leaks=0`);
    }
    await smoke('(ASan+UBSan build)', asanHelper, env);
  } else {
    skip('test-helper.sh (ASan+UBSan build)', 'the sanitizer build failed (see above)');
  }

  // fuzzer
  const probe = which('clang')
    ? spawnSync('clang', ['-fsanitize=fuzzer,address', '-x', 'c', '-', '-o', '/dev/null'], {
        input: 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return 0; }\n',
        encoding: 'utf8',
      })
    : null;
  if (!probe) skip('fuzz/run.sh 20', 'clang is not installed (Debian: clang, libclang-rt-14-dev)');
  else if (probe.status !== 0)
    skip('fuzz/run.sh 20', `clang cannot link -fsanitize=fuzzer,address (Debian: libclang-rt-14-dev): ${(probe.stderr || '').trim().split('\n')[0]}`);
  else await single('fuzz/run.sh 20', ['sh', path.join(root, 'helper-c', 'fuzz', 'run.sh'), '20'], { ...process.env, OUT: path.join(root, 'build') });

  // the TypeScript readers (test/fuzz/run.mjs): one check line per target
  if (spent()) budgetFail('fuzz ts');
  else {
    const rel = 'test/fuzz/run.mjs --seconds 20';
    const run = await ctx.runStreaming([process.execPath, path.join(root, 'test', 'fuzz', 'run.mjs'), '--seconds', '20'], {
      prefix: prefixOf(rel),
      env: process.env,
      cwd: root,
      timeoutMs: timeoutMs(),
    });
    const r = row(rel, { ...judgeChecks(run), output: run.output });
    verdict(r, run.ms);
    rows.push(r);
  }

  return rows;
}
