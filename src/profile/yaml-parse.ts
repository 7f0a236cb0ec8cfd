// YAML text -> PNode, with 1-based line/column positions. This is the only
// module that touches the `yaml` package, and it loads it with a dynamic
// import on first use: start-up (built-in profiles only) never pays for it.

import { HutchError } from '../util/errors';
import type { PEntry, PNode } from './node';

type YamlModule = typeof import('yaml');
let yamlModule: YamlModule | undefined;

async function loadYaml(): Promise<YamlModule> {
  yamlModule ??= await import('yaml');
  return yamlModule;
}

/** Parse one profile document. Throws HutchError (with location) on YAML syntax errors. */
export async function parseYamlToNode(text: string, file: string): Promise<PNode> {
  return convertWith(await loadYaml(), text, file);
}

/** Synchronous variant for build scripts that already hold the module. */
export function parseYamlToNodeWith(yaml: YamlModule, text: string, file: string): PNode {
  return convertWith(yaml, text, file);
}

function convertWith(Y: YamlModule, text: string, file: string): PNode {
  const lc = new Y.LineCounter();
  // Duplicate keys are found in convert() below with a Set: yaml's own check
  // (uniqueKeys) compares each key with every earlier one, which made a map of
  // 20000 keys take seconds.
  const docs = Y.parseAllDocuments(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: false });
  const pos = (offset: number) => {
    const p = lc.linePos(Math.max(0, Math.min(offset, text.length)));
    return { line: p.line, col: p.col };
  };
  const list = Array.isArray(docs) ? docs : [];
  for (const doc of list) {
    const err = doc.errors[0];
    if (err) {
      const p = pos(err.pos[0]);
      throw new HutchError(`YAML syntax error: ${cleanMessage(err.message)}`, {
        location: { file, line: p.line, column: p.col },
        hint: 'fix the YAML syntax (indentation, a missing ":" or an unclosed quote are the usual causes)',
      });
    }
  }
  if (list.length > 1) {
    const p = pos(list[1].range[0]);
    throw new HutchError('a profile file must hold exactly one YAML document', {
      location: { file, line: p.line, column: p.col },
      hint: 'remove the "---" separator and the second document',
    });
  }
  const doc = list[0];
  if (!doc || doc.contents === null || doc.contents === undefined) {
    return { kind: 'map', line: 1, col: 1, entries: [] };
  }

  const convert = (node: unknown, fallback: { line: number; col: number }, depth: number): PNode => {
    if (depth > 64) {
      throw new HutchError('profile nests too deeply (an alias refers to itself?)', {
        location: { file, line: fallback.line, column: fallback.col },
      });
    }
    if (node === null || node === undefined) return { kind: 'scalar', value: null, ...fallback };
    if (Y.isAlias(node)) return convert(node.resolve(doc), posOf(node) ?? fallback, depth + 1);
    const here = posOf(node) ?? fallback;
    if (Y.isScalar(node)) {
      const v = node.value;
      if (typeof v === 'string' || typeof v === 'boolean' || v === null) return { kind: 'scalar', value: v, ...here };
      if (typeof v === 'number' || typeof v === 'bigint') {
        const raw = node.range ? text.slice(node.range[0], node.range[1]).trim() : String(v);
        return { kind: 'scalar', value: Number(v), raw, ...here };
      }
      // Dates and other tagged values: keep their text.
      const raw = node.range ? text.slice(node.range[0], node.range[1]).trim() : String(v);
      return { kind: 'scalar', value: raw, ...here };
    }
    if (Y.isSeq(node)) {
      return { kind: 'seq', items: node.items.map((it) => convert(it, here, depth + 1)), ...here };
    }
    if (Y.isMap(node)) {
      const entries: PEntry[] = [];
      const seen = new Set<string>();
      for (const pair of node.items) {
        const k = pair.key;
        const kpos = posOf(k) ?? here;
        let key: string;
        if (Y.isScalar(k)) {
          key = typeof k.value === 'string' ? k.value : k.range ? text.slice(k.range[0], k.range[1]).trim() : String(k.value);
        } else if (k === null || k === undefined) {
          key = '';
        } else {
          throw new HutchError('map keys must be plain words, not lists or maps', {
            location: { file, line: kpos.line, column: kpos.col },
          });
        }
        if (seen.has(key))
          throw new HutchError(`YAML syntax error: map keys must be unique ("${key}" appears twice)`, {
            location: { file, line: kpos.line, column: kpos.col },
            hint: 'remove or rename one of the two',
          });
        seen.add(key);
        // An empty value (`key:`) has a zero-width range after the colon: point at the key instead.
        const v = pair.value;
        const empty = v === null || v === undefined || (Y.isScalar(v) && v.value === null && v.range && v.range[0] === v.range[1]);
        entries.push({ key, ...kpos, value: empty ? { kind: 'scalar', value: null, ...kpos } : convert(v, kpos, depth + 1) });
      }
      return { kind: 'map', entries, ...here };
    }
    throw new HutchError('unsupported YAML node', { location: { file, line: here.line, column: here.col } });
  };

  const posOf = (n: unknown): { line: number; col: number } | undefined => {
    const r = (n as { range?: [number, number, number] } | null)?.range;
    return r ? pos(r[0]) : undefined;
  };

  return convert(doc.contents, { line: 1, col: 1 }, 0);
}

function cleanMessage(m: string): string {
  // yaml's messages sometimes carry a trailing " at line X, column Y" and a code frame.
  return m
    .split('\n')[0]
    .replace(/ at line \d+, column \d+:?$/, '')
    .trim();
}
