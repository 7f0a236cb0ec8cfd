// Every command line of README.md's ```sh blocks, run as written with the
// installed binary (a copy of dist/hutch in a bin directory first on PATH, as
// install.sh puts it), as this tier's user, in a project directory prepared
// for it; each checked for its documented outcome.
//
// README.md is the one source of truth for the command text: this file only
// knows, per line, what to prepare and what to check (EXAMPLES). A README line
// that EXAMPLES does not know fails ("not covered"), and so does an entry of
// EXAMPLES that is no longer in the README. Lines that cannot run on a
// machine like CI are in EXAMPLES with `skip: reason` (printed, counted as
// skipped); conditions of this host (no fixtures, hybrid cgroups) likewise.
//
// Documented host ports (8080, 8443, 8000-8002) are replaced by free ones
// (printed), so that a busy port on the machine does not fail the example.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describe, expectExit, freePort, repoPath, runCmd, spawnCmd, tmpDir, waitFor, type RunResult } from '../lib/hutch';
import { fixture, fixturesMissing } from '../fixtures/debian';

// ---------------------------------------------------------------- README lines

export interface ReadmeLine {
  /** the command, trailing `# comment` removed */
  cmd: string;
  comment: string;
  /** 1-based line number in README.md */
  lineNo: number;
}

/** Splits a shell line at its first `#` that starts a comment (outside quotes, after blank). */
export function splitComment(line: string): { cmd: string; comment: string } {
  let q: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (q) {
      if (c === q) q = null;
      else if (c === '\\' && q === '"') i++;
    } else if (c === "'" || c === '"') q = c;
    else if (c === '\\') i++;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]))) return { cmd: line.slice(0, i).trimEnd(), comment: line.slice(i + 1).trim() };
  }
  return { cmd: line.trimEnd(), comment: '' };
}

