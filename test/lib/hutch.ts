// Helpers for hutch's tests: find and run the CLI, wait for things, scratch
// directories, host process listings. Bundled into each compiled test by
// test/run.mjs; everything here also works when a compiled test is run by
// hand (`node build/test/integration/x.test.mjs`) from the checkout.
//
// The environment contract (set by test/run.mjs):
//   HUTCH            CLI command prefix: words split on whitespace, or a JSON
//                    array of strings (`["node", "/a b/dist/hutch.cjs"]`)
//   HUTCH_TEST_TIER  'root' | 'user': who this test process runs as
//   HUTCH_REPO       readable copy of the repo's assets (dist/, build/,
//                    sandbox-profiles/, test/); use repoPath() for fixtures,
//                    never paths relative to the test file or the cwd

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** true when the command was killed because it ran past `timeoutMs` */
  timedOut: boolean;
  ms: number;
}

export interface RunOptions {
  /** added to (and overriding) this process's environment */
  env?: Record<string, string | undefined>;
  /** replace the environment entirely instead of adding to it */
  cleanEnv?: boolean;
  cwd?: string;
  /** written to stdin, then stdin is closed; without it stdin is /dev/null */
  input?: string | Buffer;
  /** kill the whole process group with SIGKILL after this long (default 60 s) */
  timeoutMs?: number;
}

function findRepo(): string {
  if (process.env.HUTCH_REPO) return process.env.HUTCH_REPO;
  // Compiled tests live in <repo>/build/test/<tier>/x.test.mjs.
  let dir = path.dirname(new URL(import.meta.url).pathname);
  for (let i = 0; i < 6; i++) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'test'))) return dir;
    dir = path.dirname(dir);
  }
  return process.cwd();
}

/** Root of the readable repo copy (HUTCH_REPO). */
export function repoDir(): string {
  return findRepo();
}

/** A path inside the repo copy, e.g. repoPath('sandbox-profiles', 'node.yaml'). */
export function repoPath(...parts: string[]): string {
  return path.join(repoDir(), ...parts);
}

/** 'root' or 'user': the identity this test runs as. */
export function tier(): 'root' | 'user' {
  const t = process.env.HUTCH_TEST_TIER;
  if (t === 'root' || t === 'user') return t;
  return isRoot() ? 'root' : 'user';
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** Parses a command prefix: a JSON array of strings, or words split on whitespace. */
export function parseCommand(s: string): string[] {
  const t = s.trim();
  if (t.startsWith('[')) {
    const v: unknown = JSON.parse(t);
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new Error(`HUTCH: not an array of strings: ${s}`);
    return v as string[];
  }
  return t.split(/\s+/).filter(Boolean);
}

/** The argv prefix that runs the hutch CLI. */
export function hutchCmd(): string[] {
  if (process.env.HUTCH?.trim()) return parseCommand(process.env.HUTCH);
  return [process.execPath, repoPath('dist', 'hutch.cjs')];
}

const children = new Set<ChildProcess>();

/** Kills a child and everything in its process group. */
export function killTree(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* gone */
    }
  }
}

process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) killTree(c);
});

function envFor(opts: RunOptions): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = opts.cleanEnv ? {} : { ...process.env };
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete base[k];
    else base[k] = v;
  }
  return base;
}

/**
 * Spawns any command in its own process group (so killTree reaches its
 * children); killed at exit of the test process if still running.
 */
export function spawnCmd(argv: string[], opts: RunOptions & { stdio?: SpawnOptions['stdio'] } = {}): ChildProcess {
  const child = spawn(argv[0], argv.slice(1), {
    env: envFor(opts),
    cwd: opts.cwd,
    stdio: opts.stdio ?? ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

/** Spawns `hutch <args>`; the caller reads/writes its pipes and must reap it. */
export function spawnHutch(args: string[], opts: RunOptions & { stdio?: SpawnOptions['stdio'] } = {}): ChildProcess {
  return spawnCmd([...hutchCmd(), ...args], opts);
}

/** Runs any command to completion, capturing its output. Never rejects for a non-zero exit. */
export function runCmd(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawnCmd(argv, { ...opts, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => {}); // EPIPE when the command does not read it
      child.stdin!.end(opts.input);
    }
    const timer = setTimeout(() => {
      timedOut = true;
      killTree(child);
    }, opts.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${argv.join(' ')}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut, ms: Date.now() - started });
    });
  });
}

