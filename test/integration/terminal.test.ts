// hutch run in a real terminal: tmux gives every test a pane (a pty of the
// host) with an interactive bash in it; keys are typed with send-keys and
// the screen is read with capture-pane. What is checked is what a user sees:
// -it gives the sandbox a terminal of its own (tty, job control, Ctrl-C and
// Ctrl-Z inside, window size), the host terminal is sane after every exit,
// and a sandbox without -t can neither read nor hold the host terminal.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hutchCmd, tmpDir, waitFor } from '../lib/hutch';

const haveTmux = (() => {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const HUTCH = hutchCmd().map(q).join(' ');

/** One tmux server and pane running `bash --norc`, prompt "$ ". */
class Term {
  private constructor(
    readonly dir: string,
    readonly sock: string,
  ) {}

  static open(cols = 100, rows = 30): Term {
    const dir = tmpDir('hutch-term-');
    const t = new Term(dir, path.join(dir, 'tmux.sock'));
    t.tmux('-f', '/dev/null', 'new-session', '-d', '-s', 'w', '-x', String(cols), '-y', String(rows), 'env', 'PS1=$ ', 'bash', '--norc', '--noprofile');
    return t;
  }

  tmux(...args: string[]): string {
    return execFileSync('tmux', ['-S', this.sock, ...args], { encoding: 'utf8' });
  }

  /** Type a line and Enter. */
  line(text: string): void {
    this.tmux('send-keys', '-t', 'w', '-l', text);
    this.tmux('send-keys', '-t', 'w', 'Enter');
  }

  key(k: string): void {
    this.tmux('send-keys', '-t', 'w', k);
  }

  screen(): string {
    return this.tmux('capture-pane', '-p', '-J', '-S', '-200', '-t', 'w');
  }

  async see(re: RegExp, what: string, timeoutMs = 30_000): Promise<RegExpMatchArray> {
    let last = '';
    try {
      return await waitFor(
        () => {
          last = this.screen();
          return last.match(re) ?? undefined;
        },
        timeoutMs,
        { what, intervalMs: 100 },
      );
    } catch (e) {
      throw new Error(`${(e as Error).message}\n--- screen ---\n${last}`);
    }
  }

  close(): void {
    try {
      this.tmux('kill-server');
    } catch {
      /* already gone */
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Run body with a fresh terminal; the terminal is closed whatever happens. */
function termTest(name: string, body: (t: Term) => Promise<void>): void {
  test(name, async () => {
    if (!haveTmux) {
      console.log(`  skipped "${name}": tmux is not installed (apt-get install tmux)`);
      return;
    }
    const t = Term.open();
    try {
      await body(t);
    } finally {
      t.close();
    }
  });
}

/**
 * Pids that have `tty` open (every process of ours is readable). Compared by
 * device, not by name: a sandbox's own devpts has its own /dev/pts/0, which
 * readlink names like the host's /dev/pts/0 (the pane's, on a machine with no
 * other terminal).
 */
function holdersOf(tty: string): number[] {
  const want = fs.statSync(tty);
  const out: number[] = [];
  for (const p of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const same = fs.readdirSync(`/proc/${p}/fd`).some((fd) => {
        try {
          const st = fs.statSync(`/proc/${p}/fd/${fd}`);
          return st.dev === want.dev && st.rdev === want.rdev && st.isCharacterDevice();
        } catch {
          return false;
        }
      });
      if (same) out.push(Number(p));
    } catch {
      /* gone, or not ours */
    }
  }
  return out;
}

function nsOf(pid: number): string | undefined {
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return undefined;
  }
}

/** The host terminal's modes as `stty -a` in the pane prints them. */
async function hostTermSane(t: Term, tag: string): Promise<void> {
  t.line(`stty -a | tr ' ;' '\\n\\n' | grep -xE -- '-?(icanon|echo|isig|icrnl|opost)' | tr '\\n' ' '; echo END-${tag}`);
  const m = await t.see(new RegExp(`\\n((?:-?\\w+ )+)END-${tag}`), `stty output ${tag}`);
  assert.is(m[1].trim(), 'icrnl opost isig icanon echo', `host terminal modes after ${tag}`);
}

termTest('-it: a terminal of its own: tty, Ctrl-C inside (130), job control, window size, exit status', async (t) => {
  t.line(`${HUTCH} run -it --network none -- bash --norc --noprofile`);
  t.line('PS1="in# "; tty');
  await t.see(/\n\/dev\/pts\/\d+\s*\n/, 'tty prints /dev/pts/N');
  // Ctrl-C goes through the sandbox's line discipline to its foreground job
  // (bash abandons the rest of a line whose job Ctrl-C killed, as on the host)
  // (each job prints a computed marker first: keys sent before it runs would reach bash)
  t.line('sh -c "echo c-$((1+1)); exec sleep 30"');
  await t.see(/\nc-2\n/, 'sleep started');
  t.key('C-c');
  t.line('echo "after=$?"');
  await t.see(/\nafter=130\n/, 'sleep ended by Ctrl-C with 130');
  // Ctrl-Z stops the job inside, not hutch; fg brings it back
  t.line('sh -c "echo z-$((2+3)); exec sleep 40"');
  await t.see(/\nz-5\n/, 'sleep 40 started');
  t.key('C-z');
  await t.see(/\[1\]\+\s+Stopped\s+sh -c/, 'the job inside is stopped');
  t.line('jobs -l | wc -l; fg');
  await t.see(/\n1\nsh -c .*\n/, 'fg resumes it');
  t.key('C-c');
  t.line('echo "fg=$?"');
  await t.see(/\nfg=130\n/, 'the resumed job ends by Ctrl-C');
  // the size of the host's window, and its changes
  t.line('stty size');
  await t.see(/\n30 100\n/, 'stty size inside is the pane size');
  t.tmux('resize-window', '-t', 'w', '-x', '90', '-y', '20');
  t.line('stty size');
  await t.see(/\n20 90\n/, 'stty size follows the window (SIGWINCH)');
  // no process of the sandbox holds the host's terminal (the pane's pty)
  t.line('echo "holders=$(ls /proc | grep -c .)"');
  await t.see(/holders=\d+/, 'sandbox still running');
  const holders = holdersOf(t.tmux('display-message', '-p', '-t', 'w', '#{pane_tty}').trim());
  const ours = fs.readlinkSync('/proc/self/ns/pid');
  const inside = holders.filter((pid) => nsOf(pid) !== ours);
  assert.ok(holders.length >= 2, `the pane's shell and hutch hold it: ${holders}`);
  const who = (pid: number) => `${pid} ${nsOf(pid)} ${fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ')}`;
  assert.equal(inside.map(who), [], `processes in another pid namespace hold the host terminal (ours ${ours})`);
  t.line('exit 3');
  await t.see(/\nexit\n\s*\$ \s*$/, 'back at the host prompt'); // what is typed before is the sandbox's
  t.line('echo "host=$?"');
  await t.see(/\nhost=3\n/, 'hutch exits with the shell status');
  await hostTermSane(t, 'exit');
});

termTest("exec -it: a terminal from the running sandbox's devpts, Ctrl-C inside, its status", async (t) => {
  const name = `term-${process.pid}`;
  t.line(`${HUTCH} run -d --name ${name} --network none -- sleep 300`);
  await t.see(new RegExp(`\\n${name}\\n`), 'detached');
  t.line(`${HUTCH} exec -it ${name} sh`);
  t.line('tty; sh -c "echo e-\\$((3+4)); exec sleep 30"');
  await t.see(/\/dev\/pts\/\d+\s*\ne-7\n/, 'tty inside, sleep started');
  t.key('C-c');
  t.line('echo "st=$?"; exit 4');
  await t.see(/\nst=130\n/, 'Ctrl-C inside ends sleep');
  await t.see(/\nexit\n\s*\$ |\n\$ $/m, 'back at the host prompt');
  t.line('echo "host=$?"');
  await t.see(/\nhost=4\n/, 'exec returns the shell status');
  t.line(`${HUTCH} rm -f ${name}`);
  await hostTermSane(t, 'exec');
});

termTest('-it: the host terminal is sane after hutch is SIGKILLed, and the sandbox is gone', async (t) => {
  const pidFile = path.join(t.dir, 'hutch.pid');
  t.line(`bash -c 'echo $$ > ${pidFile}; exec ${HUTCH.replace(/'/g, `'\\''`)} run -it --network none -- sh -c "echo ready-in; sleep 100"'`);
  await t.see(/\nready-in/, 'sandbox started');
  const pid = Number(fs.readFileSync(pidFile, 'utf8'));
  process.kill(pid, 'SIGKILL');
  await t.see(/Killed/, 'the shell reports the kill');
  await hostTermSane(t, 'kill');
});

termTest('without -t: a sandbox in the background cannot read what is typed at the host shell', async (t) => {
  t.line(`${HUTCH} run --network none -- sh -c 'sleep 2; read x; echo "sandbox-read=[$x]"' &`);
  await t.see(/\[1\] \d+/, 'job started');
  t.line('echo typed-at-host');
  await t.see(/\ntyped-at-host\n/, 'the host shell ran what was typed');
  await t.see(/sandbox-read=\[\]/, 'the sandbox read end of file (/dev/null)');
  // its stdio are pipes, never the host terminal
  t.line(`${HUTCH} run --network none -- sh -c 'for f in 0 1 2; do readlink /proc/self/fd/$f; done' | tr '\\n' ' '; echo`);
  await t.see(/\n\/dev\/null pipe:\[\d+\] pipe:\[\d+\] /, 'stdin /dev/null, stdout/stderr pipes');
});

termTest('-i without -t: stdin is relayed; in the background hutch is stopped by SIGTTIN like any program', async (t) => {
  t.line(`${HUTCH} run -i --network none -- sh -c 'echo ready-$((1+1)); read x; echo "got=[$x]"' &`);
  await t.see(/ready-2/, 'the sandbox runs and waits for input');
  // typing wakes the relay, whose read of the terminal stops it (SIGTTIN)
  // before it takes anything: the line goes to the host shell
  t.line('echo host-still-here');
  await t.see(/\nhost-still-here\n/, 'the host shell got the line');
  t.line('sleep 1; jobs');
  await t.see(/\[1\]\+\s+Stopped.*hutch/, 'the background job is stopped (tty input)');
  t.line('fg');
  await t.see(/\nfg\n|run -i/, 'fg');
  t.line('hello-sandbox');
  await t.see(/got=\[hello-sandbox\]/, 'in the foreground the sandbox reads the terminal');
  t.line('echo "st=$?"');
  await t.see(/\nst=0\n/, 'exit 0');
});

termTest('without -t: Ctrl-C ends the whole process tree inside (130, nothing more printed)', async (t) => {
  t.line(`${HUTCH} run --network none -- bash -c "echo started; bash -c 'sleep 30'; echo not-here"; echo "st=$?"`);
  await t.see(/\nstarted\n/, 'started');
  t.key('C-c');
  await t.see(/st=130\n/, 'status 130');
  assert.not.match(t.screen(), /\nnot-here/, 'the outer shell went on after Ctrl-C');
  await hostTermSane(t, 'ctrl-c');
});

termTest('without -t: Ctrl-Z suspends hutch and the sandbox together, fg resumes both', async (t) => {
  const dir = t.dir;
  fs.chmodSync(dir, 0o755);
  const counter = path.join(dir, 'n');
  t.line(`${HUTCH} run --network none -v ${dir}:/w -- sh -c 'i=0; while :; do i=$((i+1)); echo $i > /w/n; sleep 0.1; done'`);
  await waitFor(() => fs.existsSync(counter) && Number(fs.readFileSync(counter, 'utf8')) > 3, 30_000, { what: 'counter runs' });
  t.key('C-z');
  await t.see(/\[1\]\+\s+Stopped/, 'hutch is stopped');
  await new Promise((r) => setTimeout(r, 500));
  const a = fs.readFileSync(counter, 'utf8');
  await new Promise((r) => setTimeout(r, 1500));
  assert.is(fs.readFileSync(counter, 'utf8'), a, 'the sandbox went on while hutch was stopped');
  t.line('fg');
  await waitFor(() => fs.readFileSync(counter, 'utf8') !== a, 30_000, { what: 'the sandbox resumes after fg' });
  t.key('C-c');
  t.line('echo "st=$?"');
  await t.see(/st=130\n/, 'Ctrl-C after fg ends it');
});

test.run();