/** The command lines of every ```sh block, in order. */
export function readmeCommands(text: string): ReadmeLine[] {
  const out: ReadmeLine[] = [];
  let inSh = false;
  text.split('\n').forEach((raw, i) => {
    const fence = /^```(\S*)/.exec(raw);
    if (fence) {
      inSh = !inSh && fence[1] === 'sh';
      return;
    }
    if (!inSh || !raw.trim()) return;
    const { cmd, comment } = splitComment(raw);
    if (cmd) out.push({ cmd, comment, lineNo: i + 1 });
  });
  return out;
}

/** The first ```yaml block (the profile example). */
function readmeYaml(text: string): string {
  const m = /^```yaml\n([\s\S]*?)^```/m.exec(text);
  if (!m) throw new Error('README.md has no ```yaml block');
  return m[1];
}

// ---------------------------------------------------------------- environment

const README = fs.readFileSync(repoPath('README.md'), 'utf8');
const LINES = readmeCommands(README);

// The installed binary: what install.sh does (a copy of dist/hutch in a bin dir on PATH).
const home = tmpDir('readme-');
const bin = path.join(home, 'bin');
fs.mkdirSync(bin);
fs.copyFileSync(repoPath('dist', 'hutch'), path.join(bin, 'hutch'));
fs.chmodSync(path.join(bin, 'hutch'), 0o755);
const PATH = `${bin}:${process.env.PATH}`;

// The project directory every example runs in.
const project = path.join(home, 'project');
fs.mkdirSync(project);
const SERVE_PORTS = [3000, 5173, 443, 8000, 8001, 8002];
const SERVER = `// answers readme-serve:PORT on each port it listens on
const http = require('http');
for (const port of ${JSON.stringify(SERVE_PORTS)}) {
  http.createServer((q, r) => r.end('readme-serve:' + port)).listen(port, '::'); // IPv4 and IPv6
}
`;
const files: Record<string, string> = {
  'package.json': JSON.stringify({ name: 'readme-project', private: true, scripts: { test: 'echo readme-npm-test-ran', dev: 'node serve.js' } }, null, 2),
  'serve.js': SERVER,
  serve: '#!/bin/sh\nexec node serve.js\n',
  Makefile: 'all:\n\t@echo readme-make-all\ntest:\n\t@echo readme-make-test\n',
  'suspicious.js': `const fs = require('fs');
let write = 'written';
try { fs.writeFileSync('./planted', 'x'); } catch (e) { write = e.code; }
console.log('suspicious ran; write: ' + write + '; home: ' + JSON.stringify(fs.readdirSync(require('os').homedir())));
`,
  'p.yaml': readmeYaml(README),
  'my-profile.yaml': 'rootfs: {image: debian}\nnetwork: none\nsetup:\n  - run: echo built-by-setup > /etc/readme-setup\n',
};
for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(project, f), text);
fs.chmodSync(path.join(project, 'serve'), 0o755);
// `dist/hutch run -- id`: the project as a checkout with its build output
fs.mkdirSync(path.join(project, 'dist'));
fs.symlinkSync(path.join(bin, 'hutch'), path.join(project, 'dist', 'hutch'));
// `--rootfs dir:./rootfs`: a tiny root of a static busybox
const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((b) => fs.existsSync(b));
if (BUSYBOX) {
  for (const d of ['bin', 'etc', 'tmp']) fs.mkdirSync(path.join(project, 'rootfs', d), { recursive: true });
  fs.copyFileSync(BUSYBOX, path.join(project, 'rootfs', 'bin', 'busybox'));
  fs.chmodSync(path.join(project, 'rootfs', 'bin', 'busybox'), 0o755);
  fs.symlinkSync('busybox', path.join(project, 'rootfs', 'bin', 'sh'));
}
// `hutch image import debian.tar.zst`: the fixture's debootstrap tarball
const noFixtures = fixturesMissing();
if (!noFixtures) fs.symlinkSync(fixture('rootfs.tar.zst'), path.join(project, 'debian.tar.zst'));

/** Runs a README line as written (sh -c), with the installed hutch first on PATH. */
function sh(cmd: string, o: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return runCmd(['sh', '-c', cmd], { cwd: project, env: { PATH }, input: o.input, timeoutMs: o.timeoutMs ?? 120_000 });
}

/** Starts a README line in the background; stop() ends it (SIGTERM to its group) and returns its output. */
function background(cmd: string) {
  const child = spawnCmd(['sh', '-c', `exec ${cmd}`], { cwd: project, env: { PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<void>((r) => child.on('close', () => r()));
  return {
    output: () => out,
    async stop(): Promise<string> {
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        /* gone */
      }
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
      return out;
    },
  };
}

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d) => (body += d));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

const untilGet = (url: string, want: string, ms = 30_000) =>
  waitFor(async () => (await get(url)) === want, ms, { what: `${url} to answer ${want}`, intervalMs: 200 });

/** Runs `fn` while a sandbox NAME runs (prepared by the test: `sleep`). */
async function withSandbox<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const bg = background(`hutch run --name ${name} --network none -- sleep 120`);
  try {
    await waitFor(async () => new RegExp(`^${name}\\s`, 'm').test((await sh('hutch ps')).stdout), 20_000, { what: `sandbox ${name} in hutch ps` });
    return await fn();
  } finally {
    await bg.stop();
  }
}

/** Consecutive free TCP ports on 127.0.0.1 (and ::1): n of them, starting anywhere. */
async function freeRange(n: number): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const start = await freePort();
    if (start + n > 65535) continue;
    let ok = true;
    for (let p = start + 1; p < start + n && ok; p++) ok = await isFree(p);
    if (ok) return start;
  }
  throw new Error(`no ${n} consecutive free ports`);
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** Replaces a documented host port (as text) by a free one, and says so. */
function withPorts(cmd: string, subs: [string, string][]): string {
  let out = cmd;
  for (const [from, to] of subs) {
    assert.ok(out.includes(from), `the README line no longer holds ${from}: ${cmd}`);
    out = out.replace(from, to);
  }
  process.stdout.write(`  ports: ${subs.map(([a, b]) => `${a} -> ${b}`).join(', ')}\n`);
  return out;
}

