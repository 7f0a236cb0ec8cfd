// A parsed profile document as a plain tree with positions: the common input
// of validation for files on disk (parsed lazily with `yaml`, see
// yaml-parse.ts) and for the built-in profiles (parsed at build time into
// builtin-data.generated.ts, so start-up never loads the YAML parser).

import type { SourceLocation } from '../util/errors';
import type { ProfileLayer } from './schema';

export type ScalarValue = string | number | boolean | null;

interface Pos {
  /** 1-based. */
  line: number;
  /** 1-based. */
  col: number;
}

export interface PScalar extends Pos {
  kind: 'scalar';
  value: ScalarValue;
  /** Source text of a non-string scalar (`1777`, `0x10`, `1.50`), so that numbers can be read back as written. */
  raw?: string;
}

export interface PSeq extends Pos {
  kind: 'seq';
  items: PNode[];
}

export interface PEntry extends Pos {
  /** The key, as a string (non-string keys are converted with their source text). Position is the key's. */
  key: string;
  value: PNode;
}

export interface PMap extends Pos {
  kind: 'map';
  entries: PEntry[];
}

export type PNode = PScalar | PSeq | PMap;

/** One parsed document: its display file name and its root node. */
export interface PDocument {
  /** What messages call the file: an absolute path, or `builtin:NAME.yaml`. */
  file: string;
  root: PNode;
}

export function locOf(file: string, node: Pos): SourceLocation {
  return { file, line: node.line, column: node.col };
}

/** "a list", "a map", "the string "x"", "the number 3", "true", "an empty value". */
export function describeNode(node: PNode): string {
  switch (node.kind) {
    case 'seq':
      return 'a list';
    case 'map':
      return 'a map';
    case 'scalar': {
      const v = node.value;
      if (v === null) return 'an empty value';
      if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
      if (typeof v === 'number') return `the number ${node.raw ?? v}`;
      return String(v);
    }
  }
}

/** A scalar's text as written: strings as themselves, numbers/booleans by source text. */
export function scalarText(node: PScalar): string {
  if (typeof node.value === 'string') return node.value;
  return node.raw ?? String(node.value);
}

/** Plain JS value of a node (no positions). */
export function toPlain(node: PNode): unknown {
  switch (node.kind) {
    case 'scalar':
      return node.value;
    case 'seq':
      return node.items.map(toPlain);
    case 'map': {
      const o: Record<string, unknown> = {};
      for (const e of node.entries) o[e.key] = toPlain(e.value);
      return o;
    }
  }
}

export function getEntry(node: PNode, key: string): PEntry | undefined {
  return node.kind === 'map' ? node.entries.find((e) => e.key === key) : undefined;
}

/** A built-in profile as generated into builtin-data.generated.ts by gen-builtins.mjs. */
export interface BuiltinProfile {
  name: string;
  /** `builtin:NAME.yaml`: what messages call it. */
  file: string;
  description?: string;
  /** The commented YAML source, for `hutch profile show --source`. */
  text: string;
  root: PNode;
  /** Validated at build time, so that start-up skips validation: the layer and its origins ([path, line, column]). */
  layer?: ProfileLayer;
  origins?: [string, number, number][];
}
