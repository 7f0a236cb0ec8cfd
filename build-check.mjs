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
  const dyn = /(?<![\w$.])import\s*\(/g;
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
