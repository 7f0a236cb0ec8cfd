// `hutch update NAME --memory 1g --cpus 2 --pids-limit 256`: change the
// limits of a running sandbox by writing its cgroup's files.

import { dirname } from 'node:path';
import { probeCgroups, type Controller } from '../cgroup/delegation';
import { describeLimit, limitWrites, applyLimits } from '../cgroup/limits';
import { parseLimitFlags } from '../spec/limits';
import { hostFs } from '../host/facts';
import { cgroupOf, findSandbox } from '../cgroup/running';
import { enableControllers } from '../cgroup/sandbox-cgroup';
import { readList, writeCg } from '../cgroup/files';
import { HutchError } from '../util/errors';
import { writeState } from '../state/sandboxes';
import { flagBool, formatFlagHelp, parseArgs, type FlagDef } from './args';
import { limitFlagsOf, RUN_FLAGS } from './run';

const LIMIT_FLAGS = ['memory', 'memory-swap', 'cpus', 'cpu-weight', 'cpu-shares', 'pids-limit', 'io-weight', 'device-read-bps', 'device-write-bps'];
const FLAGS: FlagDef[] = [...RUN_FLAGS.filter((f) => LIMIT_FLAGS.includes(f.name)), { name: 'help', short: 'h', kind: 'bool', help: 'show this help' }];

const USAGE = `Usage: hutch update [FLAGS] NAME

Change the resource limits of a running sandbox (written to its cgroup at once).

Flags:
${formatFlagHelp(FLAGS)}
`;

export async function updateCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, FLAGS, 'update');
  if (flagBool(p, 'help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (p.positionals.length !== 1) throw new HutchError('hutch update needs exactly one sandbox name', { hint: 'hutch update NAME --memory 1g' });
  const flags = parseLimitFlags(limitFlagsOf(p), hostFs);
  if (!flags.given.size) throw new HutchError('hutch update: no limit given', { hint: 'e.g. hutch update NAME --memory 1g --cpus 2 --pids-limit 256' });
  const running = findSandbox(p.positionals[0]);
  const cg = cgroupOf(running, 'updated');
  const { given, ...values } = flags;
  const current = running.state.limits ?? { deviceReadBps: [], deviceWriteBps: [], mode: 'warn' as const };
  const next = { ...current, ...values };
  if (next.memorySwap !== undefined && next.memorySwap !== -1 && next.memory !== undefined && next.memorySwap < next.memory) {
    throw new HutchError('--memory-swap: must be at least the memory limit (it is memory plus swap)', { hint: 'raise --memory-swap too, or use -1' });
  }

  // The controllers may not have been needed at start (cpu, io): enable them now.
  const probe = probeCgroups(process.getuid!());
  const base = dirname(cg.path);
  const want = [...new Set(limitWrites(values).map((w) => w.controller))] as Controller[];
  const enabled = new Set(readList(`${base}/cgroup.subtree_control`));
  const toEnable = want.filter((c) => !enabled.has(c));
  const offered = readList(`${base}/cgroup.controllers`);
  const absent = toEnable.filter((c) => !offered.includes(c));
  if (absent.length) {
    throw new HutchError(
      `cannot update: the ${absent.join(', ')} controller${absent.length > 1 ? 's are' : ' is'} not available to the sandbox's cgroup${probe.problem ? ` (${probe.problem})` : ''}`,
      {
        hint: probe.fix ?? 'see hutch run --dry-run',
      },
    );
  }
  if (toEnable.length) enableControllers({ ...probe, base, usable: true }, toEnable);

  const missing = applyLimits(cg.path, values);
  // Lifted limits (--pids-limit -1) go back to "max".
  if (given.has('pidsLimit') && values.pidsLimit === undefined) writeCg(cg.path, 'pids.max', 'max');
  if (missing.length) {
    throw new HutchError(
      `cannot update ${missing.map((w) => `${w.what} (${describeLimit(w, values)})`).join(', ')}: this kernel has no ${missing.map((w) => w.file).join(', ')} for the sandbox`,
      {
        hint: 'the other limits were updated',
      },
    );
  }
  writeState(running.dir, { ...running.state, limits: next });
  process.stdout.write(`${running.state.name}\n`);
  return 0;
}
