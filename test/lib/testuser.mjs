// The unprivileged test user `hutch-test` and what it needs, for
// test/run.mjs and test/bench/run.mjs when they are run as root.
//
// Everything here is idempotent: an existing account, subordinate id ranges
// and device ACLs are kept as they are.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { isBuiltin } from 'node:module';

export const TEST_USER = 'hutch-test';
const SUBID_COUNT = 65536;
const SUBID_FIRST = 300000;
const DEVICES = ['/dev/fuse', '/dev/net/tun'];

// Account tools live in sbin, which a root PATH may lack (env -i, some CI).
const SBIN_PATH = `${process.env.PATH || '/usr/bin:/bin'}:/usr/local/sbin:/usr/sbin:/sbin`;

function sh(cmd, args, opts = {}) {
  const env = opts.env ?? { ...process.env, PATH: SBIN_PATH };
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts, env });
  return { code: r.status, out: (r.stdout ?? '').trim(), err: (r.stderr ?? '').trim() || String(r.error ?? '') };
}

function must(cmd, args) {
  const r = sh(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.err || `exit ${r.code}`}`);
  return r.out;
}

/** Absolute path of an executable on PATH (or in sbin), or null. */
export function which(name) {
  for (const dir of SBIN_PATH.split(':')) {
    if (!dir) continue;
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {}
  }
  return null;
}

export function hasCommand(name) {
  return which(name) !== null;
}

export function lookupUser(name) {
  const r = sh('getent', ['passwd', name]);
  if (r.code !== 0 || !r.out) return null;
  const [user, , uid, gid, , home, shell] = r.out.split('\n')[0].split(':');
  return { name: user, uid: Number(uid), gid: Number(gid), home, shell };
}

/** Parses /etc/subuid-style text: `name-or-uid:start:count` per line. */
export function parseSubids(text) {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(':'))
    .filter((f) => f.length === 3 && /^\d+$/.test(f[1]) && /^\d+$/.test(f[2]))
    .map(([owner, start, count]) => ({ owner, start: Number(start), count: Number(count) }));
}

/** First start >= `first` such that [start, start+count) overlaps no range. */
export function freeSubidRange(ranges, count = SUBID_COUNT, first = SUBID_FIRST) {
  let start = first;
  for (;;) {
    const clash = ranges.find((r) => start < r.start + r.count && r.start < start + count);
    if (!clash) return start;
    const end = clash.start + clash.count;
    start = Math.ceil(end / count) * count;
  }
}

function ensureSubids(file, user, log) {
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if (e.code !== 'ENOENT') throw e;
  }
  const ranges = parseSubids(text);
  const mine = ranges.find((r) => r.owner === user.name || r.owner === String(user.uid));
  if (mine) return mine;
  const start = freeSubidRange(ranges);
  const line = `${user.name}:${start}:${SUBID_COUNT}\n`;
  fs.writeFileSync(file, (text && !text.endsWith('\n') ? text + '\n' : text) + line, { mode: 0o644 });
  log(`added ${file}: ${line.trim()}`);
  return { owner: user.name, start, count: SUBID_COUNT };
}

function ensureDevice(dev, user, log) {
  if (!fs.existsSync(dev)) {
    log(`${dev} does not exist on this machine; tests that need it will skip or fail`);
    return;
  }
  if (userCan(user, ['test', '-r', dev, '-a', '-w', dev])) return;
  if (hasCommand('setfacl')) {
    must('setfacl', ['-m', `u:${user.name}:rw`, dev]);
    log(`setfacl -m u:${user.name}:rw ${dev}`);
  } else {
    // Fallback without acl: a dedicated group owning the device.
    const group = 'hutch-dev';
    if (sh('getent', ['group', group]).code !== 0) must('groupadd', ['--system', group]);
    must('usermod', ['-a', '-G', group, user.name]);
    must('chgrp', [group, dev]);
    must('chmod', ['g+rw', dev]);
    log(`chgrp ${group} ${dev}; chmod g+rw ${dev} (no setfacl)`);
  }
  if (!userCan(user, ['test', '-r', dev, '-a', '-w', dev])) {
    throw new Error(`${user.name} still cannot open ${dev} read-write`);
  }
}

/**
 * Creates `hutch-test` (useradd -m) if missing, gives it subordinate uid/gid
 * ranges and read-write access to /dev/fuse and /dev/net/tun. Root only.
 */
export function ensureTestUser(log = () => {}) {
  if (process.getuid() !== 0) throw new Error('ensureTestUser needs root');
  let user = lookupUser(TEST_USER);
  if (!user) {
    must('useradd', ['-m', '-U', '-s', '/bin/bash', '-c', 'hutch test runner', TEST_USER]);
    user = lookupUser(TEST_USER);
    if (!user) throw new Error(`useradd ${TEST_USER} succeeded but the account is not visible`);
    log(`created user ${TEST_USER} (uid ${user.uid})`);
  }
  if (!fs.existsSync(user.home)) {
    fs.mkdirSync(user.home, { recursive: true, mode: 0o750 });
    fs.chownSync(user.home, user.uid, user.gid);
  }
  user.subuid = ensureSubids('/etc/subuid', user, log);
  user.subgid = ensureSubids('/etc/subgid', user, log);
  for (const dev of DEVICES) ensureDevice(dev, user, log);
  return user;
}

/** argv prefix that runs a command as `user` (no PAM, no new session). */
export function asUserPrefix(user) {
  const setpriv = which('setpriv');
  if (setpriv) return [setpriv, `--reuid=${user.uid}`, `--regid=${user.gid}`, '--init-groups', '--'];
  const runuser = which('runuser');
  if (runuser) return [runuser, '-u', user.name, '--'];
  throw new Error('neither setpriv nor runuser is installed (util-linux)');
}

export function userCan(user, argv) {
  const [cmd, ...args] = [...asUserPrefix(user), ...argv];
  return sh(cmd, args, { env: cleanUserEnv(user) }).code === 0;
}

/** A minimal environment for `user`: what a login would give, nothing of root's. */
export function cleanUserEnv(user, extra = {}) {
  const env = {
    PATH: `${path.dirname(process.execPath)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    HOME: user.home,
    USER: user.name,
    LOGNAME: user.name,
    SHELL: user.shell || '/bin/sh',
    LANG: process.env.LANG && process.env.LANG !== 'C' ? process.env.LANG : 'C.UTF-8',
  };
  for (const k of ['TERM', 'CI', 'FORCE_COLOR', 'NO_COLOR', 'TZ']) {
    if (process.env[k] !== undefined) env[k] = process.env[k];
  }
  return { ...env, ...extra };
}

