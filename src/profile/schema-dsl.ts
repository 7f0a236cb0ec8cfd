// A tiny schema language: one definition gives
//   - validation of a positioned node tree (PNode) into typed, normalised
//     values, with every problem reported at file:line:col and every value's
//     origin recorded under its field path (`mounts[0].source`, `env.FOO`);
//   - a JSON Schema (draft 2020-12) for editors, with descriptions, defaults
//     and `additionalProperties: false`;
//   - the TypeScript type of the validated value (`Infer<typeof schema>`).
//
// Builders: string, enumOf, literal, boolean, number, size, duration, array,
// map, object (with field()), union, tagged (discriminated by a key), and
// transform (normalise a validated value without changing its JSON Schema).

import { HutchError, type SourceLocation } from '../util/errors';
import { didYouMean, suggest } from '../util/suggest';
import { formatDuration, parseDuration as parseDurationOrThrow, parseSize as parseSizeOrThrow } from '../util/units';

export { formatDuration };
import { describeNode, locOf, scalarText, type PMap, type PNode } from './node';

export type JsonSchema = { [key: string]: unknown };
export const INVALID: unique symbol = Symbol('invalid');
export type Invalid = typeof INVALID;
type NodeKind = PNode['kind'];

/** Validation state for one document. */
export class ValidationContext {
  readonly problems: HutchError[] = [];
  readonly origins = new Map<string, SourceLocation>();
  constructor(readonly file: string) {}

  report(node: { line: number; col: number }, path: string, message: string, hint?: string): Invalid {
    this.problems.push(new HutchError(`${label(path)}: ${message}`, { location: locOf(this.file, node), hint }));
    return INVALID;
  }

  /** Report with the message used as-is (no `path:` prefix). */
  reportRaw(node: { line: number; col: number }, message: string, hint?: string): Invalid {
    this.problems.push(new HutchError(message, { location: locOf(this.file, node), hint }));
    return INVALID;
  }

  /** Problems in document order. */
  sorted(): HutchError[] {
    return [...this.problems].sort((a, b) => (a.location?.line ?? 0) - (b.location?.line ?? 0) || (a.location?.column ?? 0) - (b.location?.column ?? 0));
  }
}

/** `profile` for the root, else the path itself. */
export function label(path: string): string {
  return path === '' ? 'profile' : path;
}

export function joinPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  return base === '' ? key : `${base}.${key}`;
}

export abstract class Schema<Out> {
  /** Phantom: the validated value's type. */
  declare readonly _out: Out;
  abstract readonly accepts: ReadonlySet<NodeKind>;

  /** Validate and record the origin of the value at `path`. */
  validate(node: PNode, path: string, ctx: ValidationContext): Out | Invalid {
    const v = this.check(node, path, ctx);
    if (v !== INVALID) ctx.origins.set(path, locOf(ctx.file, node));
    return v;
  }

  protected abstract check(node: PNode, path: string, ctx: ValidationContext): Out | Invalid;
  /** JSON Schema of this node (without description: fields add it). */
  abstract jsonSchema(): JsonSchema;
  /** What is expected, for messages: "a string", "true or false". */
  abstract expected(): string;
  /** Words this schema accepts literally, for "did you mean" in unions. */
  words(): readonly string[] {
    return [];
  }

  protected typeError(node: PNode, path: string, ctx: ValidationContext, hint?: string): Invalid {
    return ctx.report(node, path, `expected ${this.expected()}, got ${describeNode(node)}`, hint);
  }
}

export type Infer<S> = S extends Schema<infer O> ? O : never;

const SCALAR: ReadonlySet<NodeKind> = new Set(['scalar']);
const SEQ: ReadonlySet<NodeKind> = new Set(['seq']);
const MAP: ReadonlySet<NodeKind> = new Set(['map']);

type Check<T> = (value: T) => string | { message: string; hint?: string } | undefined;

function runCheck<T>(check: Check<T> | undefined, v: T, node: PNode, path: string, ctx: ValidationContext): boolean {
  const r = check?.(v);
  if (r === undefined) return true;
  if (typeof r === 'string') ctx.report(node, path, r);
  else ctx.report(node, path, r.message, r.hint);
  return false;
}

