#!/usr/bin/env node
// hutch's test runner: what `npm test` runs.
//
//   npm test                                  build, then every tier that applies
//   npm test -- test/unit/profile.test.ts     only files whose path contains this
//   npm test -- --tier unit                   one tier (repeatable, or unit,user)
//   npm test -- --jobs 2 --timeout 300        parallel files, per-file timeout (s)
//
// Steps: `node build.mjs` (skipped with HUTCH_SKIP_BUILD=1 or --no-build);
// the Debian fixtures (test/fixtures/debian.sh: made here when root, else
// their tests are skipped with the reason and the command that makes them);
// compile every selected test/**/*.test.ts with esbuild into build/test/;
// run each compiled file as its own `node` process, streaming its output
// prefixed by tier and file; read uvu's summary of each; print exactly one
// closing line `N passed, N failed[, N skipped]`. Exit 1 when anything
// failed, a process crashed or printed no summary, or no test ran at all.
//
// Tiers:
//   unit  test/unit/**         as the invoking user
//   root  test/integration/**  as root (only when invoked as root)
//   user  test/integration/**  unprivileged: as `hutch-test` when invoked as
//                              root (created and prepared here), else as the
//                              invoking user
//   vm    test/vm/**           cgroup-v2 guest kernel: see runVmTier()
//   helper helper-c/           the C helper alone: format, ASan+UBSan build,
//                              test-helper.sh, fuzzer (test/lib/helpertier.mjs)
//
// Environment given to every test process:
//   HUTCH            command prefix of the CLI: `<repo>/dist/hutch`, the single
//                    executable install.sh installs (a JSON array when a path
//                    holds whitespace); set HUTCH (or --hutch CMD) to test
//                    another build
//   HUTCH_BUNDLE     `<node> <repo>/dist/hutch.cjs`, for the bundle's smoke test
//   HUTCH_FIXTURES   the Debian fixtures' directory; HUTCH_FIXTURES_MISSING says
//                    why they cannot be used (their tests skip with that reason)
//   PATH             integration tiers: links to every command of the usual
//                    PATH but node, npm, npx (nodelessPath)
//   HUTCH_TEST_TIER  root | user  (who the test runs as; unit tier: same rule)
//   HUTCH_REPO       a readable copy of the repo's assets (dist/, build/,
//                    sandbox-profiles/, test/); the checkout itself except
//                    for the hutch-test tier
//   XDG_RUNTIME_DIR, XDG_DATA_HOME, XDG_CACHE_HOME, XDG_CONFIG_HOME,
//   XDG_STATE_HOME, TMPDIR: fresh per-tier directories owned by the tier's
//                    user, removed at the end (--keep-tmp keeps them), so a
//                    test run never touches the user's real hutch state.
//
// Runner settings from the environment: HUTCH_SKIP_BUILD=1, HUTCH_TEST_JOBS,
// HUTCH_TEST_TIMEOUT, HUTCH_TEST_BUDGET (see --help), HUTCH_TEST_TMPDIR
// (where the per-run directory goes; default /tmp as root, else $TMPDIR).

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { judgeRun, addCounts, closingLine, exitCodeFor, lineSplitter } from './lib/summary.mjs';
import { TEST_USER, asUserPrefix, cleanUserEnv, ensureTestUser, hasCommand, nodeForUser, packageNames, readableCopy } from './lib/testuser.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TEST_DIR = path.join(ROOT, 'test');
// One directory per run: concurrent runs (several engineers, or a bench) must
// not delete each other's compiled tests.
const OUT_DIR = path.join(ROOT, 'build', 'test', `run-${process.pid}`);
const ALL_TIERS = ['unit', 'root', 'user', 'vm', 'helper'];
const IS_ROOT = process.getuid() === 0;
const ME = os.userInfo().username;

// ---------------------------------------------------------------- options

