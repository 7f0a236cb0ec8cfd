// A closed stdout (`hutch ps | head -1`) ends hutch quietly, as it ends a C
// or Go program killed by SIGPIPE: no message, no stack trace, status 141
// (128 + SIGPIPE), for every verb that prints.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describe, expectExit, hutchCmd, runCmd, runHutch, waitFor } from '../lib/hutch';

const uniq = () => `c${process.pid}-${Math.random().toString(16).slice(2, 8)}`;

/**
 * `hutch ARGS | true`: the reader is gone before hutch writes (it starts
 * after a pause), so its first write to stdout meets a closed pipe. Returns
 * hutch's status and what it wrote to stderr.
 */
async function intoClosedPipe(args: string[]): Promise<{ status: string; stderr: string }> {
  const script = '{ sleep 0.3; "$@"; echo "status $?" >&2; } | true';
  const r = expectExit(await runCmd(['sh', '-c', script, 'sh', ...hutchCmd(), ...args]), 0);
  const m = /status (\d+)\n$/.exec(r.stderr);
  assert.ok(m, describe(r));
  return { status: m![1], stderr: r.stderr.slice(0, m!.index) };
}

test('a closed stdout: run --dry-run, --help, ps, profile show, inspect, logs end with 141 and say nothing', async () => {
  const name = uniq();
  // a detached sandbox with plenty of output, for logs, inspect and ps
  expectExit(await runHutch(['run', '-d', '--name', name, '--network', 'none', '--', 'sh', '-c', 'seq 1 20000; exec sleep 100']), 0);
  try {
    await waitFor(async () => (await runHutch(['logs', '--tail', '1', name])).stdout === '20000\n', 30_000, { what: 'the log to be written' });
    for (const args of [
      ['run', '--dry-run', '--network', 'none', '--', 'true'],
      ['--help'],
      ['ps'],
      ['ps', '-a'],
      ['profile', 'show', 'default'],
      ['inspect', name],
      ['logs', name],
      ['logs', '-f', name],
    ]) {
      const { status, stderr } = await intoClosedPipe(args);
      assert.is(stderr, '', `hutch ${args.join(' ')}: nothing on stderr`);
      assert.is(status, '141', `hutch ${args.join(' ')}: the status of a SIGPIPE death`);
    }
    // the sandbox is not touched by a reader that went away
    assert.match(expectExit(await runHutch(['ps'])).stdout, new RegExp(`^${name}\\s`, 'm'));
  } finally {
    await runHutch(['rm', '-f', name]);
  }
});

test('an open stdout is unchanged: the same commands print and end with 0', async () => {
  const r = expectExit(await runHutch(['run', '--dry-run', '--network', 'none', '--', 'true']), 0);
  assert.match(r.stdout, /^# profile: default\n/);
  assert.is(r.stderr.includes('EPIPE'), false);
});

test.run();
