// What a sandbox's read-write binds hand over of the user's data. A profile
// such as dev-server binds "." read-write: run from $HOME it gives the
// command every key, token and shell startup file there; run from / it gives
// it the whole host as far as the user can write. The first is said out
// loud, the second refused.

import { HutchError } from '../util/errors';
import type { SandboxSpec } from './types';

function isUnder(path: string, dir: string): boolean {
  return path === dir || dir === '/' || path.startsWith(`${dir}/`);
}

/**
 * Warnings (one line each) for binds that expose a home directory; a
 * HutchError (125) for a read-write bind of the host's `/`. `homes`: the
 * account's home directory and $HOME.
 */
export function exposureWarnings(
  spec: Pick<SandboxSpec, 'mounts' | 'profiles'> & { origins: Pick<SandboxSpec['origins'], 'mounts'> },
  homes: readonly string[],
): string[] {
  const out: string[] = [];
  for (const m of spec.mounts) {
    if (m.type !== 'bind') continue;
    // a profile's mount is named by its field (and file:line in the origin), a flag as typed
    const origin = spec.origins.mounts[m.target];
    const from = origin?.location ? `profile ${spec.profiles[0]}: ${origin.what}` : (origin?.what ?? 'a mount');
    if (m.source === '/' && !m.readOnly) {
      throw new HutchError(`${from}: ${m.source}:${m.target} would mount the host's whole root filesystem read-write into the sandbox`, {
        hint:
          m.target === '/work'
            ? 'run hutch from your project directory (cd ~/src/app), not from /'
            : 'mount only the directories the command needs, or add :ro',
      });
    }
    const home = homes.find((h) => h && h !== '/' && isUnder(h, m.source));
    if (home) {
      const what = m.source === home ? `your home directory ${home}` : `${m.source}, which contains your home directory ${home}`;
      out.push(
        `warning: ${from} mounts ${what} ${m.readOnly ? 'read-only' : 'read-write'} at ${m.target}: everything in it (ssh keys, tokens, shell startup files) is ${m.readOnly ? 'readable' : 'readable and writable'} inside; run from a project directory instead`,
      );
    }
  }
  return out;
}
