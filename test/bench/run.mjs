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
import { namedNetworksGroup } from './networks.mjs';
import { TEST_USER, asUserPrefix, cleanUserEnv, ensureTestUser, hasCommand, nodeForUser, readableCopy, userDir } from '../lib/testuser.mjs';

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
  const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const deadline = Date.now() + 20_000;
  while (!/Server listening/.test(out) && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const ok = /Server listening/.test(out);
  const stop = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.on('close', () => resolve());
      child.kill('SIGTERM');
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
async function networkGroup(ctx) {
  const cjs = path.join(ctx.repo, 'dist', 'hutch.cjs');
  const hutch = [ctx.node, cjs];
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
  ];
  const timed = timeCommands(cmds, { runs: Math.min(ctx.runs, 20), warmup: ctx.warmup, env: ctx.env });
  const base = timed[0].ok ? timed[0].median : NaN;
  timed.forEach((r, i) => {
    const setup = cmds[i].driver && r.ok ? r.median - base : NaN;
    if (cmds[i].driver) data.setup[cmds[i].driver] = { medianMs: r.median, setupMs: Number(setup.toFixed(2)) };
    rows.push([r.name, r.ok ? fmt(r.median, 1) : 'FAILED', cmds[i].driver ? `setup ${fmt(setup, 1)} ms` : 'baseline']);
    if (!r.ok) lines.push(`${r.name} failed: ${r.error}`);
  });

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
  lines.push(`iperf3 ${seconds} s per direction (HUTCH_BENCH_IPERF_SECONDS); ratios are against plain loopback on the host`);
  return { columns: ['what', 'median ms / Gbit/s', 'vs'], rows, lines, data };
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
