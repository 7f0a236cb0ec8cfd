// hutch's own files on this host: where the helper binary is, and which
// files must never become writable from inside a sandbox.
//
// Three ways to find the helper, first match wins:
//   $HUTCH_HELPER          a helper binary given explicitly (development, tests)
//   the single executable  dist/hutch carries the helper as the SEA asset
//                          `hutch-helper`; every hutch process writes it to a
//                          private, unnamed file (O_TMPFILE) and runs that
//   the bundle             `node dist/hutch.cjs` uses dist/hutch-helper beside it
//
// Why a private unnamed copy rather than a cached file checked before use:
// a file with a name can be swapped, or written through a second descriptor,
// between the check and the exec by anything that can write one of its
// parent directories (a sandbox given `-v ~/.cache:/root/.cache`), and the
// next `hutch run` would execute that program on the host. An O_TMPFILE
// inode has no name: the only way to it is hutch's own descriptor, which is
// reopened read-only and the writable one closed before anything runs, so
// what is executed (through /proc/self/fd/N, i.e. that inode, never a path)
// is by construction the bytes inside hutch. It costs one 80 KB write per
// hutch process. Node cannot memfd_create; this is the same guarantee.

import { accessSync, closeSync, constants, existsSync, fstatSync, lstatSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { HutchError } from '../util/errors';

export interface HelperLocation {
  /** What to execute: a path, or /proc/self/fd/N (valid in hutch and the children it spawns). */
  path: string;
  /** For messages: the path, or where the private copy lives. */
  shown: string;
  source: 'env' | 'sea' | 'bundle';
  /** sha256 of the embedded helper (single executable only). */
  sha256?: string;
  /** Set when the cache dir could not be used (noexec, foreign owner...) and another place was. */
  note?: string;
}

interface SeaModule {
  isSea(): boolean;
  getRawAsset(key: string): ArrayBuffer;
}

let seaModule: SeaModule | null | undefined;
function sea(): SeaModule | null {
  if (seaModule === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const m = require('node:sea') as SeaModule;
      seaModule = m.isSea() ? m : null;
    } catch {
      seaModule = null; // node < 20.12: no SEA support, so not a single executable
    }
  }
  return seaModule;
}

/** True when running as the single executable (dist/hutch). */
export function isSingleExecutable(): boolean {
  return sea() !== null;
}

export function helperPath(env: NodeJS.ProcessEnv = process.env): string {
  return locateHelper(env).path;
}

let located: HelperLocation | undefined;

/** Where the helper is, extracting it first when running as the single executable. */
export function locateHelper(env: NodeJS.ProcessEnv = process.env): HelperLocation {
  if (located && env === process.env) return located;
  const loc = findHelper(env);
  if (env === process.env) located = loc;
  return loc;
}

function findHelper(env: NodeJS.ProcessEnv): HelperLocation {
  if (env.HUTCH_HELPER) {
    if (!existsSync(env.HUTCH_HELPER)) {
      throw new HutchError(`HUTCH_HELPER=${env.HUTCH_HELPER}: no such file`, { hint: 'unset HUTCH_HELPER to use the helper built into hutch' });
    }
    return { path: env.HUTCH_HELPER, shown: env.HUTCH_HELPER, source: 'env' };
  }
  const s = sea();
  if (s) return extractEmbedded(s, env);
  const path = join(__dirname, 'hutch-helper');
  if (!existsSync(path)) {
    throw new HutchError(`the helper binary ${path} is missing`, { hint: 'run `npm run build` (or set HUTCH_HELPER)' });
  }
  return { path, shown: path, source: 'bundle' };
}

// ------------------------------------------------------------------ extraction

/** Candidate directories for the extracted helper, best first. */
export function helperDirs(env: NodeJS.ProcessEnv, uid: number): string[] {
  const home = env.HOME || homedir();
  const dirs = [join(env.XDG_CACHE_HOME || join(home, '.cache'), 'hutch')];
  if (env.XDG_RUNTIME_DIR) dirs.push(join(env.XDG_RUNTIME_DIR, 'hutch'));
  dirs.push(join(env.XDG_DATA_HOME || join(home, '.local/share'), 'hutch'));
  dirs.push(join(tmpdir(), `hutch-helper-${uid}`));
  return [...new Set(dirs)];
}

