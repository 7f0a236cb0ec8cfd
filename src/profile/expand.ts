// ${VAR} expansion and host path resolution for profile values.
//
// Forms: ${VAR} (an error if VAR is unset), ${VAR:-default} (default when VAR
// is unset or empty), ${VAR-default} (default when VAR is unset), $$ (a
// literal $). A `$` not followed by `{` or `$` is kept as is.

import { homedir } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { HutchError, type SourceLocation } from '../util/errors';

export interface ExpandContext {
  /** Working directory of `hutch run`: relative host paths resolve against it; ${PWD} is it. */
  cwd: string;
  /** Host environment used for ${VAR}. */
  env: Record<string, string | undefined>;
}

export type Expanded = { ok: true; value: string } | { ok: false; message: string; hint: string };

export function expandVars(text: string, ctx: ExpandContext): Expanded {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c !== '$') {
      out += c;
      continue;
    }
    const next = text[i + 1];
    if (next === '$') {
      out += '$';
      i++;
      continue;
    }
    if (next !== '{') {
      out += c;
      continue;
    }
    const close = findClose(text, i + 2);
    if (close < 0) {
      return { ok: false, message: `unclosed "\${" in ${JSON.stringify(text)}`, hint: 'write ${NAME}, or $$ for a literal $' };
    }
    const body = text.slice(i + 2, close);
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)(.*))?$/s.exec(body);
    if (!m) {
      return {
        ok: false,
        message: `invalid variable reference "\${${body}}" in ${JSON.stringify(text)}`,
        hint: 'forms: ${NAME}, ${NAME:-default}, ${NAME-default}; $$ is a literal $',
      };
    }
    const [, name, op, dflt] = m;
    const value = lookup(name, ctx);
    if (op === ':-' ? value === undefined || value === '' : value === undefined) {
      if (op === undefined) {
        return {
          ok: false,
          message: `host variable ${name} is not set (used in ${JSON.stringify(text)})`,
          hint: `set ${name}, or give a default: \${${name}:-value}`,
        };
      }
      const inner = expandVars(dflt, ctx);
      if (!inner.ok) return inner;
      out += inner.value;
    } else {
      out += value;
    }
    i = close;
  }
  return { ok: true, value: out };
}

function findClose(text: string, from: number): number {
  let depth = 1;
  for (let j = from; j < text.length; j++) {
    if (text[j] === '$' && text[j + 1] === '{') {
      depth++;
      j++;
    } else if (text[j] === '}' && --depth === 0) return j;
  }
  return -1;
}

function lookup(name: string, ctx: ExpandContext): string | undefined {
  if (name === 'PWD') return ctx.cwd;
  return ctx.env[name];
}

/** Like expandVars, but throws HutchError (at `location`, naming `what`). */
export function expandOrThrow(text: string, ctx: ExpandContext, what: string, location?: SourceLocation): string {
  const r = expandVars(text, ctx);
  if (!r.ok) throw new HutchError(`${what}: ${r.message}`, { location, hint: r.hint });
  return r.value;
}

/**
 * A host path as written in a profile (`.`, `./src`, `~/x`, `${PWD}/data`,
 * `/opt`) -> an absolute path: variables expanded, `~` is $HOME, relative
 * paths resolve against `cwd`. Throws HutchError for unset variables.
 */
export function resolveHostPath(value: string, ctx: ExpandContext & { what?: string; location?: SourceLocation }): string {
  let p = expandOrThrow(value, ctx, ctx.what ?? 'path', ctx.location);
  if (p === '~' || p.startsWith('~/')) p = (ctx.env.HOME || homedir()) + p.slice(1);
  return isAbsolute(p) ? resolve(p) : resolve(ctx.cwd, p);
}