function usage(code) {
  const text = `usage: node test/run.mjs [options] [path-substring...]
  --tier T         run only tier T (unit, root, user, vm, helper); repeatable or comma-separated
  --jobs N         test files run in parallel per tier (default 1; env HUTCH_TEST_JOBS)
  --timeout S      kill a test file after S seconds (default 300; env HUTCH_TEST_TIMEOUT)
  --budget S       start no test file after S seconds in all (default 4200, CI has 5400;
                   env HUTCH_TEST_BUDGET): files left over count as failed
  --hutch CMD      CLI command prefix given to tests as HUTCH (default: dist/hutch)
  --no-build       do not run build.mjs first (same as HUTCH_SKIP_BUILD=1)
  --keep-tmp       keep the per-run temporary directory
  --list           print the selected test files per tier and exit
  -h, --help       this text`;
  (code ? process.stderr : process.stdout).write(text + '\n');
  process.exit(code);
}

function parseArgs(argv) {
  const o = {
    tiers: [],
    filters: [],
    jobs: Number(process.env.HUTCH_TEST_JOBS || 1),
    timeoutS: Number(process.env.HUTCH_TEST_TIMEOUT || 300),
    budgetS: Number(process.env.HUTCH_TEST_BUDGET || 4200),
    hutch: process.env.HUTCH || '',
    build: process.env.HUTCH_SKIP_BUILD !== '1',
    keepTmp: false,
    list: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const eq = a.indexOf('=');
      if (a.startsWith('--') && eq !== -1) return a.slice(eq + 1);
      if (i + 1 >= argv.length) {
        process.stderr.write(`run.mjs: ${a} needs a value\n`);
        usage(2);
      }
      return argv[++i];
    };
    const name = a.startsWith('--') ? a.split('=')[0] : a;
    switch (name) {
      case '--tier':
        for (const t of value().split(',').filter(Boolean)) {
          if (!ALL_TIERS.includes(t)) {
            process.stderr.write(`run.mjs: unknown tier '${t}' (${ALL_TIERS.join(', ')})\n`);
            usage(2);
          }
          o.tiers.push(t);
        }
        break;
      case '--jobs':
        o.jobs = Number(value());
        break;
      case '--timeout':
        o.timeoutS = Number(value());
        break;
      case '--budget':
        o.budgetS = Number(value());
        break;
      case '--hutch':
        o.hutch = value();
        break;
      case '--no-build':
        o.build = false;
        break;
      case '--keep-tmp':
        o.keepTmp = true;
        break;
      case '--list':
        o.list = true;
        break;
      case '-h':
      case '--help':
        usage(0);
        break;
      default:
        if (a.startsWith('-')) {
          process.stderr.write(`run.mjs: unknown option ${a}\n`);
          usage(2);
        }
        o.filters.push(normalizeFilter(a));
    }
  }
  if (!Number.isInteger(o.jobs) || o.jobs < 1) o.jobs = 1;
  if (!(o.timeoutS > 0)) o.timeoutS = 300;
  if (!(o.budgetS > 0)) o.budgetS = 4200;
  if (o.tiers.length === 0) o.tiers = [...ALL_TIERS];
  return o;
}

/** A filter naming an existing path (absolute, ./relative) becomes repo-relative. */
function normalizeFilter(f) {
  const abs = path.resolve(f);
  if (fs.existsSync(abs) && (abs === ROOT || abs.startsWith(ROOT + path.sep))) {
    return path.relative(ROOT, abs) || '';
  }
  return f.replace(/^\.\//, '');
}

// ---------------------------------------------------------------- output

const anyColor = process.stdout.isTTY && process.env.NO_COLOR === undefined;
const paint = (code, s) => (anyColor ? `\x1b[${code}m${s}\x1b[0m` : s);
const say = (line = '') => process.stdout.write(line + '\n');
const note = (line) => say(paint('2', '# ') + line);

// ---------------------------------------------------------------- processes

const STARTED = Date.now();
const live = new Set(); // ChildProcess, killed (as a group) on exit
const rows = []; // one per test file run: { tier, rel, passed, failed, skipped, crashed, reason, output }

function killGroup(child, signal = 'SIGKILL') {
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {}
  }
}

