// The launch cache (issue 15): `hutch run` keeps the resolved spec and the
// assembled plan of a launch, and the next launch with the same inputs uses
// them instead of loading the profile, resolving the spec and assembling the
// plan again.
//
// What a cached value depends on is RECORDED while it is computed, never
// listed by hand: the computation runs on HostFacts whose environment, file
// system questions (HostFs) and lazily read facts (homes, the host's / and
// its mounts) note every read and its answer, and on a profile loader whose
// file reads are noted the same way (ProfileFs: which files exist, their
// content). Everything else is in the entry's fixed inputs, compared as a
// whole: the flags, cwd, hutch's own build, kernel, identity (uid, gid, the
// subordinate id ranges of /etc/subuid and /etc/subgid), paths, the helper,
// hutch's own files. A hit is an entry whose fixed inputs are equal and whose
// every recorded read, asked again now, gives the same answer; so a value is
// used only when computing it afresh would read the same things, and pure
// code (resolveSpec, assemblePlan: src/spec, src/sandbox) would then compute
// the same value. A read is re-asked, not trusted to a time stamp: profile
// files by content (they are small; an mtime, even with size, inode and
// ctime, misses an edit within the file system's time granularity and a
// `cp -p`/`tar`/editor that restores the mtime, and a read costs what the
// stat would), the rest by asking the same question again.
//
// Per-sandbox values are never cached: the spec and plan are computed for a
// placeholder name (a random token per entry) and its state directory, and
// every use puts the real name and state directory in their place (the
// token is a valid, opaque name: nothing computes on its letters). Limits,
// cgroups, ports, the state directory and the state files are made fresh by
// every run (src/cli/run.ts, src/sandbox/lifecycle.ts).
//
// The cache file is an input hutch reads, so it is not trusted. Read: opened
// with O_NOFOLLOW|O_NONBLOCK, a regular file owned by the user with no group or
// other bits, at most 4 MiB, whose first line is the digest of the rest (a bit
// flipped, a truncation, an edit: not read at all, as no shape check sees into
// every value), then JSON of the right shape with fixed inputs equal to this
// run's; anything else is a miss, and the file is replaced. Nobody else can
// make a file owned by the user, so reading needs no check of the directory
// chain; writing does: only into a verified private directory (0700, the
// user's, src/host/private-dir.ts), atomically (O_EXCL temp file + rename),
// without fsync: a file torn by a crash fails the digest and is rebuilt.
// At most 64 files (one per request), 8 entries (environments) per file.
//
// Used by `hutch run` (src/cache/launch.ts says for which runs: not for a
// chain of built-ins only, which is cheaper to resolve than to look up).
// HUTCH_NO_CACHE=1 or `hutch run --no-cache` bypass it (nothing read or written).

import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { release } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { HostFacts, HostFs } from '../host/facts';
import type { ProfileFs } from '../profile/load';
import { hostProfileFs } from '../profile/load';
import { ensurePrivateDir } from '../host/private-dir';
import type { Op } from '../helper/ops';
import type { Plan } from '../helper/plan';
import type { Origin } from '../util/errors';
import type { SandboxSpec } from '../spec/types';
import { VERSION } from '../util/version';

const FORMAT = 1;
const MAX_BYTES = 4 << 20;
/** Variants of one request kept in its file (environments that differ in what the profile reads). */
const MAX_ENTRIES = 8;

/** One recorded read: what was asked and the answer (JSON), compared as text. */
interface Read {
  /** HostFs method, `profile.exists|isFile|readText`, `env`, `env*` (the whole environment), `facts.homes|hostTop|procMounts`. */
  q: string;
  a: unknown[];
  r: string;
}

const FS_METHODS = ['isDir', 'exists', 'readText', 'blockDevice', 'link', 'topOwners', 'scanTop'] as const satisfies readonly (keyof HostFs)[];
const LAZY = ['homes', 'hostTop', 'procMounts'] as const;

