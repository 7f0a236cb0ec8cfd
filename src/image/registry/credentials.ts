// Registry credentials: hutch's own file ($XDG_CONFIG_HOME/hutch/auth.json,
// mode 0600, written by `hutch login`) first, then the files podman and
// docker write, so a user logged in with either needs no second login:
//   $XDG_RUNTIME_DIR/containers/auth.json, $XDG_CONFIG_HOME/containers/auth.json,
//   ~/.docker/config.json
// All use the same shape: {"auths": {"<registry>[/<repo>]": {"auth": base64("user:pass")}}}.
// Credential helpers (credsStore/credHelpers) are not run: hutch runs no
// program it was not asked to.

import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HutchError } from '../../util/errors';
import { writeFileAtomic } from '../store';
import { DOCKER_HUB } from './reference';

export interface Credentials {
  username: string;
  password: string;
  /** The file they came from (for messages). */
  from: string;
}

export interface AuthFiles {
  /** hutch's own, the one login/logout write. */
  own: string;
  /** Read after it, in order. */
  others: string[];
}

export function authFiles(env: NodeJS.ProcessEnv, home: string, configDir: string): AuthFiles {
  const others: string[] = [];
  if (env.XDG_RUNTIME_DIR) others.push(join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  others.push(join(env.XDG_CONFIG_HOME || join(home, '.config'), 'containers', 'auth.json'));
  others.push(join(env.DOCKER_CONFIG || join(home, '.docker'), 'config.json'));
  return { own: join(configDir, 'auth.json'), others };
}

/** Keys a registry may be filed under (docker's legacy Hub URL included). */
function keysFor(registry: string): string[] {
  const keys = [registry, `https://${registry}`, `https://${registry}/v1/`, `https://${registry}/v2/`, `http://${registry}`];
  if (registry === DOCKER_HUB) keys.push('https://index.docker.io/v1/', 'index.docker.io', 'registry-1.docker.io');
  return keys;
}

type AuthsFile = { auths?: Record<string, { auth?: string; username?: string; password?: string }> };

function readAuths(file: string): AuthsFile | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const j = JSON.parse(text) as AuthsFile;
    return typeof j === 'object' && j ? j : undefined;
  } catch (e) {
    throw new HutchError(`${file} is not valid JSON: ${(e as Error).message}`, { hint: 'fix or remove the file' });
  }
}

/** Decode one entry of an auths map. */
export function decodeEntry(e: { auth?: string; username?: string; password?: string } | undefined, from: string): Credentials | undefined {
  if (!e || typeof e !== 'object') return undefined;
  if (typeof e.username === 'string' && typeof e.password === 'string') return { username: e.username, password: e.password, from };
  if (typeof e.auth !== 'string' || !e.auth) return undefined;
  const s = Buffer.from(e.auth, 'base64').toString('utf8');
  const i = s.indexOf(':');
  if (i <= 0) return undefined;
  return { username: s.slice(0, i), password: s.slice(i + 1), from };
}

/** Credentials for registry/repository: the most specific key (registry/repo prefix) of the first file that has one. */
export function lookupCredentials(files: AuthFiles, registry: string, repository: string): Credentials | undefined {
  for (const file of [files.own, ...files.others]) {
    const auths = readAuths(file)?.auths;
    if (!auths || typeof auths !== 'object') continue;
    const parts = repository.split('/');
    for (let n = parts.length; n > 0; n--) {
      const c = decodeEntry(auths[`${registry}/${parts.slice(0, n).join('/')}`], file);
      if (c) return c;
    }
    for (const k of keysFor(registry)) {
      const c = decodeEntry(auths[k], file);
      if (c) return c;
    }
  }
  return undefined;
}

export function saveCredentials(files: AuthFiles, registry: string, username: string, password: string): void {
  const cur = readAuths(files.own) ?? {};
  const auths = { ...(cur.auths ?? {}) };
  auths[registry] = { auth: Buffer.from(`${username}:${password}`).toString('base64') };
  mkdirSync(join(files.own, '..'), { recursive: true, mode: 0o700 });
  writeFileAtomic(files.own, `${JSON.stringify({ ...cur, auths }, null, 2)}\n`, 0o600);
}

/** False when hutch's file had nothing for the registry. */
export function removeCredentials(files: AuthFiles, registry: string): boolean {
  const cur = readAuths(files.own);
  if (!cur?.auths) return false;
  const auths = { ...cur.auths };
  let removed = false;
  for (const k of keysFor(registry)) {
    if (k in auths) {
      delete auths[k];
      removed = true;
    }
  }
  if (removed) writeFileAtomic(files.own, `${JSON.stringify({ ...cur, auths }, null, 2)}\n`, 0o600);
  return removed;
}

/** `--creds user:pass` (the password may contain ':'). */
export function parseCredsFlag(text: string): Credentials {
  const i = text.indexOf(':');
  if (i <= 0) throw new HutchError('--creds: expected USER:PASSWORD', { hint: 'e.g. --creds alice:s3cret (or hutch login REGISTRY)' });
  return { username: text.slice(0, i), password: text.slice(i + 1), from: '--creds' };
}