// ---------------------------------------------------------------- scalars

export interface StringOptions {
  /** Anchored pattern, also emitted to JSON Schema (keep it ECMA-262, no flags). */
  pattern?: RegExp;
  /** What the pattern means, for messages ("an absolute path"). */
  expected?: string;
  check?: Check<string>;
  /** Accept numbers/booleans and read them as their source text (for env values). */
  coerceScalars?: boolean;
  minLength?: number;
  examples?: string[];
  /** Literal words for "did you mean" when the pattern fails. */
  words?: string[];
}

class StringSchema extends Schema<string> {
  readonly accepts = SCALAR;
  constructor(readonly opts: StringOptions) {
    super();
  }
  protected check(node: PNode, path: string, ctx: ValidationContext): string | Invalid {
    if (node.kind !== 'scalar' || node.value === null) return this.typeError(node, path, ctx);
    if (typeof node.value !== 'string' && !this.opts.coerceScalars) {
      return this.typeError(node, path, ctx, `put quotes around it: "${scalarText(node)}"`);
    }
    const s = scalarText(node);
    if (this.opts.minLength !== undefined && s.length < this.opts.minLength) {
      return ctx.report(node, path, this.opts.minLength === 1 ? 'must not be empty' : `must be at least ${this.opts.minLength} characters`);
    }
    if (this.opts.pattern && !this.opts.pattern.test(s)) {
      const dym = this.opts.words ? didYouMean(s, this.opts.words) : '';
      return ctx.report(node, path, `expected ${this.expected()}, got ${JSON.stringify(s)}${dym ? `;${dym}` : ''}`);
    }
    return runCheck(this.opts.check, s, node, path, ctx) ? s : INVALID;
  }
  jsonSchema(): JsonSchema {
    const j: JsonSchema = this.opts.coerceScalars ? { type: ['string', 'number', 'boolean'] } : { type: 'string' };
    if (this.opts.pattern) j.pattern = this.opts.pattern.source;
    if (this.opts.minLength !== undefined) j.minLength = this.opts.minLength;
    if (this.opts.examples) j.examples = this.opts.examples;
    return j;
  }
  expected(): string {
    return this.opts.expected ?? 'a string';
  }
  override words(): readonly string[] {
    return this.opts.words ?? [];
  }
}

class EnumSchema<T extends string> extends Schema<T> {
  readonly accepts = SCALAR;
  constructor(readonly values: readonly T[]) {
    super();
  }
  protected check(node: PNode, path: string, ctx: ValidationContext): T | Invalid {
    if (node.kind !== 'scalar' || node.value === null) return this.typeError(node, path, ctx);
    const s = scalarText(node);
    if ((this.values as readonly string[]).includes(s)) return s as T;
    return ctx.report(
      node,
      path,
      `unknown value ${JSON.stringify(s)};${didYouMean(s, this.values) || ' it is not one of the valid values'}`,
      `valid values: ${this.values.join(', ')}`,
    );
  }
  jsonSchema(): JsonSchema {
    return { type: 'string', enum: [...this.values] };
  }
  expected(): string {
    return `one of ${this.values.join(', ')}`;
  }
  override words(): readonly string[] {
    return this.values;
  }
}

class LiteralSchema<T extends string> extends Schema<T> {
  readonly accepts = SCALAR;
  constructor(readonly value: T) {
    super();
  }
  protected check(node: PNode, path: string, ctx: ValidationContext): T | Invalid {
    if (node.kind === 'scalar' && node.value === this.value) return this.value;
    return this.typeError(node, path, ctx);
  }
  jsonSchema(): JsonSchema {
    return { const: this.value };
  }
  expected(): string {
    return JSON.stringify(this.value);
  }
  override words(): readonly string[] {
    return [this.value];
  }
}

