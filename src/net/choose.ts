// Which user-mode NAT driver runs a sandbox. `--network slirp` (and
// `network: slirp` in profiles) means "user-mode NAT, the best one here":
// pasta where it can run (it needs setpriv for its lifetime guard and a host
// default route to copy), since it moves about twice the data of slirp4netns;
// slirp4netns otherwise. `--network pasta` and `--network-driver` pin one.

import { accessSync, constants } from 'node:fs';
import { HutchError } from '../util/errors';
import { findExecutable } from '../host/which';
import { installHint } from '../host/fixes';
import { defaultRoute } from './host-route';
import { pastaVersion } from './pasta-version';
import type { NetDriverName } from './types';

export interface DriverChoice {
  name: NetDriverName;
  binary: string;
  /** util-linux setpriv: gives pasta PR_SET_PDEATHSIG so it dies with hutch. */
  setpriv?: string;
  why: string;
  /** One line for stderr when the choice is known to be unreliable. */
  warning?: string;
}

function tunUsable(): string | undefined {
  try {
    accessSync('/dev/net/tun', constants.R_OK | constants.W_OK);
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? 'error';
  }
}

function pastaBlocker(env: NodeJS.ProcessEnv): { binary?: string; setpriv?: string; problem?: string } {
  const binary = findExecutable('pasta', env);
  if (!binary) return { problem: `pasta is not installed (${installHint('pasta')})` };
  const setpriv = findExecutable('setpriv', env);
  if (!setpriv) return { binary, problem: 'setpriv (util-linux) is missing: hutch needs it to tie pasta to its own life' };
  if (!defaultRoute()) return { binary, setpriv, problem: 'the host has no default IPv4 route for pasta to copy' };
  return { binary, setpriv };
}

/** `cacheDir` keeps `pasta --version`'s answer per binary (undefined: ask every time). */
export function chooseNetDriver(mode: 'slirp' | 'pasta', requested: 'auto' | NetDriverName, env: NodeJS.ProcessEnv, cacheDir?: string): DriverChoice {
  if (mode === 'pasta' && requested === 'slirp4netns') {
    throw new HutchError('--network pasta and --network-driver slirp4netns contradict each other', {
      hint: 'use --network slirp --network-driver slirp4netns, or --network pasta alone',
    });
  }
  const tun = tunUsable();
  if (tun) {
    throw new HutchError(`network ${mode}: /dev/net/tun cannot be opened (${tun})`, {
      hint: 'user-mode NAT needs read-write access to /dev/net/tun (usually mode 0666; e.g. `setfacl -m u:$USER:rw /dev/net/tun`), or use --network none',
    });
  }
  const want = mode === 'pasta' ? 'pasta' : requested;
  if (want === 'pasta') {
    const p = pastaBlocker(env);
    if (p.problem) throw new HutchError(`network driver pasta cannot run: ${p.problem}`, { hint: 'use --network-driver slirp4netns' });
    const v = pastaVersion(p.binary!, cacheDir);
    return {
      name: 'pasta',
      binary: p.binary!,
      setpriv: p.setpriv,
      why: mode === 'pasta' ? '--network pasta' : '--network-driver pasta',
      warning: v.stalls ? `warning: ${v.why}; --network-driver slirp4netns does not stall` : undefined,
    };
  }
  const slirp = findExecutable('slirp4netns', env);
  if (want === 'slirp4netns') {
    if (!slirp) throw new HutchError('network driver slirp4netns is not installed', { hint: `${installHint('slirp4netns')}; or use --network-driver pasta` });
    return { name: 'slirp4netns', binary: slirp, why: '--network-driver slirp4netns' };
  }
  const p = pastaBlocker(env);
  const v = p.problem ? undefined : pastaVersion(p.binary!, cacheDir);
  if (v && !v.stalls) return { name: 'pasta', binary: p.binary!, setpriv: p.setpriv, why: `auto: pasta is installed and faster than slirp4netns (${v.why})` };
  if (slirp) return { name: 'slirp4netns', binary: slirp, why: `auto: ${v ? `${v.why}; slirp4netns does not stall` : p.problem}` };
  // Only a stalling pasta here: better a NAT that may stall than none.
  if (v)
    return {
      name: 'pasta',
      binary: p.binary!,
      setpriv: p.setpriv,
      why: 'auto: slirp4netns is not installed',
      warning: `warning: ${v.why}; ${installHint('slirp4netns')}`,
    };
  throw new HutchError('network slirp needs slirp4netns or pasta, and neither can run here', {
    hint: `slirp4netns: ${installHint('slirp4netns')}; ${p.problem}; or use --network none`,
  });
}