/** Makes `dir` and everything under it readable (and dirs traversable) by all, writable by none but the owner. */
export function makeWorldReadable(dir) {
  const walk = (p) => {
    const st = fs.lstatSync(p);
    if (st.isSymbolicLink()) return;
    const mode = st.mode & 0o7777;
    const want = st.isDirectory() || mode & 0o111 ? (mode | 0o555) & ~0o022 : (mode | 0o444) & ~0o022;
    if (want !== mode) fs.chmodSync(p, want);
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
  };
  walk(dir);
}

/** Bare package names in a list of import specifiers (builtins and relative paths dropped). */
export function packageNames(specifiers) {
  const names = new Set();
  for (const s of specifiers) {
    if (!s || s.startsWith('.') || s.startsWith('/') || s.startsWith('node:') || isBuiltin(s)) continue;
    const parts = s.split('/');
    names.add(s.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]);
  }
  return [...names];
}

/** `names` plus their (hoisted) runtime dependencies, transitively. */
export function dependencyClosure(root, names) {
  const seen = new Set();
  const queue = [...names];
  while (queue.length) {
    const name = queue.shift();
    if (seen.has(name)) continue;
    const pj = path.join(root, 'node_modules', name, 'package.json');
    if (!fs.existsSync(pj)) continue; // nested or missing: copied with its parent, or absent
    seen.add(name);
    const meta = JSON.parse(fs.readFileSync(pj, 'utf8'));
    for (const field of ['dependencies', 'optionalDependencies', 'peerDependencies']) {
      for (const dep of Object.keys(meta[field] ?? {})) if (!seen.has(dep)) queue.push(dep);
    }
  }
  return [...seen];
}

/**
 * Copies the parts of the checkout a test user needs into `dest` (owned by
 * the caller, world-readable, not writable by others): `entries` (paths
 * relative to `root`, missing ones skipped) and `node_modules/<pkg>` for each
 * of `packages` and their dependencies.
 */
export function readableCopy(root, dest, entries, packages) {
  fs.mkdirSync(dest, { recursive: true });
  for (const rel of entries) {
    const from = path.join(root, rel);
    if (!fs.existsSync(from)) continue;
    fs.cpSync(from, path.join(dest, rel), { recursive: true, dereference: false, preserveTimestamps: true });
  }
  const pkgs = dependencyClosure(root, packages);
  for (const name of pkgs) {
    fs.cpSync(path.join(root, 'node_modules', name), path.join(dest, 'node_modules', name), {
      recursive: true,
      preserveTimestamps: true,
    });
  }
  makeWorldReadable(dest);
  return pkgs;
}

/**
 * Path of a node binary `user` can execute: this one if it can, else a copy
 * placed in `binDir` (e.g. node installed under /root/.nvm).
 */
export function nodeForUser(user, binDir) {
  if (userCan(user, [process.execPath, '-e', '0'])) return process.execPath;
  fs.mkdirSync(binDir, { recursive: true, mode: 0o755 });
  const copy = path.join(binDir, 'node');
  fs.copyFileSync(process.execPath, copy);
  fs.chmodSync(copy, 0o755);
  if (!userCan(user, [copy, '-e', '0'])) throw new Error(`${user.name} cannot run node (${process.execPath}) nor a copy of it`);
  return copy;
}

/** Creates `dir` owned by `user` with `mode`. */
export function userDir(user, dir, mode = 0o700) {
  fs.mkdirSync(dir, { recursive: true });
  fs.chownSync(dir, user.uid, user.gid);
  fs.chmodSync(dir, mode);
  return dir;
}
