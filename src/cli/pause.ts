// `hutch pause NAME...` / `hutch resume NAME...`: freeze and thaw every
// process of a sandbox through cgroup.freeze.

import { cgroupOf, findSandbox, runningSandboxes } from '../cgroup/running';
import { HutchError } from '../util/errors';
import { flagBool, formatFlagHelp, parseArgs, type FlagDef } from './args';

const FLAGS: FlagDef[] = [{ name: 'help', short: 'h', kind: 'bool', help: 'show this help' }];

async function freezeCommand(argv: string[], on: boolean): Promise<number> {
  const verb = on ? 'pause' : 'resume';
  const p = parseArgs(argv, FLAGS, verb);
  if (flagBool(p, 'help')) {
    process.stdout.write(
      `Usage: hutch ${verb} NAME...\n\n${on ? 'Freeze every process of a running sandbox (cgroup.freeze); hutch resume thaws it.' : 'Thaw a sandbox frozen by hutch pause.'}\n\nFlags:\n${formatFlagHelp(FLAGS)}\n`,
    );
    return 0;
  }
  if (!p.positionals.length) throw new HutchError(`hutch ${verb} needs a sandbox name`, { hint: `hutch ${verb} NAME (see hutch ps)` });
  const all = runningSandboxes();
  for (const name of p.positionals) {
    const cg = cgroupOf(findSandbox(name, all), on ? 'paused' : 'resumed');
    await cg.freeze(on);
    process.stdout.write(`${name}\n`);
  }
  return 0;
}

export const pauseCommand = (argv: string[]) => freezeCommand(argv, true);
export const resumeCommand = (argv: string[]) => freezeCommand(argv, false);