function extractEmbedded(s: SeaModule, env: NodeJS.ProcessEnv): HelperLocation {
  const bytes = new Uint8Array(s.getRawAsset('hutch-helper'));
  const sha256 = new TextDecoder().decode(s.getRawAsset('hutch-helper.sha256')).trim();
  const uid = process.getuid!();
  const problems: string[] = [];
  for (const base of helperDirs(env, uid)) {
    const dir = join(base, 'helper');
    let fd: number | undefined;
    try {
      ensureOwnDir(base, uid);
      ensureOwnDir(dir, uid);
      fd = privateCopy(dir, bytes);
      const path = `/proc/self/fd/${fd}`;
      try {
        accessSync(path, constants.X_OK);
      } catch {
        problems.push(`${base}: the file system is mounted noexec`);
        closeSync(fd);
        continue;
      }
      const note = problems.length ? `not in ${problems.join('; ')}` : undefined;
      return { path, shown: `${dir} (a private unnamed copy, sha256 ${sha256.slice(0, 12)})`, source: 'sea', sha256, note };
    } catch (e) {
      if (fd !== undefined) closeSync(fd);
      problems.push(`${base}: ${(e as Error).message}`);
    }
  }
  throw new HutchError(`cannot place the helper in an executable directory (${problems.join('; ')})`, {
    hint: 'set XDG_CACHE_HOME to a directory on a file system mounted without noexec, or HUTCH_HELPER to a hutch-helper binary',
  });
}

/** Creates `dir` (0700) or accepts an existing one that we own and nobody else can write. */
function ensureOwnDir(dir: string, uid: number): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  if (st.uid !== uid) throw new Error(`${dir} belongs to uid ${st.uid}`);
  if (st.mode & 0o022) throw new Error(`${dir} is writable by others (mode ${(st.mode & 0o7777).toString(8)})`);
}

// open(2)'s O_TMPFILE (__O_TMPFILE | O_DIRECTORY; the generic value, also x86_64's)
const O_TMPFILE = 0o20000000 | constants.O_DIRECTORY;

/**
 * `bytes` in an unnamed file on dir's file system, as a read-only descriptor
 * (never below 10, so no stdio slot of a spawned child can shadow it), with
 * no writable descriptor left: exec refuses a file open for writing (ETXTBSY),
 * and no one else ever had one. Read back before use: a file system that
 * lost bytes must not run half a helper.
 */
function privateCopy(dir: string, bytes: Uint8Array): number {
  let w: number;
  try {
    w = openSync(dir, O_TMPFILE | constants.O_RDWR, 0o700);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(code === 'EOPNOTSUPP' || code === 'EISDIR' || code === 'EINVAL' ? 'the file system has no O_TMPFILE' : `cannot create a file (${code})`);
  }
  const low: number[] = [];
  let r = -1;
  try {
    let off = 0;
    while (off < bytes.length) off += writeSync(w, bytes, off, bytes.length - off);
    for (;;) {
      r = openSync(`/proc/self/fd/${w}`, constants.O_RDONLY);
      if (r >= 10) break;
      low.push(r);
    }
  } finally {
    closeSync(w);
    for (const l of low) closeSync(l);
  }
  const st = fstatSync(r);
  const back = Buffer.allocUnsafe(bytes.length);
  let got = 0;
  while (got < bytes.length) {
    const n = readSync(r, back, got, bytes.length - got, got);
    if (n === 0) break;
    got += n;
  }
  if (st.size !== bytes.length || got !== bytes.length || Buffer.compare(back, bytes) !== 0) {
    closeSync(r);
    throw new Error('the private copy of the helper reads back differently');
  }
  return r;
}

// ------------------------------------------------------------------ protection

/**
 * What a sandbox must never be able to write, whatever it binds: hutch's own
 * executables and the directories it keeps (layers, volumes, state, the
 * helper's directories, profiles). src/sandbox/assemble.ts mounts them
 * read-only inside every read-write bind that contains them.
 */
export function protectedPaths(
  helper: HelperLocation,
  paths: { dataDir: string; cacheDir: string; stateDir: string; configDir: string; recordsDir?: string },
  uid: number,
): { protectedFiles: string[]; protectedDirs: string[] } {
  const files: string[] = [];
  if (helper.source !== 'sea') files.push(helper.path);
  if (isSingleExecutable()) files.push(process.execPath);
  else {
    files.push(__filename);
    if (!process.execPath.endsWith('/node')) files.push(process.execPath);
  }
  // (the helper's candidate directories: cacheDir, stateDir, dataDir and this one)
  const dirs = [
    paths.dataDir,
    paths.cacheDir,
    paths.stateDir,
    paths.configDir,
    ...(paths.recordsDir ? [paths.recordsDir] : []),
    join(tmpdir(), `hutch-helper-${uid}`),
  ];
  return { protectedFiles: [...new Set(files)], protectedDirs: [...new Set(dirs)] };
}
