// `hutch exec [-it] [-e K=V] [-w DIR] [-u USER] NAME CMD...`: a command in a
// running sandbox. The helper (exec mode, helper-c/join.c) joins the
// sandbox's cgroup and every namespace of its pid 1, then applies exactly the
// command ops the sandbox's own command got (recorded at start in
// exec-ops.json: environment, directory, no_new_privs, caps, user, seccomp),
// so an exec'd process never has more than the command itself.

import { findSandbox } from '../cgroup/running';
import { startHelper } from '../helper/spawn';
import type { Op } from '../helper/ops';
import { planOf } from '../helper/plan';
import { terminalSetup } from '../sandbox/terminal';
import { readExecOps } from '../state/sandboxes';
import { HutchError } from '../util/errors';
import { running, sandboxMember } from '../util/proc';
import { flagBool, flagList, flagString, formatFlagHelp, parseArgs, type FlagDef } from './args';

const FLAGS: FlagDef[] = [
  { name: 'interactive', short: 'i', kind: 'bool', help: 'keep stdin open' },
  { name: 'tty', short: 't', kind: 'bool', help: "a terminal of the sandbox's own devpts (-it for a shell)" },
  {
    name: 'env',
    short: 'e',
    kind: 'string',
    repeat: true,
    valueName: 'KEY[=VALUE]',
    help: "set a variable on top of the command's environment (KEY alone copies it from the host)",
  },
  { name: 'workdir', short: 'w', kind: 'string', valueName: 'DIR', help: "working directory inside (default: the command's)" },
  { name: 'user', short: 'u', kind: 'string', valueName: 'USER[:GROUP]', help: "run as this user (default: the command's)" },
  { name: 'help', short: 'h', kind: 'bool', help: 'show this help' },
];

const USAGE = `Usage: hutch exec [FLAGS] NAME COMMAND [ARG...]

Run COMMAND in the running sandbox NAME: its namespaces, root, cgroup and
the restrictions of its command (capabilities, no_new_privs, seccomp, user).

Flags:
${formatFlagHelp(FLAGS)}
`;

export async function execCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, FLAGS, 'exec', true);
  if (flagBool(p, 'help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [name, ...command] = p.positionals;
  if (!name || !command.length)
    throw new HutchError('hutch exec needs a sandbox name and a command', { hint: 'hutch exec NAME COMMAND [ARG...] (see hutch ps)' });
  const box = findSandbox(name);
  const initPid = box.state.initPid;
  const recorded = readExecOps(box.dir);
  if (!initPid || !running(initPid) || !recorded) {
    throw new HutchError(`sandbox "${name}" is not running yet (or was started by an older hutch)`, {
      hint: 'wait until it runs (hutch ps), or start it again',
    });
  }
  let ops: Op[] = recorded;
  for (const e of flagList(p, 'env')) {
    const eq = e.indexOf('=');
    if (eq === 0) throw new HutchError(`--env: "${e}" has no variable name`, { hint: '-e KEY=VALUE or -e KEY' });
    const value = eq > 0 ? e.slice(eq + 1) : process.env[e];
    if (value !== undefined) ops.push({ op: 'env', name: eq > 0 ? e.slice(0, eq) : e, value });
  }
  const workdir = flagString(p, 'workdir');
  if (workdir !== undefined) {
    if (!workdir.startsWith('/')) throw new HutchError(`--workdir: "${workdir}" is not an absolute path`, { hint: '-w /some/dir' });
    ops = ops.map((o) => (o.op === 'chdir' ? { op: 'chdir', dir: workdir } : o));
  }
  const user = flagString(p, 'user');
  if (user !== undefined) ops = [...ops.filter((o) => o.op !== 'user'), { op: 'user', user }];
  const terminal = terminalSetup({ interactive: flagBool(p, 'interactive'), tty: flagBool(p, 'tty') });
  const plan = planOf([...terminal.ops, { op: 'join', pid: sandboxMember(initPid), cgroup: box.state.cgroup }, ...ops, { op: 'exec', argv: command }]);
  const run = startHelper(plan, { mode: 'exec', forwardSignals: true, stdio: [terminal.stdin, 'inherit', 'inherit'] });
  return (await run.done).exitCode;
}