/** Whether sandboxes of this user get a cgroup (a delegated cgroup v2 subtree), from `hutch run --dry-run`. */
const CGROUP_LINE = (() => {
  const r = spawnSync(path.join(bin, 'hutch'), ['run', '--dry-run', '--name', 'readme-probe', '--network', 'none', '--', 'true'], {
    encoding: 'utf8',
    env: { ...process.env, PATH },
  });
  return /^# cgroup: (.*)$/m.exec(r.stdout ?? '')?.[1] ?? `(no cgroup line in hutch run --dry-run: exit ${r.status})`;
})();
function noSandboxCgroup(): string | undefined {
  if (/^sandbox cgroup under /.test(CGROUP_LINE)) return undefined;
  return `sandboxes of this user get no cgroup here (hutch run --dry-run: "${CGROUP_LINE}"): pause and resume refuse with exit 125 and say why; test/vm/cgroup.test.ts runs them with a delegated cgroup v2 subtree`;
}

function hybridCgroups(): string | undefined {
  const mounts = fs.readFileSync('/proc/self/mounts', 'utf8');
  if (/ \/sys\/fs\/cgroup cgroup2 /.test(mounts)) return undefined;
  return 'this host has no pure cgroup v2 tree (hybrid or v1): hutch update cannot change memory or pids limits here (exit 125, and says why); test/vm/cgroup.test.ts runs it on a cgroup v2 guest';
}

// ---------------------------------------------------------------- what each line needs and does

interface Example {
  /** why it cannot run on a machine like CI (README says it, or it is the machinery itself) */
  skip?: string;
  /** a condition of this host that makes it unrunnable now, or undefined */
  skipIf?: () => string | undefined;
  /** runs the line (given as written) and checks the documented outcome */
  run?: (cmd: string) => Promise<void>;
}

/** Results of lines that other examples run while they are up (e.g. `hutch port web`). */
const ranWithin = new Map<string, string>();

const ok0 = (r: RunResult) => expectExit(r, 0);
const needImage = () => noFixtures;