class BooleanSchema extends Schema<boolean> {
  readonly accepts = SCALAR;
  protected check(node: PNode, path: string, ctx: ValidationContext): boolean | Invalid {
    if (node.kind === 'scalar' && typeof node.value === 'boolean') return node.value;
    const hint =
      node.kind === 'scalar' && typeof node.value === 'string' && /^(yes|no|on|off|y|n|true|false)$/i.test(node.value)
        ? 'write true or false without quotes (YAML 1.2 reads yes/no/on/off as strings)'
        : undefined;
    return this.typeError(node, path, ctx, hint);
  }
  jsonSchema(): JsonSchema {
    return { type: 'boolean' };
  }
  expected(): string {
    return 'true or false';
  }
}

export interface NumberOptions {
  integer?: boolean;
  min?: number;
  max?: number;
  /** min is exclusive (e.g. cpus > 0). */
  exclusiveMin?: boolean;
}

class NumberSchema extends Schema<number> {
  readonly accepts = SCALAR;
  constructor(readonly opts: NumberOptions) {
    super();
  }
  protected check(node: PNode, path: string, ctx: ValidationContext): number | Invalid {
    if (node.kind !== 'scalar' || typeof node.value !== 'number') {
      const hint =
        node.kind === 'scalar' && typeof node.value === 'string' && node.value.trim() !== '' && !Number.isNaN(Number(node.value))
          ? `remove the quotes: ${node.value}`
          : undefined;
      return this.typeError(node, path, ctx, hint);
    }
    const v = node.value;
    const { integer, min, max, exclusiveMin } = this.opts;
    if (!Number.isFinite(v)) return ctx.report(node, path, `expected a finite number, got ${scalarText(node)}`);
    if (integer && !Number.isInteger(v)) return ctx.report(node, path, `expected a whole number, got ${scalarText(node)}`);
    if (min !== undefined && (exclusiveMin ? v <= min : v < min)) {
      return ctx.report(node, path, `must be ${exclusiveMin ? 'greater than' : 'at least'} ${min}, got ${scalarText(node)}`);
    }
    if (max !== undefined && v > max) return ctx.report(node, path, `must be at most ${max}, got ${scalarText(node)}`);
    return v;
  }
  jsonSchema(): JsonSchema {
    const j: JsonSchema = { type: this.opts.integer ? 'integer' : 'number' };
    if (this.opts.min !== undefined) j[this.opts.exclusiveMin ? 'exclusiveMinimum' : 'minimum'] = this.opts.min;
    if (this.opts.max !== undefined) j.maximum = this.opts.max;
    return j;
  }
  expected(): string {
    const { integer, min, max, exclusiveMin } = this.opts;
    let s = integer ? 'a whole number' : 'a number';
    if (min !== undefined && max !== undefined) s += ` from ${min} to ${max}`;
    else if (min !== undefined) s += exclusiveMin ? ` greater than ${min}` : ` of at least ${min}`;
    return s;
  }
}

// ------------------------------------------------------- sizes, durations

const SIZE_RE = /^[0-9]+(?:\.[0-9]+)?\s*[bkmgtBKMGT]?(?:[iI]?[bB])?$/;
const SIZE_FACTORS: [string, number][] = [
  ['t', 1024 ** 4],
  ['g', 1024 ** 3],
  ['m', 1024 ** 2],
  ['k', 1024],
];

/** `512m` -> bytes (util/units, 1024-based); undefined if malformed. */
export function parseSize(text: string): number | undefined {
  try {
    return parseSizeOrThrow(text, 'size');
  } catch {
    return undefined;
  }
}

/** Bytes -> the shortest exact `512m`-style text. */
export function formatSize(bytes: number): string {
  for (const [u, f] of SIZE_FACTORS) if (bytes >= f && bytes % f === 0) return `${bytes / f}${u}`;
  return String(bytes);
}

class SizeSchema extends Schema<number> {
  readonly accepts = SCALAR;
  protected check(node: PNode, path: string, ctx: ValidationContext): number | Invalid {
    if (node.kind !== 'scalar') return this.typeError(node, path, ctx);
    let bytes: number | undefined;
    if (typeof node.value === 'number') bytes = Number.isInteger(node.value) && node.value >= 0 ? node.value : undefined;
    else if (typeof node.value === 'string') bytes = parseSize(node.value);
    if (bytes === undefined) return this.typeError(node, path, ctx, 'sizes are bytes or a number with a unit: b, k, m, g, t (1024-based)');
    return bytes;
  }
  jsonSchema(): JsonSchema {
    return {
      anyOf: [
        { type: 'integer', minimum: 0 },
        { type: 'string', pattern: SIZE_RE.source },
      ],
      examples: ['256m', '1g'],
    };
  }
  expected(): string {
    return 'a size such as 512m or 2g';
  }
}

