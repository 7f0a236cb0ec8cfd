// What a Node single executable application (SEA) can load at run time, and
// a check that the CLI bundle asks for nothing else. build.mjs runs it on
// every build and fails the build when it finds anything (test/unit/build-check.test.ts).
//
// In a SEA the main script runs without a module loader:
//   - there is no dynamic import callback, so any `import()` left in the
//     bundle throws ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING when it runs (esbuild
//     turns `import('./x')` of a bundled file into a require, but leaves
//     `import('node:fs')` of a builtin as it is);
//   - `require` is the SEA's own, which loads Node's builtin modules only: a
//     `require('pkg')` of anything not bundled fails on the user's machine,
//     never on the developer's (where node_modules is next to the bundle);
//   - a `require(variable)` cannot be checked, so it is refused too.

import { isBuiltin } from 'node:module';

/** `line:column` (1-based) of offset `i` in `code`. */
function where(code, i) {
  let line = 1;
  let last = -1;
  for (let j = code.indexOf('\n'); j !== -1 && j < i; j = code.indexOf('\n', j + 1)) {
    line++;
    last = j;
  }
  return `${line}:${i - last}`;
}

function excerpt(code, i) {
  return code.slice(Math.max(0, i - 40), i + 40).replace(/\s+/g, ' ');
}

/**
 * Problems that would make the bundle fail inside a SEA, as sentences
 * (empty when there are none).
 *   metafile: esbuild's metafile of the build (its imports of externals)
 *   code:     the bundle's text
 *   file:     its name, for the messages
 */
export function seaProblems({ metafile, code, file = 'bundle' }) {
  const problems = [];
  for (const [out, o] of Object.entries(metafile?.outputs ?? {})) {
    for (const imp of o.imports ?? []) {
      if (!imp.external) continue;
      if (imp.kind === 'dynamic-import') {
        problems.push(`${out}: import('${imp.path}') stays a dynamic import in the bundle: a SEA has no dynamic import callback (use a static import)`);
      } else if (imp.kind === 'require-call' && !isBuiltin(imp.path)) {
        problems.push(`${out}: require('${imp.path}') is not bundled and not a Node builtin: a SEA's require loads builtins only`);
      } else if (imp.kind === 'import-statement' && !isBuiltin(imp.path)) {
        problems.push(`${out}: import of '${imp.path}' is not bundled and not a Node builtin`);
      }
    }
  }
  // The text itself: what the metafile cannot see (import() of an expression,
  // code esbuild passed through, require of a computed name).
  const dyn = /(?<![\w$.])import\(/g;
  for (let m; (m = dyn.exec(code)); ) {
    problems.push(`${file}:${where(code, m.index)}: dynamic import() in the bundle: ${excerpt(code, m.index)}`);
  }
  const req = /(?<![\w$.])require\s*\(\s*([^\s)])/g;
  for (let m; (m = req.exec(code)); ) {
    const q = m[1];
    if (q !== '"' && q !== "'" && q !== '`') {
      problems.push(`${file}:${where(code, m.index)}: require() of a computed name: ${excerpt(code, m.index)}`);
      continue;
    }
    const end = code.indexOf(q, m.index + m[0].length);
    const name = code.slice(m.index + m[0].length, end);
    if (!isBuiltin(name)) problems.push(`${file}:${where(code, m.index)}: require('${name}') is not a Node builtin: a SEA's require loads builtins only`);
  }
  return [...new Set(problems)];
}

// ---------------------------------------------------------------- node's own options

/** [start, end) file offsets of the ELF64 section `name`, or null. */
export function elfSection(buf, name) {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2 || buf[5] !== 1) return null; // ELF64 little-endian
  const shoff = Number(buf.readBigUInt64LE(0x28));
  const shentsize = buf.readUInt16LE(0x3a);
  const shnum = buf.readUInt16LE(0x3c);
  const shstrndx = buf.readUInt16LE(0x3e);
  const sh = (i) => shoff + i * shentsize;
  const strOff = Number(buf.readBigUInt64LE(sh(shstrndx) + 0x18));
  for (let i = 0; i < shnum; i++) {
    const nameOff = strOff + buf.readUInt32LE(sh(i));
    const end = buf.indexOf(0, nameOff);
    if (buf.toString('latin1', nameOff, end) !== name) continue;
    const off = Number(buf.readBigUInt64LE(sh(i) + 0x18));
    return [off, off + Number(buf.readBigUInt64LE(sh(i) + 0x20))];
  }
  return null;
}

const printable = (b) => b >= 0x20 && b <= 0x7e;

/**
 * Offsets of the C string literal `text` in [start, end): NUL on both sides,
 * and a neighbouring literal right before or after it (data that merely
 * holds the same bytes, such as V8's snapshot with its length-prefixed
 * strings, is not a literal and stays as it is).
 */
export function cStringLiterals(buf, text, start, end) {
  const needle = Buffer.from(`\0${text}\0`, 'latin1');
  const out = [];
  for (let i = buf.indexOf(needle, start); i !== -1 && i + needle.length <= end; i = buf.indexOf(needle, i + 1)) {
    const before = i >= 1 ? buf[i - 1] : 0;
    const after = buf[i + needle.length];
    if (printable(before) || printable(after)) out.push(i + 1);
  }
  return out;
}

/**
 * Makes a copy of node deaf to the two ways its command line and environment
 * reach node itself rather than the single executable's script:
 *   - NODE_OPTIONS: node reads it with getenv("NODE_OPTIONS") at start-up
 *     (`--require`, `--import`, `--inspect`... before hutch runs). The
 *     literal's first byte becomes NUL: getenv("") finds nothing.
 *   - --env-file / --env-file-if-exists: node looks for them in *every*
 *     argument up to `--`, including those after the script (so
 *     `hutch run --env-file x -- cmd` was node's, exit 9). Its matcher
 *     compares against these literals (or their tails `env-file`,
 *     `-if-exists`): a NUL at their third byte makes them match no
 *     argument (an argument holds no NUL).
 * Returns what it changed; throws when a literal is not found (another node
 * build: build.mjs then checks the result by running it anyway).
 */
export function neutraliseNodeOptions(buf) {
  const rodata = elfSection(buf, '.rodata');
  if (!rodata) throw new Error('no .rodata section: not an ELF64 node binary');
  const [start, end] = rodata;
  const changed = [];
  for (const off of cStringLiterals(buf, 'NODE_OPTIONS', start, end)) {
    buf[off] = 0;
    changed.push(`NODE_OPTIONS at ${off}`);
  }
  if (!changed.length) throw new Error('the literal "NODE_OPTIONS" is not in .rodata');
  const n = changed.length;
  for (const text of ['--env-file', '--env-file=', '--env-file-if-exists', '--env-file-if-exists=']) {
    for (const off of cStringLiterals(buf, text, start, end)) {
      buf[off + 2] = 0;
      changed.push(`${text} at ${off}`);
    }
  }
  for (const text of ['env-file', 'env-file=']) {
    for (const off of cStringLiterals(buf, text, start, end)) {
      buf[off] = 0;
      changed.push(`${text} at ${off}`);
    }
  }
  if (changed.length === n) throw new Error('no "--env-file" literal in .rodata');
  return changed;
}
