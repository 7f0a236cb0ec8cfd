// The exact commands that fix a missing host prerequisite, for this host's
// package manager. `hutch doctor` prints them and `hutch run` puts the same
// text in its error hints, so what a user reads in either place is one
// command to copy.

import { readFileSync } from 'node:fs';

export type PackageManager = 'apt' | 'dnf' | 'pacman' | 'zypper';
export type Prerequisite = 'uidmap' | 'fuse-overlayfs' | 'slirp4netns' | 'pasta' | 'tar' | 'xz' | 'zstd' | 'sync' | 'iptables' | 'ebtables';

/**
 * Package names per manager (passt is not packaged everywhere: undefined).
 * iptables and ebtables: named networks' NAT (MASQUERADE) and their members'
 * anti-spoofing rules (ebtables-restore, the nft flavour most ship with iptables).
 */
const PACKAGES: Record<PackageManager, Record<Prerequisite, string | undefined>> = {
  apt: {
    uidmap: 'uidmap',
    'fuse-overlayfs': 'fuse-overlayfs fuse3',
    slirp4netns: 'slirp4netns',
    pasta: 'passt',
    tar: 'tar',
    xz: 'xz-utils',
    zstd: 'zstd',
    sync: 'coreutils',
    iptables: 'iptables',
    ebtables: 'iptables',
  },
  dnf: {
    uidmap: 'shadow-utils',
    'fuse-overlayfs': 'fuse-overlayfs',
    slirp4netns: 'slirp4netns',
    pasta: 'passt',
    tar: 'tar',
    xz: 'xz',
    zstd: 'zstd',
    sync: 'coreutils',
    iptables: 'iptables-nft',
    ebtables: 'iptables-nft',
  },
  pacman: {
    uidmap: 'shadow',
    'fuse-overlayfs': 'fuse-overlayfs',
    slirp4netns: 'slirp4netns',
    pasta: 'passt',
    tar: 'tar',
    xz: 'xz',
    zstd: 'zstd',
    sync: 'coreutils',
    iptables: 'iptables-nft',
    ebtables: 'iptables-nft',
  },
  zypper: {
    uidmap: 'shadow',
    'fuse-overlayfs': 'fuse-overlayfs',
    slirp4netns: 'slirp4netns',
    pasta: 'passt',
    tar: 'tar',
    xz: 'xz',
    zstd: 'zstd',
    sync: 'coreutils',
    iptables: 'iptables',
    ebtables: 'ebtables',
  },
};

// Commands for a person to type (they confirm interactively); install.sh
// uses the non-interactive forms itself.
const INSTALL: Record<PackageManager, string> = {
  apt: 'apt install',
  dnf: 'dnf install',
  pacman: 'pacman -S --needed',
  zypper: 'zypper install',
};

let detected: PackageManager | undefined;

/** The package manager of this distribution, from /etc/os-release (apt when unknown). */
export function packageManager(osRelease?: string): PackageManager {
  if (osRelease === undefined && detected) return detected;
  let text = osRelease;
  if (text === undefined) {
    try {
      text = readFileSync('/etc/os-release', 'utf8');
    } catch {
      text = '';
    }
  }
  const field = (k: string) => text!.match(new RegExp(`^${k}=["']?([^"'\\n]*)`, 'm'))?.[1] ?? '';
  const ids = `${field('ID')} ${field('ID_LIKE')}`.toLowerCase().split(/\s+/);
  const pm: PackageManager = ids.some((i) => ['fedora', 'rhel', 'centos', 'rocky', 'almalinux', 'amzn'].includes(i))
    ? 'dnf'
    : ids.some((i) => ['arch', 'manjaro', 'endeavouros'].includes(i))
      ? 'pacman'
      : ids.some((i) => i.startsWith('opensuse') || i === 'suse' || i === 'sles')
        ? 'zypper'
        : 'apt';
  if (osRelease === undefined) detected = pm;
  return pm;
}

/** `sudo ` unless we are root. */
export function sudo(): string {
  return process.getuid?.() === 0 ? '' : 'sudo ';
}

/** e.g. `sudo apt install fuse-overlayfs fuse3`; undefined when the distribution has no package. */
export function installCommand(what: Prerequisite, pm: PackageManager = packageManager()): string | undefined {
  const pkg = PACKAGES[pm][what];
  return pkg ? `${sudo()}${INSTALL[pm]} ${pkg}` : undefined;
}

/** The hint `hutch run` and `hutch doctor` both print for a missing tool. */
export function installHint(what: Prerequisite): string {
  const cmd = installCommand(what);
  return cmd ? `install it: ${cmd}` : `install ${what} from source: this distribution does not package it`;
}