/**
 * Runs argv with output streamed line by line as `<prefix> line`; resolves
 * to { code, signal, output, timedOut, error, ms }.
 */
function runStreaming(argv, { prefix, env, cwd, timeoutMs }) {
  return new Promise((resolve) => {
    const started = Date.now();
    let output = '';
    let timedOut = false;
    let child;
    try {
      child = spawn(argv[0], argv.slice(1), { env, cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    } catch (error) {
      resolve({ code: null, signal: null, output, timedOut, error, ms: 0 });
      return;
    }
    live.add(child);
    const print = (line) => say(`${prefix} ${line}`);
    const outLines = lineSplitter(print);
    const errLines = lineSplitter(print);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      output += d;
      outLines.push(d);
    });
    child.stderr.on('data', (d) => {
      output += d;
      errLines.push(d);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      print(paint('31', `timed out after ${timeoutMs / 1000} s: killing the process group`));
      killGroup(child);
    }, timeoutMs);
    let spawnError = null;
    child.on('error', (e) => {
      spawnError = e;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      outLines.flush();
      errLines.flush();
      // Anything the test left behind in its process group goes too.
      if (!spawnError) killGroup(child);
      resolve({ code, signal, output, timedOut, error: spawnError, ms: Date.now() - started });
    });
  });
}

async function pool(items, jobs, fn) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, items.length) }, worker));
  return results;
}

// ---------------------------------------------------------------- discovery & compile

function walk(dir, out = []) {
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.isFile() && e.name.endsWith('.test.ts')) out.push(path.relative(ROOT, p));
  }
  return out.sort();
}

function tierOfFile(rel) {
  const sub = path.relative('test', rel).split(path.sep)[0];
  return { unit: 'unit', integration: 'integration', vm: 'vm' }[sub] ?? null;
}

function compiledPath(rel) {
  return path.join(OUT_DIR, path.relative('test', rel).replace(/\.ts$/, '.mjs'));
}

const BANNER = "import { createRequire as __hutchTestCreateRequire } from 'node:module';\n" + 'const require = __hutchTestCreateRequire(import.meta.url);';

/** Compiles each file on its own (one broken file fails alone). */
async function compileAll(files) {
  const esbuild = await import('esbuild');
  const externals = new Set();
  const results = await Promise.all(
    files.map(async (rel) => {
      try {
        const r = await esbuild.build({
          entryPoints: [path.join(ROOT, rel)],
          outfile: compiledPath(rel),
          bundle: true,
          platform: 'node',
          format: 'esm',
          target: 'node20',
          packages: 'external',
          sourcemap: 'inline',
          banner: { js: BANNER },
          metafile: true,
          logLevel: 'silent',
          absWorkingDir: ROOT,
        });
        for (const out of Object.values(r.metafile.outputs)) {
          for (const imp of out.imports) if (imp.external) externals.add(imp.path);
        }
        const needsFixtures = Object.keys(r.metafile.inputs).some((i) => i.replace(/\\/g, '/').endsWith('test/fixtures/debian.ts'));
        return { rel, ok: true, needsFixtures };
      } catch (e) {
        const msgs = e.errors?.length ? (await esbuild.formatMessages(e.errors, { kind: 'error', color: false })).join('') : String(e?.stack || e);
        return { rel, ok: false, message: msgs };
      }
    }),
  );
  return { results, packages: packageNames([...externals]) };
}

// ---------------------------------------------------------------- tiers

function splitCmd(s) {
  const t = s.trim();
  if (t.startsWith('[')) return JSON.parse(t);
  return t.split(/\s+/).filter(Boolean);
}

function joinCmd(argv) {
  return argv.some((a) => /\s/.test(a)) ? JSON.stringify(argv) : argv.join(' ');
}

// Commands the integration tiers must not find: hutch is tested as users get
// it, the single executable, which must never need a node of the machine.
const NODE_COMMANDS = new Set(['node', 'nodejs', 'npm', 'npx', 'corepack']);

