// Hints `hutch run` prints after the fact, kept out of run.ts.
//
// `hutch run alpine echo hi` is a podman habit: the first word is taken as
// the command, which does not exist, and the helper says `alpine: command
// not found` (exit 127). When that word is an image in the store, or looks
// like an image reference and is no command on the sandbox's PATH, say how
// hutch runs images.

import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import type { HutchPaths } from '../host/paths';
import { Store } from '../image/store';
import type { SandboxSpec } from '../spec/types';

/** `alpine`, `debian:bookworm`, `ghcr.io/x/y:tag`, `x/y@sha256:...`: what podman would take as an image. */
export function looksLikeImageRef(word: string): boolean {
  return /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/.test(
    word,
  );
}

function exists(p: string): boolean {
  try {
    accessSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Whether `cmd` is an executable on `PATH` under the root `root` (host: '/'). */
function onPath(root: string, pathVar: string, cmd: string): boolean {
  return pathVar.split(':').some((d) => {
    if (!d.startsWith('/')) return false;
    try {
      accessSync(join(root, d, cmd), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The hint for a command that was not found, or undefined. */
export function imageHint(spec: SandboxSpec, paths: HutchPaths): string | undefined {
  const [cmd, ...args] = spec.command;
  if (!cmd || cmd.startsWith('/') || cmd.startsWith('.') || spec.rootfs.kind === 'image') return undefined;
  const root = spec.rootfs.kind === 'dir' ? spec.rootfs.path : '/';
  // A relative path such as ghcr.io/x/y:tag that exists is a command, not an image.
  if (cmd.includes('/') && exists(join(root, spec.workdir, cmd))) return undefined;
  let known = false;
  try {
    known = new Store(paths.dataDir).image(cmd) !== undefined;
  } catch {
    /* no store */
  }
  if (!known) {
    if (!looksLikeImageRef(cmd)) return undefined;
    if (!cmd.includes('/') && onPath(root, spec.env.PATH ?? '', cmd)) return undefined;
  }
  const rest = args.length ? ` -- ${args.join(' ')}` : '';
  return known
    ? `"${cmd}" is an image: hutch runs images with --rootfs, e.g. hutch run --rootfs image:${cmd}${rest}`
    : `if "${cmd}" is an image: hutch runs images with --rootfs image:NAME after hutch image import (e.g. hutch image import ./${cmd.replace(/[:/@]/g, '-')}.tar --name ${cmd.split('@')[0]}; hutch run --rootfs image:${cmd.split('@')[0]}${rest})`;
}

/** Prints the hint for exit status 127 (command not found), if there is one. */
export function printNotFoundHint(exitCode: number | null, spec: SandboxSpec, paths: HutchPaths): void {
  if (exitCode !== 127) return;
  const hint = imageHint(spec, paths);
  if (hint) process.stderr.write(`  hint: ${hint}\n`);
}
