// Volume backup: `export` tars `_data` inside the user namespace (owners as
// the sandboxes see them, numeric), `import` extracts into a fresh directory
// next to `_data` and swaps it in only when tar succeeded, so a failed import
// leaves the volume as it was.

import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { HutchError } from '../util/errors';
import type { IdentityInfo } from '../host/ids';
import type { HutchPaths } from '../host/paths';
import { syncfs } from '../image/ingest';
import { ownershipSquashed, removeTree, spawnInUserns, toolPath } from '../helper/userns';
import { volumeDataPath, volumeDir } from './store';

export async function exportVolume(paths: HutchPaths, ids: IdentityInfo, name: string, file: string): Promise<void> {
  const argv = [
    toolPath('tar'),
    '-c',
    '--numeric-owner',
    '--xattrs',
    '--xattrs-include=user.*',
    '--sort=name',
    '-C',
    volumeDataPath(paths, name),
    '-f',
    '-',
    '.',
  ];
  const toStdout = file === '-';
  const tmp = `${resolve(file)}.tmp-${process.pid}`;
  const fd = toStdout ? 1 : openSync(tmp, 'w', 0o600);
  try {
    const r = await spawnInUserns(ids, argv, { stdin: 'ignore', stdout: fd }).done;
    if (r.code !== 0) throw new HutchError(`exporting volume ${name} failed: ${r.stderr.trim()}`);
  } catch (e) {
    if (!toStdout) {
      closeSync(fd);
      rmSync(tmp, { force: true });
    }
    throw e;
  }
  if (!toStdout) {
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, resolve(file));
  }
}

/** Refuses an import source that cannot be read, before anything is created. */
export function checkArchive(file: string): void {
  if (file === '-') return;
  let st: ReturnType<typeof statSync> | undefined;
  try {
    st = statSync(resolve(file));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new HutchError(`${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (e as Error).message}`, {
      hint: 'give a tar made by hutch volume export (or any tar), or - for stdin',
    });
  }
  if (st.isDirectory())
    throw new HutchError(`${file} is a directory, not a tar`, { hint: 'give a tar made by hutch volume export (or any tar), or - for stdin' });
  try {
    closeSync(openSync(resolve(file), 'r'));
  } catch (e) {
    throw new HutchError(`${file}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

export async function importVolume(paths: HutchPaths, ids: IdentityInfo, name: string, file: string): Promise<{ squashed: boolean }> {
  checkArchive(file);
  const squashed = ownershipSquashed(ids);
  const fresh = join(volumeDir(paths, name), `.import-${process.pid}`);
  mkdirSync(fresh, { mode: 0o755 });
  const argv = [toolPath('tar'), '-x', '-p', '--numeric-owner', '--xattrs', '--xattrs-include=user.*', '-C', fresh, '-f', '-'];
  if (squashed) argv.splice(3, 0, '--no-same-owner');
  const fd = file === '-' ? 0 : openSync(resolve(file), 'r');
  try {
    const r = await spawnInUserns(ids, argv, { stdin: fd, stdout: 'ignore' }).done;
    if (r.code !== 0)
      throw new HutchError(
        `importing ${file} into volume ${name} failed: ${r.stderr.trim().split('\n').slice(0, 3).join('; ') || `tar exited with ${r.code}`}`,
        { hint: 'give a tar made by hutch volume export (or any tar)' },
      );
    await syncfs(fresh);
    const data = volumeDataPath(paths, name);
    const old = join(volumeDir(paths, name), `.old-${process.pid}`);
    renameSync(data, old);
    renameSync(fresh, data);
    await removeTree(ids, old);
    return { squashed };
  } catch (e) {
    await removeTree(ids, fresh).catch(() => {});
    throw e;
  } finally {
    if (fd !== 0) closeSync(fd);
  }
}