function answer(f: () => unknown): { r: string; value?: unknown; error?: unknown } {
  try {
    const value = f();
    return { r: JSON.stringify({ v: value }) ?? '', value };
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    return { r: JSON.stringify({ e: e?.code ?? '', m: String(e?.message ?? e) }), error };
  }
}

/** Notes every read made through the facts and the profile loader it hands out. */
export class Recorder {
  readonly reads: Read[] = [];
  private readonly seen = new Set<string>();

  private note(q: string, a: unknown[], r: string): void {
    const k = `${q}\0${JSON.stringify(a)}`;
    if (this.seen.has(k)) return; // the first answer is the one the computation saw
    this.seen.add(k);
    this.reads.push({ q, a, r });
  }

  /** HostFacts that record what is read of them. */
  facts(f: HostFacts): HostFacts {
    const fs = {} as Record<string, unknown>;
    for (const m of FS_METHODS) {
      fs[m] = (...a: unknown[]) => {
        const got = answer(() => (f.fs[m] as (...x: unknown[]) => unknown)(...a));
        this.note(`fs.${m}`, a, got.r);
        if ('error' in got) throw got.error;
        return got.value;
      };
    }
    const out: HostFacts = Object.create(null);
    for (const k of Object.keys(Object.getOwnPropertyDescriptors(f)) as (keyof HostFacts)[]) {
      if ((LAZY as readonly string[]).includes(k) || k === 'env' || k === 'fs') continue;
      Object.defineProperty(out, k, { value: f[k], enumerable: true });
    }
    for (const k of LAZY) {
      Object.defineProperty(out, k, {
        enumerable: true,
        get: () => {
          const v = f[k];
          this.note(`facts.${k}`, [], JSON.stringify(v));
          return v;
        },
      });
    }
    Object.defineProperty(out, 'env', { value: this.env(f.env), enumerable: true });
    Object.defineProperty(out, 'fs', { value: fs as unknown as HostFs, enumerable: true });
    return out;
  }

  /** An environment that records each variable read; enumerating it records all of it. */
  env(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
    const one = (k: string) => this.note('env', [k], JSON.stringify(env[k] ?? null));
    return new Proxy(env, {
      get: (t, k) => {
        if (typeof k === 'string') one(k);
        return Reflect.get(t, k);
      },
      has: (t, k) => {
        if (typeof k === 'string') one(k);
        return Reflect.has(t, k);
      },
      // not recorded: Object.keys asks it of every name; a value is read through get
      // (Object.entries, a spread and env[k] all do), and that is recorded
      // enumerating: the names (their values are recorded as each is read)
      ownKeys: (t) => {
        this.note('env*', [], envNames(t));
        return Reflect.ownKeys(t);
      },
      // policy never changes the environment it reads
      set: () => false,
      defineProperty: () => false,
      deleteProperty: () => false,
    });
  }

  /** The profile loader's file system, recording. */
  profileFs(base: ProfileFs = hostProfileFs): ProfileFs {
    const rec = <T>(q: 'exists' | 'isFile' | 'readText', p: string, f: () => T): T => {
      const got = answer(f);
      this.note(`profile.${q}`, [p], got.r);
      if ('error' in got) throw got.error;
      return got.value as T;
    };
    return {
      exists: (p) => rec('exists', p, () => base.exists(p)),
      isFile: (p) => rec('isFile', p, () => base.isFile(p)),
      readText: (p) => rec('readText', p, () => base.readText(p)),
    };
  }
}

function envNames(env: NodeJS.ProcessEnv): string {
  return JSON.stringify(Object.keys(env).sort());
}

/** Asks a recorded read again: the answer now, as text. */
function askAgain(read: Read, facts: HostFacts, profileFs: ProfileFs): string | undefined {
  const [q, sub] = read.q.split('.', 2) as [string, string | undefined];
  if (q === 'env' && read.q === 'env') return JSON.stringify(facts.env[String(read.a[0])] ?? null);
  if (read.q === 'env*') return envNames(facts.env);
  if (q === 'fs' && (FS_METHODS as readonly string[]).includes(sub!))
    return answer(() => (facts.fs[sub as (typeof FS_METHODS)[number]] as (...x: unknown[]) => unknown)(...read.a)).r;
  if (q === 'facts' && (LAZY as readonly string[]).includes(sub!)) return JSON.stringify(facts[sub as (typeof LAZY)[number]]);
  if (q === 'profile' && (sub === 'exists' || sub === 'isFile' || sub === 'readText')) return answer(() => profileFs[sub](String(read.a[0]))).r;
  return undefined; // unknown question: the entry is not ours
}

