// Parsers for the small string syntaxes profiles share with podman's CLI:
// `-v SRC:DST[:ro|rw]`, `-p [[IP:][HOST]:]CTR[/PROTO]`, `--expose PORT[/PROTO]`.
// They return a value or an error message; callers attach the location.

import { isIPv4 } from 'node:net';
import { suggest } from '../util/suggest';

export type Protocol = 'tcp' | 'udp' | 'sctp';

export interface ProfileBindMount {
  type: 'bind';
  /** Host path as written (`.`, `~/x`, `${PWD}/src`); resolve with resolveHostPath(). */
  source: string;
  target: string;
  readOnly: boolean;
}
export interface ProfileTmpfsMount {
  type: 'tmpfs';
  target: string;
  /** Bytes. */
  size?: number;
  /** Permission bits, e.g. 0o1777. */
  mode?: number;
}
export interface ProfileVolumeMount {
  type: 'volume';
  /** Volume name. */
  source: string;
  target: string;
  readOnly: boolean;
}
export type ProfileMount = ProfileBindMount | ProfileTmpfsMount | ProfileVolumeMount;

export const VOLUME_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** A host path (bind source) rather than a volume name: starts with /, ., ~ or $. */
export function looksLikeHostPath(src: string): boolean {
  return /^[/.~$]/.test(src);
}

/** Split on ':' outside `${...}` (so `${SRC:-.}:/work` works). */
export function splitColons(text: string): string[] {
  const parts: string[] = [];
  let cur = '';
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '$' && text[i + 1] === '{') {
      depth++;
      cur += '${';
      i++;
      continue;
    }
    if (c === '}' && depth > 0) depth--;
    if (c === ':' && depth === 0) {
      parts.push(cur);
      cur = '';
      continue;
    }
    cur += c;
  }
  parts.push(cur);
  return parts;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string; hint?: string };

/** `SRC:DST[:OPTS]` (podman -v). SRC is a host path (/, ., ~, $...) or a volume name. */
export function parseMountString(text: string): Parsed<ProfileBindMount | ProfileVolumeMount> {
  const parts = splitColons(text);
  const usage = 'write SOURCE:TARGET or SOURCE:TARGET:ro, e.g. ".:/work" or "cache:/root/.cache:ro"';
  if (parts.length < 2 || parts.length > 3) {
    return { ok: false, message: `invalid mount ${JSON.stringify(text)}`, hint: usage };
  }
  const [source, target, opts = ''] = parts;
  if (source === '') return { ok: false, message: `mount ${JSON.stringify(text)} has an empty source`, hint: usage };
  if (!target.startsWith('/')) {
    return { ok: false, message: `mount target ${JSON.stringify(target)} must be an absolute path inside the sandbox`, hint: usage };
  }
  let readOnly = false;
  for (const o of opts.split(',').filter((x) => x !== '')) {
    if (o === 'ro') readOnly = true;
    else if (o === 'rw') readOnly = false;
    else {
      const near = suggest(o, ['ro', 'rw']);
      return {
        ok: false,
        message: `unknown mount option ${JSON.stringify(o)} in ${JSON.stringify(text)}${near ? `; did you mean "${near}"?` : ''}`,
        hint: 'mount options are ro or rw; for a tmpfs use {type: tmpfs, target: /path}',
      };
    }
  }
  if (looksLikeHostPath(source)) return { ok: true, value: { type: 'bind', source, target, readOnly } };
  if (!VOLUME_NAME_RE.test(source)) {
    return {
      ok: false,
      message: `mount source ${JSON.stringify(source)} is neither a path nor a volume name`,
      hint: 'host paths start with /, ./, ~ or ${VAR}; volume names use letters, digits, "_", "." and "-"',
    };
  }
  return { ok: true, value: { type: 'volume', source, target, readOnly } };
}

export interface PortRange {
  start: number;
  end: number;
}
export interface PortMapping {
  /** Host address to listen on; undefined means the default (127.0.0.1). */
  hostIp?: string;
  /** Undefined: any free host port. */
  hostPort?: PortRange;
  containerPort: PortRange;
  protocol: Protocol;
}

