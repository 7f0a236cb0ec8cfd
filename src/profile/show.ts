// Text of a resolved profile for `hutch profile show`: YAML (with each
// value's origin as a comment) or JSON.

import type { SourceLocation } from '../util/errors';
import type { ResolvedProfile } from './load';
import type { ProfileValues } from './merge';
import { formatDuration, formatSize } from './schema-dsl';
import type { ProfileMount } from './values';

/** Values as a user would write them (sizes as 512m, durations as 10m, rootfs as text, modes in octal). */
export function displayValues(v: ProfileValues): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (v.description !== undefined) out.description = v.description;
  out.rootfs = v.rootfs.kind === 'host' ? 'host' : v.rootfs.kind === 'dir' ? `dir:${v.rootfs.path}` : { image: v.rootfs.name };
  out.storageDriver = v.storageDriver;
  out.readOnly = v.readOnly;
  if (v.tmpfsBudget !== undefined) out.tmpfsBudget = formatSize(v.tmpfsBudget);
  if (v.hostname !== undefined) out.hostname = v.hostname;
  out.workdir = v.workdir;
  if (v.command !== undefined) out.command = v.command;
  out.env = v.env;
  out.envFile = v.envFile;
  out.passEnv = v.passEnv;
  out.home = v.home;
  out.hideHomes = v.hideHomes;
  out.mounts = v.mounts.map(displayMount);
  out.hide = v.hide;
  // names/aliases only when the profile joins named networks (a mode otherwise)
  const { names, aliases, ips, mode, ...rest } = v.network;
  out.network = names.length
    ? { name: names.length === 1 ? names[0] : names, ...(aliases.length ? { aliases } : {}), ...(ips && Object.keys(ips).length ? { ip: ips } : {}), ...rest }
    : { mode, ...rest };
  out.capabilities = v.capabilities;
  const l: Record<string, unknown> = { ...v.limits };
  if (v.limits.memory !== undefined) l.memory = formatSize(v.limits.memory);
  if (v.limits.memorySwap !== undefined) l.memorySwap = formatSize(v.limits.memorySwap);
  if (v.limits.timeout !== undefined) l.timeout = formatDuration(v.limits.timeout);
  out.limits = l;
  out.security = { ...v.security };
  return out;
}

function displayMount(m: ProfileMount): Record<string, unknown> {
  if (m.type !== 'tmpfs') return { ...m };
  const out: Record<string, unknown> = { type: 'tmpfs', target: m.target };
  if (m.size !== undefined) out.size = formatSize(m.size);
  if (m.mode !== undefined) out.mode = m.mode.toString(8).padStart(4, '0');
  return out;
}

export function showJson(p: ResolvedProfile): string {
  return `${JSON.stringify({ name: p.name, chain: p.chain, files: p.files, ...displayValues(p.values) }, null, 2)}\n`;
}

const RESERVED =
  /^(true|false|null|yes|no|on|off|y|n|~)$|^[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9]*)?)([eE][-+]?[0-9]+)?$|^0x[0-9a-fA-F]+$|^0o[0-7]+$|^[-+]?\.inf$|^\.nan$/i;

/** A string as a YAML plain scalar when that reads back the same, else double-quoted. */
function scalar(v: unknown): string {
  if (typeof v !== 'string') return String(v);
  const plain = v !== '' && !RESERVED.test(v) && /^[^\s\-?:,[\]{}#&*!|>'"%@`]/.test(v) && !/\s$/.test(v) && !/: |:$| #|[\n\t]/.test(v);
  return plain ? v : JSON.stringify(v);
}

/** YAML text with `# file:line:col` after each value that came from a file. */
export function showYaml(p: ResolvedProfile, opts: { shortenFile?: (file: string) => string } = {}): string {
  const short = opts.shortenFile ?? ((f: string) => f);
  const where = (o: SourceLocation | undefined) => (o ? `${short(o.file)}:${o.line}:${o.column}` : '');
  const lines: string[] = [`# profile ${p.name}: ${p.chain.join(' <- ')}`];
  lines.push(`# merged from ${p.files.map(short).join(', ')}; "# default" marks values no profile set`);
  const emit = (text: string, path: string | undefined) => {
    const o = path === undefined ? undefined : p.originOf(path);
    const c = path === undefined ? '' : o ? where(o) : 'default';
    lines.push(c ? `${text.padEnd(40)} # ${c}` : text);
  };
  const walk = (value: unknown, path: string, indent: string, key: string | undefined) => {
    const head = key === undefined ? `${indent}-` : `${indent}${key}:`;
    if (Array.isArray(value)) {
      if (value.length === 0) return emit(`${head} []`, path);
      emit(head, path);
      value.forEach((item, i) => {
        const ip = `${path}[${i}]`;
        if (item !== null && typeof item === 'object') {
          const entries = Object.entries(item);
          const [fk, fv] = entries[0];
          emit(`${indent}  - ${fk}: ${scalar(fv)}`, ip);
          for (const [k, v] of entries.slice(1)) emit(`${indent}    ${k}: ${scalar(v)}`, undefined);
        } else emit(`${indent}  - ${scalar(item)}`, ip);
      });
      return;
    }
    if (value !== null && typeof value === 'object') {
      const entries = Object.entries(value);
      if (entries.length === 0) return emit(`${head} {}`, path);
      emit(head, path);
      for (const [k, v] of entries) walk(v, path === '' ? k : `${path}.${k}`, `${indent}  `, k);
      return;
    }
    emit(`${head} ${scalar(value)}`, path);
  };
  for (const [k, v] of Object.entries(displayValues(p.values))) walk(v, k, '', k);
  return `${lines.join('\n')}\n`;
}