/** The first read whose answer changed, as a phrase; undefined when all are the same. */
export function changedRead(reads: readonly Read[], facts: HostFacts, profileFs: ProfileFs = hostProfileFs): string | undefined {
  for (const r of reads) {
    if (askAgain(r, facts, profileFs) !== r.r) return `${r.q}${r.a.length ? ` ${JSON.stringify(r.a).slice(1, -1)}` : ''} changed`;
  }
  return undefined;
}

/** hutch's own build: the executable (and the bundle node runs) by identity; a rebuild replaces them (new inode, times). */
function statId(p: string | undefined): string {
  if (!p) return '-';
  try {
    const s = statSync(p, { bigint: true });
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  } catch {
    return '-';
  }
}

/** The inputs compared as a whole: everything a cached value may depend on that is not a recorded read. */
export function fixedInputs(facts: HostFacts, request: unknown): string {
  const helperFile = facts.helper.startsWith('/proc/self/fd/') ? undefined : facts.helper;
  return JSON.stringify({
    format: FORMAT,
    version: VERSION,
    build: [statId(process.execPath), statId(typeof __filename === 'string' ? __filename : undefined)],
    kernel: release(),
    arch: facts.arch,
    cwd: facts.cwd,
    ids: facts.ids,
    paths: facts.paths,
    helper: [facts.helper, statId(helperFile)],
    protectedFiles: facts.protectedFiles,
    protectedDirs: facts.protectedDirs,
    hasTimeNamespace: facts.hasTimeNamespace,
    totalMemory: facts.totalMemory,
    request,
  });
}

/**
 * A 64-bit FNV-style digest as 16 hex digits, four bytes a step (a character
 * a step is ~10x slower in the interpreter a one-shot CLI runs in); names a
 * file and shows a key. Not a security boundary: equality is always checked
 * on the full text, and the file's owner and mode are what protect it.
 */
export function shortDigest(text: string): string {
  const b = Buffer.from(text);
  const words = new Uint32Array(b.buffer.slice(b.byteOffset, b.byteOffset + (b.length & ~3)));
  let h1 = 0x811c9dc5;
  let h2 = 0x050c5d1f;
  for (let i = 0; i < words.length; i++) {
    const c = words[i];
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995) ^ (h1 >>> 15);
  }
  for (let i = b.length & ~3; i < b.length; i++) h1 = Math.imul(h1 ^ b[i], 0x01000193);
  h2 = Math.imul(h2 ^ b.length, 0x5bd1e995);
  return (h1 >>> 0).toString(16).padStart(8, '0') + (h2 >>> 0).toString(16).padStart(8, '0');
}

interface PlanPart {
  /** The setup the plan was assembled from (placeholder name and state dir), as JSON. */
  setup: string;
  reads: Read[];
  /** shortDigest of everything the plan depends on (shown as `cache: hit KEY`). */
  key: string;
  /** JSON of {ops, notes: [[i, text]], origins: [[i, origin]]}, with the placeholders. */
  json: string;
}

/** What a cache file holds. */
export interface Entry {
  format: number;
  fixed: string;
  token: string;
  reads: Read[];
  /** shortDigest of everything the spec depends on. */
  key: string;
  /** JSON of the spec, with the placeholder name. */
  spec: string;
  plan?: PlanPart;
}

/** A placeholder name: valid, random, and what every cached value has where the sandbox's name goes. */
export function newToken(): string {
  let t = 'hutch-cache-';
  for (let i = 0; i < 24; i++) t += 'abcdefghijklmnopqrstuvwxyz0123456789'[Math.floor(Math.random() * 36)];
  return t;
}

