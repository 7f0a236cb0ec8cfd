// hutch's own files on this host: where the helper binary is, and which
// files must never become writable from inside a sandbox.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { HutchError } from '../errors';

export function helperPath(env: NodeJS.ProcessEnv = process.env): string {
  const path = env.HUTCH_HELPER || join(__dirname, 'hutch-helper');
  if (!existsSync(path)) {
    throw new HutchError(`the helper binary ${path} is missing`, { hint: 'run `npm run build` (or set HUTCH_HELPER)' });
  }
  return path;
}

export function protectedFiles(helper: string): string[] {
  const files = [helper, __filename];
  if (!process.execPath.endsWith('/node')) files.push(process.execPath);
  return files;
}
