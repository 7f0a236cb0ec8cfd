// User-mode networking: slirp4netns and pasta (either gives a sandbox
// outbound NAT and published ports), and /dev/net/tun, which both open.
// `network: none` and `network: host` need none of this.

import { installCommand, installHint } from '../host/fixes';
import { check, type Check } from './probe';
import { deviceAccess } from './probe-storage';
import { findExecutable } from '../host/which';

export function probeNetwork(env: NodeJS.ProcessEnv): Check[] {
  const area = 'network';
  const out: Check[] = [];
  const found: Record<string, string | undefined> = {};
  for (const [tool, pkg] of [
    ['slirp4netns', 'slirp4netns'],
    ['pasta', 'pasta'],
  ] as const) {
    const path = findExecutable(tool, env);
    found[tool] = path;
    out.push(
      path
        ? check({ id: `network.${tool}`, area, status: 'ok', summary: path, facts: { path } })
        : check({
            id: `network.${tool}`,
            area,
            status: 'warning',
            summary: `${tool} is not installed`,
            detail: `needed for network: ${tool === 'pasta' ? 'pasta' : 'slirp'} (user-mode NAT, published ports)`,
            fix: installCommand(pkg),
            facts: { hint: installHint(pkg) },
          }),
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
