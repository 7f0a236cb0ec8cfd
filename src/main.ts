// hutch: entry point. Keeps start-up light: each command's module does its
// own work; nothing heavy is loaded before we know the command.

import { HutchError } from './errors';
import { suggest } from './util/suggest';
import { VERSION } from './version';

const USAGE = `hutch ${VERSION}: rootless sandboxes for developers

Usage: hutch COMMAND [FLAGS]

Commands:
  run        run a command in a new sandbox
  profile    ls | show NAME | validate FILE | schema
  version    print the version

Run 'hutch COMMAND --help' for a command's flags.
`;

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  run: async (argv) => (await import('./cli/run')).runCommand(argv),
  profile: async (argv) => (await import('./cli/profile')).profileCommand(argv),
  version: async () => {
    process.stdout.write(`hutch ${VERSION}\n`);
    return 0;
  },
};

async function main(argv: string[]): Promise<number> {
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

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof HutchError) {
      process.stderr.write(`hutch: ${err.format()}\n`);
      process.exitCode = err.exitCode;
    } else {
      process.stderr.write(`hutch: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 125;
    }
  },
);