/**
 * JSON text with the placeholders replaced by the sandbox's own values, parsed.
 * On the text, not walking the value: one pass. The placeholders are matched in
 * their JSON form, and the values put in JSON-escaped, so no string can end early.
 * Throws (JSON.parse) on text that is not JSON: the caller treats it as corrupt.
 */
export function fillIn<T>(json: string, pairs: readonly [string, string][]): T {
  let s = json;
  for (const [from, to] of pairs) {
    const f = JSON.stringify(from).slice(1, -1);
    if (s.includes(f)) s = s.split(f).join(JSON.stringify(to).slice(1, -1));
  }
  return JSON.parse(s) as T;
}

const isRead = (r: unknown): r is Read =>
  !!r && typeof r === 'object' && typeof (r as Read).q === 'string' && Array.isArray((r as Read).a) && typeof (r as Read).r === 'string';

/** An entry from untrusted JSON: the right shape, or undefined. */
function checkEntry(e: Entry): Entry | undefined {
  if (!e || typeof e !== 'object' || e.format !== FORMAT || typeof e.fixed !== 'string') return undefined;
  if (typeof e.token !== 'string' || !/^hutch-cache-[a-z0-9]{24}$/.test(e.token)) return undefined;
  if (!Array.isArray(e.reads) || !e.reads.every(isRead)) return undefined;
  if (typeof e.spec !== 'string' || typeof e.key !== 'string') return undefined;
  if (e.plan !== undefined) {
    const p = e.plan;
    if (!p || typeof p.setup !== 'string' || !Array.isArray(p.reads) || !p.reads.every(isRead) || typeof p.key !== 'string' || typeof p.json !== 'string')
      return undefined;
  }
  return e;
}

/** Reads a cache file: a regular file of `uid`, 0600 (no group/other bits), at most MAX_BYTES, not a symlink. Else undefined and why. */
export function readCacheFile(path: string, uid: number): { text?: string; why?: string } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { why: code === 'ENOENT' ? 'no entry' : code === 'ELOOP' ? 'the entry is a symlink' : `cannot open the entry (${code})` };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { why: 'the entry is not a regular file' };
    if (st.uid !== uid) return { why: `the entry belongs to uid ${st.uid}` };
    if (st.mode & 0o077) return { why: `the entry has mode ${(st.mode & 0o777).toString(8)}` };
    if (st.size > MAX_BYTES) return { why: 'the entry is too large' };
    const buf = Buffer.alloc(st.size);
    let got = 0;
    while (got < st.size) {
      const n = readSync(fd, buf, got, st.size - got, got);
      if (n <= 0) break;
      got += n;
    }
    return { text: buf.toString('utf8', 0, got) };
  } catch (e) {
    return { why: `cannot read the entry (${(e as NodeJS.ErrnoException).code ?? e})` };
  } finally {
    closeSync(fd);
  }
}

/** The entries of a cache file from untrusted JSON text: those of the right shape; undefined when the file is not one. */
export function parseEntries(text: string): Entry[] | undefined {
  // the first line is the digest of the rest: a file changed by anything but hutch (a bit flipped,
  // an edit) is not read at all, as the shape checks below cannot see into every value
  const nl = text.indexOf('\n');
  if (nl !== 16 || shortDigest(text.slice(nl + 1)) !== text.slice(0, nl)) return undefined;
  let f: { format?: unknown; entries?: unknown };
  try {
    f = JSON.parse(text.slice(nl + 1));
  } catch {
    return undefined;
  }
  if (!f || typeof f !== 'object' || f.format !== FORMAT || !Array.isArray(f.entries)) return undefined;
  return (f.entries as Entry[]).filter((e) => checkEntry(e) !== undefined);
}

function planOf(p: { ops: Op[]; notes: [number, string][]; origins: [number, Origin][] }): Plan {
  if (!Array.isArray(p.ops) || !p.ops.every((o) => o && typeof o === 'object' && typeof o.op === 'string')) throw new Error('corrupt plan');
  return { ops: p.ops, notes: new Map(p.notes), origins: new Map(p.origins) };
}

