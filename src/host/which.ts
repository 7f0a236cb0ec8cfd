// PATH lookup for the host tools hutch drives (newuidmap, fuse-overlayfs,
// slirp4netns, pasta...). The sbin directories are searched too because
// some distributions install these tools there and users' PATH lacks them.

import { accessSync, constants, statSync } from 'node:fs';

export function findExecutable(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (name.includes('/')) return isExecutableFile(name) ? name : undefined;
  const dirs = (env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':').filter(Boolean);
  if (env.HUTCH_STRICT_PATH !== '1') {
    for (const extra of ['/usr/sbin', '/sbin']) if (!dirs.includes(extra)) dirs.push(extra);
  }
  for (const dir of dirs) {
    const candidate = `${dir}/${name}`;
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
