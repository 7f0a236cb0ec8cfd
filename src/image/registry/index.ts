// The registry side of the image store, as the CLI uses it: pull, login,
// logout, and "make sure this image is here" for `hutch run --rootfs image:REF`
// with podman's --pull policies.

import { HutchError } from '../../util/errors';
import { storeContext } from '../context';
import type { ImageRecord } from '../store';
import { RegistryClient } from './client';
import { authFiles, parseCredsFlag, removeCredentials, saveCredentials } from './credentials';
import { parsePlatform } from './manifest';
import { MultiProgress } from '../progress';
import { candidates, pullImage, storedName } from './pull';
import { parseName } from './reference';

export interface PullFlags {
  platform?: string;
  tlsVerify: boolean;
  creds?: string;
  quiet?: boolean;
}

export async function pullWith(text: string, f: PullFlags): Promise<ImageRecord> {
  const ctx = storeContext();
  return pullImage(text, {
    store: ctx.store,
    ids: ctx.ids,
    paths: ctx.paths,
    home: ctx.ids.home,
    env: process.env,
    progress: new MultiProgress(process.stderr, f.quiet),
    platform: f.platform ? parsePlatform(f.platform) : undefined,
    tlsVerify: f.tlsVerify,
    creds: f.creds ? parseCredsFlag(f.creds) : undefined,
  });
}

function checkRegistry(registry: string): void {
  let p: ReturnType<typeof parseName> | undefined;
  try {
    p = parseName(`${registry}/x`);
  } catch {
    p = undefined;
  }
  if (p?.registry !== registry)
    throw new HutchError(`"${registry}" is not a registry host[:port]`, { hint: 'e.g. hutch login ghcr.io or hutch login localhost:5000' });
}

export async function loginWith(registry: string, username: string, password: string, tlsVerify: boolean): Promise<string> {
  checkRegistry(registry);
  const reg = registry;
  const ctx = storeContext();
  const client = new RegistryClient(reg, '', { tlsVerify, creds: { username, password, from: 'hutch login' } });
  await client.ping();
  const files = authFiles(process.env, ctx.ids.home, ctx.paths.configDir);
  saveCredentials(files, reg, username, password);
  return files.own;
}

export function logoutFrom(registry: string): string {
  const ctx = storeContext();
  const files = authFiles(process.env, ctx.ids.home, ctx.paths.configDir);
  if (!removeCredentials(files, registry)) {
    throw new HutchError(`not logged in to ${registry} (nothing in ${files.own})`, {
      hint: "credentials in podman's or docker's files are theirs: podman logout / docker logout",
    });
  }
  return files.own;
}

export type PullPolicy = 'missing' | 'always' | 'never';

export function parsePullPolicy(text: string | undefined): PullPolicy {
  if (text === undefined) return 'missing';
  if (text === 'missing' || text === 'always' || text === 'never') return text;
  if (text === 'newer') return 'always';
  throw new HutchError(`--pull: "${text}" is not missing, always or never`, {
    hint: 'missing (default): pull when not stored; always: pull every time; never: use only stored images',
  });
}

/**
 * The store name for `--rootfs image:TEXT`: an image stored under TEXT itself
 * (imports), else under its full reference, pulled when the policy says.
 */
export async function ensureImage(text: string, policy: PullPolicy, say: (line: string) => void, tlsVerify = true): Promise<string> {
  const ctx = storeContext();
  if (policy !== 'always' && ctx.store.image(text)) return text;
  let names: string[];
  try {
    names = candidates(text, ctx.paths).map(storedName);
  } catch (e) {
    if (policy === 'never' || !(e instanceof HutchError)) throw e;
    ctx.store.requireImage(text, 'rootfs image'); // not a reference either: the store's near-miss message
    throw e;
  }
  if (policy !== 'always') {
    for (const n of names) if (ctx.store.image(n)) return n;
  }
  if (policy === 'never') {
    throw new HutchError(`rootfs image "${text}" is not stored and --pull never forbids pulling it`, { hint: `hutch pull ${text}, or --pull missing` });
  }
  say(`hutch: pulling ${text}${policy === 'always' ? ' (--pull always)' : ' (not stored yet)'}`);
  try {
    return (await pullWith(text, { tlsVerify })).name;
  } catch (e) {
    if (!(e instanceof HutchError) || policy === 'always') throw e;
    // Neither stored nor pullable: say both, with the store's near miss (a typo of an imported name is likelier).
    let hint = e.hint;
    try {
      ctx.store.requireImage(text);
    } catch (nf) {
      if (nf instanceof HutchError && nf.hint?.startsWith('did you mean')) hint = nf.hint;
    }
    throw new HutchError(`rootfs image "${text}" does not exist in the store, and pulling it failed: ${e.message}`, { hint });
  }
}