/** Writes `text` as `path` atomically, 0600; errors are swallowed (a cache that cannot be written is a cache that misses). */
export function writeCacheFile(dir: string, name: string, text: string): void {
  const tmp = join(dir, `.${name}.${process.pid}.tmp`);
  try {
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      const buf = Buffer.from(text);
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, join(dir, name));
  } catch {
    try {
      unlinkSync(tmp);
    } catch {}
  }
}

/** Files kept in the cache directory (one per request: flags, profile, cwd...); past it the least recently written go. */
const MAX_FILES = 64;

/** Bounds the directory: each distinct command line makes a file, a script running many would fill it. Misses only. */
export function pruneCacheDir(dir: string, keep: string, max = MAX_FILES): void {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json') && n !== keep);
  } catch {
    return;
  }
  if (names.length < max) return;
  const aged = names
    .map((n) => {
      try {
        return { n, t: lstatSync(join(dir, n)).mtimeMs };
      } catch {
        return { n, t: 0 };
      }
    })
    .sort((a, b) => a.t - b.t);
  for (const { n } of aged.slice(0, names.length - Math.floor((max * 3) / 4))) {
    try {
      unlinkSync(join(dir, n));
    } catch {}
  }
}

/** Why the cache is not used for this run, or undefined (HUTCH_NO_CACHE=1, --no-cache). */
export function cacheBypass(env: NodeJS.ProcessEnv, noCacheFlag: boolean): string | undefined {
  if (noCacheFlag) return '--no-cache';
  if (env.HUTCH_NO_CACHE === '1') return 'HUTCH_NO_CACHE=1';
  return undefined;
}

/**
 * The launch cache of one `hutch run`: an entry looked up by the fixed
 * inputs, checked read by read. `spec()` / `plan()` return the cached values
 * with the sandbox's own name and state directory, or compute, record and
 * keep them (`store()` writes).
 */
export class RunCache {
  readonly file: string;
  private entry: Entry | undefined;
  /** The file's other entries (other environments of the same request), kept when it is rewritten. */
  private others: Entry[] = [];
  private dirty = false;
  /** What happened, for --dry-run and HUTCH_TRACE: `hit KEY`, `miss (why) KEY`, `not used (why)`. */
  status = '';

  constructor(
    private readonly facts: HostFacts,
    private readonly fixed: string,
  ) {
    // Read without checking the directory chain: the file itself must be the user's own, 0600 and no
    // symlink (readCacheFile), which nobody else can make, wherever it is. Writing is another matter:
    // store() puts it only into a directory verified as private (ensurePrivateDir), 2 ms spent on misses only.
    this.file = join(facts.paths.cacheDir, 'run', `${shortDigest(fixed)}.json`);
  }

  private load(): { entry?: Entry; why: string } {
    const got = readCacheFile(this.file, this.facts.ids.uid);
    if (got.text === undefined) return { why: got.why ?? 'no entry' };
    const entries = parseEntries(got.text);
    if (!entries) return { why: 'the entry is corrupt' };
    let why = 'no entry';
    for (const e of entries) {
      if (e.fixed !== this.fixed) {
        why = 'the entry is for other inputs';
        continue;
      }
      const changed = changedRead(e.reads, this.facts);
      if (!changed) {
        this.others = entries.filter((x) => x !== e);
        return { entry: e, why: '' };
      }
      why = changed;
    }
    // the variants of this request (another environment), newest first; one that no longer matches ages out
    this.others = entries.filter((x) => x.fixed === this.fixed);
    return { why };
  }

