// The repository the unit tests run against, the built helper, and
// `hutch-helper check` (plan on fd 3, helper-c/PLAN.md "Invocation").

import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** $HUTCH_REPO (set by test/run.mjs), else the checkout around the cwd. */
export function repoRoot(): string {
  const env = process.env.HUTCH_REPO;
  if (env && existsSync(join(env, 'package.json'))) return env;
  for (let d = process.cwd(); ; d = dirname(d)) {
    if (existsSync(join(d, 'sandbox-profiles')) && existsSync(join(d, 'package.json'))) return d;
    if (d === '/') throw new Error('run the tests from the repository (or set HUTCH_REPO)');
  }
}

/** build/hutch-helper (test/run.mjs runs `node build.mjs` first). */
export function helperBinary(): string {
  const p = join(repoRoot(), 'build', 'hutch-helper');
  if (!existsSync(p)) throw new Error(`${p} is missing: run \`node build.mjs\` (npm test does)`);
  return p;
}

export interface CheckResult {
  code: number | null;
  stderr: string;
}

/** Feeds `text` to `hutch-helper check` through a pipe on fd 3, as launch() does. */
export function helperCheck(text: string | Buffer): Promise<CheckResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(helperBinary(), ['check'], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
    const fd3 = child.stdio[3] as NodeJS.WritableStream;
    // The helper may exit (refusing the plan) before reading everything.
    fd3.on('error', () => {});
    fd3.end(text);
  });
}

/** The same with the plan in a regular file on fd 3 (allowed for check), synchronously. */
export function helperCheckSync(text: string | Buffer): CheckResult {
  const dir = mkdtempSync(join(tmpdir(), 'hutch-plan-'));
  const file = join(dir, 'plan');
  writeFileSync(file, text);
  const fd = openSync(file, 'r');
  try {
    const r = spawnSync(helperBinary(), ['check'], { stdio: ['ignore', 'ignore', 'pipe', fd], encoding: 'utf8' });
    return { code: r.status, stderr: r.stderr };
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}
