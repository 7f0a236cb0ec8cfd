// build-check.mjs: what build.mjs refuses to put into the single executable.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as esbuild from 'esbuild';
import { spawnSync } from 'node:child_process';
import { cStringLiterals, neutraliseNodeOptions, seaProblems } from '../../build-check.mjs';

/** Bundles `source` the way build.mjs does; returns what seaProblems says. */
async function problemsOf(source: string): Promise<string[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sea-check-'));
  try {
    fs.writeFileSync(path.join(dir, 'main.ts'), source);
    fs.writeFileSync(path.join(dir, 'local.ts'), 'export const x = 1;\n');
    const outfile = path.join(dir, 'out.cjs');
    const r = await esbuild.build({
      entryPoints: [path.join(dir, 'main.ts')],
      outfile,
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      minifySyntax: true,
      metafile: true,
      logLevel: 'silent',
      external: ['not-bundled-pkg'],
    });
    return seaProblems({ metafile: r.metafile, code: fs.readFileSync(outfile, 'utf8'), file: 'out.cjs' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('a dynamic import of a builtin (the syncfs crash) is refused', async () => {
  const p = await problemsOf("export async function f() { const { spawn } = await import('node:child_process'); return spawn; }\n");
  assert.ok(
    p.some((m) => m.includes("import('node:child_process') stays a dynamic import")),
    p.join('\n'),
  );
});

test('a dynamic import of a bundled file is fine (esbuild makes it a require)', async () => {
  assert.equal(await problemsOf("export async function f() { return (await import('./local')).x; }\n"), []);
});

test('static imports and requires of builtins are fine', async () => {
  assert.equal(await problemsOf("import fs from 'node:fs'; import os from 'os'; export const a = [fs, os, require('node:path')];\n"), []);
});

test('a require of a package that is not bundled is refused', async () => {
  const p = await problemsOf("export const m = require('not-bundled-pkg');\n");
  assert.ok(
    p.some((m) => m.includes("require('not-bundled-pkg')")),
    p.join('\n'),
  );
});

test('a require of a computed name is refused', async () => {
  const p = await problemsOf('export function load(n: string) { return require(n); }\n');
  assert.ok(
    p.some((m) => m.includes('computed name')),
    p.join('\n'),
  );
});

test('the text scan finds import() the metafile does not list', () => {
  const p = seaProblems({ metafile: { outputs: {} }, code: 'var a=1;\nasync function g(u){return await import(u)}', file: 'x.cjs' });
  assert.equal(p.length, 1);
  assert.match(p[0], /^x\.cjs:2:\d+: dynamic import\(\)/);
  // identifiers that merely end in "import" are not imports
  assert.equal(seaProblems({ metafile: { outputs: {} }, code: 'init_import();x.import(1);', file: 'x.cjs' }), []);
});

test('cStringLiterals finds literals among literals, not the same bytes in data', () => {
  const buf = Buffer.from('abc\0NODE_OPTIONS\0xyz\0\x0c\0\0\0NODE_OPTIONS\0\0\0\x06', 'latin1');
  assert.equal(cStringLiterals(buf, 'NODE_OPTIONS', 0, buf.length), [4]);
});

test('a neutralised copy of this node ignores NODE_OPTIONS and --env-file after the script', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sea-node-'));
  try {
    const bin = fs.readFileSync(process.execPath);
    const changed = neutraliseNodeOptions(bin);
    assert.ok(changed.some((c) => c.startsWith('NODE_OPTIONS')) && changed.some((c) => c.startsWith('--env-file')), changed.join(', '));
    const node = path.join(dir, 'node');
    fs.writeFileSync(node, bin, { mode: 0o755 });
    const marker = path.join(dir, 'ran');
    fs.writeFileSync(path.join(dir, 'probe.js'), `require('fs').writeFileSync(${JSON.stringify(marker)}, '1');`);
    fs.writeFileSync(path.join(dir, 'args.js'), 'console.log(JSON.stringify(process.argv.slice(2)));');
    const args = ['--env-file', path.join(dir, 'missing.env'), '--env-file=x'];
    const env = { ...process.env, NODE_OPTIONS: `--require=${path.join(dir, 'probe.js')}` };
    // the unpatched node: exit 9 and the probe runs (what the patch is for)
    const before = spawnSync(process.execPath, [path.join(dir, 'args.js'), ...args], { env, encoding: 'utf8' });
    assert.is(before.status, 9, before.stderr);
    const r = spawnSync(node, [path.join(dir, 'args.js'), ...args], { env, encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout), args);
    assert.not.ok(fs.existsSync(marker), 'NODE_OPTIONS --require ran');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
