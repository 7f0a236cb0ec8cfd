// `hutch port NAME [PORT[/PROTO]]`: the published ports of a running sandbox,
// as podman prints them (`80/tcp -> 127.0.0.1:8080`). Read from the
// sandbox's state file: no daemon to ask.

import { join } from 'node:path';
import { HutchError } from '../util/errors';
import { identity } from '../host/ids';
import { hutchPaths } from '../host/paths';
import { hostAddr } from '../net/ports';
import { listSandboxes } from '../state/sandboxes';
import { flagBool, formatFlagHelp, parseArgs, type FlagDef } from './args';

const FLAGS: FlagDef[] = [{ name: 'help', short: 'h', kind: 'bool', help: 'show this help' }];

const USAGE = `Usage: hutch port NAME [PORT[/PROTO]]

List the ports of sandbox NAME published on the host (-p, -P), one per line:
  80/tcp -> 127.0.0.1:8080
With PORT, print only the host address(es) PORT is published on.

Flags:
${formatFlagHelp(FLAGS)}
`;

export async function portCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, FLAGS, 'port');
  if (flagBool(p, 'help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [name, which, ...extra] = p.positionals;
  if (!name || extra.length) throw new HutchError('hutch port takes a sandbox name and optionally a port', { hint: 'hutch port NAME [PORT[/PROTO]]' });
  const ids = identity(process.env);
  const paths = hutchPaths(process.env, ids.home, ids.uid);
  const running = listSandboxes(paths.stateDir);
  const box = running.find((s) => s.state.name === name || s.dir === join(paths.stateDir, name));
  if (!box) {
    const names = running.map((s) => s.state.name);
    throw new HutchError(`no running sandbox named "${name}"`, {
      hint: names.length ? `running: ${names.join(', ')}` : 'start one with hutch run --name NAME -p PORT ...',
    });
  }
  const ports = box.state.ports ?? [];
  if (which === undefined) {
    for (const f of ports) process.stdout.write(`${f.containerPort}/${f.protocol} -> ${hostAddr(f.hostIp, f.hostPort)}\n`);
    return 0;
  }
  const m = /^(\d+)(?:\/(tcp|udp))?$/.exec(which);
  if (!m) throw new HutchError(`hutch port: "${which}" is not a port`, { hint: 'write PORT or PORT/PROTO, e.g. 80 or 53/udp' });
  const hits = ports.filter((f) => f.containerPort === Number(m[1]) && f.protocol === (m[2] ?? 'tcp'));
  if (!hits.length) {
    throw new HutchError(`sandbox "${name}" does not publish ${m[1]}/${m[2] ?? 'tcp'}`, {
      hint: ports.length ? `published: ${ports.map((f) => `${f.containerPort}/${f.protocol}`).join(', ')}` : 'it publishes no ports (hutch run -p PORT ...)',
    });
  }
  for (const f of hits) process.stdout.write(`${hostAddr(f.hostIp, f.hostPort)}\n`);
  return 0;
}
