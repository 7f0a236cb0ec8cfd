// The bench's `scale` group (issue 15 point 4): N detached sandboxes started
// at once (`hutch run -d`, N = HUTCH_BENCH_SCALE, default 100), with
// --network none and again with the default profile's user-mode NAT. Per
// variant: did all start, the time until every command ran (each writes a
// file into a bind-mounted directory), Pss per sandbox by role, the time
// to stop and remove them all, and what is left afterwards: processes of
// their trees, mounts, cgroups, records and state directories. The "all
// start, nothing left" part is also an integration test with a smaller N
// (test/integration/scale.test.ts).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** Runs argv; resolves with { code, stdout, stderr }. */
function run(argv, env, timeoutMs = 300_000) {
  return new Promise((resolve) => {
    const c = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('close', (code, signal) => {
      clearTimeout(t);
      resolve({ code: code ?? 128, signal, stdout, stderr });
    });
    c.on('error', (e) => resolve({ code: 127, stdout, stderr: String(e) }));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Not a zombie, and still the process we saw (same comm). */
function alive(pid, comm) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const c = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z' && (!comm || c === comm);
  } catch {
    return false;
  }
}

/** Mount points whose path contains one of `needles`. */
function mountsWith(needles) {
  const lines = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  return lines.map((l) => l.split(' ')[4]).filter((mp) => mp && needles.some((n) => mp.includes(n)));
}

function entries(dir) {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * One variant: `count` sandboxes of `flags`, started at once. `env` has XDG
 * dirs of this variant alone, so everything left under them is ours.
 */
/** NAT processes (by comm) whose command line names `initPid` (slirp4netns PID tap0). */
function natOf(initPid, natComms) {
  if (!initPid) return [];
  const out = [];
  for (const p of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      if (!natComms.has(fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim())) continue;
      if (fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').includes(String(initPid))) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

async function scaleOnce({ hutch, env, flags, count, prefix, outDir, treeOf, natComms }) {
  fs.mkdirSync(outDir, { recursive: true });
  const names = Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
  const script = 'touch "/out/$HUTCH_SCALE_NAME"; exec sleep 100000';
  const t0 = performance.now();
  const starts = names.map((n) =>
    run([...hutch, 'run', '-d', '--name', n, ...flags, '-e', `HUTCH_SCALE_NAME=${n}`, '-v', `${outDir}:/out`, '--', 'sh', '-c', script], env),
  );
  // Every command ran: its file exists (polled while the starts go on).
  let ranMs = NaN;
  const seen = () => entries(outDir).filter((f) => names.includes(f)).length;
  let results;
  const started = Promise.all(starts).then((r) => (results = r));
  let doneAt = 0;
  for (;;) {
    if (seen() === count) {
      ranMs = performance.now() - t0;
      break;
    }
    if (results && !doneAt) doneAt = performance.now();
    // a start that failed never writes its file: stop looking 5 s after the last start returned
    if (doneAt && (results.some((r) => r.code !== 0) ? performance.now() - doneAt > 5000 : performance.now() - t0 > 120_000)) break;
    await sleep(20);
  }
  await started;
  const returnedMs = performance.now() - t0;
  const failed = results.map((r, i) => ({ name: names[i], ...r })).filter((r) => r.code !== 0);
  // Memory: the processes of each sandbox, from the hutch that owns it.
  const ins = await run([...hutch, 'inspect', ...names.filter((n) => !failed.some((f) => f.name === n))], env);
  let records = [];
  try {
    records = JSON.parse(ins.stdout);
  } catch {
    /* none started */
  }
  const sum = { hutch: 0, helper: 0, nat: 0, other: 0 };
  const unreadable = new Set(); // comms whose Pss this user may not read (the helper is not dumpable)
  const procs = [];
  const cgroups = [];
  for (const rec of records) {
    if (rec.state?.cgroup) cgroups.push(rec.state.cgroup);
    // the process that keeps it: its monitor (no hutch stays for run -d), or a resident hutch
    const top = rec.record?.pid ?? rec.record?.hutchPid ?? rec.state?.pid;
    if (!top) continue;
    // a detached sandbox's NAT is nobody's child: it is found by the pid 1 it joined
    const nat = natOf(rec.record?.initPid ?? rec.state?.initPid, natComms).flatMap((p) => treeOf(p));
    [...treeOf(top), ...nat].forEach((p, i) => {
      procs.push(p);
      if (p.comm === 'sleep') return;
      if (p.unreadable) unreadable.add(p.comm);
      const role = p.comm === 'hutch-helper' ? 'helper' : natComms.has(p.comm) ? 'nat' : i === 0 ? 'hutch' : 'other';
      sum[role] += p.pssKiB;
    });
  }
  const perMiB = Object.fromEntries(Object.entries(sum).map(([k, v]) => [k, records.length ? v / 1024 / records.length : NaN]));
  perMiB.total = Object.values(sum).reduce((a, b) => a + b, 0) / 1024 / Math.max(1, records.length);
  // Stop and remove them all, then look for leftovers.
  const t1 = performance.now();
  const stop = await run([...hutch, 'stop', '-t', '10', ...names], env);
  const rm = await run([...hutch, 'rm', '-f', ...names], env);
  const stopMs = performance.now() - t1;
  const needles = [env.XDG_RUNTIME_DIR, env.XDG_STATE_HOME, env.XDG_DATA_HOME, outDir];
  const leftovers = () => ({
    processes: procs.filter((p) => alive(p.pid, p.comm)).map((p) => `${p.pid} ${p.comm}`),
    mounts: mountsWith(needles),
    cgroups: cgroups.filter((c) => fs.existsSync(c)),
    state: [
      ...entries(path.join(env.XDG_RUNTIME_DIR, 'hutch'))
        .filter((e) => e !== '.records' && e !== 'networks' && !e.startsWith('.'))
        .map((e) => `runtime/hutch/${e}`),
      ...entries(path.join(env.XDG_RUNTIME_DIR, 'hutch', '.records')).map((e) => `runtime/hutch/.records/${e}`),
      ...entries(path.join(env.XDG_STATE_HOME, 'hutch', 'records')).map((e) => `state/hutch/records/${e}`),
    ],
  });
  // The kernel tears down namespaces after the processes exit: give it a moment.
  let left = leftovers();
  for (let i = 0; i < 100 && Object.values(left).some((x) => x.length); i++) {
    await sleep(100);
    left = leftovers();
  }
  return {
    count,
    started: count - failed.length,
    failed: failed.slice(0, 5).map((f) => `${f.name}: exit ${f.code}: ${f.stderr.trim().slice(-300)}`),
    allRanMs: ranMs,
    allReturnedMs: returnedMs,
    perSandboxMiB: perMiB,
    pssUnreadable: [...unreadable],
    stopAndRemoveMs: stopMs,
    stopOk: stop.code === 0 && rm.code === 0,
    stopError: stop.code !== 0 ? stop.stderr.trim().slice(-300) : rm.code !== 0 ? rm.stderr.trim().slice(-300) : undefined,
    leftovers: left,
  };
}

/** A fresh set of XDG dirs under `dir` on top of `base`. */
function variantEnv(base, dir) {
  const env = { ...base };
  for (const [k, sub] of [
    ['XDG_RUNTIME_DIR', 'rt'],
    ['XDG_DATA_HOME', 'd'],
    ['XDG_CACHE_HOME', 'c'],
    ['XDG_STATE_HOME', 's'],
  ]) {
    env[k] = path.join(dir, sub);
    fs.mkdirSync(env[k], { recursive: true, mode: 0o700 });
  }
  env.XDG_CONFIG_HOME = base.XDG_CONFIG_HOME;
  return env;
}

export async function scaleGroup(ctx, { treeOf, natComms, fmt }) {
  const count = Number(process.env.HUTCH_BENCH_SCALE || 100);
  const sea = path.join(ctx.repo, 'dist', 'hutch');
  if (!fs.existsSync(sea)) return { columns: ['what'], rows: [], lines: ['skipped scale: no dist/hutch'], data: {} };
  const rows = [];
  const lines = [];
  const data = { count };
  for (const [label, flags] of [
    ['network none', ['--network', 'none']],
    ['default profile (user-mode NAT)', []],
  ]) {
    const dir = fs.mkdtempSync(path.join(ctx.scratch, 'scale-'));
    fs.chmodSync(dir, 0o755);
    const r = await scaleOnce({
      hutch: [sea],
      env: variantEnv(ctx.env, dir),
      flags,
      count,
      prefix: `scale${process.pid}`,
      outDir: path.join(dir, 'out'),
      treeOf,
      natComms,
    });
    data[label] = r;
    const nLeft = Object.values(r.leftovers).reduce((a, x) => a + x.length, 0);
    const m = r.perSandboxMiB;
    rows.push([
      label,
      `${r.started}/${r.count}`,
      fmt(r.allRanMs, 0),
      fmt(r.allRanMs / r.count, 1),
      fmt(m.total, 2),
      fmt(m.hutch, 2),
      fmt(m.helper, 2),
      fmt(m.nat, 2),
      fmt(r.stopAndRemoveMs, 0),
      nLeft ? `${nLeft} LEFT` : 'nothing',
    ]);
    for (const f of r.failed) lines.push(`${label}: failed: ${f}`);
    if (r.pssUnreadable.length)
      lines.push(`${label}: Pss not readable as uid ${process.getuid()} for ${r.pssUnreadable.join(', ')} (counted as 0; not dumpable)`);
    if (!r.stopOk) lines.push(`${label}: stop/rm failed: ${r.stopError}`);
    for (const [k, xs] of Object.entries(r.leftovers)) if (xs.length) lines.push(`${label}: left ${k}: ${xs.slice(0, 5).join(', ')}`);
  }
  lines.push(
    `${count} sandboxes (HUTCH_BENCH_SCALE) started at once with hutch run -d, each running sh -c 'touch /out/NAME; exec sleep'; "all ran": until the last file exists; Pss per sandbox of its processes but sleep (hutch = the process that owns it); left: its processes, mounts, cgroups, records and state dirs after stop + rm -f`,
  );
  return {
    columns: ['scale', 'started', 'all ran ms', 'ms/sandbox', 'MiB Pss', 'hutch', 'monitor+init', 'NAT', 'stop+rm ms', 'left after'],
    rows,
    lines,
    data,
  };
}
