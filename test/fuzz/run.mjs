#!/usr/bin/env node
// Coverage-guided fuzzing of hutch's readers of untrusted input (the
// targets in test/fuzz/targets.ts: tar reader, image layout readers,
// profile loader).
//
//   node test/fuzz/run.mjs [--seconds N] [--target NAME] [--keep DIR] [--with-helper]
//   npm run fuzz           (= --with-helper: then the C plan parser too, helper-c/fuzz/run.sh N)
//
// Why not jazzer.js: @jazzer.js/core 4.0.0 (the only release whose native
// fuzzer installs from the npm registry without a download from GitHub)
// ships a prebuilt addon that needs glibc 2.38 / GLIBCXX_3.4.32; Debian 12
// has 2.36, so it fails to load (ERR_DLOPEN_FAILED), and 2.1.0 and older
// fetch their prebuilds from GitHub at install time. So this is a small
// libFuzzer-style loop of our own on V8's block coverage (the inspector's
// Profiler.takePreciseCoverage, in process, no dependency): an input that
// reaches a block (or a block count bucket) not seen before joins the
// corpus; inputs are mutated (bit flips, interesting bytes, insert/delete/
// duplicate ranges, splices with other corpus entries, dictionary tokens).
//
// Seeds: test/fuzz/<target>/corpus/* (read only; new inputs go to a scratch
// dir, or to --keep DIR). A failure (an exception that is not the error hutch
// means to give, or an input running over 5 s) is written to
// build/fuzz/<target>/crash-<sha1> and the run exits 1.
// Output: one line per target, `ok   fuzz NAME ...` or `FAIL fuzz NAME ...`
// (counted by the helper tier of npm test, test/lib/helpertier.mjs).

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import inspector from 'node:inspector';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const SECONDS = Number(opt('--seconds', process.env.HUTCH_FUZZ_SECONDS ?? '20'));
const ONLY = opt('--target', undefined);
const KEEP = opt('--keep', undefined);
const WITH_HELPER = args.includes('--with-helper');
const MAX_LEN = 16384;
const HANG_MS = 5000;

// ------------------------------------------------------------ the bundle

const OUT = path.join(ROOT, 'build', 'fuzz');
fs.mkdirSync(OUT, { recursive: true });
const bundle = path.join(OUT, `targets-${process.pid}.cjs`);
const esbuild = createRequire(import.meta.url)('esbuild');
esbuild.buildSync({
  entryPoints: [path.join(ROOT, 'test', 'fuzz', 'targets.ts')],
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  outfile: bundle,
  logLevel: 'error',
});
process.on('exit', () => fs.rmSync(bundle, { force: true }));

// Coverage must be on before the bundle is compiled: V8 instruments blocks at compile time.
const session = new inspector.Session();
session.connect();
const post = (method, params) => {
  let out;
  let err;
  session.post(method, params, (e, r) => {
    err = e;
    out = r;
  }); // an in-process session answers synchronously
  if (err) throw err;
  return out;
};
post('Profiler.enable');
post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
const { TARGETS, expected } = createRequire(import.meta.url)(bundle);
const bundleUrl = `file://${bundle}`;

const bucket = (n) => (n < 4 ? n : n < 8 ? 4 : n < 16 ? 5 : n < 32 ? 6 : n < 128 ? 7 : 8);

/** Features the last run reached: block ranges with a count bucket. */
function features() {
  const { result } = post('Profiler.takePreciseCoverage'); // also resets the counters
  const out = [];
  for (const s of result) {
    if (s.url !== bundleUrl) continue;
    for (const f of s.functions) for (const r of f.ranges) if (r.count > 0) out.push(`${r.startOffset}:${r.endOffset}:${bucket(r.count)}`);
  }
  return out;
}

// ------------------------------------------------------------ mutation

let seed = Number(process.env.HUTCH_FUZZ_SEED ?? Date.now()) >>> 0;
const rand = (n) => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
};
const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0x20, 0x2f, 0x2e, 0x30, 0x37, 0x0a, 0x22, 0x3a, 0x5c];
const DICTIONARY = {
  tar: ['ustar\0', '00', 'path=', 'linkpath=', 'size=', 'uid=', 'SCHILY.xattr.user.x=', '../', '/', '.wh.', '.wh..wh..opq', '77777777777'],
  layout: [
    'index.json',
    'manifest.json',
    'oci-layout',
    'blobs/sha256/',
    'blobs/sha512/',
    '"digest":',
    '"sha256:',
    '"sha512:',
    '"md5:',
    '"diff_ids":',
    '"layers":',
    '"manifests":',
    '"config":',
    '"Layers":',
    '"Config":',
    '"mediaType":"application/vnd.oci.image.index.v1+json"',
    '../',
    '/etc/passwd',
    '@',
    '\0',
    '[]',
    '{}',
    'null',
  ],
  profile: [
    'extends: ',
    'default',
    'untrusted',
    'mounts:',
    '  - ',
    '.:/work',
    'network:',
    'slirp',
    'capabilities:',
    '{add: [ALL]}',
    'limits:',
    'memory: ',
    '1g',
    'env:',
    '${HOME}',
    '${X:-y}',
    '$$',
    'replace:',
    'rootfs:',
    '{image: x}',
    'setup:',
    '- run: ',
    'hideHomes: all',
    '&a',
    '*a',
    '<<: *a',
    '!!binary',
    '---',
    '\n',
    ': ',
    '"',
    "'",
    '#',
  ],
};

