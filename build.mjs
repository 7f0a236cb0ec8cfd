#!/usr/bin/env node
// Build hutch: the built-in profiles (pre-parsed, so start-up needs no YAML
// parser), the static C helper, and the CLI bundle.
//
//   dist/hutch.cjs      the CLI (CommonJS bundle, run by node)
//   dist/hutch-helper   the C helper (static)
//
// Usage: node build.mjs [--no-helper]

import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, 'dist');
const args = new Set(process.argv.slice(2));
mkdirSync(dist, { recursive: true });

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
      env: { ...process.env, OUT: join(root, 'build') },
    });
    copyFileSync(join(root, 'build/hutch-helper'), join(dist, 'hutch-helper'));
    chmodSync(join(dist, 'hutch-helper'), 0o755);
  });
}

await step('CLI bundle', () =>
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
    banner: { js: '#!/usr/bin/env node' },
    logLevel: 'warning',
  }),
);
chmodSync(join(dist, 'hutch.cjs'), 0o755);
