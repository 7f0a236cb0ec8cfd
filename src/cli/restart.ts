// `--restart no|on-failure[:N]|always` and `--watch PATH` for `hutch run`:
// when the command ends (or files under a watched path change) the sandbox
// is started again, a fresh one with the same spec: what a dev server needs.
// Watching uses Node's own recursive fs.watch (inotify, no dependency),
// debounced, ignoring .git and node_modules.

import { watch, existsSync, type FSWatcher } from 'node:fs';
import { resolve, join } from 'node:path';
import { HutchError } from '../util/errors';

export interface RestartPolicy {
  kind: 'no' | 'on-failure' | 'always';
  /** on-failure:N: at most N restarts. */
  max?: number;
}

export function parseRestart(text: string | undefined): RestartPolicy {
  if (text === undefined || text === 'no') return { kind: 'no' };
  if (text === 'always') return { kind: 'always' };
  const m = /^on-failure(?::(\d+))?$/.exec(text);
  if (m) return { kind: 'on-failure', max: m[1] !== undefined ? Number(m[1]) : undefined };
  throw new HutchError(`--restart: "${text}" is not a restart policy`, { hint: '--restart no | on-failure[:N] | always' });
}

/** After `restarts` restarts, the command exited with `code`: start it again? */
export function shouldRestart(p: RestartPolicy, code: number, restarts: number): boolean {
  if (p.kind === 'always') return true;
  if (p.kind === 'on-failure') return code !== 0 && (p.max === undefined || restarts < p.max);
  return false;
}

const IGNORED = /(^|\/)(\.git|node_modules)(\/|$)/;

/** Call onChange(path) once per burst of changes under `paths` (200 ms quiet). Returns the stopper. */
export function watchPaths(paths: string[], cwd: string, onChange: (what: string) => void): () => void {
  const watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | undefined;
  let first: string | undefined;
  for (const p of paths) {
    const abs = resolve(cwd, p);
    if (!existsSync(abs)) throw new HutchError(`--watch: ${p} does not exist`, { hint: 'watch a directory or file of your project, e.g. --watch src' });
    const w = watch(abs, { recursive: true }, (_event, file) => {
      const what = file ? join(p, file.toString()) : p;
      if (IGNORED.test(what)) return;
      first ??= what;
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        const changed = first!;
        first = undefined;
        onChange(changed);
      }, 200);
    });
    watchers.push(w);
  }
  return () => {
    if (timer) clearTimeout(timer);
    for (const w of watchers) w.close();
  };
}
