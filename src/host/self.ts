// hutch's own files on this host: where the helper binary is, and which
// files must never become writable from inside a sandbox.
//
// Three ways to find the helper, first match wins:
//   $HUTCH_HELPER          a helper binary given explicitly (development, tests)
//   the single executable  dist/hutch carries the helper as the SEA asset
//                          `hutch-helper`; it is written once to a content-
//                          addressed path under $XDG_CACHE_HOME/hutch and
//                          checked against the embedded copy before every use
//   the bundle             `node dist/hutch.cjs` uses dist/hutch-helper beside it
//
// Why the check is byte-for-byte rather than "hash the file": the binary holds
// the reference bytes, so comparing size and contents is the hash comparison
// made exact, and it keeps OpenSSL's first-use cost (about 1 ms) off the
// launch path. The sha256 computed at build time (asset
// `hutch-helper.sha256`) names the file, so two hutch versions never fight
// over one path.

import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  fchmodSync,
  fstatSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { HutchError } from '../util/errors';

export interface HelperLocation {
  path: string;
  source: 'env' | 'sea' | 'bundle';
  /** sha256 of the embedded helper (single executable only). */
  sha256?: string;
  /** Set when the cache dir could not be used (noexec, foreign owner...) and another place was. */
  note?: string;
  /** Set when an existing extracted copy differed from the embedded one and was replaced. */
  replaced?: string;
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
  if (loc.replaced) process.stderr.write(`hutch: warning: ${loc.replaced}\n`);
  return loc;
}

function findHelper(env: NodeJS.ProcessEnv): HelperLocation {
  if (env.HUTCH_HELPER) {
    if (!existsSync(env.HUTCH_HELPER)) {
      throw new HutchError(`HUTCH_HELPER=${env.HUTCH_HELPER}: no such file`, { hint: 'unset HUTCH_HELPER to use the helper built into hutch' });
    }
    return { path: env.HUTCH_HELPER, source: 'env' };
  }
  const s = sea();
  if (s) return extractEmbedded(s, env);
  const path = join(__dirname, 'hutch-helper');
  if (!existsSync(path)) {
    throw new HutchError(`the helper binary ${path} is missing`, { hint: 'run `npm run build` (or set HUTCH_HELPER)' });
  }
  return { path, source: 'bundle' };
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
    const dir = join(base, 'helper', sha256);
    const path = join(dir, 'hutch-helper');
    try {
      ensureOwnDir(base, uid);
      ensureOwnDir(join(base, 'helper'), uid);
      ensureOwnDir(dir, uid);
      let replaced: string | undefined;
      const bad = mismatch(path, bytes, uid);
      if (bad) {
        if (bad !== 'missing') replaced = `the extracted helper ${path} ${bad}; replaced it with the copy inside hutch`;
        writeAtomically(dir, path, bytes);
        const still = mismatch(path, bytes, uid);
        if (still) throw new Error(`${path} ${still} right after writing it`);
      }
      try {
        accessSync(path, constants.X_OK);
      } catch {
        problems.push(`${base}: the file system is mounted noexec`);
        continue;
      }
      const note = problems.length ? `not in ${problems.join('; ')}` : undefined;
      return { path, source: 'sea', sha256, note, replaced };
    } catch (e) {
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

/**
 * Why the file at `path` is not exactly `bytes` as an executable of ours
 * (a phrase for messages), or undefined when it is. Opened with O_NOFOLLOW:
 * a symlink planted there never counts as the helper.
 */
function mismatch(path: string, bytes: Uint8Array, uid: number): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'missing' : code === 'ELOOP' ? 'is a symlink' : `cannot be opened (${code})`;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return 'is not a regular file';
    if (st.uid !== uid) return `belongs to uid ${st.uid}`;
    if ((st.mode & 0o7777) !== 0o755) return `has mode ${(st.mode & 0o7777).toString(8)} instead of 755`;
    if (st.size !== bytes.length) return `has ${st.size} bytes instead of ${bytes.length}`;
    const buf = Buffer.allocUnsafe(bytes.length + 1);
    let got = 0;
    for (;;) {
      const n = readSync(fd, buf, got, buf.length - got, null);
      if (n === 0) break;
      got += n;
      if (got === buf.length) break;
    }
    if (got !== bytes.length) return `changed size while being read`;
    if (Buffer.compare(buf.subarray(0, got), bytes) !== 0) return 'differs from the helper inside hutch (modified?)';
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** temp file (O_EXCL), write, 0755, fsync, rename over `path`, fsync the directory. */
function writeAtomically(dir: string, path: string, bytes: Uint8Array): void {
  const tmp = join(dir, `.hutch-helper.${process.pid}.${Date.now()}.tmp`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o700);
  try {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fchmodSync(fd, 0o755);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkSync(tmp);
    throw e;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (e) {
    unlinkSync(tmp);
    throw e;
  }
  try {
    const dfd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    /* some file systems refuse fsync on a directory: the rename itself is atomic */
  }
}

// ------------------------------------------------------------------ protection

/** Files the sandbox must never be able to write: the helper and hutch itself. */
export function protectedFiles(helper: string): string[] {
  const files = [helper];
  if (isSingleExecutable()) files.push(process.execPath);
  else {
    files.push(__filename);
    if (!process.execPath.endsWith('/node')) files.push(process.execPath);
  }
  return files;
}
