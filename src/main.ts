// hutch: entry point. Keeps start-up light: each command's module does its
// own work; nothing heavy is loaded before we know the command.

import { startupSnapshot } from 'node:v8';
import { HutchError } from './util/errors';
import { suggest } from './util/suggest';
import { VERSION } from './util/version';
import { trace } from './util/trace';
import { describeUnexpected } from './util/unexpected';
import { endQuietlyOnClosedOutput } from './util/closed-output';

const USAGE = `hutch ${VERSION}: rootless sandboxes for developers

Usage: hutch COMMAND [FLAGS]

Commands:
  run        run a command in a new sandbox
  profile    ls | show NAME | validate FILE | schema
  port       list the published ports of a running sandbox
  ps         list running sandboxes (-a: also exited detached ones)
  exec       run a command in a running sandbox (its namespaces and restrictions)
  logs       print the output of a detached sandbox (run -d); -f follows
  stop       stop sandboxes: SIGTERM, SIGKILL after -t SECONDS (10)
  kill       send a signal to a sandbox's command (default KILL)
  rm         remove exited sandboxes' records; -f stops running ones first
  inspect    a sandbox as JSON: spec, plan, state, ports, limits, network, record
  wait       wait until sandboxes exit, print their exit status
  stats      live CPU, memory, pids and block I/O of running sandboxes
  pause      freeze a running sandbox (resume thaws it)
  resume     thaw a paused sandbox
  update     change the limits of a running sandbox (--memory, --cpus, --pids-limit...)
  doctor     check that this host can run sandboxes, and say how to fix it
  image      import | ls | inspect | rm | export | prune
  pull       pull an image from a registry (docker.io, ghcr.io, quay.io, your own)
  login      store credentials for a registry; logout removes them
  build      build a profile's setup steps into cached layers
  commit     turn a kept sandbox's changes into a new image
  volume     create | ls | inspect | rm | prune | export | import
  network    create | ls | inspect | rm | prune (named networks between sandboxes)
  system     prune: remove unused layers, leftovers (and volumes)
  version    print the version

Run 'hutch COMMAND --help' for a command's flags.
`;

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  run: async (argv) => (await import('./cli/run')).runCommand(argv),
  profile: async (argv) => (await import('./cli/profile')).profileCommand(argv),
  port: async (argv) => (await import('./cli/port')).portCommand(argv),
  ps: async (argv) => (await import('./cli/ps')).psCommand(argv),
  stats: async (argv) => (await import('./cli/stats')).statsCommand(argv),
  pause: async (argv) => (await import('./cli/pause')).pauseCommand(argv),
  resume: async (argv) => (await import('./cli/resume')).resumeCommand(argv),
  update: async (argv) => (await import('./cli/update')).updateCommand(argv),
  doctor: async (argv) => (await import('./cli/doctor')).doctorCommand(argv),
  image: async (argv) => (await import('./cli/image')).imageCommand(argv),
  pull: async (argv) => (await import('./cli/pull')).pullCommand(argv),
  login: async (argv) => (await import('./cli/pull')).loginCommand(argv),
  logout: async (argv) => (await import('./cli/pull')).logoutCommand(argv),
  build: async (argv) => (await import('./cli/build')).buildCommand(argv),
  commit: async (argv) => (await import('./cli/commit')).commitCommand(argv),
  volume: async (argv) => (await import('./cli/volume')).volumeCommand(argv),
  exec: async (argv) => (await import('./cli/exec')).execCommand(argv),
  logs: async (argv) => (await import('./cli/lifecycle')).logsCommand(argv),
  stop: async (argv) => (await import('./cli/lifecycle')).stopCommand(argv),
  kill: async (argv) => (await import('./cli/lifecycle')).killCommand(argv),
  rm: async (argv) => (await import('./cli/lifecycle')).rmCommand(argv),
  inspect: async (argv) => (await import('./cli/lifecycle')).inspectCommand(argv),
  wait: async (argv) => (await import('./cli/lifecycle')).waitCommand(argv),
  network: async (argv) => (await import('./cli/network')).networkCommand(argv),
  system: async (argv) => (await import('./cli/system')).systemCommand(argv),
  version: async () => {
    process.stdout.write(`hutch ${VERSION}\n`);
    return 0;
  },
};

async function main(argv: string[]): Promise<number> {
  trace('main');
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(USAGE);
    return cmd === undefined ? 125 : 0;
  }
  if (cmd === '--version' || cmd === '-V') return COMMANDS.version([]);
  const handler = COMMANDS[cmd];
  if (!handler) {
    const near = suggest(cmd, Object.keys(COMMANDS));
    throw new HutchError(`unknown command "${cmd}"`, { hint: near ? `did you mean "hutch ${near}"?` : 'see hutch --help' });
  }
  return handler(rest);
}

function start(): void {
  endQuietlyOnClosedOutput();
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      if (err instanceof HutchError) {
        process.stderr.write(`hutch: ${err.format()}\n`);
        process.exitCode = err.exitCode;
      } else {
        process.stderr.write(`hutch: ${describeUnexpected(err, process.env.HUTCH_DEBUG === '1')}\n`);
        process.exitCode = 125;
      }
    },
  );
}

if (startupSnapshot?.isBuildingSnapshot()) {
  // The single executable's V8 startup snapshot (build.mjs, useSnapshot):
  // the modules `hutch run` needs are initialised now, at build time, and
  // its pure core runs once on a made-up host (src/cli/warm.ts), so a run
  // starts with them, compiled, in the heap. So no module may do I/O or read
  // the environment, argv or the clock when it loads: it would be frozen
  // into the binary (build.mjs checks that the environment and argv are
  // still read at run time).
  // then the bytecode of every other function (build.mjs precompileSnippet; absent when node runs the bundle)
  void import('./cli/warm').then((w) => w.warmRunPath()).then(() => (globalThis as { __hutchPrecompile?: () => void }).__hutchPrecompile?.());
  startupSnapshot.setDeserializeMainFunction(start);
} else start();
