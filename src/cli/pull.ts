// `hutch pull REF`, `hutch login REGISTRY`, `hutch logout REGISTRY`.

import { HutchError } from '../util/errors';
import { flagBool, flagString, formatFlagHelp, parseArgs, type FlagDef } from './args';

export const PULL_FLAGS: FlagDef[] = [
  {
    name: 'platform',
    kind: 'string',
    valueName: 'OS/ARCH[/VARIANT]',
    help: "the image of a multi-platform index to pull (default: this machine's, e.g. linux/amd64)",
  },
  { name: 'tls-verify', kind: 'bool', help: "verify the registry's TLS certificate (default true; --tls-verify=false also allows plain HTTP)" },
  { name: 'creds', kind: 'string', valueName: 'USER:PASSWORD', help: "credentials for this pull only (default: hutch login, podman's or docker's)" },
  { name: 'quiet', short: 'q', kind: 'bool', help: 'no progress output' },
  { name: 'help', short: 'h', kind: 'bool', help: 'show this help' },
];

const PULL_USAGE = `Usage: hutch pull [FLAGS] REFERENCE

Pull an image from an OCI registry into the layer store, named by its full
reference (debian:bookworm is stored as docker.io/library/debian:bookworm).
Layers already stored are not downloaded again.

Flags:
${formatFlagHelp(PULL_FLAGS)}
`;

/** podman's spelling: `--tls-verify=false` (parseArgs keeps no trace of a bool given as false). */
function tlsVerify(argv: string[]): boolean {
  let v = true;
  for (const a of argv) {
    if (a === '--') break;
    if (a === '--tls-verify' || a === '--tls-verify=true') v = true;
    if (a === '--tls-verify=false') v = false;
  }
  return v;
}

export async function pullCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, PULL_FLAGS, 'pull');
  if (flagBool(p, 'help')) {
    process.stdout.write(PULL_USAGE);
    return 0;
  }
  if (p.positionals.length !== 1) throw new HutchError('hutch pull: give one image reference', { hint: 'hutch pull debian:bookworm' });
  const { pullWith } = await import('../image/registry/index');
  const rec = await pullWith(p.positionals[0], {
    platform: flagString(p, 'platform'),
    tlsVerify: tlsVerify(argv),
    creds: flagString(p, 'creds'),
    quiet: flagBool(p, 'quiet'),
  });
  process.stdout.write(`${rec.name} ${rec.id}\n`);
  return 0;
}

const LOGIN_FLAGS: FlagDef[] = [
  { name: 'username', short: 'u', kind: 'string', help: 'user name' },
  { name: 'password', short: 'p', kind: 'string', help: 'password (visible in ps; prefer --password-stdin)' },
  { name: 'password-stdin', kind: 'bool', help: 'read the password from stdin' },
  { name: 'tls-verify', kind: 'bool', help: "verify the registry's TLS certificate (default true)" },
  { name: 'help', short: 'h', kind: 'bool', help: 'show this help' },
];

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

export async function loginCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, LOGIN_FLAGS, 'login');
  if (flagBool(p, 'help')) {
    process.stdout.write(
      `Usage: hutch login [FLAGS] REGISTRY\n\nCheck credentials against REGISTRY and store them (mode 0600) in hutch's auth.json.\n\nFlags:\n${formatFlagHelp(LOGIN_FLAGS)}\n`,
    );
    return 0;
  }
  const registry = p.positionals[0];
  if (p.positionals.length !== 1) throw new HutchError('hutch login: give one registry', { hint: 'hutch login -u USER --password-stdin ghcr.io' });
  const username = flagString(p, 'username');
  let password = flagString(p, 'password');
  if (flagBool(p, 'password-stdin')) password = await readStdin();
  if (!username || password === undefined || password === '') {
    throw new HutchError('hutch login: --username and a password are required', { hint: `echo "$TOKEN" | hutch login -u USER --password-stdin ${registry}` });
  }
  const { loginWith } = await import('../image/registry/index');
  const file = await loginWith(registry, username, password, tlsVerify(argv));
  process.stdout.write(`Login Succeeded (${username} at ${registry}, stored in ${file})\n`);
  return 0;
}

export async function logoutCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ name: 'help', short: 'h', kind: 'bool', help: 'show this help' }], 'logout');
  if (flagBool(p, 'help') || p.positionals.length !== 1) {
    process.stdout.write('Usage: hutch logout REGISTRY\n\nRemove the credentials hutch login stored for REGISTRY.\n');
    return flagBool(p, 'help') ? 0 : 125;
  }
  const { logoutFrom } = await import('../image/registry/index');
  const registry = p.positionals[0];
  const file = logoutFrom(registry);
  process.stdout.write(`Removed login credentials for ${registry} from ${file}\n`);
  return 0;
}
