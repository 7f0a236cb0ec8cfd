// `hutch run`'s use of the launch cache (run-cache.ts): which runs use it,
// what their request is (the fixed inputs besides the host), and the plan's
// key (the setup it is assembled from).

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { HostFacts } from '../host/facts';
import { isPathRef, userProfileDir } from '../profile/load';
import type { ProfileFs, ResolvedProfile } from '../profile/load';
import type { Plan } from '../helper/plan';
import { assemblePlan, type SandboxSetup } from '../sandbox/assemble';
import type { SandboxSpec } from '../spec/types';
import type { SpecOverrides } from '../spec/resolve';
import { trace } from '../util/trace';
import { cacheBypass, fixedInputs, RunCache } from './run-cache';

/** What of `hutch run`'s flags the cache looks at. */
export interface LaunchArgs {
  o: SpecOverrides;
  profile: string;
  noCache: boolean;
  detach: boolean;
  pull?: string;
  restart: { kind: string };
  watch: string[];
}

/**
 * Why this run does not use the cache at all, or undefined. Runs that fetch
 * or build their root (an image, which may be pulled; `setup:` steps) and the
 * detached and restarting ones (their plan holds the record and the name in
 * more places) compute everything afresh, as without a cache.
 */
export function cacheOffReason(args: LaunchArgs, record: boolean, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const bypass = cacheBypass(env, args.noCache);
  if (bypass) return bypass;
  if (args.detach || record) return 'run -d';
  if (args.restart.kind !== 'no' || args.watch.length) return '--restart/--watch';
  if (args.o.rootfs?.startsWith('image:') || args.pull !== undefined) return 'an image root';
  if (builtinChain(args.profile, env)) return 'a built-in profile: computed faster than looked up';
  return undefined;
}

/**
 * A profile whose whole chain is built in (a name no user profile has, or
 * builtin:NAME; built-ins extend built-ins only): it comes pre-parsed, and
 * resolving it (~2.5 ms) costs less than checking a cache entry (~3-4 ms:
 * reading, its digest, asking every read again), so the cache is for chains
 * with a file, whose YAML it saves (15-20 ms; npm run bench --group startup).
 * The same two existence checks as the loader's first; a file appearing
 * in between is loaded without the cache.
 */
function builtinChain(ref: string, env: NodeJS.ProcessEnv): boolean {
  if (ref.startsWith('builtin:')) return true;
  if (isPathRef(ref)) return false;
  const dir = userProfileDir(env);
  return !existsSync(join(dir, `${ref}.yaml`)) && !existsSync(join(dir, `${ref}.yml`));
}

export interface LaunchCache {
  /** `hit KEY`, `miss (WHY) KEY`, `not used (WHY)`. */
  status(): string;
  spec(
    name: string,
    resolve: (facts: HostFacts, profileFs: ProfileFs, asName: string) => Promise<SandboxSpec>,
    profile: () => ResolvedProfile | undefined,
  ): Promise<SandboxSpec>;
  /** The plan of sandbox `name` in `sandboxDir` (`setupOf` makes the setup for a spec and state directory); undefined: assemble it as usual. */
  plan(name: string, sandboxDir: string, setupOf: (spec: SandboxSpec, sandboxDir: string) => SandboxSetup): Plan | undefined;
  /** Writes what changed (the spec alone, when no plan is asked for). */
  store(): void;
}

/** Why a loaded profile's spec is not kept, or undefined. */
function uncacheableProfile(p: ResolvedProfile): string | undefined {
  if (p.values.setup?.length) return 'the profile has setup: steps';
  if (p.values.rootfs.kind === 'image') return 'an image root';
  return undefined;
}

/** The plan's key: the setup as data (the storage driver by name and configuration). */
function setupKey(s: SandboxSetup): string {
  return JSON.stringify({ ...s, storage: [s.storage.name, s.storage.config ?? ''] });
}

/** The launch cache of this run, or undefined (cacheOffReason says why). */
export function launchCache(args: LaunchArgs, record: boolean, facts: HostFacts): LaunchCache | undefined {
  if (cacheOffReason(args, record, facts.env)) return undefined;
  // the name is filled in per sandbox, so it is not part of the key
  const cache = new RunCache(facts, fixedInputs(facts, { o: { ...args.o, name: undefined }, profile: args.profile }));
  return {
    status: () => cache.status,
    async spec(name, resolve, profile) {
      return cache.spec(name, async (f, pfs, token) => {
        const spec = await resolve(f, pfs, token);
        const p = profile();
        return { spec, notCached: p ? uncacheableProfile(p) : 'no profile' };
      });
    },
    plan(name, sandboxDir, setupOf) {
      const plan = cache.plan(name, sandboxDir, setupOf, setupKey, assemblePlan);
      cache.store();
      trace(`run: plan (cache: ${cache.status})`);
      return plan;
    },
    store: () => cache.store(),
  };
}