const DURATION_RE = /^(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h))+$/;

/** `1h30m`, `90s`, `500ms` -> milliseconds (util/units; a bare number means seconds); undefined if malformed. */
export function parseDuration(text: string): number | undefined {
  try {
    return parseDurationOrThrow(text, 'duration');
  } catch {
    return undefined;
  }
}

class DurationSchema extends Schema<number> {
  readonly accepts = SCALAR;
  protected check(node: PNode, path: string, ctx: ValidationContext): number | Invalid {
    if (node.kind !== 'scalar') return this.typeError(node, path, ctx);
    let ms: number | undefined;
    if (typeof node.value === 'number') ms = node.value >= 0 ? Math.round(node.value * 1000) : undefined;
    else if (typeof node.value === 'string') ms = parseDuration(node.value);
    if (ms === undefined) return this.typeError(node, path, ctx, 'durations are seconds or numbers with units ms, s, m, h (e.g. 90s, 10m, 1h30m)');
    return ms;
  }
  jsonSchema(): JsonSchema {
    return {
      anyOf: [
        { type: 'number', minimum: 0 },
        { type: 'string', pattern: DURATION_RE.source },
      ],
      examples: ['30s', '10m', '1h'],
    };
  }
  expected(): string {
    return 'a duration such as 90s, 10m or 1h';
  }
}

// ------------------------------------------------------------ containers

class ArraySchema<T> extends Schema<T[]> {
  readonly accepts = SEQ;
  constructor(readonly item: Schema<T>) {
    super();
  }
  protected check(node: PNode, path: string, ctx: ValidationContext): T[] | Invalid {
    if (node.kind !== 'seq') {
      const hint = node.kind === 'scalar' && node.value !== null ? `write a list: [${scalarText(node)}], or one "- item" per line` : undefined;
      return this.typeError(node, path, ctx, hint);
    }
    const out: T[] = [];
    let ok = true;
    node.items.forEach((item, i) => {
      const v = this.item.validate(item, joinPath(path, i), ctx);
      if (v === INVALID) ok = false;
      else out.push(v);
    });
    return ok ? out : INVALID;
  }
  jsonSchema(): JsonSchema {
    return { type: 'array', items: this.item.jsonSchema() };
  }
  expected(): string {
    return `a list of ${stripArticle(this.item.expected())}`;
  }
}

function stripArticle(s: string): string {
  return s.replace(/^an? /, '') + (/^(an? )/.test(s) ? 's' : '');
}

export interface MapOptions {
  keyPattern?: RegExp;
  /** What keys are, for messages ("an environment variable name"). */
  keyExpected?: string;
}

class MapSchema<T> extends Schema<Record<string, T>> {
  readonly accepts = MAP;
  constructor(
    readonly value: Schema<T>,
    readonly opts: MapOptions,
  ) {
    super();
  }
  protected check(node: PNode, path: string, ctx: ValidationContext): Record<string, T> | Invalid {
    if (node.kind !== 'map') return this.typeError(node, path, ctx);
    const out: Record<string, T> = {};
    let ok = true;
    for (const e of node.entries) {
      const p = joinPath(path, e.key);
      if (this.opts.keyPattern && !this.opts.keyPattern.test(e.key)) {
        ctx.report(e, path, `${JSON.stringify(e.key)} is not ${this.opts.keyExpected ?? 'a valid key'}`);
        ok = false;
        continue;
      }
      const v = this.value.validate(e.value, p, ctx);
      if (v === INVALID) ok = false;
      else out[e.key] = v;
    }
    return ok ? out : INVALID;
  }
  jsonSchema(): JsonSchema {
    const j: JsonSchema = { type: 'object', additionalProperties: this.value.jsonSchema() };
    if (this.opts.keyPattern) j.propertyNames = { pattern: this.opts.keyPattern.source };
    return j;
  }
  expected(): string {
    return `a map of ${this.opts.keyExpected ? stripArticle(this.opts.keyExpected).replace(/s$/, '') : 'key'}: value`;
  }
}

