// Where hutch keeps things on the host (XDG base directories):
// state of running sandboxes under the runtime dir, layers/volumes under the
// data dir, the extracted helper and probe results under the cache dir.

import { join } from 'node:path';

export interface HutchPaths {
  runtimeDir: string; // $XDG_RUNTIME_DIR or /tmp/hutch-run-UID; not hidden-by-default when outside $HOME
  stateDir: string; // <runtimeDir>/hutch
  /** Records of detached sandboxes (status, log): $XDG_STATE_HOME/hutch/records, kept across reboots like podman's. */
  recordsDir: string;
  dataDir: string;
  cacheDir: string;
  configDir: string;
  sessionBus?: string;
}

export function hutchPaths(env: NodeJS.ProcessEnv, home: string, uid: number): HutchPaths {
  const runtimeDir = env.XDG_RUNTIME_DIR || `/tmp/hutch-run-${uid}`;
  const bus = env.DBUS_SESSION_BUS_ADDRESS?.match(/unix:path=([^,;]+)/)?.[1];
  return {
    runtimeDir,
    stateDir: join(runtimeDir, 'hutch'),
    recordsDir: join(env.XDG_STATE_HOME || join(home, '.local/state'), 'hutch', 'records'),
    dataDir: join(env.XDG_DATA_HOME || join(home, '.local/share'), 'hutch'),
    cacheDir: join(env.XDG_CACHE_HOME || join(home, '.cache'), 'hutch'),
    configDir: join(env.XDG_CONFIG_HOME || join(home, '.config'), 'hutch'),
    sessionBus: bus,
  };
}

// Creating and verifying them: src/host/private-dir.ts.
export { ensurePrivateDir } from './private-dir';