/**
 * A directory of links to every command on `pathVar` except node's: the
 * whole PATH of an integration tier (first match wins, as on PATH).
 */
function nodelessPath(runDir, tier, pathVar) {
  const dir = path.join(runDir, `path-${tier}`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const seen = new Set(fs.readdirSync(dir));
  for (const d of pathVar.split(':')) {
    if (!d.startsWith('/')) continue;
    let names;
    try {
      names = fs.readdirSync(d);
    } catch {
      continue;
    }
    for (const n of names) {
      if (NODE_COMMANDS.has(n) || seen.has(n)) continue;
      const target = path.join(d, n);
      try {
        if (!fs.statSync(target).isFile()) continue;
        fs.accessSync(target, fs.constants.X_OK);
      } catch {
        continue;
      }
      seen.add(n);
      fs.symlinkSync(target, path.join(dir, n));
    }
  }
  return dir;
}

const FIXTURES = process.env.HUTCH_FIXTURES || '/var/cache/hutch-test-fixtures';
const FIXTURE_SCRIPT = 'test/fixtures/debian.sh';

/** Why the Debian fixtures are not usable, or null when they are (READY holds the recipe's VERSION). */
function fixturesMissing() {
  let want = '';
  try {
    want = /^VERSION=(\S+)/m.exec(fs.readFileSync(path.join(ROOT, FIXTURE_SCRIPT), 'utf8'))?.[1] ?? '';
  } catch {}
  let have = null;
  try {
    have = fs.readFileSync(path.join(FIXTURES, 'READY'), 'utf8').trim();
  } catch {}
  if (have === null) return `the Debian test fixtures are missing in ${FIXTURES}`;
  if (want && have !== want) return `the Debian test fixtures in ${FIXTURES} are version ${have}, ${FIXTURE_SCRIPT} makes version ${want}`;
  return null;
}

/** Fresh XDG dirs + TMPDIR for one tier, owned by `owner` (uid/gid) when given. */
function tierDirs(runDir, tier, owner) {
  const base = path.join(runDir, tier);
  fs.mkdirSync(base, { recursive: true, mode: 0o755 });
  const dirs = {};
  for (const [k, name] of [
    ['XDG_RUNTIME_DIR', 'runtime'],
    ['XDG_DATA_HOME', 'data'],
    ['XDG_CACHE_HOME', 'cache'],
    ['XDG_CONFIG_HOME', 'config'],
    ['XDG_STATE_HOME', 'state'],
    ['TMPDIR', 'tmp'],
  ]) {
    const d = path.join(base, name);
    fs.mkdirSync(d, { recursive: true, mode: 0o700 });
    if (owner) fs.chownSync(d, owner.uid, owner.gid);
    fs.chmodSync(d, 0o700);
    dirs[k] = d;
  }
  return dirs;
}

function colorEnv() {
  return anyColor && process.env.FORCE_COLOR === undefined ? { FORCE_COLOR: '1' } : {};
}

/**
 * Runs `files` (repo-relative .test.ts) in one tier. `ctx`:
 *   { label, env, cwd, prefix (argv before node), node, repo (where the
 *     compiled tests are) }
 */
async function runTier(files, ctx, opts) {
  const rows = await pool(files, opts.jobs, async (rel) => {
    const compiled = path.join(ctx.repo, path.relative(ROOT, compiledPath(rel)));
    const prefix = paint('36', `[${ctx.label} ${rel}]`);
    const left = opts.budgetS * 1000 - (Date.now() - STARTED);
    if (left <= 0) {
      const reason = `not run: the time budget of ${opts.budgetS} s is spent`;
      say(`${prefix} ${paint('31', 'FAIL')} ${reason}`);
      return { tier: ctx.label, rel, passed: 0, failed: 1, skipped: 0, crashed: true, reason, output: '' };
    }
    const run = await runStreaming([...ctx.prefix, ctx.node, '--enable-source-maps', compiled], {
      prefix,
      env: ctx.env,
      cwd: ctx.cwd,
      timeoutMs: Math.min(opts.timeoutS * 1000, left),
    });
    const j = judgeRun(run);
    const counts = `${j.passed} passed, ${j.failed} failed` + (j.skipped ? `, ${j.skipped} skipped` : '');
    const verdict = j.failed ? paint('31', 'FAIL') : paint('32', 'ok');
    say(`${prefix} ${verdict} ${counts} (${(run.ms / 1000).toFixed(1)} s)${j.reason ? ' - ' + j.reason : ''}`);
    return { tier: ctx.label, rel, ...j, output: run.output };
  });
  return rows;
}

/**
 * The cgroup-v2 guest tier. cgroups on the CI machine are hybrid (cpu,
 * memory, pids in v1), so real cgroup v2 limits can only be tested inside a
 * guest kernel booted with `cgroup_no_v1=all` (qemu): test/vm/runner.mjs
 * boots it, runs each compiled file in it as the unprivileged test user in a
 * delegated subtree, and returns one row per file like runTier() does.
 */
async function runVmTier(files, ctx, opts) {
  if (files.length === 0) return [];
  const { runVmTier: run } = await import('./vm/runner.mjs');
  const budgetLeftMs = opts.budgetS * 1000 - (Date.now() - STARTED);
  return run(files, { ...ctx, root: ROOT, compiled: compiledPath, say, paint, isRoot: IS_ROOT }, { timeoutS: opts.timeoutS, budgetLeftMs });
}

// ---------------------------------------------------------------- main

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const fail = (tier, rel, reason, output = '') => rows.push({ tier, rel, passed: 0, failed: 1, skipped: 0, crashed: true, reason, output });

  // Discover.
  const all = walk(TEST_DIR);
  const selected = all.filter((rel) => opts.filters.length === 0 || opts.filters.some((f) => rel.includes(f)));
  const byKind = { unit: [], integration: [], vm: [] };
  for (const rel of selected) {
    const kind = tierOfFile(rel);
    if (kind) byKind[kind].push(rel);
    else note(`${rel} is not under test/unit, test/integration or test/vm: not run`);
  }
  const want = (t) => opts.tiers.includes(t);
  const plan = {
    unit: want('unit') ? byKind.unit : [],
    root: want('root') && IS_ROOT ? byKind.integration : [],
    user: want('user') ? byKind.integration : [],
    vm: want('vm') ? byKind.vm : [],
  };
  // helper tier: selected, and no filter or one naming helper-c/
  const helperTier =
    want('helper') && (opts.filters.length === 0 || opts.filters.some((f) => f.startsWith('helper-c') || 'helper-c/test-helper.sh'.includes(f)));
  if (opts.list) {
    for (const [t, files] of Object.entries(plan)) for (const f of files) say(`${t}\t${f}`);
    if (helperTier) say('helper\thelper-c/test-helper.sh');
    return 0;
  }
  const toCompile = [...new Set([...plan.unit, ...plan.root, ...plan.user, ...plan.vm])];
  if (toCompile.length === 0 && !helperTier) {
    say(
      opts.filters.length
        ? `no test file matches ${opts.filters.map((f) => `'${f}'`).join(', ')} in the selected tiers`
        : 'no test files found in the selected tiers',
    );
    say(closingLine({ passed: 0, failed: 0, skipped: 0 }));
    return 1;
  }

  // Build.
  let buildOk = true;
  if (opts.build) {
    if (fs.existsSync(path.join(ROOT, 'build.mjs'))) {
      note('node build.mjs');
      const r = await runStreaming([process.execPath, 'build.mjs'], {
        prefix: paint('35', '[build]'),
        env: process.env,
        cwd: ROOT,
        timeoutMs: 15 * 60 * 1000,
      });
      if (r.code !== 0 || r.error || r.timedOut) {
        buildOk = false;
        fail('build', 'build.mjs', r.error ? String(r.error) : r.timedOut ? 'timed out' : `exited with ${r.code ?? r.signal}`);
        say(paint('31', '[build] FAILED: integration tiers will not run (a stale dist/ would mislead)'));
      }
      // The typecheck is part of every build-and-test: a type error fails the run.
      note('tsc --noEmit (npm run typecheck)');
      const tc = await runStreaming([process.execPath, path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '-p', '.'], {
        prefix: paint('35', '[typecheck]'),
        env: process.env,
        cwd: ROOT,
        timeoutMs: 10 * 60 * 1000,
      });
      if (tc.code !== 0 || tc.error || tc.timedOut) fail('build', 'typecheck', tc.error ? String(tc.error) : `tsc exited with ${tc.code ?? tc.signal}`);
      else rows.push({ tier: 'build', rel: 'typecheck', passed: 1, failed: 0, skipped: 0 });
      // Lint and format of the TypeScript/JavaScript sources (biome.json); the
      // C side's clang-format check is in the helper tier.
      note('biome ci (lint + format check of src/, test/, build scripts)');
      const lint = await runStreaming(
        [process.execPath, path.join(ROOT, 'node_modules', '@biomejs', 'biome', 'bin', 'biome'), 'ci', '--colors=off', '--max-diagnostics=50'],
        {
          prefix: paint('35', '[lint]'),
          env: process.env,
          cwd: ROOT,
          timeoutMs: 5 * 60 * 1000,
        },
      );
      if (lint.code !== 0 || lint.error || lint.timedOut)
        fail('build', 'lint', lint.error ? String(lint.error) : `biome ci exited with ${lint.code ?? lint.signal}`);
      else rows.push({ tier: 'build', rel: 'lint', passed: 1, failed: 0, skipped: 0 });
    } else {
      note('build.mjs not found: skipping the build');
    }
  } else {
    note('build skipped (HUTCH_SKIP_BUILD=1 / --no-build)');
  }
  if (!buildOk) {
    plan.root = [];
    plan.user = [];
    plan.vm = [];
  }

  // Compile.
  fs.rmSync(OUT_DIR, { recursive: true, force: true });
  const { results: compiled, packages } = await compileAll([...new Set([...plan.unit, ...plan.root, ...plan.user, ...plan.vm])]);
  const broken = new Set();
  for (const c of compiled) {
    if (c.ok) continue;
    broken.add(c.rel);
    say(paint('31', `[compile ${c.rel}] FAIL`));
    for (const line of c.message.trimEnd().split('\n')) say(`[compile ${c.rel}] ${line}`);
    fail('compile', c.rel, 'does not compile');
  }
  for (const t of Object.keys(plan)) plan[t] = plan[t].filter((f) => !broken.has(f));

  // Per-run scratch directory (world-traversable so hutch-test can reach its part).
  const tmpBase = process.env.HUTCH_TEST_TMPDIR || (IS_ROOT ? '/tmp' : os.tmpdir());
  const runDir = fs.mkdtempSync(path.join(tmpBase, 'hutch-run-'));
  fs.chmodSync(runDir, 0o755);
  const cleanup = () => {
    if (opts.keepTmp) {
      note(`kept ${runDir}`);
      return;
    }
    removeTree(runDir);
  };
  let interrupted = false;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      if (interrupted) return;
      interrupted = true;
      say(`\n# ${sig}: stopping ${live.size} test process(es)`);
      for (const c of live) killGroup(c);
      cleanup();
      const total = rows.reduce(addCounts, { passed: 0, failed: 0, skipped: 0 });
      say(closingLine({ ...total, failed: total.failed + 1 }));
      process.exit(130);
    });
  }

  // The Debian fixtures (debootstrap, umoci, skopeo) of the image and build
  // tests: root makes them when they are missing; anyone else is told how, and
  // the tests that need them are skipped with that reason (never failed blind).
  let fixtureReason = null;
  const fixtureFiles = new Set(compiled.filter((c) => c.ok && c.needsFixtures).map((c) => c.rel));
  const wantFixtures = [...plan.root, ...plan.user].some((f) => fixtureFiles.has(f));
  if (wantFixtures && fixturesMissing()) {
    if (IS_ROOT) {
      note(`${fixturesMissing()}: bash ${FIXTURE_SCRIPT} ${FIXTURES}`);
      const r = await runStreaming(['bash', path.join(ROOT, FIXTURE_SCRIPT), FIXTURES], {
        prefix: paint('35', '[fixtures]'),
        env: process.env,
        cwd: ROOT,
        timeoutMs: 20 * 60 * 1000,
      });
      if (r.code !== 0 || r.error || r.timedOut) {
        fixtureReason = `bash ${FIXTURE_SCRIPT} failed (${r.error ? String(r.error) : r.timedOut ? 'timed out' : `exit ${r.code ?? r.signal}`})`;
        fail('fixtures', FIXTURE_SCRIPT, fixtureReason);
      }
    } else {
      fixtureReason = `${fixturesMissing()}; prepare them as root once: sudo bash ${FIXTURE_SCRIPT}`;
      say(paint('33', `fixtures: ${fixtureReason}`));
      say(paint('33', `fixtures: the tests of ${[...fixtureFiles].join(', ')} are skipped`));
    }
  }

  const hutchArgv = (repo, node) => {
    if (opts.hutch) {
      // Rebase a given command onto the readable copy when it points into the checkout.
      return splitCmd(opts.hutch).map((a) => (a === process.execPath ? node : a === ROOT || a.startsWith(ROOT + '/') ? repo + a.slice(ROOT.length) : a));
    }
    return [path.join(repo, 'dist', 'hutch')];
  };
  const baseEnv = (_tier, repo, node, dirs, who) => ({
    ...dirs,
    HUTCH: joinCmd(hutchArgv(repo, node)),
    HUTCH_BUNDLE: joinCmd([node, path.join(repo, 'dist', 'hutch.cjs')]),
    HUTCH_FIXTURES: FIXTURES,
    ...(fixtureReason ? { HUTCH_FIXTURES_MISSING: fixtureReason } : {}),
    HUTCH_TEST_TIER: who,
    HUTCH_REPO: repo,
    ...colorEnv(),
  });
  const selfEnv = (tier) => {
    const dirs = tierDirs(runDir, tier, null);
    const env = { ...process.env, ...baseEnv(tier, ROOT, process.execPath, dirs, IS_ROOT ? 'root' : 'user') };
    if (tier !== 'unit') env.PATH = nodelessPath(runDir, tier, env.PATH || '/usr/bin:/bin');
    return env;
  };

  if (buildOk && (plan.root.length || plan.user.length) && !fs.existsSync(path.join(ROOT, 'dist', 'hutch')) && !opts.hutch) {
    note('warning: dist/hutch (the single executable) does not exist; integration tests will fail to start the CLI');
  }

  if (buildOk && byKind.integration.length === 0 && (want('root') || want('user'))) {
    note('no test/integration files selected: root and user tiers have nothing to run');
  }

  try {
    // unit
    if (plan.unit.length) {
      say(paint('1', `== unit: ${plan.unit.length} file(s) as ${ME} ==`));
      rows.push(...(await runTier(plan.unit, { label: 'unit', env: selfEnv('unit'), cwd: ROOT, prefix: [], node: process.execPath, repo: ROOT }, opts)));
    }

    // root
    if (want('root') && !IS_ROOT) {
      say(`root tier not run: not invoked as root (the unprivileged tier runs as the invoking user, ${ME})`);
    } else if (plan.root.length) {
      say(paint('1', `== root: ${plan.root.length} integration file(s) as root ==`));
      rows.push(...(await runTier(plan.root, { label: 'root', env: selfEnv('root'), cwd: ROOT, prefix: [], node: process.execPath, repo: ROOT }, opts)));
    }

    // user
    if (plan.user.length) {
      if (!IS_ROOT) {
        say(paint('1', `== user: ${plan.user.length} integration file(s) as ${ME} (invoking user) ==`));
        rows.push(...(await runTier(plan.user, { label: 'user', env: selfEnv('user'), cwd: ROOT, prefix: [], node: process.execPath, repo: ROOT }, opts)));
      } else {
        let ctx;
        try {
          ctx = prepareTestUser(runDir, packages, baseEnv);
        } catch (e) {
          say(paint('31', `[user] cannot prepare ${TEST_USER}: ${e.message}`));
          fail('user', `(setup of ${TEST_USER})`, e.message);
        }
        if (ctx) {
          say(paint('1', `== user: ${plan.user.length} integration file(s) as ${TEST_USER} (uid ${ctx.user.uid}) ==`));
          rows.push(...(await runTier(plan.user, ctx, opts)));
        }
      }
    }

    // vm
    rows.push(...(await runVmTier(plan.vm, { runDir, packages }, opts)));

    // helper (needs build/hutch-helper: not after a failed build, which is counted already)
    if (helperTier && buildOk) {
      const { runHelperTier } = await import('./lib/helpertier.mjs');
      const budgetLeftMs = opts.budgetS * 1000 - (Date.now() - STARTED);
      rows.push(...(await runHelperTier({ root: ROOT, isRoot: IS_ROOT, runStreaming, say, paint, budgetLeftMs, timeoutS: opts.timeoutS })));
    }
  } finally {
    cleanup();
    fs.rmSync(OUT_DIR, { recursive: true, force: true });
  }

  // Report.
  const total = rows.reduce(addCounts, { passed: 0, failed: 0, skipped: 0 });
  const bad = rows.filter((r) => r.failed > 0);
  if (bad.length) {
    say('');
    say(paint('31', 'failed:'));
    for (const r of bad) say(`  [${r.tier}] ${r.rel}: ${r.reason}`);
    if (opts.jobs > 1) {
      for (const r of bad.filter((x) => x.crashed && x.output)) {
        say(`\n---- output of [${r.tier}] ${r.rel} ----`);
        process.stdout.write(r.output.endsWith('\n') ? r.output : r.output + '\n');
      }
    }
  }
  if (total.passed + total.failed === 0) {
    say('no test ran: that is a failure');
  }
  say(closingLine(total));
  return exitCodeFor(total);
}

