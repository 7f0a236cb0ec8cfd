// The holder of a named network, from hutch's side (docs/NETWORKS.md): a
// hutch-helper running a `net-holder` plan (user namespace with the caller's
// id maps, a network namespace with a bridge, the DNS responder), found
// through its unix socket <runtime dir>/hutch-net/NAME/sock.
//
// `holdNetwork` returns a reference on the holder, starting one when none
// answers: a connection that says `hold`. hutch keeps it until the member's
// monitor has joined (its own connection is the reference from then on), so
// the holder cannot end between the check and the join. The holder ends by
// itself when its last reference closes, also after a SIGKILL of anyone.

import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { HutchError } from '../util/errors';
import type { HostFacts } from '../host/facts';
import { ensurePrivateDir } from '../host/paths';
import { userNamespaceOps } from '../helper/identity';
import { formatPlan, planOf } from '../helper/plan';
import type { Op } from '../helper/ops';
import { networkRunDir, parseSubnet, type NetworkConfig } from './named-store';
import { networkNat } from './named-nat';
import { findExecutable } from '../host/which';
import { installHint } from '../host/fixes';

export interface NetworkHold {
  socket: string;
  /** Drop hutch's reference (idempotent). */
  release(): void;
}

export function holderOps(cfg: NetworkConfig, dir: string, facts: Pick<HostFacts, 'ids' | 'env' | 'paths'>): Op[] {
  const { prefix } = parseSubnet(cfg.subnet, `network ${cfg.name}: subnet`);
  const nat = networkNat(cfg, facts);
  const ids = facts.ids;
  return [
    // every holder of the user in one user namespace (docs/NETWORKS.md "Several networks"):
    // joined through a running holder, else made by the id maps and userns below
    { op: 'net-share', dir: dirname(dir) },
    ...userNamespaceOps(ids),
    { op: 'report' },
    // forked before the holder's own network namespace: its sockets are the host's
    ...(nat
      ? [
          {
            op: 'net-nat',
            binary: nat.choice.binary,
            iptables: nat.iptables,
            state: join(dir, nat.choice.name === 'pasta' ? 'pasta.pid' : 'slirp.sock'),
            driver: nat.choice.name,
          } as Op,
        ]
      : []),
    { op: 'unshare', ns: ['net'] },
    { op: 'net-holder', dir, cidr: `${cfg.gateway}/${prefix}`, internal: cfg.internal, guard: antiSpoofTool(facts.env) },
  ];
}

/** Connect and say `hold`; undefined when no holder answers. */
function tryHold(path: string): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const s = connect(path);
    let buf = '';
    const fail = () => {
      s.destroy();
      resolve(undefined);
    };
    s.on('error', fail);
    s.on('close', fail);
    s.on('connect', () => s.write('hold\n'));
    s.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      if (!buf.includes('\n')) return;
      if (!buf.startsWith('ok')) return fail();
      s.removeAllListeners();
      s.on('error', () => {});
      s.unref(); // a reference, not a reason for hutch to stay
      resolve(s);
    });
  });
}

/**
 * ebtables-restore: the holder ties each member's veth to the member's
 * address with it (bridge rules: IPv4 and ARP from another source are
 * dropped), so that a member given NET_RAW cannot speak as another member, to
 * the others or to the host through a published port. Without it the network
 * still works, and hutch says what is missing when it starts the holder.
 */
function antiSpoofTool(env: NodeJS.ProcessEnv): string | undefined {
  return findExecutable('ebtables-restore', env);
}