/** Runs `hutch <args>` to completion. */
export function runHutch(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return runCmd([...hutchCmd(), ...args], opts);
}

/** Describes a result for assertion messages. */
export function describe(r: RunResult): string {
  const how = r.timedOut ? 'timed out' : r.signal ? `signal ${r.signal}` : `exit ${r.code}`;
  const clip = (s: string) => (s.length > 4000 ? s.slice(0, 2000) + '\n[...]\n' + s.slice(-2000) : s);
  return `${how} after ${r.ms} ms\n--- stdout ---\n${clip(r.stdout)}\n--- stderr ---\n${clip(r.stderr)}`;
}

/** Throws (with stdout/stderr in the message) unless the exit code is `code`. */
export function expectExit(r: RunResult, code = 0): RunResult {
  if (r.timedOut || r.code !== code) throw new Error(`expected exit ${code}, got ${describe(r)}`);
  return r;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Polls `predicate` until it returns a truthy value (returned) or
 * `timeoutMs` passes (throws, naming `what`).
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  timeoutMs = 10_000,
  opts: { intervalMs?: number; what?: string } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await predicate();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) {
      const why = lastError ? `; last error: ${(lastError as Error).message ?? lastError}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what ?? 'condition'}${why}`);
    }
    await sleep(opts.intervalMs ?? 25);
  }
}

const tmpDirs: string[] = [];
process.on('exit', () => {
  for (const d of tmpDirs) {
    try {
      fs.rmSync(d, { recursive: true, force: true });
    } catch {
      /* files owned by subordinate ids: the runner removes its TMPDIR */
    }
  }
});

/** A fresh private directory under TMPDIR (the runner gives each tier its own), removed at exit. */
export function tmpDir(prefix = 'hutch-test-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.push(d);
  return d;
}

/** Pids of all processes visible in the host's /proc. */
export function hostPids(): number[] {
  return fs
    .readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .sort((a, b) => a - b);
}

/** /proc/<pid>/status as key -> value, or null when the process is gone. */
export function procStatus(pid: number): Record<string, string> | null {
  try {
    const out: Record<string, string> = {};
    for (const line of fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
      const i = line.indexOf(':');
      if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
    }
    return out;
  } catch {
    return null;
  }
}

/** Pids of all descendants of `pid` (by PPid), deepest last. */
export function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const p of hostPids()) {
    const s = procStatus(p);
    if (s) parent.set(p, Number(s.PPid));
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const cur = queue.shift()!;
    for (const [p, pp] of parent)
      if (pp === cur) {
        out.push(p);
        queue.push(p);
      }
  }
  return out;
}

/** Whether `name` is an executable on PATH. */
export function hasCommand(name: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => {
    try {
      fs.accessSync(path.join(dir || '.', name), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

type TestBody = () => void | Promise<void>;
type TestFn = (name: string, fn: TestBody) => void;
interface Registrar extends TestFn {
  skip: (name: string, fn: TestBody) => void;
}

/**
 * Registers `name` with uvu's `test` when `condition` holds, else as skipped
 * (counted in the runner's `N skipped`) with the reason printed, e.g.
 *   testIf(test, hasCommand('slirp4netns'), 'slirp port forward', async () => {...}, 'no slirp4netns')
 */
export function testIf(t: Registrar, condition: unknown, name: string, fn: TestBody, reason = 'condition not met'): void {
  if (condition) t(name, fn);
  else {
    process.stdout.write(`  skip: ${name}: ${reason}\n`);
    t.skip(name, fn);
  }
}