function parseRange(text: string, what: string): Parsed<PortRange> {
  const m = /^([0-9]+)(?:-([0-9]+))?$/.exec(text);
  if (!m) return { ok: false, message: `${what} ${JSON.stringify(text)} is not a port or a port range` };
  const start = Number(m[1]);
  const end = m[2] === undefined ? start : Number(m[2]);
  for (const p of [start, end]) {
    if (p < 1 || p > 65535) return { ok: false, message: `${what} ${p} is out of range (1-65535)` };
  }
  if (end < start) return { ok: false, message: `${what} range ${text} ends before it starts` };
  return { ok: true, value: { start, end } };
}

function splitProtocol(text: string): Parsed<{ rest: string; protocol: Protocol }> {
  const i = text.lastIndexOf('/');
  if (i < 0) return { ok: true, value: { rest: text, protocol: 'tcp' } };
  const p = text.slice(i + 1).toLowerCase();
  if (p !== 'tcp' && p !== 'udp' && p !== 'sctp') {
    return { ok: false, message: `unknown protocol ${JSON.stringify(text.slice(i + 1))}`, hint: 'protocols are tcp, udp and sctp' };
  }
  return { ok: true, value: { rest: text.slice(0, i), protocol: p } };
}

const PUBLISH_HINT = 'forms: CTR, HOST:CTR, IP:HOST:CTR, IP::CTR, each optionally with /udp; e.g. "8080:80" or "127.0.0.1:5353:53/udp"';

/** podman -p: `[[IP:][HOST]:]CTR[/PROTO]`, ranges `8000-8010:8000-8010`, IPv6 `[::1]:8080:80`. */
export function parsePortMapping(text: string): Parsed<PortMapping> {
  const pr = splitProtocol(text.trim());
  if (!pr.ok) return { ...pr, hint: pr.hint ?? PUBLISH_HINT };
  let rest = pr.value.rest;
  let hostIp: string | undefined;
  const v6 = /^\[([0-9A-Fa-f:.]+)\]:(.*)$/.exec(rest);
  if (v6) {
    hostIp = v6[1];
    rest = v6[2];
    if (!rest.includes(':')) rest = `:${rest}`; // "[::1]:80" means IP::CTR
  }
  const parts = rest.split(':');
  let hostText: string | undefined;
  let ctrText: string;
  if (parts.length === 1) ctrText = parts[0];
  else if (parts.length === 2) [hostText, ctrText] = parts;
  else if (parts.length === 3 && !v6) [hostIp, hostText, ctrText] = parts;
  else return { ok: false, message: `invalid port mapping ${JSON.stringify(text)}`, hint: PUBLISH_HINT };
  if (hostIp !== undefined && !v6 && !isIPv4(hostIp)) {
    return {
      ok: false,
      message: `invalid host address ${JSON.stringify(hostIp)} in ${JSON.stringify(text)}`,
      hint: 'write an IPv4 address, or an IPv6 address in brackets: [::1]:8080:80',
    };
  }
  const ctr = parseRange(ctrText, 'container port');
  if (!ctr.ok) return { ...ctr, hint: PUBLISH_HINT };
  let hostPort: PortRange | undefined;
  if (hostText !== undefined && hostText !== '') {
    const h = parseRange(hostText, 'host port');
    if (!h.ok) return { ...h, hint: PUBLISH_HINT };
    hostPort = h.value;
    if (hostPort.end - hostPort.start !== ctr.value.end - ctr.value.start) {
      return { ok: false, message: `host and container port ranges in ${JSON.stringify(text)} differ in length`, hint: PUBLISH_HINT };
    }
  }
  return { ok: true, value: { hostIp, hostPort, containerPort: ctr.value, protocol: pr.value.protocol } };
}

/** `3000`, `53/udp`, `8000-8010` -> normalised `3000/tcp`, `53/udp`, `8000-8010/tcp`. */
export function parseExpose(text: string): Parsed<string> {
  const pr = splitProtocol(text.trim());
  if (!pr.ok) return pr;
  const r = parseRange(pr.value.rest, 'port');
  if (!r.ok) return { ...r, hint: 'write a port, a range, optionally with a protocol: 3000, 53/udp, 8000-8010' };
  const { start, end } = r.value;
  return { ok: true, value: `${start === end ? start : `${start}-${end}`}/${pr.value.protocol}` };
}
