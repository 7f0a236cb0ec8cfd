// `hutch network create | ls | inspect | rm | prune` (docs/NETWORKS.md)

import { HutchError } from '../util/errors';
import { identity } from '../host/ids';
import { hutchPaths } from '../host/paths';
import { suggest } from '../util/suggest';
import {
  createNetwork,
  listNetworks,
  memberAddresses,
  networkMembers,
  parseNetworkDriver,
  removeNetwork,
  requireNetwork,
  type NetworkConfig,
} from '../net/named-store';
import { flagBool, flagList, flagString, parseArgs, type FlagDef } from './args';
import { gatherHostFacts } from '../host/facts';
import { connectNetwork, disconnectNetwork } from '../net/named-connect';
import { networkNat } from '../net/named-nat';
import { natStatus } from '../net/named-holder';

const USAGE = `Usage: hutch network COMMAND

  create NAME [--subnet CIDR] [--gateway IP] [--internal] [--network-driver D]
                       create a network (default: a free 10.89.N.0/24; D: the NAT
                       of its outbound traffic, slirp4netns or pasta, default auto)
  ls [--json]          list networks and their running members
  inspect NAME...      details as JSON
  rm NAME...           remove networks; refuses one with running members
  prune                remove every network without running members
  connect NET NAME [--alias A]... [--ip IP] [-p [IP:]HOSTPORT:PORT[/udp]]...
                       one more interface on NET for a running member of named networks;
                       -p publishes a port of it through NET's NAT (127.0.0.1 unless IP
                       is given; IPv4), withdrawn on disconnect or when the sandbox ends
  disconnect NET NAME  remove an interface added by connect

Members: hutch run --network NAME ... (they reach each other by IP and by
--name/--hostname through the network's DNS; --internal: no default route).
`;

const FLAGS: FlagDef[] = [
  { name: 'subnet', kind: 'string', valueName: 'CIDR', help: 'create: IPv4 subnet, e.g. 10.89.5.0/24' },
  { name: 'gateway', kind: 'string', valueName: 'IP', help: "create: the bridge's address (default: the subnet's first)" },
  { name: 'internal', kind: 'bool', help: 'create: members get no default route' },
  { name: 'network-driver', kind: 'string', valueName: 'DRIVER', help: "create: the network's NAT: auto (slirp4netns where installed), slirp4netns, pasta" },
  { name: 'alias', kind: 'string', repeat: true, valueName: 'NAME', help: 'connect: another name of the sandbox on NET' },
  { name: 'ip', kind: 'string', valueName: 'IP', help: "connect: the sandbox's address on NET (default: the first free one)" },
  {
    name: 'publish',
    short: 'p',
    kind: 'string',
    repeat: true,
    valueName: '[IP:]HOSTPORT:PORT[/udp]',
    help: "connect: publish the sandbox's PORT on the host through NET's NAT (as run -p)",
  },
  { name: 'json', kind: 'bool', help: 'ls: print JSON' },
  { name: 'force', short: 'f', kind: 'bool', help: 'prune: accepted for podman compatibility (nothing to confirm)' },
  { name: 'help', short: 'h', kind: 'bool', help: 'show this help' },
];

const SUBS = ['create', 'ls', 'inspect', 'rm', 'prune', 'connect', 'disconnect'];

