#!/usr/bin/env node
// hutch's benchmarks: what `npm run bench` runs.
//
//   npm run bench                         every group, 30 runs after 3 warm-up runs
//   npm run bench -- --runs 100 --group startup
//   npm run bench -- --json bench.json    also write the results as JSON
//   npm run bench -- --as-user            (root) also run them as hutch-test
//
// Runs `node build.mjs` first unless --no-build or HUTCH_SKIP_BUILD=1.
//
// Benchmarks come in named groups (GROUPS below). A group is
//   { name, description, run(ctx) -> Promise<GroupResult> }
// where GroupResult is
//   { columns: string[], rows: (string|number)[][], lines?: string[], data: any }
// `columns`/`rows` are printed as a table, `lines` under it, `data` goes to
// the JSON file. ctx gives the options, the CLI's argv, a scratch dir with
// XDG dirs and helpers (timeCommands, skipNote). Add a group (network
// throughput with iperf3, image start, ...) by appending to GROUPS.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  TEST_USER,
  asUserPrefix,
  cleanUserEnv,
  ensureTestUser,
  hasCommand,
  nodeForUser,
  readableCopy,
  userDir,
} from '../lib/testuser.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const IS_ROOT = process.getuid() === 0;

// ---------------------------------------------------------------- options

function usage(code) {
  (code ? process.stderr : process.stdout).write(`usage: node test/bench/run.mjs [options]
  --runs N      measured runs per command (default 30)
  --warmup N    warm-up runs per command, not measured (default 3)
  --group NAME  only this group (repeatable); groups: ${GROUPS.map((g) => g.name).join(', ')}
  --json FILE   write the results as JSON to FILE
  --as-user     when root: also run the benchmarks as ${TEST_USER}
  --no-build    do not run build.mjs first (same as HUTCH_SKIP_BUILD=1)
  --keep-env    keep NODE_OPTIONS / NODE_EXTRA_CA_CERTS (dropped by default: they slow node's start)
  --label TEXT  name of this run in the output (default: the user name)
  -h, --help    this text
`);
  process.exit(code);
}

function parseArgs(argv) {
  const o = {
    runs: 30,
    warmup: 3,
    groups: [],
    json: '',
    asUser: false,
    build: process.env.HUTCH_SKIP_BUILD !== '1',
    label: os.userInfo().username,
    keepEnv: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf('=');
    const name = a.startsWith('--') && eq !== -1 ? a.slice(0, eq) : a;
    const value = () => {
      if (a.startsWith('--') && eq !== -1) return a.slice(eq + 1);
      if (i + 1 >= argv.length) usage(2);
      return argv[++i];
    };
    switch (name) {
      case '--runs':
        o.runs = Number(value());
        break;
      case '--warmup':
        o.warmup = Number(value());
        break;
      case '--group':
        o.groups.push(...value().split(',').filter(Boolean));
        break;
      case '--json':
        o.json = path.resolve(value());
        break;
      case '--as-user':
        o.asUser = true;
        break;
      case '--no-build':
        o.build = false;
        break;
      case '--keep-env':
        o.keepEnv = true;
        break;
      case '--label':
        o.label = value();
        break;
      case '-h':
      case '--help':
        usage(0);
        break;
      default:
        process.stderr.write(`bench: unknown argument ${a}\n`);
        usage(2);
    }
  }
  if (!Number.isInteger(o.runs) || o.runs < 1) o.runs = 30;
  if (!Number.isInteger(o.warmup) || o.warmup < 0) o.warmup = 3;
  for (const g of o.groups) {
    if (!GROUPS.some((x) => x.name === g)) {
      process.stderr.write(`bench: unknown group ${g}\n`);
      usage(2);
    }
  }
  return o;
}

// ---------------------------------------------------------------- measuring