/** Sets up hutch-test and a readable copy of the checkout; returns a tier context. */
function prepareTestUser(runDir, packages, baseEnv) {
  const log = (m) => note(`${TEST_USER}: ${m}`);
  const user = ensureTestUser(log);
  const repo = path.join(runDir, 'repo');
  const copied = readableCopy(ROOT, repo, ['package.json', 'README.md', 'dist', 'build', 'sandbox-profiles', 'test', 'install.sh'], packages);
  log(`readable copy of the checkout in ${repo} (node_modules: ${copied.join(', ') || 'none'})`);
  const node = nodeForUser(user, path.join(runDir, 'bin'));
  const dirs = tierDirs(runDir, 'user', user);
  const env = cleanUserEnv(user, { ...baseEnv('user', repo, node, dirs, 'user') });
  env.PATH = nodelessPath(runDir, 'user', env.PATH);
  return { label: 'user', user, env, cwd: repo, prefix: asUserPrefix(user), node, repo };
}

/** rm -rf that also copes with files owned by the caller's subordinate ids. */
function removeTree(dir) {
  try {
    fs.rmSync(dir, { recursive: true, force: true });
    return;
  } catch {}
  if (!IS_ROOT && hasCommand('unshare')) {
    spawnSync('unshare', ['--map-auto', '--map-root-user', 'rm', '-rf', dir], { stdio: 'ignore' });
  }
  if (fs.existsSync(dir)) note(`could not remove all of ${dir}`);
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    say(String(e?.stack || e));
    say(closingLine({ passed: 0, failed: 1, skipped: 0 }));
    process.exitCode = 1;
  },
);