export async function networkCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === '--help' || sub === '-h') {
    process.stdout.write(USAGE);
    return sub ? 0 : 125;
  }
  if (!SUBS.includes(sub)) {
    const near = suggest(sub, SUBS);
    throw new HutchError(`unknown command "hutch network ${sub}"`, { hint: near ? `did you mean "hutch network ${near}"?` : 'see hutch network --help' });
  }
  const p = parseArgs(rest, FLAGS, `network ${sub}`);
  if (flagBool(p, 'help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const ids = identity(process.env);
  const paths = hutchPaths(process.env, ids.home, ids.uid);
  const args = p.positionals;
  if (sub !== 'create' && (flagString(p, 'subnet') || flagString(p, 'gateway') || flagBool(p, 'internal') || flagString(p, 'network-driver'))) {
    throw new HutchError(`--subnet, --gateway, --internal and --network-driver belong to hutch network create`);
  }
  if (sub !== 'connect' && sub !== 'disconnect' && flagList(p, 'publish').length) {
    throw new HutchError('--publish belongs to hutch network connect', { hint: 'hutch network connect NET NAME -p 8080:80' });
  }
  const need = (usage: string) => {
    if (!args.length) throw new HutchError(`hutch network ${sub}: missing argument`, { hint: usage });
  };
  switch (sub) {
    case 'connect':
    case 'disconnect': {
      if (args.length !== 2) throw new HutchError(`hutch network ${sub} takes NET and NAME`, { hint: `hutch network ${sub} NET NAME` });
      if (sub === 'disconnect' && (flagList(p, 'alias').length || flagString(p, 'ip') || flagList(p, 'publish').length))
        throw new HutchError('--alias, --ip and --publish belong to hutch network connect', {
          hint: 'disconnect withdraws the ports published at connect by itself',
        });
      const facts = gatherHostFacts();
      if (sub === 'connect')
        await connectNetwork(facts, args[0], args[1], { aliases: flagList(p, 'alias'), ip: flagString(p, 'ip'), publish: flagList(p, 'publish') });
      else await disconnectNetwork(facts, args[0], args[1]);
      return 0;
    }
    case 'create': {
      need('hutch network create NAME [--subnet CIDR] [--internal]');
      if (args.length > 1) throw new HutchError('hutch network create takes one NAME', { hint: 'create one network at a time' });
      // a driver that cannot run here is refused before the network exists
      const driver = parseNetworkDriver(flagString(p, 'network-driver'), flagBool(p, 'internal') ?? false);
      const nat = driver && driver !== 'auto' ? networkNat({ name: args[0], internal: false, driver } as NetworkConfig, gatherHostFacts()) : undefined;
      const cfg = createNetwork(paths, {
        name: args[0],
        subnet: flagString(p, 'subnet'),
        gateway: flagString(p, 'gateway'),
        internal: flagBool(p, 'internal') ?? false,
        driver,
      });
      if (nat?.choice.warning) process.stderr.write(`hutch: ${nat.choice.warning}\n`);
      process.stdout.write(`${cfg.name}\n`);
      return 0;
    }
    case 'ls': {
      const rows = listNetworks(paths).map((n) => ({ ...n, members: networkMembers(paths, n.name) }));
      if (flagBool(p, 'json')) {
        process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        return 0;
      }
      const w = Math.max(4, ...rows.map((r) => r.name.length)) + 2;
      // DRIVER: the NAT to the outside (`create --network-driver`); an --internal network has none
      process.stdout.write(`${'NAME'.padEnd(w)}${'SUBNET'.padEnd(20)}${'INTERNAL'.padEnd(10)}${'DRIVER'.padEnd(13)}MEMBERS\n`);
      for (const r of rows)
        process.stdout.write(
          `${r.name.padEnd(w)}${r.subnet.padEnd(20)}${(r.internal ? 'yes' : 'no').padEnd(10)}${(r.internal ? '-' : (r.driver ?? 'auto')).padEnd(13)}${r.members.join(',') || '-'}\n`,
        );
      return 0;
    }
    case 'inspect': {
      need('hutch network inspect NAME');
      const out = [];
      for (const n of args) {
        const cfg = requireNetwork(paths, n);
        // while its holder runs: the NAT it runs (pid, restarts after one ended on its own, why none runs)
        const nat = cfg.internal ? undefined : await natStatus(paths, n);
        out.push({ ...cfg, members: networkMembers(paths, n), addresses: memberAddresses(paths, n), ...(nat ? { nat } : {}) });
      }
      process.stdout.write(`${JSON.stringify(out.length === 1 ? out[0] : out, null, 2)}\n`);
      return 0;
    }
    case 'rm': {
      need('hutch network rm NAME');
      for (const n of args) {
        removeNetwork(paths, n);
        process.stdout.write(`${n}\n`);
      }
      return 0;
    }
    default: {
      // prune
      for (const n of listNetworks(paths)) {
        if (networkMembers(paths, n.name).length) continue;
        removeNetwork(paths, n.name);
        process.stdout.write(`${n.name}\n`);
      }
      return 0;
    }
  }
}