export function median(sorted) {
  const n = sorted.length;
  if (n === 0) return NaN;
  return n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

/** Nearest-rank percentile of ascending `sorted`. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function once(argv, env) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0], argv.slice(1), { env, stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 20 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const err = r.error ? String(r.error) : r.status !== 0 ? `exit ${r.status ?? r.signal}: ${String(r.stderr).trim().slice(0, 500)}` : '';
  return { ms, err };
}

/**
 * Wall time of each command, interleaved round by round (so drift hits all
 * alike): `warmup` rounds, then `runs` measured ones. A command that fails
 * once is dropped with its error. Returns, per command,
 *   { name, argv, ok, error?, samples, median, p90, min, mean }
 */
export function timeCommands(commands, { runs, warmup, env = process.env }) {
  const state = commands.map((c) => ({ ...c, ok: true, error: '', samples: [] }));
  for (let round = 0; round < warmup + runs; round++) {
    for (const s of state) {
      if (!s.ok) continue;
      const { ms, err } = once(s.argv, s.env ?? env);
      if (err) {
        s.ok = false;
        s.error = err;
        continue;
      }
      if (round >= warmup) s.samples.push(ms);
    }
  }
  return state.map((s) => {
    const sorted = [...s.samples].sort((a, b) => a - b);
    return {
      name: s.name,
      argv: s.argv,
      ok: s.ok,
      error: s.error || undefined,
      samples: s.samples.map((x) => Number(x.toFixed(3))),
      median: median(sorted),
      p90: percentile(sorted, 90),
      min: sorted[0] ?? NaN,
      mean: sorted.length ? sorted.reduce((a, b) => a + b, 0) / sorted.length : NaN,
    };
  });
}

const fmt = (x, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : '-');

// ---------------------------------------------------------------- groups

/** Startup cost of a trivial sandbox, against node itself and other sandboxers. */
async function startupGroup(ctx) {
  const notes = [];
  const cmds = [{ name: 'node -e 0', argv: [process.execPath, '-e', '0'] }];
  const cjs = path.join(ctx.repo, 'dist', 'hutch.cjs');
  const sea = path.join(ctx.repo, 'dist', 'hutch');
  const sandboxArgs = ['run', '--network', 'none', '--', '/bin/true'];
  if (fs.existsSync(cjs)) cmds.push({ name: 'node dist/hutch.cjs run --network none -- /bin/true', argv: [ctx.node, cjs, ...sandboxArgs], hutch: 'cjs' });
  else notes.push('skipped hutch.cjs: dist/hutch.cjs does not exist (npm run build)');
  if (fs.existsSync(sea)) cmds.push({ name: 'dist/hutch run --network none -- /bin/true', argv: [sea, ...sandboxArgs], hutch: 'sea' });
  else notes.push('skipped dist/hutch: no single executable built');
  if (hasCommand('unshare')) cmds.push({ name: 'unshare -Urmpf --mount-proc /bin/true', argv: ['unshare', '-Urmpf', '--mount-proc', '/bin/true'] });
  else notes.push('skipped unshare: not installed (util-linux)');
  if (hasCommand('bwrap'))
    cmds.push({
      name: 'bwrap --ro-bind / / --proc /proc --dev /dev --unshare-all /bin/true',
      argv: ['bwrap', '--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev', '--unshare-all', '/bin/true'],
      bwrap: true,
    });
  else notes.push('skipped bwrap: not installed (bubblewrap)');

  const results = timeCommands(cmds, { runs: ctx.runs, warmup: ctx.warmup, env: ctx.env });
  const nodeMs = results[0].ok ? results[0].median : NaN;
  const bwrapRes = results.find((r, i) => cmds[i].bwrap && r.ok);
  const bwrapMs = bwrapRes ? bwrapRes.median : NaN;
  const rows = results.map((r) =>
    r.ok
      ? [r.name, fmt(r.median, 2), fmt(r.p90, 2), fmt(r.median / nodeMs, 2) + 'x', fmt(r.median / bwrapMs, 2) + 'x']
      : [r.name, 'FAILED', '', '', ''],
  );
  for (const r of results) if (!r.ok) notes.push(`${r.name} failed: ${r.error}`);
  const derived = {};
  const lines = [];
  for (const [kind, label] of [
    ['cjs', 'hutch'],
    ['sea', 'hutch (dist/hutch)'],
  ]) {
    const i = cmds.findIndex((c) => c.hutch === kind);
    if (i === -1 || !results[i].ok || !Number.isFinite(nodeMs)) continue;
    const d = results[i].median - nodeMs;
    derived[`${kind}MinusNodeMs`] = Number(d.toFixed(3));
    lines.push(`${label} - node -e 0 = ${fmt(d, 1)} ms (aim < 15 ms)`);
  }
  return {
    columns: ['command', 'median ms', 'p90 ms', 'vs node -e 0', 'vs bwrap'],
    rows,
    lines: [...lines, ...notes],
    data: { results, ...derived },
  };
}

/**
 * The benchmark groups, in order. Later issues append here, e.g.
 *   { name: 'network', description: 'iperf3 throughput to host loopback', run: networkGroup }
 *   { name: 'image', description: 'first and warm start of an image', run: imageGroup }
 */
const GROUPS = [{ name: 'startup', description: 'wall time to start and finish /bin/true in a sandbox', run: startupGroup }];

// ---------------------------------------------------------------- output

function table(columns, rows) {
  const all = [columns, ...rows].map((r) => r.map(String));
  const widths = columns.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(all[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...all.slice(1).map(line)].join('\n');
}

// Variables that change node's own startup time (NODE_EXTRA_CA_CERTS alone
// adds about 50 ms here): dropped so that runs are comparable, unless --keep-env.
const STARTUP_VARS = ['NODE_OPTIONS', 'NODE_EXTRA_CA_CERTS'];

function scratchEnv(dir, keepEnv) {
  const env = { ...process.env };
  if (!keepEnv) {
    const dropped = STARTUP_VARS.filter((k) => env[k] !== undefined);
    for (const k of dropped) delete env[k];
    if (dropped.length) console.log(`# dropped ${dropped.join(', ')} from the benchmarks' environment (--keep-env keeps them)`);
  }
  for (const [k, sub] of [
    ['XDG_RUNTIME_DIR', 'runtime'],
    ['XDG_DATA_HOME', 'data'],
    ['XDG_CACHE_HOME', 'cache'],
    ['XDG_CONFIG_HOME', 'config'],
    ['XDG_STATE_HOME', 'state'],
  ]) {
    env[k] = path.join(dir, sub);
    fs.mkdirSync(env[k], { recursive: true, mode: 0o700 });
  }
  return env;
}

function runBuild() {
  if (!fs.existsSync(path.join(ROOT, 'build.mjs'))) {
    console.log('# build.mjs not found: skipping the build');
    return true;
  }
  console.log('# node build.mjs');
  const r = spawnSync(process.execPath, ['build.mjs'], { cwd: ROOT, stdio: 'inherit' });
  return r.status === 0;
}

/** Runs this script again as hutch-test on a readable copy; returns its JSON. */
async function runAsTestUser(opts, scratch) {
  const log = (m) => console.log(`# ${TEST_USER}: ${m}`);
  const user = ensureTestUser(log);
  const repo = path.join(scratch, 'repo');
  readableCopy(ROOT, repo, ['package.json', 'dist', 'build', 'sandbox-profiles', 'test/bench', 'test/lib'], []);
  const node = nodeForUser(user, path.join(scratch, 'bin'));
  const out = userDir(user, path.join(scratch, 'user-out'));
  const json = path.join(out, 'bench.json');
  const args = ['--no-build', '--runs', String(opts.runs), '--warmup', String(opts.warmup), '--json', json, '--label', TEST_USER];
  for (const g of opts.groups) args.push('--group', g);
  const env = cleanUserEnv(user, { TMPDIR: out });
  if (opts.keepEnv) {
    args.push('--keep-env');
    for (const k of STARTUP_VARS) if (process.env[k] !== undefined) env[k] = process.env[k];
  }
  const argv = [...asUserPrefix(user), node, path.join(repo, 'test', 'bench', 'run.mjs'), ...args];
  const code = await new Promise((resolve) => {
    const c = spawn(argv[0], argv.slice(1), { env, cwd: out, stdio: ['ignore', 'inherit', 'inherit'] });
    c.on('close', (code) => resolve(code));
    c.on('error', () => resolve(-1));
  });
  if (code !== 0 || !fs.existsSync(json)) {
    console.log(`# benchmarks as ${TEST_USER} failed (exit ${code})`);
    return null;
  }
  return JSON.parse(fs.readFileSync(json, 'utf8'));
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.build && !runBuild()) {
    console.error('bench: build failed');
    return 1;
  }
  const scratch = fs.mkdtempSync(path.join(IS_ROOT ? '/tmp' : os.tmpdir(), 'hutch-bench-'));
  fs.chmodSync(scratch, 0o755);
  try {
    const ctx = {
      runs: opts.runs,
      warmup: opts.warmup,
      repo: ROOT,
      node: process.execPath,
      env: scratchEnv(path.join(scratch, 'self'), opts.keepEnv),
      scratch,
    };
    const report = {
      label: opts.label,
      date: new Date().toISOString(),
      host: { kernel: os.release(), node: process.version, cpus: os.cpus().length, uid: process.getuid() },
      runs: opts.runs,
      warmup: opts.warmup,
      groups: {},
    };
    console.log(`# ${opts.label} (uid ${process.getuid()}), ${opts.runs} runs after ${opts.warmup} warm-up, kernel ${os.release()}, node ${process.version}`);
    const groups = GROUPS.filter((g) => opts.groups.length === 0 || opts.groups.includes(g.name));
    for (const g of groups) {
      console.log(`\n== ${g.name}: ${g.description} [${opts.label}]`);
      const res = await g.run(ctx);
      console.log(table(res.columns, res.rows));
      for (const l of res.lines ?? []) console.log(l);
      report.groups[g.name] = res.data;
    }
    if (opts.asUser) {
      if (!IS_ROOT) console.log(`\n# --as-user ignored: not root (${opts.label} is already unprivileged)`);
      else {
        console.log(`\n# again as ${TEST_USER}`);
        const sub = await runAsTestUser(opts, scratch);
        if (sub) report.asUser = sub;
      }
    }
    if (opts.json) {
      fs.writeFileSync(opts.json, JSON.stringify(report, null, 2) + '\n');
      console.log(`\n# wrote ${opts.json}`);
    }
    return 0;
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

main().then(
  (code) => (process.exitCode = code),
  (e) => {
    console.error(e?.stack || e);
    process.exitCode = 1;
  },
);