/** Start a holder; resolves once it listens (or another one won the race). */
function startHolder(cfg: NetworkConfig, dir: string, facts: HostFacts): Promise<{ lifeline: Writable; detach: () => void } | undefined> {
  const ops = holderOps(cfg, dir, facts);
  if (!ops.some((o) => o.op === 'net-holder' && o.guard))
    process.stderr.write(
      `hutch: warning: network ${cfg.name}: ebtables-restore is not installed, so a member given NET_RAW or NET_ADMIN could send as another member's address (${installHint('ebtables')})\n`,
    );
  const plan = formatPlan(planOf(ops), false);
  const log = join(dir, 'holder.log');
  // a holder that is ending removes the directory; it cannot once the log is in it
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const logFd = openSync(log, 'w', 0o600);
  // Its own session: a terminal's Ctrl-C for one member must not end the network of the others.
  const child = spawn(facts.helper, ['run'], { detached: true, stdio: ['ignore', 'ignore', logFd, 'pipe', 'pipe'] });
  closeSync(logFd);
  const lifeline = child.stdio[3] as Writable;
  const report = child.stdio[4] as Readable;
  lifeline.on('error', () => {});
  lifeline.write(plan);
  const detach = () => {
    lifeline.destroy();
    report.destroy();
    child.unref();
  };
  return new Promise((resolve, reject) => {
    let ready = false;
    report.setEncoding('utf8').on('data', (d: string) => {
      if (!ready && d.includes('ready')) {
        ready = true;
        resolve({ lifeline, detach });
      }
    });
    child.on('error', (e) => reject(new HutchError(`cannot start the holder of network "${cfg.name}": ${e.message}`)));
    child.on('exit', () => {
      if (ready) return;
      const text = readFileSync(log, 'utf8')
        .trim()
        .replace(/^hutch: /, '');
      if (text.includes('already running')) resolve(undefined);
      else
        reject(
          new HutchError(`cannot start network "${cfg.name}": ${text || 'its holder exited'}`, {
            hint: 'hutch doctor checks user namespaces and subordinate ids',
          }),
        );
    });
  });
}

export async function holdNetwork(cfg: NetworkConfig, facts: HostFacts): Promise<NetworkHold> {
  ensurePrivateDir(join(facts.paths.runtimeDir, 'hutch-net'), facts.ids.uid);
  const dir = networkRunDir(facts.paths, cfg.name);
  const socket = join(dir, 'sock');
  for (let attempt = 0; attempt < 5; attempt++) {
    let s = await tryHold(socket);
    if (!s) {
      let started: Awaited<ReturnType<typeof startHolder>>;
      try {
        started = await startHolder(cfg, dir, facts);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // the directory went with an ending holder
        throw e;
      }
      s = await tryHold(socket);
      started?.detach();
    }
    if (s) {
      const held = s;
      return { socket, release: () => held.destroy() };
    }
  }
  throw new HutchError(`cannot reach the holder of network "${cfg.name}" at ${socket}`, { hint: `see ${join(dir, 'holder.log')}` });
}

export interface NatStatus {
  driver: string;
  /** The NAT's host pid (-1: none runs). */
  pid: number;
  /** NATs started after the first, each after one ended on its own. */
  restarts: number;
  /** Why the network has no outbound traffic now. */
  down?: string;
  /** How the last NAT that ended on its own ended. */
  last?: string;
}

/** The running holder's word on its NAT (`status`); undefined when no holder runs (or it is --internal). */
export function natStatus(paths: HostFacts['paths'], name: string): Promise<NatStatus | undefined> {
  return new Promise((resolve) => {
    const s = connect(join(networkRunDir(paths, name), 'sock'));
    let buf = '';
    const done = (v: NatStatus | undefined) => {
      s.destroy();
      resolve(v);
    };
    s.on('error', () => done(undefined));
    s.on('connect', () => s.write('status\n'));
    s.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      if (!buf.includes('\n')) return;
      // nat DRIVER PID RESTARTS[ down: WHY][ last: HOW]
      const m = /^nat (\S+) (-?\d+) (\d+)(?: down: (.*?))?(?: last: (.*))?$/.exec(buf.split('\n')[0]);
      if (!m) return done(undefined);
      done({ driver: m[1], pid: Number(m[2]), restarts: Number(m[3]), ...(m[4] ? { down: m[4] } : {}), ...(m[5] ? { last: m[5] } : {}) });
    });
  });
}