const EXAMPLES: Record<string, Example> = {
  './install.sh': {
    skip: 'installs packages and ~/.local/bin/hutch for the user running it; test/integration/install.test.ts runs install.sh (install, again, --uninstall) in a scratch home',
  },
  './install.sh --uninstall': { skip: 'see ./install.sh: test/integration/install.test.ts runs it in a scratch home' },
  'npm test': { skip: 'the test suite itself: this file runs inside it' },
  'hutch pull debian:bookworm': {
    skip: 'needs docker.io; test/integration/pull.test.ts pulls from a local registry (short names: test/unit/registry.test.ts)',
  },
  'hutch pull ghcr.io/org/img:1.2 --platform linux/arm64': { skip: 'needs ghcr.io; pull.test.ts: "a multi-arch index: ..."' },
  'hutch run --rootfs image:alpine:3.20 -- cat /etc/os-release': { skip: 'needs docker.io; pull.test.ts: "run --rootfs image:REF pulls what is missing ..."' },
  'echo "$TOKEN" | hutch login -u me --password-stdin ghcr.io': {
    skip: 'needs ghcr.io and an account; pull.test.ts: "Basic auth: ..." logs in to a local registry',
  },
  'hutch logout ghcr.io': { skip: 'follows the login above; pull.test.ts: "Basic auth: ..." logs out' },
  'npm ci && npm run build': { skip: 'npm ci needs the registry; test/run.mjs runs the build (node build.mjs) before every test run' },
  'npm run bench': { skip: 'takes minutes and prints timings, nothing to check; run by hand (test/bench/run.mjs)' },

  [`hutch run -- sh -c 'id; hostname; echo $$; ls /proc | grep -c "^[0-9]"'`]: {
    async run(cmd) {
      const r = ok0(await sh(cmd));
      const [id, hostname, pid, procs] = r.stdout.trim().split('\n');
      assert.match(id, /^uid=0\(root\) gid=0\(root\)/, describe(r));
      assert.ok(hostname.length > 0, describe(r));
      // hutch's init is pid 1 of the new pid namespace; the command comes next
      assert.is(pid, '2', 'the shell is pid 2 (after the init) of its own pid namespace');
      assert.ok(Number(procs) >= 2 && Number(procs) <= 6, `only the sandbox's processes in /proc: ${procs}`);
    },
  },
  'dist/hutch run -- id': {
    async run(cmd) {
      assert.match(ok0(await sh(cmd)).stdout, /^uid=0\(root\)/);
    },
  },
  'hutch run -- sh': {
    async run(cmd) {
      const r = await sh(cmd, { input: 'echo readme-shell; exit 3\n' });
      expectExit(r, 3);
      assert.is(r.stdout, 'readme-shell\n');
    },
  },
  'hutch run --profile untrusted -v "$PWD:/src:ro" -w /src -- node ./suspicious.js': {
    async run(cmd) {
      const r = ok0(await sh(cmd));
      assert.match(r.stdout, /^suspicious ran; write: EROFS; home: \[\]$/m, describe(r));
      assert.not.ok(fs.existsSync(path.join(project, 'planted')));
    },
  },
  'hutch run -v "$PWD:/work" -w /work -- npm test': {
    async run(cmd) {
      const r = ok0(await sh(cmd));
      assert.match(r.stdout, /readme-npm-test-ran/, describe(r));
    },
  },
  // the detached lifecycle, one line after the other (test/integration/detached.test.ts has the details)
  "hutch run -d --name web --network none -- sh -c 'echo serving; exec sleep 600'": {
    async run(cmd) {
      await sh('hutch rm -f web');
      assert.is(ok0(await sh(cmd)).stdout, 'web\n');
    },
  },
  "hutch exec web sh -c 'hostname; cat /proc/1/comm'": {
    async run(cmd) {
      assert.is(ok0(await sh(cmd)).stdout, 'web\nhutch-helper\n');
    },
  },
  'hutch stop web': {
    async run(cmd) {
      assert.is(ok0(await sh(cmd)).stdout, 'web\n');
    },
  },
  'hutch logs web': {
    async run(cmd) {
      assert.is(ok0(await sh(cmd)).stdout, 'serving\n');
    },
  },
  'hutch rm web': {
    async run(cmd) {
      assert.is(ok0(await sh(cmd)).stdout, 'web\n');
      assert.not.match(ok0(await sh('hutch ps -a')).stdout, /^web\s/m);
    },
  },
  'hutch run --dry-run --profile dev-server -- npm run dev': {
    async run(cmd) {
      const r = ok0(await sh(cmd));
      assert.match(r.stdout, /^# profile: dev-server <- default$/m, describe(r));
      assert.match(r.stdout, /"workdir": "\/work"/);
      assert.match(r.stdout, /"npm",\s*"run",\s*"dev"/);
    },
  },
  'hutch run --rootfs dir:./rootfs -- /bin/sh': {
    skipIf: () => (BUSYBOX ? undefined : 'no busybox on this host to make ./rootfs of (apt-get install busybox-static)'),
    async run(cmd) {
      const r = ok0(await sh(cmd, { input: 'echo from-dir-root; ls /bin\n' }));
      assert.is(r.stdout, 'from-dir-root\nbusybox\nsh\n');
    },
  },
  [`hutch run --rootfs dir:./rootfs --keep ./changes -- sh -c 'echo hi > /etc/motd'`]: {
    skipIf: () => (BUSYBOX ? undefined : 'no busybox on this host to make ./rootfs of (apt-get install busybox-static)'),
    async run(cmd) {
      ok0(await sh(cmd));
      assert.is(fs.readFileSync(path.join(project, 'changes', 'upper', 'etc', 'motd'), 'utf8'), 'hi\n');
      assert.not.ok(fs.existsSync(path.join(project, 'rootfs', 'etc', 'motd')), 'the root itself is unchanged');
    },
  },
  "hutch run -- sh -c 'echo hi >> /etc/motd && tail -n 1 /etc/motd'": {
    async run(cmd) {
      const before = fs.readFileSync('/etc/motd');
      const r = ok0(await sh(cmd));
      assert.is(r.stdout, 'hi\n', describe(r));
      assert.ok(fs.readFileSync('/etc/motd').equals(before), "the host's /etc/motd is unchanged");
    },
  },
  [`hutch run --userns keep-id -v "$PWD:/work" -w /work -- sh -c 'whoami; touch mine'`]: {
    skipIf: () =>
      process.getuid!() !== 0 &&
      !fs
        .readFileSync('/etc/subuid', 'utf8')
        .split('\n')
        .some((l) => l.split(':')[0] === os.userInfo().username)
        ? 'keep-id needs an /etc/subuid range for this user'
        : undefined,
    async run(cmd) {
      const r = ok0(await sh(cmd));
      assert.is(r.stdout, `${os.userInfo().username}\n`, describe(r));
      assert.is(fs.statSync(path.join(project, 'mine')).uid, process.getuid!(), './mine is owned by the caller');
    },
  },
  'hutch run --memory 512m --cpus 1.5 --pids-limit 256 --timeout 10m --report usage.json -v "$PWD:/work" -w /work -- make test': {
    async run(cmd) {
      const r = ok0(await sh(cmd));
      assert.is(r.stdout, 'readme-make-test\n', describe(r));
      const report = JSON.parse(fs.readFileSync(path.join(project, 'usage.json'), 'utf8'));
      assert.is(report.exitCode, 0);
    },
  },
  'hutch ps': {
    async run(cmd) {
      const out = await withSandbox('web', async () => ok0(await sh(cmd)).stdout);
      assert.match(out, /^NAME\s+PID/m);
      assert.match(out, /^web\s+\d+/m);
    },
  },
  'hutch stats web': {
    async run(cmd) {
      const out = await withSandbox('web', async () => {
        const bg = background(cmd);
        await waitFor(() => /^web\s/m.test(bg.output()), 20_000, { what: 'a stats row for web' }).catch(() => {});
        return bg.stop();
      });
      assert.match(out, /^NAME\s+CPU %\s+MEM USAGE/m, out);
      // live figures with a cgroup; without one (no delegation) the row says so
      assert.match(out, noSandboxCgroup() ? /^web\s+-\s.*no cgroup$/m : /^web\s+\d+\.\d+%/m, out);
    },
  },
  'hutch stats': {
    async run(cmd) {
      const out = await withSandbox('job', async () => {
        const bg = background(cmd);
        await waitFor(() => /^job\s/m.test(bg.output()), 20_000, { what: 'a stats row for job' }).catch(() => {});
        return bg.stop();
      });
      assert.match(out, noSandboxCgroup() ? /^job\s+-\s.*no cgroup$/m : /^job\s+\d+\.\d+%/m, out);
    },
  },
  'hutch pause web; hutch resume web': {
    skipIf: noSandboxCgroup,
    async run(cmd) {
      const r = await withSandbox('web', async () => sh(cmd));
      assert.is(ok0(r).stdout, 'web\nweb\n');
    },
  },
  'hutch pause job; hutch resume job': {
    skipIf: noSandboxCgroup,
    async run(cmd) {
      const r = await withSandbox('job', async () => sh(cmd));
      assert.is(ok0(r).stdout, 'job\njob\n');
    },
  },
  'hutch update web --memory 1g --cpus 2': {
    skipIf: hybridCgroups,
    async run(cmd) {
      ok0(await withSandbox('web', async () => sh(cmd)));
    },
  },
  'hutch update job --memory 2g --pids-limit 512': {
    skipIf: hybridCgroups,
    async run(cmd) {
      ok0(await withSandbox('job', async () => sh(cmd)));
    },
  },
  'hutch run --name job --memory 1g --cpus 2 -v "$PWD:/work" -w /work -- make -j4': {
    async run(cmd) {
      assert.is(ok0(await sh(cmd)).stdout, 'readme-make-all\n');
    },
  },

  // Networking
  'hutch run --profile dev-server -p 8080:3000 -- npm run dev': {
    async run(cmd) {
      const port = await freePort();
      const bg = background(withPorts(cmd, [['8080:3000', `${port}:3000`]]));
      try {
        await untilGet(`http://127.0.0.1:${port}/`, 'readme-serve:3000');
      } finally {
        await bg.stop();
      }
    },
  },
  [`hutch run -v "$PWD:/work" -w /work -p 3000 -p '[::1]:8443:443' -p 8000-8002:8000-8002 --name web -- ./serve`]: {
    async run(cmd) {
      const v6 = await freePort();
      const range = await freeRange(3);
      const bg = background(
        withPorts(cmd, [
          ['[::1]:8443:443', `[::1]:${v6}:443`],
          ['8000-8002:8000-8002', `${range}-${range + 2}:8000-8002`],
        ]),
      );
      try {
        const ports = await waitFor(
          async () => {
            const r = await sh('hutch port web');
            return /^3000\/tcp -> 127\.0\.0\.1:(\d+)$/m.exec(r.stdout) ? r.stdout : '';
          },
          30_000,
          { what: 'hutch port web to list 3000/tcp' },
        );
        const p3000 = Number(/^3000\/tcp -> 127\.0\.0\.1:(\d+)$/m.exec(ports)![1]);
        assert.match(ports, new RegExp(`^443/tcp -> \\[::1\\]:${v6}$`, 'm'), ports);
        for (let i = 0; i < 3; i++) assert.match(ports, new RegExp(`^${8000 + i}/tcp -> 127\\.0\\.0\\.1:${range + i}$`, 'm'), ports);
        await untilGet(`http://127.0.0.1:${p3000}/`, 'readme-serve:3000');
        await untilGet(`http://127.0.0.1:${range + 1}/`, 'readme-serve:8001');
        await untilGet(`http://[::1]:${v6}/`, 'readme-serve:443');
      } finally {
        await bg.stop();
      }
    },
  },
  'hutch run -v "$PWD:/work" -w /work -P --expose 5173 --name web -- npm run dev': {
    async run(cmd) {
      const bg = background(cmd);
      try {
        // `hutch port web` (the next README line) while it runs
        const r = await waitFor(
          async () => {
            const x = await sh('hutch port web');
            return /^5173\/tcp -> 127\.0\.0\.1:\d+$/m.test(x.stdout) ? x : undefined;
          },
          30_000,
          { what: 'hutch port web to list 5173/tcp' },
        );
        const port = Number(/^5173\/tcp -> 127\.0\.0\.1:(\d+)$/m.exec(r.stdout)![1]);
        await untilGet(`http://127.0.0.1:${port}/`, 'readme-serve:5173');
        ranWithin.set('hutch port web', r.stdout);
      } finally {
        await bg.stop();
      }
    },
  },
  'hutch port web': {
    async run() {
      const out = ranWithin.get('hutch port web');
      assert.ok(out, 'run while the -P --expose 5173 example above runs; that example failed before it');
      assert.match(out!, /^5173\/tcp -> 127\.0\.0\.1:\d+$/m);
    },
  },

  // Images and volumes
  'hutch image import debian.tar.zst --name debian': {
    skipIf: needImage,
    async run(cmd) {
      assert.match(ok0(await sh(cmd, { timeoutMs: 300_000 })).stdout, /^sha256:[0-9a-f]{64}$/m);
    },
  },
  'hutch run --rootfs image:debian -- apt-get --version': {
    skipIf: needImage,
    async run(cmd) {
      assert.match(ok0(await sh(cmd)).stdout, /^apt \d/);
    },
  },
  'hutch image ls': {
    skipIf: needImage,
    async run(cmd) {
      assert.match(ok0(await sh(cmd)).stdout, /^debian\s+[0-9a-f]{12}\s+1\s/m);
    },
  },
  'hutch build ./my-profile.yaml': {
    skipIf: needImage,
    async run(cmd) {
      const r = ok0(await sh(cmd, { timeoutMs: 300_000 }));
      assert.match(r.stderr, /^built my-profile: 2 layers \(0 cached, 1 built\)/m, describe(r));
      const again = ok0(await sh(cmd));
      assert.match(again.stderr, /\(1 cached, 0 built\)/, 'the second build comes from the cache');
    },
  },
  [`hutch run --rootfs image:debian --keep ./k --name s1 -- sh -c 'echo hi > /etc/motd'`]: {
    skipIf: needImage,
    async run(cmd) {
      ok0(await sh(cmd));
      assert.is(fs.readFileSync(path.join(project, 'k', 'upper', 'etc', 'motd'), 'utf8'), 'hi\n');
    },
  },
  'hutch commit s1 debian-motd': {
    skipIf: needImage,
    async run(cmd) {
      assert.match(ok0(await sh(cmd)).stdout, /^sha256:[0-9a-f]{64}$/m);
      assert.is(ok0(await sh('hutch run --network none --rootfs image:debian-motd -- cat /etc/motd')).stdout, 'hi\n');
    },
  },
  [`hutch volume create cache; hutch run -v cache:/root/.cache -- sh -c 'date > /root/.cache/last-run'`]: {
    async run(cmd) {
      const r = ok0(await sh(cmd));
      assert.is(r.stdout, 'cache\n');
      const vol = JSON.parse(ok0(await sh('hutch volume inspect cache')).stdout);
      assert.match(fs.readFileSync(path.join(vol.mountpoint, 'last-run'), 'utf8'), /\d{4}/);
    },
  },
  'hutch network create backend --subnet 10.89.5.0/24': {
    async run(cmd) {
      assert.is(ok0(await sh(cmd)).stdout, 'backend\n');
    },
  },
  'hutch network create frontend --internal': {
    async run(cmd) {
      assert.is(ok0(await sh(cmd)).stdout, 'frontend\n');
    },
  },
  'hutch network create edge --network-driver pasta': {
    async run(cmd) {
      assert.is(ok0(await sh(cmd)).stdout, 'edge\n');
      try {
        // the NAT is the network's: stored with it, started with its first member
        const cfg = JSON.parse(ok0(await sh('hutch network inspect edge')).stdout);
        assert.is((Array.isArray(cfg) ? cfg[0] : cfg).driver, 'pasta', JSON.stringify(cfg));
        assert.match(ok0(await sh('hutch network ls')).stdout, /^edge\s+\S+\s+no\s+pasta\s+-$/m);
        assert.match(ok0(await sh(`hutch run --network edge -- sh -c 'ip -4 route show default'`)).stdout, /^default via /m);
      } finally {
        ok0(await sh('hutch network rm edge'));
      }
    },
  },
  'hutch network ls': {
    async run(cmd) {
      const out = ok0(await sh(cmd)).stdout;
      assert.match(out, /^NAME\s+SUBNET\s+INTERNAL\s+DRIVER\s+MEMBERS$/m);
      assert.match(out, /^backend\s+10\.89\.5\.0\/24\s+no\s+auto\s+-$/m);
      assert.match(out, /^frontend\s+10\.89\.\d+\.0\/24\s+yes\s+-\s+-$/m);
    },
  },
  ['hutch run --network backend --network frontend -- cat /etc/resolv.conf']: {
    async run(cmd) {
      // one DNS responder per network, in lexical order: each answers its own members
      assert.match(ok0(await sh(cmd)).stdout, /^nameserver 10\.89\.5\.1\nnameserver 10\.89\.\d+\.1$/m);
    },
  },
  [`hutch run --network backend --name db -- sh -c 'getent hosts db'`]: {
    async run(cmd) {
      // the network's DNS answers the member's own name with its bridge address
      assert.match(ok0(await sh(cmd)).stdout, /^10\.89\.5\.\d+\s+db$/m);
    },
  },
  'hutch network rm backend frontend': {
    async run(cmd) {
      assert.is(ok0(await sh(cmd)).stdout, 'backend\nfrontend\n');
      assert.not.match(ok0(await sh('hutch network ls')).stdout, /backend/);
    },
  },
  'hutch volume ls': {
    async run(cmd) {
      assert.match(ok0(await sh(cmd)).stdout, /^cache\s+\d{4}-/m);
    },
  },
  'hutch system prune': {
    async run(cmd) {
      ok0(await sh(cmd));
      if (!noFixtures) assert.match(ok0(await sh('hutch image ls')).stdout, /^debian\s/m, 'prune keeps the layers images use');
    },
  },

  // Profiles
  'hutch profile ls': {
    async run(cmd) {
      const out = ok0(await sh(cmd)).stdout;
      for (const p of ['default', 'untrusted', 'dev-server', 'ci']) assert.match(out, new RegExp(`^${p}\\s`, 'm'), out);
    },
  },
  'hutch profile show dev-server': {
    async run(cmd) {
      const out = ok0(await sh(cmd)).stdout;
      assert.match(out, /\/work/, out);
    },
  },
  'hutch profile validate ./p.yaml': {
    async run(cmd) {
      ok0(await sh(cmd));
    },
  },
  'hutch profile schema > hutch-profile.schema.json': {
    async run(cmd) {
      ok0(await sh(cmd));
      const schema = JSON.parse(fs.readFileSync(path.join(project, 'hutch-profile.schema.json'), 'utf8'));
      assert.ok(schema.properties?.mounts && schema.properties?.extends, 'a JSON Schema of profiles');
    },
  },
};

// ---------------------------------------------------------------- the tests

test('README has command lines, and EXAMPLES knows each of them and nothing else', () => {
  assert.ok(LINES.length >= 20, `only ${LINES.length} lines found`);
  const unknown = LINES.filter((l) => !(l.cmd in EXAMPLES)).map((l) => `README.md:${l.lineNo}: ${l.cmd}`);
  assert.equal(unknown, [], `README examples not covered by test/integration/readme.test.ts:\n${unknown.join('\n')}`);
  const stale = Object.keys(EXAMPLES).filter((k) => !LINES.some((l) => l.cmd === k));
  assert.equal(stale, [], 'EXAMPLES entries no longer in README.md');
});

test('the comment splitter keeps # inside quotes and $$', () => {
  assert.equal(splitComment(`a 'x # y' "#" $$ # note`), { cmd: `a 'x # y' "#" $$`, comment: 'note' });
  assert.equal(splitComment('hutch ps'), { cmd: 'hutch ps', comment: '' });
});

for (const line of LINES) {
  const ex = EXAMPLES[line.cmd];
  if (!ex) continue; // reported by the first test
  const name = `README.md:${line.lineNo}: ${line.cmd}`;
  const why = ex.skip ?? ex.skipIf?.();
  if (why || !ex.run) {
    process.stdout.write(`  skip: ${name}: ${why ?? 'nothing to run'}\n`);
    test.skip(name, () => {});
    continue;
  }
  test(name, () => ex.run!(line.cmd));
}

test.run();
