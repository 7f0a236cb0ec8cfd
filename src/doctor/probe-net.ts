// User-mode networking: slirp4netns and pasta (either gives a sandbox
// outbound NAT and published ports), and /dev/net/tun, which both open.
// `network: none` and `network: host` need none of this.

import { installCommand, installHint, type Prerequisite } from '../host/fixes';
import { check, type Check } from './probe';
import { deviceAccess } from './probe-storage';
import { findExecutable } from '../host/which';
import { PASTA_STALL_FIXED, pastaVersion } from '../net/pasta-version';

export function probeNetwork(env: NodeJS.ProcessEnv): Check[] {
  const area = 'network';
  const out: Check[] = [];
  const found: Record<string, string | undefined> = {};
  for (const [tool, pkg] of [
    ['slirp4netns', 'slirp4netns'],
    ['pasta', 'pasta'],
  ] as const) {
    found[tool] = findExecutable(tool, env);
    out.push(toolCheck(tool, pkg, found[tool], `network: ${tool === 'pasta' ? 'pasta' : 'slirp'} (user-mode NAT, published ports)`));
  }
  if (found.pasta) {
    // Reliability of the installed pasta: `auto` passes over a version with
    // the bulk-upload stall (src/net/pasta-version.ts).
    const v = pastaVersion(found.pasta, undefined);
    out.push(
      v.stalls
        ? check({
            id: 'network.pasta-version',
            area,
            status: 'warning',
            summary: v.why,
            detail: found.slirp4netns
              ? 'so network slirp (the default profile) uses slirp4netns; --network-driver pasta still runs this pasta when asked for'
              : 'slirp4netns is not installed, so network slirp uses this pasta anyway',
            fix: found.slirp4netns ? `passt ${PASTA_STALL_FIXED} or later makes pasta the default again` : installCommand('slirp4netns'),
            facts: { version: v.version ?? 'unknown', stalls: 'yes' },
          })
        : check({ id: 'network.pasta-version', area, status: 'ok', summary: v.why, facts: { version: v.version ?? 'unknown', stalls: 'no' } }),
    );
  }
  if (!found.slirp4netns && !found.pasta) {
    out.push(
      check({
        id: 'network.user-mode',
        area,
        status: 'error',
        summary: 'neither slirp4netns nor pasta is installed: sandboxes with network slirp or pasta (the default profile) cannot start',
        detail: '--network none and --network host still work',
        fix: installCommand('slirp4netns'),
      }),
    );
  }
  // named networks (hutch network create): the holder's NAT rules and its members' anti-spoofing rules
  for (const [tool, pkg, need] of [
    ['iptables', 'iptables', 'the outbound NAT of named networks (--internal networks need none): hutch run --network NAME fails without it'],
    [
      'ebtables-restore',
      'ebtables',
      "the rules that keep a named network's member from sending as another member's address (members given NET_RAW or NET_ADMIN could); networks still work without it",
    ],
  ] as const) {
    out.push(toolCheck(tool, pkg, findExecutable(tool, env), need));
  }
  const tun = deviceAccess('/dev/net/tun', 'tun', 'tun');
  out.push(
    tun.ok
      ? check({ id: 'network.dev-tun', area, status: 'ok', summary: '/dev/net/tun is readable and writable' })
      : check({
          id: 'network.dev-tun',
          area,
          status: 'error',
          summary: tun.problem!,
          detail: 'slirp4netns and pasta open it inside the sandbox: network slirp/pasta (the default profile) cannot start; --network none still works',
          fix: tun.fix,
        }),
  );
  return out;
}

/** ok with its path, or a warning naming what needs the tool and how to install it. */
function toolCheck(tool: string, pkg: Prerequisite, path: string | undefined, neededFor: string): Check {
  const area = 'network';
  return path
    ? check({ id: `network.${tool}`, area, status: 'ok', summary: path, facts: { path } })
    : check({
        id: `network.${tool}`,
        area,
        status: 'warning',
        summary: `${tool} is not installed`,
        detail: `needed for ${neededFor}`,
        fix: installCommand(pkg),
        facts: { hint: installHint(pkg) },
      });
}