function mutate(input, corpus, dict) {
  let b = Buffer.from(input);
  const rounds = 1 + rand(4);
  for (let k = 0; k < rounds; k++) {
    const at = b.length ? rand(b.length) : 0;
    switch (rand(9)) {
      case 0: // bit flip
        if (b.length) b[at] ^= 1 << rand(8);
        break;
      case 1: // interesting byte
        if (b.length) b[at] = INTERESTING[rand(INTERESTING.length)];
        break;
      case 2: // random byte
        if (b.length) b[at] = rand(256);
        break;
      case 3: {
        // delete a range
        const n = 1 + rand(Math.min(64, Math.max(1, b.length - at)));
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + n)]);
        break;
      }
      case 4: {
        // duplicate a range
        const n = 1 + rand(Math.min(512, Math.max(1, b.length - at)));
        b = Buffer.concat([b.subarray(0, at + n), b.subarray(at, at + n), b.subarray(at + n)]);
        break;
      }
      case 5:
      case 6: {
        // dictionary token
        const t = Buffer.from(dict[rand(dict.length)], 'latin1');
        b = rand(2)
          ? Buffer.concat([b.subarray(0, at), t, b.subarray(at)])
          : Buffer.concat([b.subarray(0, at), t, b.subarray(Math.min(b.length, at + t.length))]);
        break;
      }
      case 7: {
        // splice with another input
        const o = corpus[rand(corpus.length)];
        const from = o.length ? rand(o.length) : 0;
        b = Buffer.concat([b.subarray(0, at), o.subarray(from, from + 1 + rand(1024))]);
        break;
      }
      default: {
        // ASCII digits (sizes, modes, counts)
        const t = Buffer.from(String(rand(2) ? rand(1 << 30) : rand(100)), 'latin1');
        b = Buffer.concat([b.subarray(0, at), t, b.subarray(at + t.length)]);
      }
    }
  }
  return b.length > MAX_LEN ? b.subarray(0, MAX_LEN) : b;
}

// ------------------------------------------------------------ the loop

async function once(target, data) {
  let timer;
  const hang = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hang: no result after ${HANG_MS} ms`)), HANG_MS);
  });
  try {
    await Promise.race([target.run(data), hang]);
    return undefined;
  } catch (e) {
    return expected(e) ? undefined : e;
  } finally {
    clearTimeout(timer);
  }
}

function saveCrash(target, data, err) {
  const dir = path.join(OUT, target.name);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `crash-${createHash('sha1').update(data).digest('hex')}`);
  fs.writeFileSync(file, data);
  fs.writeFileSync(`${file}.txt`, `${err?.stack ?? err}\n`);
  return file;
}

async function fuzz(target) {
  const corpusDir = path.join(ROOT, 'test', 'fuzz', target.name, 'corpus');
  const seeds = fs.existsSync(corpusDir)
    ? fs
        .readdirSync(corpusDir)
        .sort()
        .map((f) => fs.readFileSync(path.join(corpusDir, f)))
    : [];
  if (!seeds.length) return { ok: false, line: `no seeds in ${path.relative(ROOT, corpusDir)}` };
  const seen = new Set();
  const corpus = [];
  const consider = (data, feats) => {
    let fresh = false;
    for (const f of feats) {
      if (seen.has(f)) continue;
      seen.add(f);
      fresh = true;
    }
    if (fresh) corpus.push(data);
    return fresh;
  };
  features(); // reset the counters
  for (const s of seeds) {
    const err = await once(target, s);
    if (err) return { ok: false, line: `seed crashes: ${saveCrash(target, s, err)}: ${String(err.message ?? err).split('\n')[0]}` };
    consider(s, features());
  }
  const seedFeatures = seen.size;
  const dict = DICTIONARY[target.name] ?? [];
  const end = Date.now() + SECONDS * 1000;
  let execs = 0;
  let added = 0;
  while (Date.now() < end) {
    const parent = corpus[rand(corpus.length)];
    const data = mutate(parent, corpus, dict);
    const err = await once(target, data);
    execs++;
    if (err) {
      const file = saveCrash(target, data, err);
      return { ok: false, line: `${execs} execs: ${String(err.message ?? err).split('\n')[0]} (input ${path.relative(ROOT, file)})` };
    }
    if (consider(data, features())) {
      added++;
      if (KEEP) {
        fs.mkdirSync(path.join(KEEP, target.name), { recursive: true });
        fs.writeFileSync(path.join(KEEP, target.name, createHash('sha1').update(data).digest('hex')), data);
      }
    }
  }
  return { ok: true, line: `${execs} execs in ${SECONDS} s, ${seeds.length} seeds, ${added} new inputs, coverage features ${seedFeatures} -> ${seen.size}` };
}

let failed = 0;
for (const t of TARGETS) {
  if (ONLY && t.name !== ONLY) continue;
  const r = await fuzz(t);
  if (!r.ok) failed++;
  console.log(`${r.ok ? 'ok  ' : 'FAIL'} fuzz ${t.name}: ${r.line}`);
}
session.disconnect();

if (WITH_HELPER && !ONLY) {
  // libFuzzer on the C helper's plan parser (needs clang's fuzzer runtime)
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync('sh', [path.join(ROOT, 'helper-c', 'fuzz', 'run.sh'), String(SECONDS)], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, OUT: path.join(ROOT, 'build') },
  });
  const ok = r.status === 0;
  if (!ok) failed++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} fuzz plan parser (helper-c/fuzz/run.sh ${SECONDS})${ok ? '' : `: exit ${r.status ?? r.signal}`}`);
}
process.exit(failed ? 1 : 0);