export interface Field<S extends Schema<unknown> = Schema<unknown>> {
  schema: S;
  description: string;
  required?: boolean;
  /** Shown in JSON Schema (editor hover); the loader applies its own defaults. */
  default?: unknown;
  examples?: unknown[];
}

/** An optional field. */
export function field<S extends Schema<any>>(schema: S, description: string, opts: { default?: unknown; examples?: unknown[] } = {}): Field<S> {
  return { schema, description, default: opts.default, examples: opts.examples };
}

/** A field that must be present. (A separate builder: a `required` flag would be widened to boolean by inference.) */
export function requiredField<S extends Schema<any>>(schema: S, description: string, opts: { examples?: unknown[] } = {}): Field<S> & { required: true } {
  return { schema, description, required: true, examples: opts.examples };
}

type Simplify<T> = { [K in keyof T]: T[K] } & {};
type FieldsOut<F extends Record<string, Field<any>>> = Simplify<
  { [K in keyof F as F[K] extends { required: true } ? K : never]: Infer<F[K]['schema']> } & {
    [K in keyof F as F[K] extends { required: true } ? never : K]?: Infer<F[K]['schema']>;
  }
>;

export interface ObjectOptions {
  /** Name used in "unknown field" messages instead of the path (e.g. "bind mount"). */
  title?: string;
  /** Extra check on the whole validated object (cross-field rules). */
  check?: (value: Record<string, unknown>, node: PMap, path: string, ctx: ValidationContext) => boolean;
}

class ObjectSchema<F extends Record<string, Field<any>>> extends Schema<FieldsOut<F>> {
  readonly accepts = MAP;
  constructor(
    readonly fields: F,
    readonly opts: ObjectOptions,
  ) {
    super();
  }
  protected check(node: PNode, path: string, ctx: ValidationContext): FieldsOut<F> | Invalid {
    if (node.kind !== 'map') return this.typeError(node, path, ctx);
    const out: Record<string, unknown> = {};
    let ok = true;
    const names = Object.keys(this.fields);
    const meant = new Set<string>(); // fields that unknown keys probably meant
    for (const e of node.entries) {
      const f = Object.hasOwn(this.fields, e.key) ? this.fields[e.key] : undefined;
      if (!f) {
        const where = path === '' ? 'profile' : this.opts.title ? `${path} (${this.opts.title})` : path;
        const near = suggest(e.key, names);
        if (near) meant.add(near);
        ctx.reportRaw(e, `unknown field ${JSON.stringify(e.key)} in ${where}${near ? `; did you mean "${near}"?` : ''}`, `valid fields: ${names.join(', ')}`);
        ok = false;
        continue;
      }
      const v = f.schema.validate(e.value, joinPath(path, e.key), ctx);
      if (v === INVALID) ok = false;
      else out[e.key] = v;
    }
    for (const [name, f] of Object.entries(this.fields)) {
      if (f.required && !node.entries.some((e) => e.key === name)) {
        ok = false;
        // A misspelt key already reported as "did you mean" this field: one message is enough.
        if (!meant.has(name)) ctx.report(node, path, `missing field ${JSON.stringify(name)}`, `${name}: ${f.description}`);
      }
    }
    if (ok && this.opts.check && !this.opts.check(out, node, path, ctx)) ok = false;
    return ok ? (out as FieldsOut<F>) : INVALID;
  }
  jsonSchema(): JsonSchema {
    const properties: JsonSchema = {};
    for (const [name, f] of Object.entries(this.fields)) {
      const j: JsonSchema = { description: f.description, ...f.schema.jsonSchema() };
      if (f.default !== undefined) j.default = f.default;
      if (f.examples !== undefined) j.examples = f.examples;
      properties[name] = j;
    }
    const required = Object.entries(this.fields)
      .filter(([, f]) => f.required)
      .map(([n]) => n);
    const j: JsonSchema = { type: 'object', properties, additionalProperties: false };
    if (required.length) j.required = required;
    return j;
  }
  expected(): string {
    const keys = Object.keys(this.fields);
    return keys.length <= 4 ? `a map with ${keys.join(', ')}` : 'a map';
  }
}