  /**
   * The spec for sandbox `name`: cached, or `compute(recordingFacts,
   * recordingProfileFs, token)` with the placeholder name (kept unless
   * compute says why it must not be: `notCached`).
   */
  async spec(
    name: string,
    compute: (facts: HostFacts, profileFs: ProfileFs, token: string) => Promise<{ spec: SandboxSpec; notCached?: string }>,
  ): Promise<SandboxSpec> {
    const { entry, why } = this.load();
    if (entry) {
      try {
        const spec = fillIn<SandboxSpec>(entry.spec, [[entry.token, name]]);
        if (spec && typeof spec === 'object' && spec.name === name && Array.isArray(spec.command)) {
          this.entry = entry;
          this.status = `hit ${entry.key}`;
          return spec;
        }
      } catch {
        /* corrupt: computed afresh below */
      }
    }
    const rec = new Recorder();
    const token = newToken();
    const got = await compute(rec.facts(this.facts), rec.profileFs(), token);
    const key = shortDigest(`${this.fixed}\0${JSON.stringify(rec.reads)}`);
    if (got.notCached) this.status = `not used (${got.notCached})`;
    else {
      this.status = `miss (${entry ? 'the entry is corrupt' : why}) ${key}`;
      this.entry = { format: FORMAT, fixed: this.fixed, token, reads: rec.reads, key, spec: JSON.stringify(got.spec) };
      this.dirty = true;
    }
    return fillIn<SandboxSpec>(JSON.stringify(got.spec), [[token, name]]);
  }

  /**
   * The plan for the sandbox `name` in `sandboxDir`, given the setup made from
   * the template spec (`setupOf(templateSpec, templateDir)`): cached when that
   * setup and every read of its assembly are the same, else assembled by
   * `assemble(templateSpec, recordingFacts, templateSetup)` and kept.
   * undefined when the spec is not cached (nothing to assemble it from).
   */
  plan<S>(
    name: string,
    sandboxDir: string,
    setupOf: (spec: SandboxSpec, sandboxDir: string) => S,
    setupKey: (setup: S) => string,
    assemble: (spec: SandboxSpec, facts: HostFacts, setup: S) => Plan,
  ): Plan | undefined {
    const e = this.entry;
    // the state directory is <the real state dir>/<name> (claimSandboxDir); the placeholder's is beside it, so
    // that what the plan decides about the directory (under a protected one? a symlink on the way?) is the same
    if (!e || basename(sandboxDir) !== name) return undefined;
    const template = JSON.parse(e.spec) as SandboxSpec;
    const templateDir = join(dirname(sandboxDir), e.token);
    const setup = setupOf(template, templateDir);
    const key = setupKey(setup);
    const fill: [string, string][] = [
      [templateDir, sandboxDir],
      [e.token, name],
    ];
    const specHit = this.status.startsWith('hit');
    const why = !e.plan ? 'no plan yet' : e.plan.setup !== key ? 'the setup differs' : changedRead(e.plan.reads, this.facts);
    if (e.plan && why === undefined) {
      try {
        const plan = planOf(fillIn(e.plan.json, fill));
        this.status = `${specHit ? 'hit' : 'miss (the spec)'} ${e.plan.key}`;
        return plan;
      } catch {
        /* corrupt: assembled afresh below */
      }
    }
    const rec = new Recorder();
    const plan = assemble(template, rec.facts(this.facts), setup);
    const json = JSON.stringify({ ops: plan.ops, notes: [...plan.notes], origins: [...plan.origins] });
    const planKey = shortDigest(`${e.key}\0${key}\0${JSON.stringify(rec.reads)}`);
    e.plan = { setup: key, reads: rec.reads, key: planKey, json };
    this.dirty = true;
    this.status = specHit ? `miss (plan: ${why ?? 'the entry is corrupt'}) ${planKey}` : `${this.status.replace(/ \S+$/, '')} ${planKey}`;
    return planOf(fillIn(json, fill));
  }

  /** Writes the entry when it changed (after the plan, so that one write holds both). */
  store(): void {
    if (!this.dirty || !this.entry) return;
    this.dirty = false;
    let dir: string;
    try {
      dir = ensurePrivateDir(dirname(this.file), this.facts.ids.uid, 'the launch cache directory');
    } catch {
      return; // unsafe or not writable: computed every time
    }
    const entries = [this.entry, ...this.others].slice(0, MAX_ENTRIES);
    pruneCacheDir(dir, basename(this.file));
    const body = JSON.stringify({ format: FORMAT, entries });
    writeCacheFile(dir, basename(this.file), `${shortDigest(body)}\n${body}`);
  }
}