class UnionSchema<T> extends Schema<T> {
  readonly accepts: ReadonlySet<NodeKind>;
  constructor(
    readonly variants: Schema<T>[],
    readonly expectedText?: string,
  ) {
    super();
    this.accepts = new Set(variants.flatMap((v) => [...v.accepts]));
  }
  protected check(node: PNode, path: string, ctx: ValidationContext): T | Invalid {
    const fits = this.variants.filter((v) => v.accepts.has(node.kind));
    if (fits.length === 0) return this.typeError(node, path, ctx);
    if (fits.length === 1) return fits[0].validate(node, path, ctx);
    // Several variants take this kind of node: the first that validates wins.
    for (const v of fits) {
      const scratch = new ValidationContext(ctx.file);
      const r = v.validate(node, path, scratch);
      if (r !== INVALID) {
        for (const [k, o] of scratch.origins) ctx.origins.set(k, o);
        return r;
      }
    }
    const text = node.kind === 'scalar' ? scalarText(node) : '';
    const dym = text ? didYouMean(text, this.words()) : '';
    return ctx.report(node, path, `expected ${this.expected()}, got ${describeNode(node)}${dym ? `;${dym}` : ''}`);
  }
  jsonSchema(): JsonSchema {
    return { anyOf: this.variants.map((v) => v.jsonSchema()) };
  }
  expected(): string {
    if (this.expectedText) return this.expectedText;
    const parts = this.variants.map((v) => v.expected());
    return parts.length <= 2 ? parts.join(' or ') : `${parts.slice(0, -1).join(', ')} or ${parts[parts.length - 1]}`;
  }
  override words(): readonly string[] {
    return this.variants.flatMap((v) => v.words());
  }
}

class TaggedSchema<T> extends Schema<T> {
  readonly accepts = MAP;
  constructor(
    readonly tag: string,
    readonly variants: Record<string, Schema<T>>,
  ) {
    super();
  }
  protected check(node: PNode, path: string, ctx: ValidationContext): T | Invalid {
    if (node.kind !== 'map') return this.typeError(node, path, ctx);
    const names = Object.keys(this.variants);
    const entry = node.entries.find((e) => e.key === this.tag);
    if (!entry) {
      return ctx.report(node, path, `missing field ${JSON.stringify(this.tag)}`, `${this.tag} is one of ${names.join(', ')}`);
    }
    const t = entry.value.kind === 'scalar' && typeof entry.value.value === 'string' ? entry.value.value : undefined;
    const variant = t === undefined ? undefined : Object.hasOwn(this.variants, t) ? this.variants[t] : undefined;
    if (!variant) {
      const p = joinPath(path, this.tag);
      if (t === undefined) return ctx.report(entry.value, p, `expected one of ${names.join(', ')}, got ${describeNode(entry.value)}`);
      return ctx.report(
        entry.value,
        p,
        `unknown value ${JSON.stringify(t)};${didYouMean(t, names) || ' it is not one of the valid values'}`,
        `valid values: ${names.join(', ')}`,
      );
    }
    return variant.validate(node, path, ctx);
  }
  jsonSchema(): JsonSchema {
    return { anyOf: Object.values(this.variants).map((v) => v.jsonSchema()) };
  }
  expected(): string {
    return `a map with ${this.tag}: ${Object.keys(this.variants).join(' | ')}`;
  }
}

class TransformSchema<In, Out> extends Schema<Out> {
  readonly accepts: ReadonlySet<NodeKind>;
  constructor(
    readonly inner: Schema<In>,
    readonly fn: (value: In, node: PNode, path: string, ctx: ValidationContext) => Out | Invalid,
  ) {
    super();
    this.accepts = inner.accepts;
  }
  override validate(node: PNode, path: string, ctx: ValidationContext): Out | Invalid {
    const v = this.inner.validate(node, path, ctx);
    return v === INVALID ? INVALID : this.fn(v, node, path, ctx);
  }
  protected check(): Out | Invalid {
    throw new Error('unreachable');
  }
  jsonSchema(): JsonSchema {
    return this.inner.jsonSchema();
  }
  expected(): string {
    return this.inner.expected();
  }
  override words(): readonly string[] {
    return this.inner.words();
  }
}

class JsonOverrideSchema<T> extends TransformSchema<T, T> {
  constructor(
    inner: Schema<T>,
    readonly json: (base: JsonSchema) => JsonSchema,
  ) {
    super(inner, (v) => v);
  }
  override jsonSchema(): JsonSchema {
    return this.json(this.inner.jsonSchema());
  }
}

// ---------------------------------------------------------------- builders

export const s = {
  string: (opts: StringOptions = {}): Schema<string> => new StringSchema(opts),
  enumOf: <const T extends string>(values: readonly T[]): Schema<T> => new EnumSchema<T>(values),
  literal: <const T extends string>(value: T): Schema<T> => new LiteralSchema<T>(value),
  boolean: (): Schema<boolean> => new BooleanSchema(),
  number: (opts: NumberOptions = {}): Schema<number> => new NumberSchema(opts),
  /** Bytes: an integer, or text like `512m` (1024-based). Validates to a number of bytes. */
  size: (): Schema<number> => new SizeSchema(),
  /** Seconds as a number, or text like `10m`, `1h30m`. Validates to milliseconds. */
  duration: (): Schema<number> => new DurationSchema(),
  array: <T>(item: Schema<T>): Schema<T[]> => new ArraySchema<T>(item),
  map: <T>(value: Schema<T>, opts: MapOptions = {}): Schema<Record<string, T>> => new MapSchema<T>(value, opts),
  object: <F extends Record<string, Field<any>>>(fields: F, opts: ObjectOptions = {}): Schema<FieldsOut<F>> => new ObjectSchema<F>(fields, opts),
  union: <V extends Schema<any>[]>(variants: [...V], expected?: string): Schema<Infer<V[number]>> =>
    new UnionSchema<Infer<V[number]>>(variants as Schema<Infer<V[number]>>[], expected),
  tagged: <V extends Record<string, Schema<any>>>(tag: string, variants: V): Schema<Infer<V[keyof V]>> =>
    new TaggedSchema<Infer<V[keyof V]>>(tag, variants as Record<string, Schema<Infer<V[keyof V]>>>),
  transform: <In, Out>(inner: Schema<In>, fn: (value: In, node: PNode, path: string, ctx: ValidationContext) => Out | Invalid): Schema<Out> =>
    new TransformSchema<In, Out>(inner, fn),
  /** Same validation, different JSON Schema (e.g. offer canonical names but accept other spellings). */
  withJson: <T>(inner: Schema<T>, json: (base: JsonSchema) => JsonSchema): Schema<T> => new JsonOverrideSchema<T>(inner, json),
};

/** Validate a whole document; returns the value and origins, or the problems found (in document order). */
export function validateDocument<T>(
  schema: Schema<T>,
  root: PNode,
  file: string,
): { ok: true; value: T; origins: Map<string, SourceLocation> } | { ok: false; problems: HutchError[] } {
  const ctx = new ValidationContext(file);
  const v = schema.validate(root, '', ctx);
  if (v === INVALID || ctx.problems.length) {
    const problems = ctx.sorted();
    if (problems.length === 0) problems.push(new HutchError('invalid profile', { location: locOf(file, root) }));
    return { ok: false, problems };
  }
  return { ok: true, value: v, origins: ctx.origins };
}

/** The JSON Schema document for `schema`. */
export function toJsonSchema(schema: Schema<unknown>, meta: { id?: string; title: string; description: string }): JsonSchema {
  const j: JsonSchema = { $schema: 'https://json-schema.org/draft/2020-12/schema' };
  if (meta.id) j.$id = meta.id;
  j.title = meta.title;
  j.description = meta.description;
  return { ...j, ...schema.jsonSchema() };
}
